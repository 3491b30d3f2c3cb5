"""Adam and SGD with momentum: torch's own updates, without ``torch.optim.Optimizer``.

Building any ``torch.optim`` optimizer imports torch's compiler stack (``torch._dynamo``: 1.2–1.4 s
on a 2-core CPU), which every training command, classifier and estimator fit paid once for
nothing it uses. These classes keep the parameters, moments and step counts as torch's do and run
the same update functions (``torch.optim.adam.adam``, ``torch.optim.sgd.sgd``), so their steps are
torch's to the bit, and their ``state_dict`` has torch's layout: a state saved by a torch
optimizer resumes in them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.optim.adam import adam
from torch.optim.sgd import sgd

# the settings of torch's optimizers that these keep at torch's defaults, saved with the others so
# that torch's optimizers (an earlier version of this package) can load a saved state too
ADAM_FIXED = dict(
    amsgrad=False, maximize=False, foreach=None, differentiable=False, decoupled_weight_decay=False
)
SGD_FIXED = dict(
    dampening=0.0, nesterov=False, maximize=False, foreach=None, differentiable=False, fused=None
)


class Optimizer:
    """One group of parameters, their state, and saving and loading it as torch does."""

    def __init__(self, params: Iterable[torch.Tensor], **settings: Any):
        params = list(params)
        if not params:
            raise ValueError("nothing to optimize: no parameters")
        self.param_groups: list[dict[str, Any]] = [{"params": params, **settings}]
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def zero_grad(self) -> None:
        """Drop every gradient: the next backward pass allocates them anew."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """torch's layout: the state keyed by each parameter's place in the groups, and the groups'
        settings with those places as their ``params``. The tensors are this optimizer's own."""
        place = {p: i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
        groups = [{**g, "params": [place[p] for p in g["params"]]} for g in self.param_groups]
        return {"state": {place[p]: dict(s) for p, s in self.state.items()}, "param_groups": groups}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """The moments and step counts in ``saved`` (from ``state_dict``, or a torch optimizer's),
        moved to each parameter's device, and each group's saved learning rate; how the update
        runs (fused, a rate held as a device tensor) stays as this optimizer was built. A rate
        held as a tensor is written in place: a CUDA graph replaying the update reads that tensor."""
        groups = saved["param_groups"]
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError("the saved optimizer state is for other parameters than this optimizer's")
        self.state = {}
        for group, was in zip(self.param_groups, groups, strict=True):
            for p, place in zip(group["params"], was["params"], strict=True):
                if place in saved["state"]:
                    self.state[p] = {
                        k: self._placed(k, v, p, group) for k, v in saved["state"][place].items()
                    }
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(float(was["lr"]))
            else:
                group["lr"] = float(was["lr"])

    def _placed(self, key: str, value: Any, p: torch.Tensor, group: dict[str, Any]) -> torch.Tensor:
        """A saved state tensor as this optimizer keeps it: like its parameter."""
        return torch.as_tensor(value).to(dtype=p.dtype, device=p.device)


class Adam(Optimizer):
    """``torch.optim.Adam`` with its usual arguments (not ``amsgrad``, ``maximize``, ``foreach``,
    ``differentiable`` or decoupled decay, which stay at torch's defaults): ``fused`` runs the whole
    update as one kernel; ``capturable`` keeps the step counts on the device and
    takes ``lr`` as a device tensor, so a CUDA graph can replay the update while a schedule writes
    the rate."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        fused: bool | None = None,
        capturable: bool = False,
    ):
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            fused=fused,
            capturable=capturable,
            **ADAM_FIXED,
        )

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            states = [self.state.get(p) or self._fresh(p, group) for p in params]
            adam(
                params,
                [p.grad for p in params],
                [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states],
                [],
                [s["step"] for s in states],
                fused=group["fused"],
                capturable=group["capturable"],
                amsgrad=False,
                beta1=group["betas"][0],
                beta2=group["betas"][1],
                lr=group["lr"],
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=False,
            )

    def _fresh(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, torch.Tensor]:
        """A parameter's state before its first update, as torch's Adam makes it."""
        state = self.state[p] = {
            "step": torch.zeros(
                (), dtype=torch.float32, device=p.device if self._on_device(group) else "cpu"
            ),
            "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
            "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
        }
        return state

    @staticmethod
    def _on_device(group: dict[str, Any]) -> bool:
        """Whether the step counts live with the parameters (else on the host, as floats)."""
        return bool(group["fused"] or group["capturable"])

    def _placed(self, key: str, value: Any, p: torch.Tensor, group: dict[str, Any]) -> torch.Tensor:
        if key == "step":  # a float32 count, where this optimizer keeps its counts
            return torch.as_tensor(value, dtype=torch.float32).to(
                p.device if self._on_device(group) else "cpu"
            )
        return super()._placed(key, value, p, group)


class SGD(Optimizer):
    """``torch.optim.SGD`` with momentum (no dampening, not Nesterov) and weight decay."""

    def __init__(
        self, params: Iterable[torch.Tensor], lr: float, momentum: float = 0.0, weight_decay: float = 0.0
    ):
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay, **SGD_FIXED)

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            # None until the first update, which starts the buffer from that gradient
            momentum = group["momentum"] != 0
            buffers = [self.state.get(p, {}).get("momentum_buffer") for p in params] if momentum else []
            sgd(
                params,
                [p.grad for p in params],
                buffers,
                weight_decay=group["weight_decay"],
                momentum=group["momentum"],
                lr=group["lr"],
                dampening=group["dampening"],
                nesterov=group["nesterov"],
                maximize=False,
            )
            if momentum:
                for p, buffer in zip(params, buffers, strict=True):
                    self.state[p] = {"momentum_buffer": buffer}

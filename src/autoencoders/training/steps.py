"""Training steps: one batch of training or evaluation; the loop never knows which kind.

A step owns its optimizers and learning-rate schedules by name, so a step with several
optimizers (an adversarial autoencoder's reconstruction and regularisation phases) saves,
resumes and logs through the same loop as a step with one.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.stream import RowStream
from ..errors import UserError
from ..models.layers import CodeSelect
from ..models.objectives import Objective
from ..options import TrainConfig
from ..runtime.distributed import data_parallel, rank_and_size
from .optimizers import SGD, Adam, Optimizer

Batch = tuple[torch.Tensor, ...]


def make_optimizer(params: Iterable[nn.Parameter], cfg: TrainConfig) -> Optimizer:
    """Adam (one fused kernel for the whole update) or SGD with momentum, over the trainable ``params``.

    On a GPU whose steps may be replayed as CUDA graphs, Adam's learning rate is a device tensor
    and its step counts stay on the device (``capturable``): a graph can replay the update while
    the schedule changes the rate. With ``--cuda-graph off`` or under torchrun (no graphs) it is
    Adam as usual.
    """
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: every parameter is frozen")
    if cfg.optimizer == "sgd":
        return SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if params[0].is_cuda and cfg.cuda_graph != "off" and rank_and_size()[1] == 1:
        # float32, as the fused kernel reads it
        lr = torch.tensor(cfg.lr, dtype=torch.float32, device=params[0].device)
        return Adam(params, lr=lr, weight_decay=cfg.weight_decay, fused=True, capturable=True)
    return Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)


# one-cycle (Smith & Topin 2019): the rate rises from this fraction of its peak over the first
# ONECYCLE_RISE of the steps, then falls along a cosine to 0; the rise lets a higher peak rate
# start without diverging
ONECYCLE_START, ONECYCLE_RISE = 1 / 25, 0.3


def lr_factor(decay: str, step: int, steps: int) -> float:
    """The learning rate's factor at ``step`` of ``steps``: constant, cosine from 1 to 0, or one-cycle."""
    done = min(step / max(steps, 1), 1.0)
    if decay == "cosine":
        return 0.5 * (1 + math.cos(math.pi * done))
    if decay == "onecycle":
        if done < ONECYCLE_RISE:
            return ONECYCLE_START + (1 - ONECYCLE_START) * done / ONECYCLE_RISE
        return 0.5 * (1 + math.cos(math.pi * (done - ONECYCLE_RISE) / (1 - ONECYCLE_RISE)))
    return 1.0


class Schedule:
    """An optimizer's learning rates along ``lr_factor(decay, n, steps)`` after ``n`` batches, moved
    one batch per ``step``. A rate held as a device tensor (capturable Adam) is written in place, one
    kernel that a replayed CUDA graph reads; never replaced, which would leave the graph reading
    memory freed, nor read back to the host."""

    def __init__(self, optimizer: Optimizer, decay: str, steps: int):
        self.optimizer, self.decay, self.steps = optimizer, decay, steps
        self.base = [float(group["lr"]) for group in optimizer.param_groups]  # one read, at the start
        self.last_epoch = 0  # batches so far (torch's schedules' name for it, which saved states use)
        self._apply()

    def step(self) -> None:
        self.last_epoch += 1
        self._apply()

    def _apply(self) -> None:
        factor = lr_factor(self.decay, self.last_epoch, self.steps)
        for group, base in zip(self.optimizer.param_groups, self.base, strict=True):
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(base * factor)
            else:
                group["lr"] = base * factor

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """``state`` from ``state_dict``, or from the torch ``LambdaLR`` earlier versions saved."""
        self.last_epoch = int(state["last_epoch"])
        self._apply()


def make_schedulers(optimizers: dict[str, Optimizer], decay: str, steps: int) -> dict[str, Schedule]:
    """Per-batch learning-rate schedules over ``steps``, one per optimizer (see ``lr_factor``; 0 after
    a decay ends). None for a constant rate: stepping it would cost every batch a Python call and,
    on a GPU, a kernel launch, to write the rate it already has."""
    if decay == "none":
        return {}
    return {k: Schedule(o, decay, steps) for k, o in optimizers.items()}


class Step:
    """Base of every step: named optimizers and schedules, train/eval mode, saved state."""

    module: nn.Module  # what the step trains (its mode is switched, its parameters saved)
    optimizers: dict[str, Optimizer]
    schedulers: dict[str, Schedule]
    objective: Objective | None = None  # its epoch-dependent weights follow the loop
    monitor = "loss"  # the validation number early stopping and best-weight keeping minimise
    # the options that weigh its named terms, or set the rate of their own optimizers: each can make
    # a loss blow up as the learning rate does (a step of another command names that command's)
    levers = {
        "kl": "--beta",
        "sparsity": "--sparsity-weight",
        "contractive": "--contractive",
        "disc": "--adversarial-lr",
        "gen": "--adversarial-lr",
    }
    finished = False  # set by a step that has reached its own end (DEC: assignments settled)
    # full batches only: an epoch's last batch is left out unless it is full (in one process: the loop
    # then averages over this process's rows, as it does for a step that finished)
    whole_batches = False
    # the loop sets this to its precision's autocast; forward passes run inside it
    amp: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext

    def set_epoch(self, epoch: int) -> None:
        """Called before each epoch (1-based): loss weights and the model (a k schedule) follow it."""
        if self.objective is not None:
            self.objective.epoch = epoch
        if hasattr(self.module, "set_epoch"):
            self.module.set_epoch(epoch)

    def end_batch(self) -> None:
        """After every training batch: each schedule moves one step. Kept out of ``train_batch``,
        which a CUDA graph may replay: the rates change between replays, on the device."""
        for scheduler in self.schedulers.values():
            scheduler.step()

    def graph_constants(self) -> tuple:
        """The numbers a CUDA graph of ``train_batch`` records as constants for the current epoch:
        the loss terms' weights and each code selection's k (a graph is recorded anew when they change)."""
        weights = () if self.objective is None else self.objective.weights()
        return weights, tuple(m.current_k() for m in self.module.modules() if isinstance(m, CodeSelect))

    def capture_refusal(self) -> str | None:
        """Why ``train_batch`` cannot be replayed as a CUDA graph, or None when it can."""
        if any(not isinstance(o, Adam) for o in self.optimizers.values()):
            return "SGD reads its learning rate on the host at every step; use --optimizer adam"
        groups = [g for o in self.optimizers.values() for g in o.param_groups]
        if any(not (g["capturable"] and isinstance(g["lr"], torch.Tensor)) for g in groups):
            # a graph would replay the rate it recorded, whatever the schedule wrote after
            return "its Adam keeps the learning rate on the host, not on the device"
        return None

    def generators(self) -> list[torch.Generator]:
        """Random generators of its own that ``train_batch`` draws from (a CUDA graph registers them)."""
        return []

    def data(self) -> list[torch.Tensor | RowStream]:
        """Rows the step holds and only reads (copies of the step made to time it share them)."""
        return []

    def _update(self, name: str, loss: torch.Tensor) -> None:
        """One update of optimizer ``name`` on ``loss``."""
        optimizer = self.optimizers[name]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def train_batch(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Update on one batch; return detached per-batch means, ``loss`` among them."""
        raise NotImplementedError

    @torch.no_grad()
    def eval_batch(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The same numbers as ``train_batch`` without updating (no input corruption)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The optimizers' moments, step counts and rates and the schedules' positions from
        ``state``. How each optimizer runs stays as this step built it (its rate a device tensor
        where CUDA graphs may replay it): a state saved with graphs off resumes with them on."""
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
            # torch takes moments of any shape and steps of any value: a wrong one would broadcast
            # into NaN weights
            for p, moments in o.state.items():
                for name, v in moments.items():
                    if name == "step":
                        count = float(v) if isinstance(v, torch.Tensor) and v.numel() == 1 else v
                        if not (type(count) in (int, float) and 0 <= count < math.inf):
                            raise ValueError(f"the {k} optimizer's step count {count!r}")
                    elif isinstance(v, torch.Tensor) and v.shape != p.shape:
                        raise ValueError(
                            f"the {k} optimizer's {name} of shape {tuple(v.shape)} for weights of "
                            f"shape {tuple(p.shape)}"
                        )
        for k, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][k])


class GradientStep(Step):
    """One optimizer minimising ``losses(*batch)["loss"]``; ``corrupt`` applies to training inputs only.

    ``losses`` is a module returning a dict of named per-batch means; it is what
    DistributedDataParallel wraps, so gradients are averaged across ranks.
    """

    def __init__(
        self,
        losses: nn.Module,
        module: nn.Module,
        cfg: TrainConfig,
        steps: int,
        corrupt: Callable[[torch.Tensor], torch.Tensor] | None = None,
        objective: Objective | None = None,
    ):
        self.module, self.corrupt, self.objective = module, corrupt, objective
        self.losses = losses
        self.forward = data_parallel(losses)
        self.optimizers = {"main": make_optimizer(module.parameters(), cfg)}
        self.schedulers = make_schedulers(self.optimizers, cfg.lr_decay, steps)

    def train_batch(self, batch: Batch) -> dict[str, torch.Tensor]:
        if self.corrupt is not None:
            # the corrupted input goes first; the clean rows stay as the target (the last part)
            batch = (self.corrupt(batch[0]), *batch)
        return self._descend(*batch)

    def _descend(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """One update on ``losses(*inputs)["loss"]``; the detached values."""
        with self.amp():
            values = self.forward(*inputs)
        self._update("main", values["loss"])
        return {k: v.detach() for k, v in values.items()}

    @torch.no_grad()
    def eval_batch(self, batch: Batch) -> dict[str, torch.Tensor]:
        with self.amp():
            return self.losses(*batch)


class AutoencoderLosses(nn.Module):
    """``objective(model, input, target, model(input))``: input is the first part of a batch,
    the target the last (the same tensor for an autoencoder, the stack's input for phased pretraining)."""

    def __init__(self, model: nn.Module, objective: Objective):
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, *batch: torch.Tensor) -> dict[str, torch.Tensor]:
        x, target = batch[0], batch[-1]
        return self.objective(self.model, x, target, self.model(x), full=not self.model.training)


def autoencoder_step(
    model: nn.Module,
    cfg: TrainConfig,
    steps: int,
    corrupt: Callable[[torch.Tensor], torch.Tensor] | None = None,
    terms: list | None = None,
) -> GradientStep:
    """The gradient step that trains ``model`` on its own terms (or ``terms``)."""
    objective = Objective(terms if terms is not None else model.terms())
    return GradientStep(AutoencoderLosses(model, objective), model, cfg, steps, corrupt, objective)


def classification(logits: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean cross-entropy (``ce``) and accuracy of class ``logits`` against class indices ``y``."""
    logits = logits.float()
    return {"ce": F.cross_entropy(logits, y), "accuracy": (logits.argmax(1) == y).float().mean()}


class ClassifierLosses(nn.Module):
    """Cross-entropy of ``model(x)`` (class logits) against class indices ``y``, and accuracy."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        values = classification(self.model(x), y)
        return {"loss": values.pop("ce"), **values}


def supervised_step(model: nn.Module, cfg: TrainConfig, steps: int) -> GradientStep:
    """The gradient step that trains a classifier on (inputs, labels) batches."""
    return GradientStep(ClassifierLosses(model), model, cfg, steps)


class SemiSupervisedStep(GradientStep):
    """One update on labelled and unlabelled rows together (semi-supervised training).

    The loop's batches are the unlabelled rows (every training row); each step also draws a
    batch of the ``labelled`` (inputs, class indices) rows from its own seeded generator.
    ``losses(x_unlabelled, x_labelled, y)`` returns the weighted sum ``loss`` and its named
    parts; its unlabelled part's ``objective`` follows the epochs (a KL warm-up). Evaluation
    scores the classifier ``module`` on labelled (inputs, classes) batches;
    early stopping follows its cross-entropy.
    """

    monitor = "ce"
    levers = {"recon": "--recon-weight", "kl": "--recon-weight"}  # classify's, not the run's --beta

    def __init__(
        self,
        losses: Callable[..., dict[str, torch.Tensor]],
        module: nn.Module,
        labelled: tuple[torch.Tensor, torch.Tensor],
        cfg: TrainConfig,
        steps: int,
        objective: Objective | None = None,
        whole_batches: bool = False,
    ):
        if rank_and_size()[1] > 1:  # every rank would draw the same labelled batches
            raise UserError("semi-supervised training runs in one process; start it without torchrun")
        super().__init__(losses, module, cfg, steps, objective=objective)
        self.whole_batches = whole_batches
        self.labelled = labelled
        # drawn where the labelled rows are: a step copies nothing from the host
        self.draw = torch.Generator(device=labelled[0].device).manual_seed(cfg.seed + 1)
        self.labelled_batch = min(cfg.batch_size, len(labelled[0]))

    def generators(self) -> list[torch.Generator]:
        return [self.draw]

    def train_batch(self, batch: Batch) -> dict[str, torch.Tensor]:
        x, y = self.labelled
        idx = torch.randint(len(x), (self.labelled_batch,), generator=self.draw, device=x.device)
        return self._descend(batch[0], x[idx], y[idx])

    @torch.no_grad()
    def eval_batch(self, batch: Batch) -> dict[str, torch.Tensor]:
        with self.amp():
            return classification(self.module(batch[0]), batch[1])

"""Building blocks: activations, tied linear layers, input corruption (a training-time transform)."""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from ..options import scheduled_k


def activation(name: str) -> nn.Module:
    """The activation module called ``name``."""
    modules = {
        "sigmoid": nn.Sigmoid,
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "gelu": nn.GELU,
        "linear": nn.Identity,
    }
    if name not in modules:
        raise UserError(f"unknown activation '{name}'; use one of {', '.join(modules)}")
    return modules[name]()


Slope = Callable[[torch.Tensor], torch.Tensor]


def output_range(act: nn.Module) -> tuple[float, float] | None:
    """The lowest and highest values the elementwise activation ``act`` gives, where both are finite."""
    return {nn.Sigmoid: (0.0, 1.0), nn.Tanh: (-1.0, 1.0)}.get(type(act))


def slope_from_output(act: nn.Module) -> Slope | None:
    """The derivative of the elementwise activation ``act`` as a function of its output h, where
    h alone determines it (sigmoid h(1 − h), tanh 1 − h², ReLU [h > 0], linear 1); else None (GELU)."""
    slopes: dict[type, Slope] = {
        nn.Sigmoid: lambda h: h * (1 - h),
        nn.Tanh: lambda h: 1 - h * h,
        nn.ReLU: lambda h: (h > 0).to(h.dtype),
        nn.Identity: torch.ones_like,
    }
    return slopes.get(type(act))


class TiedLinear(nn.Module):
    """Decoder layer whose weight *is* the transpose of an encoder layer's weight.

    The encoder layer is held outside the module tree so the shared weight appears once
    in ``state_dict`` and ``parameters()``; only the bias belongs to this layer.
    """

    def __init__(self, encoder_layer: nn.Linear):
        super().__init__()
        object.__setattr__(self, "encoder_layer", encoder_layer)
        self.bias = nn.Parameter(torch.zeros(encoder_layer.in_features))

    def reset_parameters(self) -> None:
        """A fresh build's bias (zero); the weight is reset with the encoder layer it belongs to."""
        nn.init.zeros_(self.bias)

    @property
    def weight(self) -> torch.Tensor:
        return self.encoder_layer.weight.t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.encoder_layer.weight.t(), self.bias)

    def extra_repr(self) -> str:
        w = self.encoder_layer.weight
        return f"in_features={w.shape[0]}, out_features={w.shape[1]}, tied=True"


def gaussian_noise(x: torch.Tensor, std: float) -> torch.Tensor:
    """Additive isotropic Gaussian noise."""
    return x + std * torch.randn_like(x)


def masking_noise(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """Set a random ``fraction`` of the inputs to zero (Vincent et al. 2010)."""
    return x * (torch.rand_like(x) >= fraction)


def salt_and_pepper(x: torch.Tensor, fraction: float, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """Set a random ``fraction`` of the inputs to their lowest or highest value with equal odds
    (Vincent et al. 2010): 0 or 1 for data in [0, 1]."""
    hit = torch.rand_like(x) < fraction
    salt = (torch.rand_like(x) < 0.5).to(x.dtype)
    return torch.where(hit, low + (high - low) * salt, x)


CORRUPTION = {"gaussian": gaussian_noise, "masking": masking_noise, "salt-and-pepper": salt_and_pepper}


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` in eval mode for a block, then back in the mode it was in."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def set_trainable(module: nn.Module, trainable: bool) -> None:
    """Freeze (``False``) or unfreeze (``True``) every parameter of ``module``."""
    for p in module.parameters():
        p.requires_grad_(trainable)


def make_corruption(
    kind: str, level: float, value_range: tuple[float, float] = (0.0, 1.0)
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The training-time input transform for ``kind`` at ``level``; None when it changes nothing.
    ``value_range``: the inputs' lowest and highest values, which salt-and-pepper writes."""
    if kind == "none" or level == 0:
        return None
    if kind == "salt-and-pepper":
        return functools.partial(salt_and_pepper, fraction=level, low=value_range[0], high=value_range[1])
    return functools.partial(CORRUPTION[kind], **{"std" if kind == "gaussian" else "fraction": level})


class CodeSelect(nn.Module):
    """Sparse codes by selection: k-sparse (Makhzani & Frey 2013) and lifetime winner-take-all (2015).

    Top-k keeps the ``k`` largest units of each code (in training and use); with ``k_start``
    and ``warmup`` epochs, k falls linearly from ``k_start`` to ``k`` while training, and
    evaluation and use always take the final ``k``. Lifetime sparsity keeps,
    for each unit, its ``lifetime`` fraction of largest activations across the batch (training
    only). Gradients flow through the kept units only.
    """

    def __init__(self, k: int = 0, k_start: int = 0, warmup: int = 0, lifetime: float = 0.0):
        super().__init__()
        self.k, self.k_start, self.warmup, self.lifetime = k, k_start, warmup, lifetime
        self.epoch: int | None = None  # set by the training loop; None: no schedule runs (a loaded model)

    def current_k(self) -> int:
        """k in the current training epoch (the final k in evaluation, and in training that is not
        the model's own, such as a loaded model's fine-tuning)."""
        if not (self.k_start and self.warmup and self.training) or self.epoch is None:
            return self.k
        return scheduled_k(self.k, self.k_start, self.warmup, self.epoch)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.k:
            keep = h.topk(min(self.current_k(), h.shape[1]), dim=1).indices
            h = h * torch.zeros_like(h).scatter_(1, keep, 1.0)
        if self.lifetime and self.training:
            winners = h.topk(max(1, math.ceil(self.lifetime * len(h))), dim=0).indices
            h = h * torch.zeros_like(h).scatter_(0, winners, 1.0)
        return h

    def extra_repr(self) -> str:
        return f"k={self.k}, k_start={self.k_start}, warmup={self.warmup}, lifetime={self.lifetime}"


@contextlib.contextmanager
def codes_as_in_use(module: nn.Module) -> Iterator[nn.Module]:
    """``module``'s code selections behave as in use for a block (no training-only lifetime
    winner-take-all), whatever mode the rest of ``module`` is in."""
    with contextlib.ExitStack() as stack:
        for part in module.modules():
            if isinstance(part, CodeSelect):
                stack.enter_context(eval_mode(part))
        yield module


def code_select(model_cfg) -> CodeSelect | None:
    """The code selection a ``ModelConfig`` asks for (``--top-k``, ``--lifetime-sparsity``), if any."""
    m = model_cfg
    if not (m.top_k or m.lifetime_sparsity):
        return None
    return CodeSelect(m.top_k, m.top_k_start, m.top_k_warmup, m.lifetime_sparsity)

"""Building blocks: activations, tied linear layers, input corruption (a training-time transform)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UserError


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


class TiedLinear(nn.Module):
    """Decoder layer whose weight *is* the transpose of an encoder layer's weight.

    The encoder layer is held outside the module tree so the shared weight appears once
    in ``state_dict`` and ``parameters()``; only the bias belongs to this layer.
    """

    def __init__(self, encoder_layer: nn.Linear):
        super().__init__()
        object.__setattr__(self, "encoder_layer", encoder_layer)
        self.bias = nn.Parameter(torch.zeros(encoder_layer.in_features))

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


def salt_and_pepper(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """Set a random ``fraction`` of the inputs to 0 or 1 with equal odds."""
    hit = torch.rand_like(x) < fraction
    salt = torch.rand_like(x) < 0.5
    return torch.where(hit, salt.to(x.dtype), x)


CORRUPTION = {"gaussian": gaussian_noise, "masking": masking_noise, "salt-and-pepper": salt_and_pepper}


def set_trainable(module: nn.Module, trainable: bool) -> None:
    """Freeze (``False``) or unfreeze (``True``) every parameter of ``module``."""
    for p in module.parameters():
        p.requires_grad_(trainable)


def make_corruption(kind: str, level: float) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The training-time input transform for ``kind`` at ``level``; None when it changes nothing."""
    if kind == "none" or level == 0:
        return None
    return functools.partial(CORRUPTION[kind], **{"std" if kind == "gaussian" else "fraction": level})

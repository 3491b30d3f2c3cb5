"""The training device: ``auto`` picks a GPU when there is one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from ..errors import UserError


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


@contextlib.contextmanager
def gpu_math(precision: str, device: torch.device) -> Iterator[None]:
    """On a GPU, how a block's products and convolutions compute; the flags are put back afterwards.

    Matrix products and convolutions run on TF32 tensor cores (10-bit mantissa, fp32 range) at
    ``tf32`` only: fp32 is fp32 there too (cuDNN's own default would run convolutions in TF32).
    Convolutions use cuDNN's deterministic algorithms: its fastest backward kernels add with atomics
    in no fixed order, so a repeated or resumed run would not give the same weights bit for bit.
    """
    if device.type != "cuda":
        yield
        return
    flags = torch.backends.cuda.matmul, torch.backends.cudnn
    before = flags[0].allow_tf32, flags[1].allow_tf32, flags[1].deterministic
    flags[0].allow_tf32 = flags[1].allow_tf32 = precision == "tf32"
    flags[1].deterministic = True
    try:
        yield
    finally:
        flags[0].allow_tf32, flags[1].allow_tf32, flags[1].deterministic = before

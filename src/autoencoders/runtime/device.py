"""The device a run computes on (``auto`` picks a GPU when there is one), how a GPU's products
and convolutions compute, and the caller's random state kept from a run's seeding."""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

import torch

from ..errors import UserError

P = ParamSpec("P")
R = TypeVar("R")


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu; ``cpu``, ``cuda`` or ``cuda:N`` as named."""
    if not isinstance(name, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", name):
        raise UserError(f"device must be auto, cpu or cuda, not {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name} was asked for but no CUDA GPU is available; use --device cpu")
    device = torch.device(name)
    if device.index is not None and device.index >= torch.cuda.device_count():
        gpus = torch.cuda.device_count()
        raise UserError(f"--device {name}: this machine has {gpus} GPU(s), numbered from 0")
    return device


def current_gpu(device: torch.device) -> contextlib.AbstractContextManager:
    """``device`` the current GPU within the block (nothing changes for a CPU): the CUDA calls that
    name no device (a graph's side stream, the current stream, an event) take the current one, so
    on a GPU other than it (``cuda:1``) a graph would record nothing and replay nothing."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def own_rng(device: torch.device) -> contextlib.AbstractContextManager:
    """The caller's global random state, the CPU's and (computing on one) a GPU's, put back after a
    block that seeds it and draws from it."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


def keeps_rng(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn``, leaving the caller's global random state as it was: the CPU's, and the current GPU's
    (one that ``fn`` starts is seeded as the caller's ``torch.manual_seed`` would have seeded it).
    Training, classifying and clustering seed it and draw from it; a notebook's draws stay its own."""

    @functools.wraps(fn)
    def kept(*args: P.args, **kwargs: P.kwargs) -> R:
        started = torch.cuda.is_initialized()
        seed = torch.initial_seed()  # what a GPU first used inside would have been seeded with
        try:
            with own_rng(
                torch.device("cuda", torch.cuda.current_device()) if started else torch.device("cpu")
            ):
                return fn(*args, **kwargs)
        finally:
            if not started and torch.cuda.is_initialized():
                torch.cuda.manual_seed(seed)

    return kept


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
    flags, (tf32, fp32) = _tf32_flags()
    inside = [tf32 if precision == "tf32" else fp32] * len(flags) + [True]
    flags.append((torch.backends.cudnn, "deterministic"))
    before = [getattr(owner, name) for owner, name in flags]
    try:
        for (owner, name), value in zip(flags, inside):
            setattr(owner, name, value)
        yield
    finally:
        for (owner, name), value in zip(flags, before):
            setattr(owner, name, value)


def _tf32_flags() -> tuple[list[tuple[object, str]], tuple[object, object]]:
    """Where torch keeps whether products and convolutions may use TF32, and its values for yes and
    no. Since torch 2.9 that is each backend's ``fp32_precision``: once a caller has set it (or
    ``torch.backends.fp32_precision``), torch refuses to read the older ``allow_tf32`` flags, and
    writing them leaves ``torch.get_float32_matmul_precision()`` refusing to answer."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision"):
        return [(matmul, "fp32_precision"), (cudnn.conv, "fp32_precision")], ("tf32", "ieee")
    return [(matmul, "allow_tf32"), (cudnn, "allow_tf32")], (True, False)

"""Weights as data: safetensors + JSON, atomic writes, no pickle anywhere."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import UserError

FORMAT = "autoencoders/1"


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a file written in place would follow the umask
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> None:
    """Atomically write a text file."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_json(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    write_text(path, json.dumps(obj, indent=2) + "\n")


def write_npy(path: str | Path, array: Any) -> None:
    """Atomically write a numpy array as .npy."""
    import numpy as np

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array)

    atomic_write(path, write)


def save_weights(path: str | Path, tensors: dict[str, torch.Tensor]) -> None:
    """Atomically save named tensors as safetensors (contiguous CPU copies)."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(cpu, tmp, metadata={"format": FORMAT}))


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Load named tensors from a safetensors file (never unpickles)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist; is this a run directory made by 'autoencoders train'?")
    try:
        return load_file(path)
    except (SafetensorError, OSError) as e:
        raise UserError(f"{path} is not a readable safetensors file ({e})") from None

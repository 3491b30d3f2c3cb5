"""The training state file: nested state (optimizers, schedules, loop counters) as safetensors, its
JSON part in the file's metadata with a SHA-256 of the tensors, written atomically."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from ..errors import UserError
from .checkpoint import write_safetensors

STATE_FORMAT = 2  # 2: the JSON part records a SHA-256 of the tensors


def split_tensors(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """``obj`` (nested dicts/lists) with every tensor moved into ``tensors`` (as it is: see
    ``host_copies``) and left as a reference."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: split_tensors(v, f"{prefix}.{k}", tensors) for k, v in obj.items()}
        # optimizer states are keyed by int: keep the keys' type through JSON
        return {"__items__": [[k, split_tensors(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, list | tuple):
        return [split_tensors(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    return obj


def join_tensors(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`split_tensors`."""
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__items__" in obj:
            return {k: join_tensors(v, tensors) for k, v in obj["__items__"]}
        return {k: join_tensors(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [join_tensors(v, tensors) for v in obj]
    return obj


def read_state(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and JSON info of a state file."""
    return _read(path, tensors=True)


def state_info(path: Path) -> dict[str, Any]:
    """The JSON info of a state file (its stage and epoch), its tensors neither read nor checked."""
    return _read(path, tensors=False)[1]


def _read(path: Path, tensors: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A state file's tensors (verified against their SHA-256; none unless ``tensors``) and info."""
    try:
        with safe_open(str(path), "pt") as f:
            info = json.loads(f.metadata()["state"])
            read = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}
    except (SafetensorError, OSError, KeyError, ValueError, TypeError) as e:
        raise UserError(
            f"{path} is not a readable training state ({e}); train again without --resume"
        ) from None
    if info.get("format") != STATE_FORMAT:
        raise UserError(f"{path} has state format {info.get('format')}; this version reads {STATE_FORMAT}")
    if tensors and info.get("sha256") != tensors_sha256(read):
        raise UserError(
            f"{path} has changed since it was written (its tensors do not match their SHA-256): "
            "the file is damaged; train again without --resume"
        )
    # states written before their settings had a SHA-256 of their own are read as they are
    if "info_sha256" in info and info["info_sha256"] != _info_sha256(info):
        raise UserError(
            f"{path} has changed since it was written (its stage, epoch or settings do not match their "
            "SHA-256): the file is damaged; train again without --resume"
        )
    return read, info


def _info_sha256(info: dict[str, Any]) -> str:
    """Hex SHA-256 of a state's JSON info, its own checksums left out, keys in order."""
    own = {k: v for k, v in info.items() if k not in ("sha256", "info_sha256")}
    return hashlib.sha256(json.dumps(own, sort_keys=True).encode()).hexdigest()


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """Hex SHA-256 over the names and raw bytes of ``tensors``, in name order."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        h.update(key.encode())
        h.update(tensors[key].detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def host_copies(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous copies of ``tensors`` on the host, to write while training changes the originals.
    A GPU's are copied into page-locked memory without waiting: the copies are queued on the
    current stream behind the work that computed the tensors, and are complete once it has run."""
    out = {}
    for key, t in tensors.items():
        if t.is_cuda:
            out[key] = torch.empty(t.shape, dtype=t.dtype, pin_memory=True).copy_(t, non_blocking=True)
        else:
            out[key] = t.clone(memory_format=torch.contiguous_format)
    return out


def write_state(path: Path, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
    """Write a state file atomically: ``tensors`` (on the host) and ``info`` (JSON), with the
    tensors' SHA-256."""
    info = json.loads(json.dumps(info))  # as it will be read back (tuples as lists, keys as text)
    info |= {"sha256": tensors_sha256(tensors), "info_sha256": _info_sha256(info)}
    write_safetensors(path, tensors, {"state": json.dumps(info)})

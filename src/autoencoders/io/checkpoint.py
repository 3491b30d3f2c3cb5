"""Weights as data: safetensors + JSON, atomic writes, no pickle anywhere."""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError

from ..errors import UserError

if TYPE_CHECKING:
    import torch

FORMAT = "autoencoders/1"


def state_mismatch(e: Exception) -> str:
    """What torch's ``load_state_dict`` error says first of a tensor that does not fit (its first
    line names only the model)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[1] if len(lines) > 1 else lines[0] if lines else type(e).__name__


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``, so readers never see half a file."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a directory; give a file name")
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # the writer's process in the name: a file a killed one left is told from one being written
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp")
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes 0600: a file written in place follows the umask
        os.replace(tmp, path)
        _drop_stale(path)
    except OSError as e:  # a full disk, a read-only or vanished directory: the old file stays as it was
        reason = e.strerror or e
        raise UserError(f"cannot write {path} ({reason}); {path.name} was left as it was") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


# how old a temporary file of a write must be, whose writer's process is not running here (or is not
# named: earlier versions'), to be one a killed process left (a cached image folder of gigabytes,
# which a kill would otherwise leave for good); a minute, or a day for an unnamed writer
STALE_SECONDS = 60
UNNAMED_STALE_SECONDS = 24 * 3600


def _drop_stale(path: Path) -> None:
    """Delete the temporary files that killed writes of ``path`` left."""
    now = time.time()
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 :].split("-", 1)[0]
        writer = int(pid) if pid.isdigit() and "-" in tmp.name[len(path.name) + 2 :] else None
        if writer is not None and _running(writer):
            continue
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to delete
            if tmp.stat().st_mtime < now - (STALE_SECONDS if writer is not None else UNNAMED_STALE_SECONDS):
                tmp.unlink()


def _running(pid: int) -> bool:
    """Whether process ``pid`` is running on this machine (one of another user's counts; anywhere but
    POSIX, where signal 0 is no mere question, every one)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # running, as another user's
        return True
    return True


# moves of a directory into its place, when other processes write the same one at the same time
SWAP_TRIES = 8


def replace_dir(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(new)`` on a new directory beside ``path``, then put it in ``path``'s place: a
    directory already there is renamed aside first and deleted after (moved back should the move
    fail), so ``path`` is never half-written. The new directory's mode follows the umask."""
    path = Path(os.path.abspath(path))  # "." names a place beside which nothing can be made
    new, asides = None, []
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        new = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new"))
        os.chmod(new, 0o777 & ~UMASK)  # mkdtemp makes 0700
        write(new)
        for attempt in range(SWAP_TRIES):  # another process writing the same directory: the last one stays
            if path.exists() or path.is_symlink():
                asides.append(Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old")))
                with contextlib.suppress(FileNotFoundError):  # the other moved it aside first: free
                    os.replace(path, asides[-1] / "old")
            try:
                os.replace(new, path)
                break
            except OSError as e:  # the other put its own there meanwhile: aside in turn
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST) or attempt == SWAP_TRIES - 1:
                    raise
    except OSError as e:  # a read-only parent, another file system: what was there stays
        raise UserError(f"cannot write {path} ({e.strerror or e}); what was there is kept") from None
    finally:  # also after a Ctrl-C between the two moves: what was there comes back
        kept = [a / "old" for a in asides if (a / "old").exists() or (a / "old").is_symlink()]
        if kept and not (path.exists() or path.is_symlink()):
            with contextlib.suppress(OSError):  # another writer's put there meanwhile
                os.replace(kept[-1], path)
        for leftover in (new, *asides):
            if leftover is not None:
                shutil.rmtree(leftover, ignore_errors=True)


def check_writable(directory: Path) -> None:
    """A UserError unless files can be created in ``directory`` (made later if missing): a folder
    is made and removed in the nearest one that exists (permissions alone do not tell: root passes
    them on read-only or virtual file systems)."""
    existing = directory.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"cannot write under {directory}: {existing} is a file, not a directory")
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".autoencoders-", suffix=".probe"))
    except OSError as e:
        why = e.strerror or e
        raise UserError(
            f"cannot write under {directory}: {existing} is not writable ({why}); choose another --out"
        ) from None


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it: done once, before any writer thread
    os.umask(mask)
    return mask


UMASK = _read_umask()


def write_text(path: str | Path, text: str) -> None:
    """Atomically write a text file."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_json(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON, its NaN and infinite floats as null (JSON has no
    such numbers: Python's NaN and Infinity are refused by other readers)."""
    write_text(path, json.dumps(_finite(obj), indent=2, allow_nan=False) + "\n")


def _finite(obj: Any) -> Any:
    """``obj`` with its NaN and infinite floats, however deep in dicts and lists, as None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def write_npy(path: str | Path, array: Any) -> None:
    """Atomically write a numpy array as .npy."""
    import numpy as np

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array)

    atomic_write(path, write)


def write_npy_parts(path: str | Path, rows: int, parts: Iterable[Any]) -> None:
    """Atomically write as one .npy of ``rows`` rows the arrays ``parts`` gives in order (of one
    dtype and row shape, the first's), holding one part at a time."""
    import numpy as np

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            written = 0
            for part in parts:
                part = np.ascontiguousarray(part)
                if written == 0:
                    header = {"descr": np.lib.format.dtype_to_descr(part.dtype), "fortran_order": False}
                    np.lib.format.write_array_header_1_0(f, header | {"shape": (rows, *part.shape[1:])})
                f.write(part.tobytes())
                written += len(part)
        if written != rows:
            raise ValueError(f"{written} rows written of the {rows} the header gives")

    atomic_write(path, write)


def write_safetensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Atomically write ``tensors`` (contiguous, on the host) and ``metadata`` as a safetensors file.
    Serialised in memory, then written through ``atomic_write``: safetensors' own ``save_file``
    writes a temporary file of its own beside the target, which a killed process would leave."""
    from safetensors.torch import save  # torch's: imported where tensors are, not by --out's check

    atomic_write(path, lambda tmp: Path(tmp).write_bytes(save(tensors, metadata=metadata)))


def save_weights(path: str | Path, tensors: dict[str, torch.Tensor]) -> None:
    """Atomically save named tensors as safetensors (contiguous CPU copies)."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    write_safetensors(path, cpu, {"format": FORMAT})


def arrays_sha256(arrays: Iterable[Any], salt: bytes = b"") -> str:
    """Hex SHA-256 of numpy arrays (None for a missing one) with their shapes and dtypes: the same
    bytes split or shaped otherwise are other data."""
    import numpy as np

    h = hashlib.sha256(salt)
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype.str}".encode())
        h.update(a)  # the buffer itself: no copy of a large array
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_weights(path: str | Path, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Load named tensors from a safetensors file (never unpickles), after checking its SHA-256
    against ``sha256`` when given."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist; is this a run directory made by 'autoencoders train'?")
    if sha256 is not None and file_sha256(path) != sha256:
        raise UserError(
            f"{path} has changed since it was written (its SHA-256 does not match the one recorded "
            "beside it): the file is damaged or was edited; restore it from a copy or train again"
        )
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except (SafetensorError, OSError) as e:
        raise UserError(f"{path} is not a readable safetensors file ({e})") from None

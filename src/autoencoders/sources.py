"""Readers: IDX directories (MNIST, Fashion-MNIST), verified downloads, .npy and .csv files."""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from .errors import UserError

MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
FASHION_FILES = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
MIRRORS = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion-mnist": [
        "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
}
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzipped or not) into a numpy array."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise UserError(f"{path} is not a readable IDX file ({e}); re-download or re-extract it") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise UserError(f"{path} is not an IDX file (wrong magic number {raw[:4].hex()!r})")
    dtype, ndim = np.dtype(IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"{path} is truncated: its IDX header is incomplete")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise UserError(
            f"{path} is truncated or padded: header says {expected} data bytes, file has "
            f"{len(raw) - header}; re-download it"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find_idx(directory: Path, stem: str) -> Path:
    # Both spellings exist in the wild: train-images-idx3-ubyte and train-images.idx3-ubyte.
    for name in (stem, stem.replace("-idx", ".idx")):
        for suffix in ("", ".gz"):
            p = directory / (name + suffix)
            if p.is_file():
                return p
    raise UserError(f"{directory} has no {stem} or {stem}.gz; it needs the four standard IDX files")


def load_idx_dir(directory: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read train/test images and labels from a directory of the four standard IDX files."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"data directory {directory} does not exist")
    arrays = [
        read_idx(_find_idx(directory, stem))
        for stem in (
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        )
    ]
    xtr, ytr, xte, yte = arrays
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise UserError(f"{directory}: image and label counts differ; the files do not belong together")
    return xtr, ytr, xte, yte


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_dir() -> Path:
    """Where downloads go: $AUTOENCODERS_CACHE or ~/.cache/autoencoders."""
    return Path(os.environ.get("AUTOENCODERS_CACHE", Path.home() / ".cache" / "autoencoders"))


def download_verified(name: str, files: dict[str, str]) -> Path:
    """Download ``files`` of dataset ``name`` into the cache, checking SHA-256; return the dir."""
    target = cache_dir() / name
    target.mkdir(parents=True, exist_ok=True)
    for filename, sha in files.items():
        dest = target / filename
        if dest.is_file() and _sha256(dest) == sha:
            continue
        errors = []
        for mirror in MIRRORS[name]:
            fd, tmp = tempfile.mkstemp(dir=target, suffix=".part")
            os.close(fd)
            try:
                urllib.request.urlretrieve(mirror + filename, tmp)  # noqa: S310 (fixed https URLs)
                if _sha256(Path(tmp)) != sha:
                    raise OSError("SHA-256 mismatch")
                os.replace(tmp, dest)
                break
            except OSError as e:
                errors.append(f"{mirror}: {e}")
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            raise UserError(
                f"could not download {name} ({'; '.join(errors)}); "
                f"use --data idx:DIR with the four IDX files instead"
            )
    return target


def locate(name: str) -> Path:
    env = os.environ.get("AUTOENCODERS_DATA")
    candidates = []
    if env:
        candidates += [Path(env) / name, Path(env)]
    if name == "fashion-mnist":
        candidates.append(DEBIAN_FASHION)
    candidates.append(cache_dir() / name)
    for c in candidates:
        if c.is_dir() and any(c.glob("train-images*")):
            return c
    return download_verified(name, MNIST_FILES if name == "mnist" else FASHION_FILES)


def check_finite(x: np.ndarray, source: str) -> None:
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise UserError(f"{source} contains {bad} NaN/inf value(s); clean or impute them first")


def load_npy(path: str | Path, labels: str | Path | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an N×D, N×H×W or N×C×H×W array (and optional labels) from .npy files."""
    x = np.asarray(open_npy(path))
    check_finite(x, str(path))
    return x, (None if labels is None else load_labels(labels, len(x)))


def open_npy(path: str | Path) -> np.ndarray:
    """Memory-map a numeric N×D, N×H×W or N×C×H×W .npy file (nothing is read yet)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"npy file {path} does not exist")
    try:
        x = np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError as e:
        raise UserError(f"{path} is not a numeric .npy array ({e})") from None
    if x.ndim not in (2, 3, 4) or not np.issubdtype(x.dtype, np.number):
        raise UserError(
            f"{path} must hold a numeric N×D, N×H×W or N×C×H×W array, got shape {x.shape} {x.dtype}"
        )
    return x


def load_labels(labels: str | Path, n: int) -> np.ndarray:
    """A length-``n`` label vector from an .npy file."""
    if not Path(labels).is_file():
        raise UserError(f"labels file {labels} does not exist")
    try:
        y = np.load(labels, allow_pickle=False)
    except ValueError as e:
        raise UserError(f"{labels} is not a numeric .npy array ({e})") from None
    if y.shape != (n,):
        raise UserError(f"labels {labels} have shape {y.shape}; expected ({n},)")
    return y


def load_csv(path: str | Path, label_column: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a numeric CSV (header optional) with an optional label column (name or index)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"csv file {path} does not exist")
    lines = path.read_text().splitlines()
    if not lines:
        raise UserError(f"csv file {path} is empty")
    first = [c.strip() for c in lines[0].split(",")]
    try:
        [float(c) for c in first]
        header, body = None, lines
    except ValueError:
        header, body = first, lines[1:]
    try:
        table = np.loadtxt(body, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise UserError(f"{path} has a non-numeric value ({e}); only numbers are allowed") from None
    check_finite(table, str(path))
    y = None
    if label_column is not None:
        if header is not None and label_column in header:
            col = header.index(label_column)
        elif label_column.lstrip("-").isdigit():
            col = int(label_column) % table.shape[1]
        else:
            raise UserError(f"label column '{label_column}' is not in {path}'s header {header}")
        y = table[:, col].astype(np.int64)
        table = np.delete(table, col, axis=1)
    return table.astype(np.float32), y

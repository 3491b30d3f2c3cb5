"""Datasets: specs, IDX/npy/csv readers, verified downloads, scaling and splits.

All data ends up as float32 tensors in [0, 1] held in memory; training slices batches
from them by index, never sample by sample.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import DataConfig, UserError
from .stream import Rows, RowStream

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


@dataclass
class Dataset:
    """Train/validation/test splits as float32 tensors in [0, 1], labels optional."""

    name: str
    x_train: Rows  # a RowStream when the data is streamed from disk
    x_val: torch.Tensor
    x_test: torch.Tensor
    y_train: torch.Tensor | None
    y_val: torch.Tensor | None
    y_test: torch.Tensor | None
    image_shape: tuple[int, ...] | None
    offset: torch.Tensor  # per-feature scaling fitted on the training split, kept with the model
    span: torch.Tensor

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    def train_sample(self, n: int = 50_000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """In-memory training rows (and labels) for baselines: all of them, or a sample of a stream."""
        if not isinstance(self.x_train, RowStream):
            return self.x_train, self.y_train
        pick = np.sort(
            np.random.default_rng(seed).choice(len(self.x_train), min(n, len(self.x_train)), False)
        )
        return self.x_train[pick], None if self.y_train is None else self.y_train[pick]


# ---------------------------------------------------------------- readers


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


def _locate(name: str) -> Path:
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


def _check_finite(x: np.ndarray, source: str) -> None:
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise UserError(f"{source} contains {bad} NaN/inf value(s); clean or impute them first")


def load_npy(path: str | Path, labels: str | Path | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an N×D or N×H×W array (and optional labels) from .npy files."""
    x = np.asarray(open_npy(path))
    _check_finite(x, str(path))
    return x, (None if labels is None else load_labels(labels, len(x)))


def open_npy(path: str | Path) -> np.ndarray:
    """Memory-map a numeric N×D or N×H×W .npy file (nothing is read yet)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"npy file {path} does not exist")
    try:
        x = np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError as e:
        raise UserError(f"{path} is not a numeric .npy array ({e})") from None
    if x.ndim not in (2, 3) or not np.issubdtype(x.dtype, np.number):
        raise UserError(f"{path} must hold a numeric N×D or N×H×W array, got shape {x.shape} {x.dtype}")
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
    _check_finite(table, str(path))
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


# ---------------------------------------------------------------- scaling and splits


def to_float(x: np.ndarray) -> np.ndarray:
    """float32 copy; uint8 images become [0, 1] by /255."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    return x.astype(np.float32)


def fit_scaler(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (offset, span) mapping training data to [0, 1]; identity if already there."""
    return scaler_from_range(x.min(axis=0), x.max(axis=0))


def scaler_from_range(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(offset, span) from per-feature minima and maxima; identity when all lie in [0, 1]."""
    if lo.min() >= 0.0 and hi.max() <= 1.0:
        return np.zeros(len(lo), np.float32), np.ones(len(lo), np.float32)
    return lo.astype(np.float32), np.where(hi > lo, hi - lo, 1.0).astype(np.float32)


def is_identity(offset: np.ndarray, span: np.ndarray) -> bool:
    """Whether a fitted scaler leaves values unchanged."""
    return not offset.any() and bool((span == 1).all())


def apply_scaler(x: np.ndarray, offset: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Scale with a fitted (offset, span), clipping to [0, 1]."""
    if is_identity(offset, span) and (x.size == 0 or (x.min() >= 0 and x.max() <= 1)):
        return x  # already in range: skip a full copy of a possibly large array
    return np.clip((x - offset) / span, 0.0, 1.0).astype(np.float32)


def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    k = int(round(n * fraction))
    return np.sort(perm[k:]), np.sort(perm[:k])


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split ``kind:path`` into (kind, path)."""
    kind, _, path = spec.partition(":")
    if kind in ("digits", "mnist", "fashion-mnist") and not path:
        return kind, None
    if kind in ("idx", "npy", "csv") and path:
        return kind, path
    raise UserError(
        f"unknown data spec '{spec}'; use digits, fashion-mnist, mnist, idx:DIR, npy:FILE or csv:FILE"
    )


@dataclass
class RawData:
    """Rows as read (float32, uint8 already /255), before splitting and scaling."""

    x: np.ndarray
    y: np.ndarray | None
    x_test: np.ndarray | None  # the dataset's own test split, where it has one
    y_test: np.ndarray | None
    image_shape: tuple[int, ...] | None


def read_data(cfg: DataConfig) -> RawData:
    """Read the dataset named by ``cfg.data`` as flat float32 rows."""
    kind, path = parse_spec(cfg.data)
    x_test = y_test = None
    if kind == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x, y = (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)
    elif kind in ("mnist", "fashion-mnist", "idx"):
        directory = Path(path) if kind == "idx" else _locate(kind)
        x, y, x_test, y_test = load_idx_dir(directory)
    elif kind == "npy":
        x, y = load_npy(path, cfg.labels)
    else:
        x, y = load_csv(path, cfg.label_column)
    flat = lambda a: None if a is None else to_float(np.asarray(a).reshape(len(a), -1))  # noqa: E731
    return RawData(flat(x), y, flat(x_test), y_test, _image_shape(x.shape))


def _image_shape(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """H×W of N×H×W data, or a square side of N×D data when D is a square; else None."""
    if len(shape) == 3:
        return tuple(shape[1:])
    side = int(np.sqrt(shape[1]))
    return (side, side) if side * side == shape[1] else None


def load_dataset(cfg: DataConfig, scaler: tuple[np.ndarray, np.ndarray] | None = None) -> Dataset:
    """Load the dataset named by ``cfg.data`` and split it into train/validation/test.

    Scaling is fitted on the training split unless a fitted ``scaler`` (offset, span) is given.
    """
    kind, path = parse_spec(cfg.data)
    if kind == "npy" and open_npy(path).size * 4 > cfg.memory_budget * 2**30:
        return _streamed_dataset(cfg, open_npy(path), scaler)
    raw = read_data(cfg)
    x, y, x_test, y_test = raw.x, raw.y, raw.x_test, raw.y_test
    if x_test is None:
        if len(x) < 10:
            raise UserError(f"{cfg.data} has only {len(x)} rows; at least 10 are needed to split it")
        keep, test_idx = _split(len(x), cfg.test_fraction, cfg.split_seed)
        x_test, y_test = x[test_idx], None if y is None else y[test_idx]
        x, y = x[keep], None if y is None else y[keep]
    train_idx, val_idx = _split(len(x), cfg.val_fraction, cfg.split_seed + 1)
    offset, span = fit_scaler(x[train_idx]) if scaler is None else scaler

    def rows(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(apply_scaler(a, offset, span)))

    def labels(a: np.ndarray | None) -> torch.Tensor | None:
        return None if a is None else torch.as_tensor(np.asarray(a, dtype=np.int64))

    return Dataset(
        name=cfg.data,
        x_train=rows(x[train_idx]),
        x_val=rows(x[val_idx]),
        x_test=rows(x_test),
        y_train=labels(None if y is None else y[train_idx]),
        y_val=labels(None if y is None else y[val_idx]),
        y_test=labels(y_test),
        image_shape=raw.image_shape,
        offset=torch.from_numpy(offset),
        span=torch.from_numpy(span),
    )


def _streamed_dataset(
    cfg: DataConfig, array: np.memmap, scaler: tuple[np.ndarray, np.ndarray] | None
) -> Dataset:
    """An npy dataset too large for the memory budget: training rows stream from disk in chunks.

    Validation and test rows are read into memory (they are fractions of the data).
    """
    path = str(array.filename)
    stream = RowStream.from_memmap(array)
    y = load_labels(cfg.labels, len(stream)) if cfg.labels else None
    keep, test_idx = _split(len(stream), cfg.test_fraction, cfg.split_seed)
    train_pos, val_pos = _split(len(keep), cfg.val_fraction, cfg.split_seed + 1)
    train_idx, val_idx = keep[train_pos], keep[val_pos]
    offset, span = scaler_from_range(*stream.subset(train_idx).scan()) if scaler is None else scaler
    stream = stream.with_scaler(None if is_identity(offset, span) else (offset, span))

    def rows(idx: np.ndarray) -> torch.Tensor:
        x = stream.subset(idx).materialise()
        _check_finite(x.numpy(), path)
        return x

    def labels(idx: np.ndarray) -> torch.Tensor | None:
        return None if y is None else torch.as_tensor(y[idx].astype(np.int64))

    return Dataset(
        name=cfg.data,
        x_train=stream.subset(train_idx),
        x_val=rows(val_idx),
        x_test=rows(test_idx),
        y_train=labels(train_idx),
        y_val=labels(val_idx),
        y_test=labels(test_idx),
        image_shape=_image_shape(array.shape),
        offset=torch.from_numpy(offset),
        span=torch.from_numpy(span),
    )

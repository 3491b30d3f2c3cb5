"""Datasets: data read whole or streamed, split into training, validation and test rows, and scaled.

All data ends up as flat float32 rows in [0, 1] (in memory, or streamed from disk), with
the shape of one sample beside them: (C, H, W) for images, (D,) for tables. Training
slices batches from the rows by index, never sample by sample; a model that needs
images views its rows in that shape.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataWarning, UserError, user_stacklevel
from ..io.checkpoint import arrays_sha256
from ..options import IDX_KINDS, DataConfig, names_flag
from .classes import labelled
from .memory import data_name
from .scaling import (
    apply_scaler,
    check_scaler,
    fit_scaler,
    is_identity,
    scaler_from_range,
    to_float,
    warn_if_other_units,
)
from .shapes import display_shape, sample_shape
from .sources import (
    check_finite,
    idx_length,
    load_digits,
    load_idx_dir,
    load_idx_pair,
    load_labels,
    load_npy,
    locate,
    open_npy,
)
from .specs import ESTIMATOR_ROWS, check_kept, is_table, npy_file, parse_spec
from .stream import Rows, RowStream
from .tables import csv_feature_names, load_csv

# the training rows of a stream that baselines fit on (a fixed-seed sample), in memory
SAMPLE_ROWS = 50_000


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
    sample_shape: tuple[int, ...]  # (C, H, W) for images, (D,) for tables; rows stay flat
    offset: torch.Tensor  # per-feature scaling fitted on the training split, kept with the model
    span: torch.Tensor
    classes: list[str] | None = None  # the name of each class number, where the labels have names
    stream_digest: str | None = None  # a stream's training rows' SHA-256, taken as they were scanned
    # each split's rows' places among the rows the data holds, from 0, in the order the split holds
    # them: the ``row`` of an output over all of them (a test file of the data's own after the rest)
    places: dict[str, np.ndarray] = dataclasses.field(default_factory=dict, repr=False, compare=False)
    # every row's id, in the data's order (a CSV's ``id_column``, as text); None where it has none
    ids: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)
    # ``digest`` with what it was taken of (``_digested``): hashing 60,000 images takes 0.15 s
    _digest: tuple[tuple, str] | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def image_shape(self) -> tuple[int, ...] | None:
        """(H, W) to draw a row as a picture: the images' own, or a square side of flat rows."""
        return display_shape(self.sample_shape)

    def train_sample(self, n: int = SAMPLE_ROWS, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """In-memory training rows (and labels) for baselines: all of them, or a sample of a stream."""
        if not isinstance(self.x_train, RowStream):
            return self.x_train, self.y_train
        pick = np.sort(
            np.random.default_rng(seed).choice(len(self.x_train), min(n, len(self.x_train)), False)
        )
        return self.x_train[pick], None if self.y_train is None else self.y_train[pick]

    def digest(self) -> str:
        """SHA-256 of every split's rows and labels and the scaling: other data, or the same rows
        split otherwise, give another. A stream's training rows count by the digest of the pass
        that fitted the scaling (none for rows read for a trained run)."""
        taken = self._digested()
        if self._digest is not None and taken is not None and self._digest[0] == taken:
            return self._digest[1]
        train = self.x_train
        if isinstance(train, RowStream):
            train = torch.frombuffer(
                bytearray(f"{len(train)} {self.stream_digest}".encode()), dtype=torch.uint8
            )
        splits = (train, *self._splits()[1:])
        digest = arrays_sha256(None if t is None else t.cpu().numpy() for t in splits)
        self._digest = None if taken is None else (taken, digest)
        return digest

    def _splits(self) -> tuple[Rows | None, ...]:
        return (
            self.x_train,
            self.x_val,
            self.x_test,
            self.y_train,
            self.y_val,
            self.y_test,
            self.offset,
            self.span,
        )

    def _digested(self) -> tuple | None:
        """What ``digest`` hashes, as far as it tells one state of it from another: each split
        tensor and the count of its changes in place (a stream: its length and own digest); None
        when torch counts no changes of a split (an inference tensor), whose digest is taken anew."""
        taken: list = []
        for t in self._splits():
            if isinstance(t, RowStream):
                taken.append((len(t), self.stream_digest))
            elif t is None:
                taken.append(None)
            elif t.is_inference():
                return None
            else:
                taken.append((id(t), t._version))
        return tuple(taken)

    def rows_digest(self) -> str | None:
        """``digest`` where it names the rows themselves: none for a stream read without scanning
        it (rows read for a trained run), which only its length would name."""
        if isinstance(self.x_train, RowStream) and self.stream_digest is None:
            return None
        return self.digest()


# ---------------------------------------------------------------- splits


def _kept(
    idx: np.ndarray, y: np.ndarray | None, classes: list[str] | None, cfg: DataConfig, trained: bool
) -> np.ndarray:
    """The rows ``idx`` of the training or validation split that ``cfg.hold_out`` keeps: those not
    of a held-out class (``y``: class numbers; ``classes``: their names, where they have names).
    Rows read for a ``trained`` run (other data, perhaps unlabelled or without those classes) leave
    out what they can: the test split, the one such data is scored on, keeps every row anyway."""
    if cfg.hold_out is None or (trained and y is None):
        return idx
    source = data_name(cfg.data)
    if y is None:
        raise UserError(
            f"--hold-out names classes, and {source} has no labels; give labelled data or leave it out"
        )
    known = y[labelled(y)]  # the rows that have a class
    names = [str(c) for c in (classes if classes is not None else np.unique(known))]
    given = [str(c) for c in cfg.hold_out]
    unknown = [c for c in given if c not in names]
    if unknown and not trained:
        raise UserError(
            f"--hold-out {names_flag(unknown)}: no such class in {source} (classes: {', '.join(names[:20])})"
        )
    given = [c for c in given if c in names]
    held = [int(c) for c in given] if classes is None else [names.index(c) for c in given]
    if not trained and set(np.unique(known).tolist()) <= set(held):
        raise UserError(f"--hold-out leaves no class of {source} to train on; hold out fewer classes")
    return idx[~np.isin(y[idx], held)]


def _check_training_rows(n_train: int, n: int, cfg: DataConfig, training: bool) -> None:
    """A UserError when ``--val-fraction`` leaves none of the ``n`` rows beside the test split to
    train on (a trained run reading data has its scaling already: it needs none)."""
    if training and n_train == 0 and n > 0:
        raise UserError(
            f"--val-fraction {cfg.val_fraction:g} leaves none of the {n} rows of {data_name(cfg.data)} "
            "beside its test rows to train on; use a smaller --val-fraction (default 0.1)"
        )
    if training and n_train == 1:  # its range would be each feature's scaling: every other row far out
        raise UserError(
            f"--test-fraction {cfg.test_fraction:g} and --val-fraction {cfg.val_fraction:g} leave one row of "
            f"{data_name(cfg.data)} to train on; use smaller fractions, so that two or more are left"
        )


def _split_rows(
    n: int, cfg: DataConfig, y: np.ndarray | None, classes: list[str] | None, trained: bool, test: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The training, validation and test rows of ``n`` (sorted indices): the test rows split off
    first (none without ``test``: the data has a test split of its own), then the validation rows
    from the rest, each by its fixed seed; held-out classes leave the first two (``_kept``)."""
    keep, test_idx = _split(n, cfg.test_fraction, cfg.split_seed) if test else (np.arange(n), None)
    train_idx, val_idx = (
        _kept(keep[pos], y, classes, cfg, trained)
        for pos in _split(len(keep), cfg.val_fraction, cfg.split_seed + 1)
    )
    _check_training_rows(len(train_idx), len(keep), cfg, not trained)
    return train_idx, val_idx, test_idx


def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    k = int(round(n * fraction))
    return np.sort(perm[k:]), np.sort(perm[:k])


@dataclass
class RawData:
    """Rows as read (float32, uint8 already /255), before splitting and scaling."""

    x: np.ndarray
    y: np.ndarray | None
    x_test: np.ndarray | None  # the dataset's own test split, where it has one
    y_test: np.ndarray | None
    sample_shape: tuple[int, ...]
    classes: list[str] | None = None
    ids: np.ndarray | None = None  # each row's id (a CSV's id column), as text


def read_data(cfg: DataConfig, run_width: int | None = None) -> RawData:
    """Read the dataset named by ``cfg.data`` as flat float32 rows (``run_width``: the features of
    the trained run they are read for, None for training)."""
    check_kept(cfg)
    kind, path = parse_spec(cfg.data)
    x_test = y_test = None
    classes = ids = None  # the names of name labels (numbers have none); the rows' ids
    if kind == "digits":
        images, y = load_digits()
        x = (images / 16.0).astype(np.float32)
    elif kind in IDX_KINDS:
        x, y, x_test, y_test = load_idx_dir(_idx_directory(kind, path))
    elif kind in ("npy", "images"):
        x, y, classes = load_npy(*npy_file(cfg), cfg.classes)
    else:
        x, y, classes, ids = load_csv(
            path, cfg.label_column, cfg.classes, cfg.columns, run_width, cfg.id_column
        )
    flat = lambda a: None if a is None else to_float(np.asarray(a).reshape(len(a), -1))  # noqa: E731
    shape = sample_shape(x.shape, cfg.image_shape)
    return RawData(flat(x), y, flat(x_test), y_test, shape, classes, ids)


def _idx_directory(kind: str, path: str | None) -> Path:
    """The directory of an IDX dataset's four files: ``idx:DIR``'s, or a built-in one's."""
    return Path(path) if kind == "idx" else locate(kind)


def own_test_rows(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The test split of data that keeps it in files of its own (IDX: flat float32 rows as
    ``read_data`` reads them, their labels and their ``Dataset.places``, after the training file's
    rows, counted by its header), read without the training files; None for data whose test rows
    are split off the rest."""
    check_kept(cfg)
    kind, path = parse_spec(cfg.data)
    if kind not in IDX_KINDS:
        return None
    directory = _idx_directory(kind, path)
    x, y = load_idx_pair(directory, "t10k")
    first = idx_length(directory, "train")
    return to_float(x.reshape(len(x), -1)), y, np.arange(first, first + len(x))


def load_dataset(
    cfg: DataConfig,
    scaler: tuple[np.ndarray, np.ndarray] | None = None,
    clip: bool = True,
    table: bool | None = None,
) -> Dataset:
    """Load the dataset named by ``cfg.data`` and split it into train/validation/test.

    Scaling is fitted on the training split unless a fitted ``scaler`` (offset, span) is given;
    rows read for it are clipped to its range unless not ``clip``. ``table``: whether the run the
    scaler was fitted for read a table (default: whether ``cfg`` reads one), for the advice
    rows in other units get.
    """
    check_kept(cfg)
    table = is_table(cfg) if table is None else table
    if (streamed := streamed_file(cfg)) is not None:
        array, labels = streamed
        return _streamed_dataset(dataclasses.replace(cfg, labels=labels), array, scaler, clip, table)
    run_width = None if scaler is None else len(scaler[0])
    return split_dataset(read_data(cfg, run_width), cfg, scaler, clip, table)


def dataset_from_arrays(x: np.ndarray, cfg: DataConfig, y: np.ndarray | None = None) -> Dataset:
    """In-memory rows (e.g. given to a scikit-learn estimator): train and validation splits, no test split."""
    raw = RawData(to_float(x.reshape(len(x), -1)), y, None, None, sample_shape(x.shape, cfg.image_shape))
    return split_dataset(raw, dataclasses.replace(cfg, data=ESTIMATOR_ROWS, test_fraction=0.0))


# a column that counts this many rows or more, one by one, numbers them
COUNTED_ROWS = 20


def warn_if_row_numbers(x: np.ndarray, cfg: DataConfig) -> None:
    """Warn when a column of a table to train on (``x``, as read) counts its rows one by one (0, 1,
    2, ... or 1, 2, 3, ...): a row number or id, which the model would learn as if it described them."""
    if len(x) < COUNTED_ROWS:
        return
    # the columns that count the first rows, then those that count every row: no copy of x (a
    # difference beyond float32's range is infinite, and counts nothing)
    with np.errstate(over="ignore", invalid="ignore"):
        candidates = np.flatnonzero((np.diff(x[:COUNTED_ROWS], axis=0) == 1).all(axis=0))
        j = next((int(j) for j in candidates if (np.diff(x[:, j]) == 1).all()), None)
    if j is None:
        return
    csv = cfg.data.startswith("csv:")
    names = cfg.columns
    if names is None and csv:
        names = csv_feature_names(parse_spec(cfg.data)[1], cfg.label_column, cfg.id_column)
    estimator, where = cfg.data == ESTIMATOR_ROWS, data_name(cfg.data)
    if estimator:
        fix = "drop it from X"
    elif where != cfg.data:  # rows given in memory: columns= cannot pick a frame's, they are its own
        fix = "drop it from the data"
    else:
        fix = "drop it from the file, give it as --id-column, or name the feature columns with --columns"
    warnings.warn(
        f"column {repr(names[j]) if names else j} of {'X' if estimator else where} counts the "
        f"rows ({x[0, j]:g}, {x[1, j]:g}, {x[2, j]:g}, ...): a row number, which the model would learn as a "
        f"feature; {fix}",
        DataWarning,
        stacklevel=user_stacklevel(),
    )


def split_dataset(
    raw: RawData,
    cfg: DataConfig,
    scaler: tuple[np.ndarray, np.ndarray] | None = None,
    clip: bool = True,
    table: bool | None = None,
) -> Dataset:
    """Split rows as read into train/validation/test and scale them (fitted on train unless ``scaler``;
    clipped to [0, 1] unless not ``clip``; ``table``: as ``load_dataset`` takes it)."""
    x, y, x_test, y_test = raw.x, raw.y, raw.x_test, raw.y_test
    if scaler is None and is_table(cfg):
        warn_if_row_numbers(x, cfg)
    if x_test is None and len(x) < 10 and cfg.test_fraction > 0:
        raise UserError(
            f"{data_name(cfg.data)} has only {len(x)} row{'s' * (len(x) != 1)}; at least 10 are needed "
            "to split off test rows; give at least 10"
        )
    train_idx, val_idx, test_idx = _split_rows(
        len(x), cfg, y, raw.classes, scaler is not None, x_test is None
    )
    if test_idx is not None:
        x_test, y_test = x[test_idx], None if y is None else y[test_idx]
    check_scaler(scaler, x.shape[1], cfg.data)
    if scaler is not None:  # rows read for a trained run
        warn_if_other_units(x, scaler, cfg.data, is_table(cfg) if table is None else table)
    x_train = x if len(train_idx) == len(x) else x[train_idx]  # every row trains: no copy of them all
    offset, span = fit_scaler(x_train, is_table(cfg)) if scaler is None else scaler

    def rows(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(apply_scaler(a, offset, span, clip)))

    def labels(a: np.ndarray | None) -> torch.Tensor | None:
        return None if a is None else torch.as_tensor(np.asarray(a, dtype=np.int64))

    own_test = np.arange(len(x), len(x) + len(x_test)) if test_idx is None else test_idx
    return Dataset(
        name=cfg.data,
        x_train=rows(x_train),
        x_val=rows(x[val_idx]),
        x_test=rows(x_test),
        y_train=labels(None if y is None else y[train_idx]),
        y_val=labels(None if y is None else y[val_idx]),
        y_test=labels(y_test),
        sample_shape=raw.sample_shape,
        offset=torch.from_numpy(offset),
        span=torch.from_numpy(span),
        classes=raw.classes,
        places={"train": train_idx, "val": val_idx, "test": own_test},
        ids=raw.ids,
    )


def streamed_file(cfg: DataConfig) -> tuple[np.memmap, str | None] | None:
    """The memory-mapped ``.npy`` file ``cfg.data`` reads and its labels file, where its rows take
    more than ``cfg.memory_budget`` GiB as float32: streamed, not read whole; None otherwise."""
    source = npy_file(cfg)
    if source is None:
        return None
    array = open_npy(source[0])
    return (array, source[1]) if array.size * 4 > cfg.memory_budget * 2**30 else None


def streamed_rows(
    cfg: DataConfig, scaler: tuple[np.ndarray, np.ndarray], clip: bool = True, table: bool | None = None
) -> tuple[RowStream, np.ndarray | None, list[str] | None, tuple[int, ...]] | None:
    """Every row of ``cfg``'s data, in the file's order, streamed from disk and scaled by a trained
    run's ``scaler`` (clipped to [0, 1] unless not ``clip``), with their class indices (None without
    labels), the classes' names and the rows' sample shape, where ``streamed_file`` streams the
    file; None where the data is read whole (also a file stored in Fortran order, whose rows are
    not contiguous). ``table`` as ``load_dataset`` takes it."""
    streamed = streamed_file(cfg)
    if streamed is None or not streamed[0].flags.c_contiguous:  # a Fortran-ordered file is read whole
        return None
    array, labels = streamed
    stream = RowStream.from_memmap(array)
    y, classes = load_labels(labels, len(stream), cfg.classes) if labels else (None, None)
    stream = _scaled_for_run(stream, cfg, scaler, clip, is_table(cfg) if table is None else table)
    return stream, y, classes, sample_shape(array.shape, cfg.image_shape)


def _scaled_for_run(
    stream: RowStream, cfg: DataConfig, scaler: tuple[np.ndarray, np.ndarray], clip: bool, table: bool
) -> RowStream:
    """``stream`` checked against a trained run's ``scaler`` (its width; the units of a sample of
    its rows) and scaled by it."""
    check_scaler(scaler, stream.n_features, cfg.data)
    sample = np.sort(np.random.default_rng(0).choice(len(stream), min(len(stream), 10_000), False))
    warn_if_other_units(stream[sample].numpy(), scaler, cfg.data, table)
    return _with_scaling(stream, scaler, clip)


def _with_scaling(stream: RowStream, scaler: tuple[np.ndarray, np.ndarray], clip: bool) -> RowStream:
    """``stream`` read scaled by ``scaler`` (none where it changes nothing), clipped unless not ``clip``."""
    return stream.with_scaler(None if is_identity(*scaler) else scaler, clip)


def _streamed_dataset(
    cfg: DataConfig,
    array: np.memmap,
    scaler: tuple[np.ndarray, np.ndarray] | None,
    clip: bool,
    table: bool,
) -> Dataset:
    """An npy dataset too large for the memory budget: training rows stream from disk in chunks.

    Validation and test rows are read into memory (they are fractions of the data).
    """
    path = str(array.filename)
    stream = RowStream.from_memmap(array)
    y, classes = load_labels(cfg.labels, len(stream), cfg.classes) if cfg.labels else (None, None)
    train_idx, val_idx, test_idx = _split_rows(len(stream), cfg, y, classes, scaler is not None)
    digest = None
    if scaler is None:
        lo, hi, digest = stream.subset(train_idx).scan()
        scaler = scaler_from_range(lo, hi, is_table(cfg))
        stream = _with_scaling(stream, scaler, clip)
    else:  # rows read for a trained run
        stream = _scaled_for_run(stream, cfg, scaler, clip, table)
    offset, span = scaler

    def rows(idx: np.ndarray) -> torch.Tensor:
        x = stream.subset(idx).materialise()
        check_finite(x.numpy(), path)
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
        sample_shape=sample_shape(array.shape, cfg.image_shape),
        offset=torch.from_numpy(offset),
        span=torch.from_numpy(span),
        classes=classes,
        stream_digest=digest,
        places={"train": train_idx, "val": val_idx, "test": test_idx},
    )

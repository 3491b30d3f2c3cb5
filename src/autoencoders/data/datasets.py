"""Datasets: specs, scaling, splits, and each sample's shape.

All data ends up as flat float32 rows in [0, 1] (in memory, or streamed from disk), with
the shape of one sample beside them: (C, H, W) for images, (D,) for tables. Training
slices batches from the rows by index, never sample by sample; a model that needs
images views its rows in that shape.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataWarning, UserError, user_stacklevel
from ..io.checkpoint import arrays_sha256
from ..options import IDX_KINDS, DataConfig, closest, flag, names_flag, nearest
from .classes import labelled
from .images import first_image_size, image_folder
from .memory import data_name
from .sources import (
    FLOAT32_MOST,
    check_columns,
    check_finite,
    csv_columns,
    csv_feature_names,
    idx_length,
    load_csv,
    load_digits,
    load_idx_dir,
    load_idx_pair,
    load_labels,
    load_npy,
    locate,
    open_npy,
)
from .stream import Rows, RowStream

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


# ---------------------------------------------------------------- scaling and splits


def to_float(x: np.ndarray) -> np.ndarray:
    """float32 copy; uint8 images become [0, 1] by /255 (in torch, the same numbers: a fresh
    array of Fashion-MNIST's training images took numpy 1.6 s and torch 0.05 s on 2 cores)."""
    if x.dtype != np.uint8:
        return x.astype(np.float32)
    with warnings.catch_warnings():  # a file's read-only bytes are only read here
        warnings.simplefilter("ignore", UserWarning)
        pixels = torch.from_numpy(np.ascontiguousarray(x))
    return pixels.to(torch.float32).div_(255).numpy()


def fit_scaler(x: np.ndarray, table: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (offset, span) mapping training data to [0, 1]; see ``scaler_from_range``."""
    return scaler_from_range(x.min(axis=0), x.max(axis=0), table)


def scaler_from_range(lo: np.ndarray, hi: np.ndarray, table: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(offset, span) from per-feature minima and maxima; identity when all lie in [0, 1], unless
    the features are a ``table``'s columns: quantities of their own, each scaled to its range (a
    column of ratios in [0.49, 0.51] would otherwise count for nothing beside one in [0, 1])."""
    if not table and lo.min() >= 0.0 and hi.max() <= 1.0:
        return np.zeros(len(lo), np.float32), np.ones(len(lo), np.float32)
    wide = hi.astype(np.float64) - lo.astype(np.float64) > FLOAT32_MOST  # infinite as a float32
    if wide.any():
        j = int(np.flatnonzero(wide)[0])
        raise UserError(
            f"feature {j} (0-based) of the training rows runs from {lo[j]:.3g} to {hi[j]:.3g}, a span "
            f"larger than float32 holds (±{FLOAT32_MOST:.2e}), so it cannot be scaled to [0, 1]; "
            "divide that feature by a power of ten first"
        )
    return lo.astype(np.float32), np.where(hi > lo, hi - lo, 1.0).astype(np.float32)


def is_identity(offset: np.ndarray, span: np.ndarray) -> bool:
    """Whether a fitted scaler leaves values unchanged."""
    return not offset.any() and bool((span == 1).all())


def apply_scaler(x: np.ndarray, offset: np.ndarray, span: np.ndarray, clip: bool = True) -> np.ndarray:
    """Scale with a fitted (offset, span), clipping to [0, 1] unless ``clip`` is False."""
    if is_identity(offset, span) and (x.size == 0 or (x.min() >= 0 and x.max() <= 1)):
        return x  # already in range: skip a full copy of a possibly large array
    # one new array, worked on in place: a fresh array per step cost Fashion-MNIST's 43,200 training
    # rows 0.4 s (most of it the memory's first touch), in place 0.05 s, for the same numbers
    scaled = x - offset
    scaled /= span
    scaled = scaled.astype(np.float32, copy=False)
    return np.clip(scaled, 0.0, 1.0, out=scaled) if clip else scaled


def warn_if_other_units(
    x: np.ndarray, scaler: tuple[np.ndarray, np.ndarray], what: str, table: bool, sample: int = 10_000
) -> None:
    """Warn when rows read for a run (``x``, as read) lie far outside the range its ``scaler`` was
    fitted on: more than 1 % of the values of a sample of them more than half that span beyond it.
    Most likely another unit, which clipping to the range would hide. The advice follows the run's
    data (``table``: the run read a table, see ``is_table``), not ``x``'s format: a scaler of a run
    on images or arrays that leaves values as they are was fitted on values the toolkit read in
    [0, 1]; other runs' data came in units of the user's own."""
    if not len(x):
        return
    rows = x[np.random.default_rng(0).choice(len(x), sample, replace=False)] if len(x) > sample else x
    scaled = apply_scaler(rows, *scaler, clip=False)
    far = float(np.mean((scaled < -0.5) | (scaled > 1.5)))
    if far <= 0.01:
        return
    convert = (
        "to the units of the run's training data"
        if table or not is_identity(*scaler)
        else "as the toolkit read the run's data: divide scikit-learn's digits (0 to 16) by 16 and uint8 "
        "pixels by 255; other numbers are read as they are"
    )
    warnings.warn(
        f"{far:.0%} of the values of {what} lie far outside the range the run was trained on, which the "
        f"model sees them clipped to (score adds how far out they are); if they are in other units, "
        f"convert them {convert}",
        DataWarning,
        stacklevel=user_stacklevel(),
    )


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


# the data of a run fitted on rows in memory (a scikit-learn estimator's), which it does not keep
IN_MEMORY = "memory"


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split ``kind:path`` into (kind, path)."""
    if not isinstance(spec, str):  # rows in memory where only a spec is taken
        raise UserError(
            f"data here must be a data spec such as digits or npy:FILE, not rows of type "
            f"{type(spec).__name__}; save them with numpy.save and pass npy:FILE"
        )
    _check_kept(DataConfig(data=spec))  # a run fitted on rows in memory names none
    kind, _, path = spec.partition(":")
    if kind in ("digits", "mnist", "fashion-mnist") and not path:
        return kind, None
    if kind in ("idx", "npy", "csv", "images") and path:
        return kind, path
    files, builtin = ("idx", "npy", "csv", "images"), ("digits", "mnist", "fashion-mnist")
    suffix = Path(spec).suffix.lower()
    if kind in files:
        meant = f" ({kind} data needs its path: {kind}:{'DIR' if kind in ('idx', 'images') else 'FILE'})"
    elif kind in builtin:
        meant = f" ({kind} takes no path: give {kind})"
    elif path and len(kind) > 1 and (kind_meant := nearest(kind, files)):  # image:DIR; not a drive C:
        meant = f" (did you mean {kind_meant}:{path}?)"
    elif suffix in (".npy", ".csv") and Path(spec).is_file():
        meant = f" (did you mean {suffix[1:]}:{spec}?)"
    elif suffix in (".npy", ".csv"):
        meant = f" (a {suffix} file is given as {suffix[1:]}:FILE, and there is no file {spec})"
    elif Path(spec).is_dir():
        meant = f" (a folder: did you mean images:{spec} or idx:{spec}?)"
    else:  # fashion_mnist
        meant = closest(spec, builtin)
    raise UserError(
        f"unknown data spec '{spec}'{meant}; use digits, fashion-mnist, mnist, idx:DIR, npy:FILE, "
        "csv:FILE or images:DIR"
    )


# options that apply to one kind of data: given for another, they would change nothing
OWN_OPTIONS = {
    "labels": "npy",
    "label_column": "csv",
    "id_column": "csv",
    "image_size": "images",
    "grayscale": "images",
    "rgb": "images",
    "skip_bad_images": "images",
}


def with_absolute_paths(cfg: DataConfig) -> DataConfig:
    """``cfg`` with its data and labels paths made absolute: a run records where its data is, so
    that it can be evaluated, reported and resumed from any directory."""
    kind, path = parse_spec(cfg.data)
    data = cfg.data if path is None else f"{kind}:{os.path.abspath(path)}"
    labels = None if cfg.labels is None else os.path.abspath(cfg.labels)
    return dataclasses.replace(cfg, data=data, labels=labels)


def for_data(
    cfg: DataConfig, spec: str, n_features: int, labels: str | None = None, shape: tuple[int, ...] = ()
) -> DataConfig:
    """A run's data settings ``cfg`` for reading ``spec``: how rows are read (image size, colour,
    image shape) carries over to other data; the labels file belongs to the run's own rows (other
    ``npy:`` data may bring its own, ``labels``), and the label column applies to another CSV only
    where that file has it (the name in its header, or one column more than the ``n_features`` the
    run was trained on), the id column too (by name, or given by index). An image folder given to a
    run of images (``shape``: its input's, C, H, W) that recorded no image size, trained on an
    array, is read at the run's height and width."""
    kind = parse_spec(spec)[0]  # rows in memory, where only a spec is taken, are refused there
    if cfg.data == IN_MEMORY:  # an estimator fitted on all its rows: other data splits as train's would
        d = DataConfig()
        cfg = dataclasses.replace(
            cfg, val_fraction=d.val_fraction, test_fraction=d.test_fraction, split_seed=d.split_seed
        )
    if labels is not None:
        if kind != "npy":
            raise UserError(f"--labels applies to npy: data, not {spec}; leave it out")
        return dataclasses.replace(cfg, data=spec, labels=str(labels))
    id_column = cfg.id_column  # of a classifier's data, perhaps: the run's own may lack it
    if id_column is not None and not _has_id_column(spec, id_column, cfg.label_column, n_features):
        cfg = dataclasses.replace(cfg, id_column=None)
    if same_data(spec, cfg.data):
        return cfg
    label_column = cfg.label_column
    if label_column is not None and not _has_label_column(spec, label_column, n_features, cfg.id_column):
        label_column = None
    cfg = dataclasses.replace(cfg, data=spec, labels=None, label_column=label_column)
    if kind == "images" and cfg.image_size is None and len(shape) == 3:
        cfg = dataclasses.replace(cfg, image_size=list(shape[1:]))
    return _with_channels(cfg, n_features) if kind == "images" else cfg


def _with_channels(cfg: DataConfig, n_features: int) -> DataConfig:
    """``cfg`` reading its image folder in the channels a run of ``n_features`` takes: gray images
    given to a colour run copied into three, colour ones given to a grayscale run made gray."""
    size = cfg.image_size or first_image_size(parse_spec(cfg.data)[1])
    channels = n_features // math.prod(size) if size and n_features % math.prod(size) == 0 else None
    if channels not in (1, 3):  # images of another size: reading them says so
        return cfg
    return dataclasses.replace(cfg, grayscale=channels == 1, rgb=channels == 3)


def same_data(a: str, b: str) -> bool:
    """Whether specs ``a`` and ``b`` name the same data (a path relative or absolute alike)."""
    if IN_MEMORY in (a, b):  # rows that were in memory: no spec names them
        return False
    (kind_a, path_a), (kind_b, path_b) = parse_spec(a), parse_spec(b)
    if path_a is None or path_b is None:
        return (kind_a, path_a) == (kind_b, path_b)
    return kind_a == kind_b and Path(path_a).resolve() == Path(path_b).resolve()


def other_data_suffix(data: object, own: str) -> str:
    """What a default output directory's name adds for ``data`` that is not the run's ``own``:
    "-NAME" for another file or folder (its name without the extension) or built-in set, "-rows"
    for rows in memory, "" for the run's own data (None too)."""
    if data is None or isinstance(data, str) and same_data(data, own):
        return ""
    if not isinstance(data, str):
        return "-rows"
    kind, path = parse_spec(data)
    return f"-{kind if path is None else Path(path.rstrip('/')).stem}"


def _has_label_column(spec: str, column: str | int, n_features: int, id_column: str | int | None) -> bool:
    """Whether the data of ``spec`` has the label ``column`` of a run of ``n_features`` features: by
    its name in the header, or by one column more than its features (and its ``id_column``)."""
    kind, path = parse_spec(spec)
    if kind != "csv" or not Path(path).is_file():
        return False  # a missing file is reported where it is read
    header, width = csv_columns(path, column, id_column)
    width -= id_column is not None
    if header is not None and (column in header or not str(column).lstrip("-").isdigit()):
        return column in header  # a named column: there by its name or not at all
    if header is None and width == n_features + 1 and not str(column).lstrip("-").isdigit():
        raise UserError(
            f"{path} has no header row, so the label column '{column}' of the run cannot be found in it by "
            "name: give its 0-based index with --label-column, or add the header row (where no labels are "
            "needed, the file may leave the label column out)"
        )
    return column in (header or []) or width == n_features + 1


def _has_id_column(spec: str, column: str | int, label_column: str | int | None, n_features: int) -> bool:
    """Whether the data of ``spec`` has the id ``column`` a run recorded (by its header name) or that
    a reader gives (a name, or an index, which a file without a header needs), for a run of
    ``n_features`` features."""
    kind, path = parse_spec(spec)
    if kind != "csv" or not Path(path).is_file():
        return False  # a missing file is reported where it is read
    header, width = csv_columns(path, label_column, column)
    if header is not None and column in header:
        return True
    if not str(column).lstrip("-").isdigit() or not -width <= int(column) < width:
        # a name, in a file without a header with a column beyond the features (and the label): to
        # be given by index, which reading it says; or an index out of range, which reading says too
        return header is None and width - n_features - (label_column is not None) >= 1
    # an index: of a file without a header, or of a column its header gives no name of its own (a
    # data frame's index); a file whose header names that column holds the id by its name or not at all
    name = None if header is None else header[int(column) % width]
    return not name or header.count(name) > 1


def id_name(cfg: DataConfig) -> str:
    """The header's name of the id column of ``cfg``'s CSV, or "id" where the file has no header."""
    header = csv_columns(parse_spec(cfg.data)[1], cfg.label_column, cfg.id_column)[0]
    return str(cfg.id_column) if header is not None and cfg.id_column in header else "id"


def check_data_options(cfg: DataConfig) -> None:
    """A UserError for an option ``cfg`` sets that its kind of data does not take."""
    kind = parse_spec(cfg.data)[0]
    for name, applies in OWN_OPTIONS.items():
        value = getattr(cfg, name)
        if name in ("label_column", "id_column") and kind == "npy" and cfg.columns is not None:
            continue  # the label column of a data frame given in memory, recorded with its columns
        if value is not None and value is not False and kind != applies:  # 0 is a label column's index
            fix = "leave it out"
            if name == "labels" and kind == "csv":  # a column of the file, most likely
                column = str(value) if not Path(str(value)).suffix else "NAME"  # a name given as a file
                fix = f"a CSV's labels are a column of it: give --label-column {column}"
            raise UserError(f"--{flag(name)} applies to {applies}: data, not {cfg.data}; {fix}")
    if cfg.grayscale and cfg.rgb:
        raise UserError("--grayscale asks for one channel and --rgb for three; give one of them")
    path = parse_spec(cfg.data)[1]
    if kind == "csv" and cfg.columns is not None and Path(path).is_file():  # a mistyped name, named
        check_columns(path, cfg.columns, cfg.label_column, cfg.id_column)


def npy_file(cfg: DataConfig) -> tuple[str, str | None] | None:
    """The ``.npy`` file and labels file ``cfg.data`` reads (an image folder: as decoded into the
    cache), or None for data of another kind."""
    kind, path = parse_spec(cfg.data)
    if kind == "npy":
        return path, cfg.labels
    if kind == "images":
        rows, labels = image_folder(path, cfg.image_size, cfg.grayscale, cfg.skip_bad_images, cfg.rgb)
        return str(rows), None if labels is None else str(labels)
    return None


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


def _check_kept(cfg: DataConfig) -> None:
    """A UserError for the data of a run fitted on rows in memory: there is none to read."""
    if cfg.data == IN_MEMORY:
        raise UserError(
            "this run was fitted on rows in memory (a scikit-learn estimator's), which it does not keep; "
            "give the data: a spec such as npy:FILE (or rows in memory, where they are taken)"
        )


def read_data(cfg: DataConfig, run_width: int | None = None) -> RawData:
    """Read the dataset named by ``cfg.data`` as flat float32 rows (``run_width``: the features of
    the trained run they are read for, None for training)."""
    _check_kept(cfg)
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
    _check_kept(cfg)
    kind, path = parse_spec(cfg.data)
    if kind not in IDX_KINDS:
        return None
    directory = _idx_directory(kind, path)
    x, y = load_idx_pair(directory, "t10k")
    first = idx_length(directory, "train")
    return to_float(x.reshape(len(x), -1)), y, np.arange(first, first + len(x))


def sample_shape(shape: tuple[int, ...], override: list[int] | None = None) -> tuple[int, ...]:
    """Shape of one sample of an array of ``shape``: (1, H, W) for N×H×W, (C, H, W) for N×C×H×W, else (D,);
    a warning where C is most likely the images' width, their colour last.

    ``override`` (``--image-shape``, H,W or C,H,W) views flat rows as images; data of an image shape
    of its own must agree with it, except that N×H×W×1 (channels last, one channel) may be read as
    the 1,H,W it holds.
    """
    width = math.prod(shape[1:])
    if override:
        image = tuple(override) if len(override) == 3 else (1, *override)
        own = _own_shape(shape)
        gray_last = len(shape) == 4 and shape[-1] == 1 and image == (1, *shape[1:3])
        if len(shape) in (3, 4) and image != own and not gray_last:
            hint = ""
            if len(shape) == 4 and shape[-1] == 3:  # channels last: not a view, a transpose
                hint = " (for N×H×W×3 colour images save np.moveaxis(x, -1, 1): N×3×H×W)"
            raise UserError(
                f"--image-shape {','.join(map(str, override))} differs from the shape the data's images "
                f"have ({','.join(map(str, own))}, as C,H,W); leave --image-shape out (also from the "
                f"run's config.json): it shapes flat rows (.npy N×D, CSV){hint}"
            )
        if math.prod(image) != width:
            raise UserError(
                f"--image-shape {','.join(map(str, override))} holds {math.prod(image)} values "
                f"but each row has {width}; pick sizes whose product is {width}"
            )
        return image
    if len(shape) == 4 and shape[-1] in (3, 4) and shape[1] not in (1, 3, 4):  # as images load: N×H×W×C
        warnings.warn(
            f"the images of shape {'×'.join(map(str, shape[1:]))} are read as {shape[1]} channels of "
            f"{shape[2]}×{shape[3]} pixels (N×C×H×W); if the colour comes last (N×H×W×C, as images "
            "load), give np.moveaxis(x, -1, 1) instead",
            DataWarning,
            stacklevel=user_stacklevel(),
        )
    return _own_shape(shape)


def _own_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """One sample's shape as an array of ``shape`` stores it: (1, H, W), (C, H, W) or (D,)."""
    if len(shape) == 3:
        return (1, *shape[1:])
    if len(shape) == 4:
        return tuple(shape[1:])
    return (math.prod(shape[1:]),)


def holds_images(sample: tuple[int, ...]) -> bool:
    """Whether samples of shape ``sample`` are images (C, H, W), as messages name them, rather than
    a table's rows (D,), which ``display_shape`` may still draw as squares."""
    return len(sample) == 3


def sample_noun(sample: tuple[int, ...]) -> str:
    """What one sample of shape ``sample`` is called in messages, titles and captions."""
    return "image" if holds_images(sample) else "row"


# flat rows narrower than this side's square are a table's few features (4 sensors), which a
# heatmap shows by name, not pictures of 2×2 pixels; digits' 8×8 are the smallest images drawn
MIN_IMAGE_SIDE = 8


def display_shape(sample: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape of one sample as an image, in the order its row stores it: (H, W) for
    single-channel images and flat rows whose D is a square of a side of ``MIN_IMAGE_SIDE`` or more,
    (3, H, W) for colour images; None for other rows."""
    if len(sample) == 3:
        return {1: tuple(sample[1:]), 3: tuple(sample)}.get(sample[0])
    side = math.isqrt(sample[0])
    return (side, side) if side * side == sample[0] and side >= MIN_IMAGE_SIDE else None


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
    _check_kept(cfg)
    table = is_table(cfg) if table is None else table
    if (streamed := streamed_file(cfg)) is not None:
        array, labels = streamed
        return _streamed_dataset(dataclasses.replace(cfg, labels=labels), array, scaler, clip, table)
    run_width = None if scaler is None else len(scaler[0])
    return split_dataset(read_data(cfg, run_width), cfg, scaler, clip, table)


ESTIMATOR_ROWS = "arrays"  # the data of a scikit-learn estimator's fit: a table, X[n_samples, n_features]


def dataset_from_arrays(x: np.ndarray, cfg: DataConfig, y: np.ndarray | None = None) -> Dataset:
    """In-memory rows (e.g. given to a scikit-learn estimator): train and validation splits, no test split."""
    raw = RawData(to_float(x.reshape(len(x), -1)), y, None, None, sample_shape(x.shape, cfg.image_shape))
    return split_dataset(raw, dataclasses.replace(cfg, data=ESTIMATOR_ROWS, test_fraction=0.0))


def label_column_name(cfg: DataConfig) -> str | None:
    """The label column's name, where a CSV's header or a data frame gives one (not an index)."""
    column = cfg.label_column
    return column if isinstance(column, str) and not column.lstrip("-").isdigit() else None


def label_name(cfg: DataConfig) -> str:
    """What a legend calls the rows' labels: the label column's name, else "label"."""
    return label_column_name(cfg) or "label"


def is_table(cfg: DataConfig) -> bool:
    """Whether ``cfg`` reads a table, whose columns are each scaled to [0, 1]: a CSV file, a data
    frame (its columns recorded by name) or a scikit-learn estimator's X."""
    return cfg.data == ESTIMATOR_ROWS or cfg.columns is not None or cfg.data.startswith("csv:")


def check_scaler(scaler: tuple[np.ndarray, np.ndarray] | None, n_features: int, spec: str) -> None:
    """A UserError unless rows of ``n_features`` fit a fitted ``scaler`` (one offset per feature)."""
    if scaler is not None and len(scaler[0]) != n_features:
        raise UserError(width_mismatch(spec, n_features, len(scaler[0])))


def width_mismatch(spec: str, n_features: int, expected: int) -> str:
    """The message for rows of ``spec`` whose ``n_features`` are not the ``expected`` ones; a CSV
    with one column more most likely holds labels the run's data did not."""
    message = f"{spec} has {n_features} features but the model expects {expected}"
    if str(spec).startswith("csv:") and n_features == expected + 1:
        message += (
            "; if one of its columns holds labels, name it with --label-column (its header name or "
            "0-based index), or give the file without it"
        )
    return message


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

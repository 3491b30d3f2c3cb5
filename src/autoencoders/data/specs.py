"""Data specs (``kind:path``): what they name, and the options each kind of data takes."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

from ..errors import UserError
from ..fields import closest, flag, nearest
from ..options import DataConfig
from .images import first_image_size, image_folder
from .tables import check_columns, csv_columns

# the data of a run fitted on rows in memory (a scikit-learn estimator's), which it does not keep
IN_MEMORY = "memory"
ESTIMATOR_ROWS = "arrays"  # the data of a scikit-learn estimator's fit: a table, X[n_samples, n_features]


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split ``kind:path`` into (kind, path)."""
    if not isinstance(spec, str):  # rows in memory where only a spec is taken
        raise UserError(
            f"data here must be a data spec such as digits or npy:FILE, not rows of type "
            f"{type(spec).__name__}; save them with numpy.save and pass npy:FILE"
        )
    check_kept(DataConfig(data=spec))  # a run fitted on rows in memory names none
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


def check_kept(cfg: DataConfig) -> None:
    """A UserError for the data of a run fitted on rows in memory: there is none to read."""
    if cfg.data == IN_MEMORY:
        raise UserError(
            "this run was fitted on rows in memory (a scikit-learn estimator's), which it does not keep; "
            "give the data: a spec such as npy:FILE (or rows in memory, where they are taken)"
        )


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

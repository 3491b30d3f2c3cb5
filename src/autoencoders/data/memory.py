"""Rows held in memory (NumPy arrays, tensors, pandas data frames): read as rows, a frame's
columns by name, saved once under the cache so a run records them as a file, and named in
messages as what the user gave."""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..fields import closest
from ..io.checkpoint import arrays_sha256, write_npy
from .classes import as_labels, classes_of
from .sources import cache_dir, cache_folder, check_finite, complex_refused, label_per_row


def rows_in_memory(rows: Any, what: str, columns: list[str] | None = None) -> np.ndarray:
    """Rows held in memory (a NumPy array, tensor or pandas DataFrame: N×D, N×H×W or N×C×H×W, in
    any units) as an array: an array's or tensor's uint8 kept (pixels are read as value / 255, in
    memory and from files alike), anything else float32, a data frame's columns whatever their
    dtype (quantities, as a CSV file's are). A data frame's columns are taken by name in the order of
    ``columns`` (a run's recorded ones) when given. A UserError names a column that is not numeric or
    is missing, a shape that is not rows, and NaN or infinite values."""
    if isinstance(rows, os.PathLike):  # a file's name, where a spec names files
        kind = {".csv": "csv", ".npy": "npy"}.get(
            Path(rows).suffix.lower(), "images" if Path(rows).is_dir() else "npy"
        )
        raise UserError(f"{what} is a path, {rows}; give a file as a data spec, such as '{kind}:{rows}'")
    if hasattr(rows, "toarray") and hasattr(rows, "nnz"):  # a SciPy sparse matrix
        raise UserError(f"{what} is a sparse matrix; give it as a dense array (rows.toarray())")
    if hasattr(rows, "detach"):  # a tensor: floats as float32, as they end (NumPy has no bfloat16)
        rows = rows.detach().cpu()
        rows = (rows.float() if rows.is_floating_point() else rows).numpy()
    names = None
    if hasattr(rows, "columns"):  # a DataFrame
        names = columns or [str(c).strip() for c in rows.columns]
        rows = _frame_rows(rows, columns)
    x = np.ascontiguousarray(np.asarray(rows))
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.number) and x.dtype != bool:
            raise UserError(f"{what} must be numeric, got {x.dtype}")
        if np.iscomplexobj(x):
            raise UserError(complex_refused(what))
    if x.ndim not in (2, 3, 4) or len(x) == 0:
        raise UserError(f"{what} must be N×D, N×H×W or N×C×H×W with at least one row, got shape {x.shape}")
    check_finite(x, what, names)  # as given: a number too large for float32 is named, not made infinite
    return x if x.dtype == np.uint8 else x.astype(np.float32)


def _frame_rows(frame: Any, columns: list[str] | None) -> np.ndarray:
    """A DataFrame's values (its columns in the order of ``columns``, by name, when given)."""
    if columns is not None:
        names = [str(c).strip() for c in frame.columns]  # as ``frame_columns`` recorded them
        missing = [c for c in columns if c not in names]
        if missing:
            shown = ", ".join(repr(c) for c in missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise UserError(
                f"the data frame lacks {len(missing)} of the run's columns ({shown}); give one with the "
                "columns the run trained on (others are left out), or its values as an array"
            )
        frame = frame.iloc[:, [names.index(c) for c in columns]]
    if any(getattr(kind, "kind", "O") == "c" for kind in frame.dtypes):
        raise UserError(complex_refused("the data frame"))
    other = [i for i, kind in enumerate(frame.dtypes) if getattr(kind, "kind", "O") not in "biuf"]
    if other:
        column, dtype, values = frame.columns[other[0]], frame.dtypes.iloc[other[0]], frame.iloc[:, other[0]]
        raise UserError(not_numeric(column, dtype, values))
    return frame.to_numpy(dtype=np.float32, na_value=np.nan)  # quantities, uint8 columns too: no pixels


def not_numeric(column: Any, dtype: Any, values: Any, frame: str = "the data frame") -> str:
    """Why ``column`` of ``values`` (of ``dtype``) of a data frame (``frame``) is not read, and what to do."""
    name, kind = f"column {str(column)!r} of {frame}", getattr(dtype, "kind", "O")
    if kind == "M":
        return (
            f"{name} holds dates; drop it, or give it as numbers, such as days since the first: "
            "(column - column.min()).dt.days"
        )
    if kind == "m":
        return f"{name} holds durations; drop it, or give it as numbers, such as column.dt.total_seconds()"
    # numbers as Python objects (a Decimal from SQL too); not a categorical's, whose numbers are names
    if str(dtype) == "object" and all(
        isinstance(v, numbers.Number) and not isinstance(v, complex) for v in values
    ):
        return f"{name} holds numbers stored as Python objects; give them as numbers: frame.astype(float)"
    return (
        f"{name} is not numeric; drop it, or code its categories as 0/1 columns, one per category "
        "(pandas.get_dummies): category numbers would be read as quantities"
    )


def frame_columns(rows: Any) -> list[str] | None:
    """A DataFrame's column names, to record with a run trained on it (``identifying_names``); None
    for other rows."""
    return identifying_names(rows.columns) if hasattr(rows, "columns") else None


def identifying_names(columns: Iterable[Any]) -> list[str] | None:
    """Column names as text, without surrounding spaces; None where they cannot identify their
    columns: numbered 0, 1, ... as pandas numbers them, empty or repeated."""
    names = [str(c).strip() for c in columns]
    if names == [str(i) for i in range(len(names))] or "" in names or len(set(names)) < len(names):
        return None
    return names


def check_labels_file(labels: Any) -> None:
    """A UserError for ``labels`` given in memory beside data read from a file (a spec), whose rows'
    order the caller does not hold: a labels file goes with those."""
    if labels is not None and not isinstance(labels, str | Path):
        raise UserError("labels in memory go with data in memory; for a data file give a labels file")


def check_aligned(rows: Any, labels: Any) -> None:
    """A UserError when rows and labels in memory are both pandas objects whose indexes differ:
    they are paired by position, as scikit-learn pairs them, which pandas users may not expect."""
    index, other = getattr(rows, "index", None), getattr(labels, "index", None)  # a list's is a method
    if hasattr(index, "equals") and hasattr(other, "equals") and not index.equals(other):
        raise UserError(
            "the labels' index differs from the data frame's, and rows and labels are paired by "
            "position; align them by index first (labels.loc[frame.index]), or pair them by position "
            "(labels.to_numpy())"
        )


def save_arrays(rows: Any, labels: Any = None) -> tuple[str, str | None]:
    """Rows held in memory (see ``rows_in_memory``) and their labels, saved once under the cache by
    content: the ``npy:`` spec and labels file a run records, so it resumes, evaluates and reports
    as it would from files."""
    x = rows_in_memory(rows, "the data in memory")  # checked before anything is written
    y = None
    if labels is not None:
        y = as_labels(label_per_row(labels, len(x)))  # numbers, NaN for none; or names, "" for none
        check_aligned(rows, labels)
        classes_of(y, None, "the labels given in memory")  # before anything is written, as read back
        if not np.issubdtype(y.dtype, np.number):
            y = y.astype(str)  # class names, numbered when they are read (see ``load_labels``)
    folder = cache_folder("arrays", "the rows given in memory")
    paths = []
    for array in (x, y):
        if array is None:
            paths.append(None)
            continue
        digest = arrays_sha256([array])
        path = folder / f"{digest}.npy"
        if not path.is_file():
            write_npy(path, array)
        paths.append(str(path))
    return f"npy:{paths[0]}", paths[1]


def data_name(spec: str) -> str:
    """How a message names data: its spec, or "the data given in memory" for rows that
    ``save_arrays`` saved under the cache."""
    kind, _, path = spec.partition(":")
    if kind == "npy" and Path(path).parent == cache_dir() / "arrays":
        return "the data given in memory"
    return spec


def given_rows(options: dict[str, Any]) -> dict[str, Any]:
    """``train``'s ``options`` with rows in memory given as ``data`` (and their ``labels``) saved once
    under the cache, which ``data`` and ``labels`` then name: a data frame's ``label_column`` taken
    out of its features, and its feature ``columns`` recorded by name (those given picked, as of a
    CSV). A file given as ``labels`` beside a data spec is checked."""
    options = dict(options)
    data = options.get("data")
    if data is None or isinstance(data, str | Path):
        check_labels_file(options.get("labels"))
        return options
    if options.get("id_column") is not None:
        raise UserError(
            "id_column names a column of a CSV file; of rows in memory, drop it (columns= picks a data "
            "frame's features): a run's outputs keep the rows' order"
        )
    column = options.pop("label_column", None)
    if column is not None:
        data, options["labels"] = _label_column(data, column, options.get("labels"))
    if hasattr(data, "columns"):  # a data frame: its own names, where they identify its columns
        data, names = _frame_features(data, options.get("columns"))
        options["columns"] = names
        if column is not None and names is not None:  # by name: later frames and CSVs give labels by it
            options["label_column"] = str(options["labels"].name).strip()
    options["data"], labels = save_arrays(data, options.get("labels"))
    if labels is not None:
        options["labels"] = labels
    return options


def _frame_features(frame: Any, columns: list[str] | None) -> tuple[Any, list[str] | None]:
    """(the feature columns of a data frame, their names to record): those ``columns`` names, as of
    a CSV with a header (an id or a date left out), else every column."""
    names = frame_columns(frame)
    if columns is None or columns == names:
        return frame, names
    if names is None:
        raise UserError(
            "columns picks a data frame's columns by name, and this frame's are numbered, empty or "
            "repeated; name them (frame.columns = [...]), or give the feature columns alone"
        )
    if not isinstance(columns, list | tuple) or not all(isinstance(c, str) for c in columns):
        raise UserError(f"columns must be a list of the data frame's column names, not {columns!r}")
    missing = next((c for c in columns if c not in names), None)
    if missing is not None:
        hint = closest(missing, names)
        raise UserError(f"columns names {missing!r}, which the data frame does not hold{hint}")
    return frame.iloc[:, [names.index(c) for c in columns]], list(columns)


def _label_column(frame: Any, column: str | int, labels: Any) -> tuple[Any, Any]:
    """(features, labels) of a data frame whose ``column`` holds the labels."""
    if not hasattr(frame, "columns"):
        raise UserError(
            "label_column names a column of a CSV file or a data frame; give the labels of rows in an "
            "array as labels="
        )
    if labels is not None:
        raise UserError(f"labels and label_column={column!r} both give labels; give one of them")
    at = frame_column(frame, column)
    return frame.drop(columns=frame.columns[at]), frame.iloc[:, at]


def frame_column(frame: Any, column: str | int) -> int:
    """The place of a data frame's ``column``, given by its name (a name first, as a CSV header's:
    digits may name a column too, as pandas' own names do) or else its 0-based index (negative
    from the end); a UserError where it has none."""
    names = [str(c).strip() for c in frame.columns]
    if str(column).strip() in names:
        return names.index(str(column).strip())
    if str(column).lstrip("-").isdigit() and -len(names) <= int(column) < len(names):
        return int(column) % len(names)
    raise UserError(
        f"--label-column {column!r} is neither a column of the data frame nor the index of one (0 to "
        f"{len(names) - 1}){closest(str(column), names)}"
    )

"""What the estimators check and convert: their parameters, X and y as scikit-learn validates them,
and fitted values as JSON holds them."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import validate_data

from ..data.memory import not_numeric
from ..errors import UserError

DTYPES = (np.float64, np.float32)


def switch(name: str, value: Any) -> bool:
    """A parameter that is on or off, as a bool; a UserError for anything else (the string "no" is
    true in Python, and would turn it on)."""
    if not isinstance(value, bool | np.bool_):
        raise UserError(f"{name} must be True or False, not {value!r}")
    return bool(value)


def option_dict(name: str, value: Any, what: str) -> Mapping[str, Any]:
    """``value`` of the parameter ``name``: a dict of ``what`` (None: none); a UserError for anything
    else (an empty list or string too, which would read as none)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UserError(f"{name} must be a dict of {what}, not {type(value).__name__}")
    return value


def layer_widths(layers: Any) -> list[int]:
    """``layers`` (a tuple, list or array of whole numbers of at least 1) as a list of ints."""
    ok = not isinstance(layers, str | numbers.Number) and hasattr(layers, "__len__") and len(layers) > 0
    if not ok or not all(isinstance(w, numbers.Integral) and w >= 1 for w in layers):
        raise UserError(f"layers must be the widths after the input, e.g. (64, 16), or None; got {layers!r}")
    return [int(w) for w in layers]


def plain(value: Any) -> Any:
    """``value`` with NumPy numbers and arrays (a grid search's parameters) as Python's, for JSON."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value.tolist() if isinstance(value, np.ndarray | np.generic) else value


def host(a: Any) -> Any:
    """A torch tensor as a NumPy array of its dtype (bfloat16, which NumPy lacks: float32), from a
    GPU too; anything else as it is. scikit-learn would read a float32 tensor as float64 and could
    not read one on a GPU."""
    if not isinstance(a, torch.Tensor):
        return a
    return (a.float() if a.dtype == torch.bfloat16 else a).numpy(force=True)


def validate(estimator: BaseEstimator, X: Any, *y: Any, **kwargs: Any) -> Any:
    """``validate_data`` (torch tensors read as ``host`` reads them), after a ValueError naming a
    text column of X with the advice scikit-learn's own message ("could not convert string to
    float") lacks."""
    X, y = host(X), tuple(host(labels) for labels in y)
    dtypes, what = getattr(X, "dtypes", None), None
    if hasattr(dtypes, "items"):  # a data frame: its columns by name (objects may be numbers)
        for c, kind in dtypes.items():  # read as numbers, as train refuses to: dates, categories' codes
            if getattr(kind, "kind", "O") in "Mm" or str(kind) == "category":
                raise UserError(not_numeric(c, kind, X[c], "X"))
        text = (
            c
            for c, kind in dtypes.items()
            if getattr(kind, "kind", "O") in "USO" and not reads_as_numbers(X[c])
        )
        what = next((f"column {str(c)!r} of X is not numeric" for c in text), None)
    elif getattr(X, "dtype", None) is not None and X.dtype.kind in "US" and not reads_as_numbers(X):
        what = "X holds text"
    if what is not None:
        raise UserError(
            f"{what}; drop such columns, or code categories as 0/1 columns, one per category "
            "(pandas.get_dummies, or a OneHotEncoder before this estimator in a Pipeline)"
        )
    return validate_data(estimator, X, *y, **kwargs)


def reads_as_numbers(column: Any) -> bool:
    """Whether ``column`` (a data frame's, or an array of text) reads as numbers."""
    try:
        np.asarray(column, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return True

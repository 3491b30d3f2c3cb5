"""Rows scaled to [0, 1]: the scaler a run fits on its training rows, and rows read for a run
checked against it."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..errors import DataWarning, UserError, user_stacklevel
from .sources import FLOAT32_MOST
from .specs import width_mismatch


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


def check_scaler(scaler: tuple[np.ndarray, np.ndarray] | None, n_features: int, spec: str) -> None:
    """A UserError unless rows of ``n_features`` fit a fitted ``scaler`` (one offset per feature)."""
    if scaler is not None and len(scaler[0]) != n_features:
        raise UserError(width_mismatch(spec, n_features, len(scaler[0])))

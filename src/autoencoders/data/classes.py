"""Class labels as numbers: class numbers as they are, class names by a run's own list.

A run whose labels are names numbers them 0, 1, ... in the order ``--classes`` gives, or in
sorted order, and records that list in its config. Other data read for the run numbers its names
alike, names the list lacks after it (commands that only carry labels along still read the
data; training with ``--classes`` refuses them, ``run.py``). Labels are shown as the data holds
them: names as names, numbers as numbers.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from ..errors import DataWarning, UserError, user_stacklevel


def is_missing(value: object) -> bool:
    """Whether a label given in memory is no value: None, NaN or pandas' NA."""
    return (
        value is None
        or (isinstance(value, float | np.floating) and value != value)
        or type(value).__name__ == "NAType"  # pandas' NA, without importing pandas
    )


def without_class(labels: np.ndarray) -> np.ndarray:
    """Which of ``labels`` (as given in memory or a .npy file: numbers or names) mark a row without a
    class: no value (``is_missing``) or empty text. (Text such as "NA" or "None" is a class's name
    there; a CSV's cells, where such text is how a missing value is written, are read otherwise.)"""
    if labels.dtype.kind == "f":
        return np.isnan(labels)
    if labels.dtype.kind in "biu":
        return np.zeros(len(labels), bool)
    return np.array([is_missing(v) or (isinstance(v, str) and not v.strip()) for v in labels.tolist()], bool)


def as_labels(labels: np.ndarray) -> np.ndarray:
    """Labels given in memory as numbers (float, NaN where a row has no class) or as names (text,
    empty where a row has none): objects, such as None among numbers, as the others are; True and
    False as names."""
    if labels.dtype.kind == "b":
        return labels.astype(str)
    if labels.dtype != object:
        return labels
    without = without_class(labels)
    known = labels[~without].tolist()
    if known and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in known):
        return np.where(without, np.nan, labels).astype(np.float64)
    return np.where(without, "", labels).astype(str)


def classes_of(
    labels: np.ndarray, classes: list[str] | None, source: str
) -> tuple[np.ndarray, list[str] | None]:
    """Labels of a .npy file, or given in memory (``as_labels``), as (class indices, class names):
    names numbered by ``classes`` (see ``name_classes``); a missing label (``without_class``) marks a
    row without a class (``UNLABELLED``), as long as some row has one."""
    labels = np.asarray(labels).reshape(-1)
    without = without_class(labels)
    if without.all():
        raise UserError(
            f"{source} hold no class in any row; give rows their classes (a missing one, such as NaN, "
            "marks a row without a class), or no labels"
        )
    known = labels[~without]
    if known.dtype.kind in "biuf":
        y, names = number_classes(known, source), None
    elif known.dtype.kind == "U":
        y, names = name_classes(known, classes, source)
    else:
        raise UserError(f"{source} hold {labels.dtype} values; give class numbers or names")
    return with_unlabelled(without, y), names


def with_unlabelled(without: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Class indices ``y`` of the rows that have a class, among every row (``UNLABELLED`` where
    ``without``)."""
    if not without.any():
        return y
    every = np.full(len(without), UNLABELLED, np.int64)
    every[~without] = y
    return every


def name_classes(names: np.ndarray, classes: list[str] | None, source: str) -> tuple[np.ndarray, list[str]]:
    """Labels that are names (each row's, none missing) as (class indices, class names): numbered by
    their place in ``classes``, names it lacks after it in sorted order (all of them without it)."""
    names = np.asarray(names, dtype=str)
    found, inverse, counts = np.unique(names, return_inverse=True, return_counts=True)
    warn_if_not_classes(counts, source)
    known = list(classes or [])
    every = known + sorted(set(found.tolist()) - set(known))
    place = {name: i for i, name in enumerate(every)}
    return np.array([place[name] for name in found.tolist()], np.int64)[inverse], every


def number_classes(values: np.ndarray, source: str) -> np.ndarray:
    """Labels that are class numbers as class indices: themselves, checked to be whole numbers."""
    values = np.asarray(values, np.float64)
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise UserError(f"{source} holds {bad} infinite label(s); give class numbers 0, 1, 2, ...")
    if (values != np.round(values)).any():
        odd = values[values != np.round(values)][0]
        raise UserError(f"{odd:g} in {source} is not a whole class number; give classes as 0, 1, 2, ...")
    warn_if_unlabelled_marker(values, source)
    warn_if_not_classes(np.unique(values, return_counts=True)[1], source)
    return values.astype(np.int64)


# labels of fewer rows are not judged: a few rows may each be of a class of their own
FEW_ROWS = 20


def warn_if_not_classes(counts: np.ndarray, source: str) -> None:
    """Warn when most of the rows whose classes number ``counts`` per class are the only row of
    their class: a quantity or an id read as classes, which makes every accuracy count nothing (a
    class of one row is never right elsewhere)."""
    rows, alone = int(counts.sum()), int((counts == 1).sum())
    if rows >= FEW_ROWS and alone > rows / 2:
        warnings.warn(
            f"{source}: {len(counts)} classes among {rows} rows, {alone} of them with one row only: a "
            "quantity or an id rather than classes? The accuracies a run reports (linear probe, kNN, "
            "k-means, classify) count classes; give labels that are classes, or none",
            DataWarning,
            stacklevel=user_stacklevel(),
        )


def warn_if_unlabelled_marker(values: np.ndarray, source: str) -> None:
    """Warn when class numbers ``values`` hold -1 beside classes from 0: scikit-learn's marker of
    rows without a class, which would be read as a class of its own."""
    if values.dtype.kind not in "biuf":
        return
    unlabelled = int((values == -1).sum())
    if 0 < unlabelled < len(values) and values.min() == -1 and (values == 0).any():  # not ±1 classes
        if source.startswith("the label column of"):  # a file's cells say it themselves
            fix = "leave those cells blank (or NA)"
        elif source == "y":  # an estimator's labels: it takes a marker of its own
            fix = "AutoencoderClassifier(unlabelled=-1) trains on them without one"
        else:  # labels in memory or a labels file: a missing label marks a row without a class
            fix = (
                "give those rows NaN instead: labels = labels.astype(float); labels[labels == -1] = numpy.nan"
            )
        warnings.warn(
            f"{source}: -1 for {unlabelled} of {len(values)} rows, read as a class of its own; if -1 "
            f"marks rows without a class (scikit-learn's marker), {fix}",
            DataWarning,
            stacklevel=user_stacklevel(),
        )


# what figures call the class numbers of built-in data: Fashion-MNIST's items (digits name themselves)
ITEM_NAMES = {
    "fashion-mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )
}


def item_names(spec: str | None) -> tuple[str, ...] | None:
    """The names of the class numbers of ``spec``'s built-in data, for legends; None for other data."""
    return ITEM_NAMES.get(spec) if isinstance(spec, str) else None


# the class index of a row without a class: a CSV's label cell left blank (or NA, ...) among rows
# that have one; such rows train the autoencoder, and every accuracy counts the others. Far below
# any class number a file holds (-1 is one: ±1 classes)
UNLABELLED = int(np.iinfo(np.int64).min)


def labelled(y: np.ndarray) -> np.ndarray:
    """The indices of the rows of class indices ``y`` that have a class."""
    return np.flatnonzero(np.asarray(y) != UNLABELLED)


def has_class(shown_labels: np.ndarray) -> np.ndarray:
    """Which of the labels ``shown`` gives have a class (not the empty text of a row without one)."""
    return np.array([not (isinstance(v, str) and v == "") for v in np.asarray(shown_labels).tolist()], bool)


def shown(y: np.ndarray | None, classes: list[str] | None) -> np.ndarray | None:
    """Class indices ``y`` as people read them: their names where ``classes`` names them, and an empty
    text for a row without a class."""
    if y is None:
        return None
    y = np.asarray(y)
    without = y == UNLABELLED
    named = y if classes is None else np.asarray(classes)[np.where(without, 0, y)]
    if not without.any():
        return named
    named = named.astype(object)
    named[without] = ""
    return named

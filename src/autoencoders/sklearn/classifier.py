"""The classifier: an autoencoder's encoder with a softmax head."""

from __future__ import annotations

import copy
import numbers
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets

from ..classify.few_labels import HEAD_OPTIMIZER, default_epochs, fit_supervised
from ..classify.heads import EncoderClassifier, fit_head, make_classifier
from ..data.classes import is_missing, warn_if_unlabelled_marker
from ..errors import UserError
from ..io import rundir
from ..runtime.device import own_rng, resolve_device
from ..runtime.threads import training_threads
from .base import AutoencoderEstimator, documented, fit_in_python_names, in_float64
from .checks import DTYPES, switch, validate


@documented
class AutoencoderClassifier(ClassifierMixin, AutoencoderEstimator):
    """An autoencoder trained on X, then its encoder with a softmax head fine-tuned on (X, y).

    ``freeze_encoder`` trains the head alone on the pretrained codes. Rows labelled ``unlabelled``
    (-1 in scikit-learn's semi-supervised estimators) train the autoencoder only, so few labels
    gain from many rows.
    """

    def __init__(
        self,
        model: str = "dense",
        layers: tuple[int, ...] | None = None,
        activation: str = "relu",
        code_activation: str = "linear",
        loss: str = "bce",
        corruption: str = "none",
        noise: float = 0.3,
        pretrain: str = "none",
        pretrain_epochs: int = 3,
        epochs: int = 50,
        batch_size: int = 64,
        lr: float = 2e-3,
        head_epochs: int | None = None,
        head_lr: float = 1e-3,
        freeze_encoder: bool = False,
        unlabelled: Any = None,
        options: dict[str, Any] | None = None,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        verbose: bool = False,
    ):
        super().__init__(
            model, layers, activation, code_activation, loss, corruption, noise, pretrain, pretrain_epochs,
            epochs, batch_size, lr, options, random_state, device, verbose,
        )  # fmt: skip
        self.head_epochs = head_epochs
        self.head_lr = head_lr
        self.freeze_encoder = freeze_encoder
        self.unlabelled = unlabelled

    @fit_in_python_names
    def fit(self, X: Any, y: Any) -> AutoencoderClassifier:
        """Train the autoencoder on ``X``, then its encoder with a softmax head on the labels ``y``
        (of the rows whose label is not ``unlabelled``)."""
        missing = 0 if y is None else sum(map(is_missing, np.asarray(y, dtype=object).reshape(-1).tolist()))
        if missing:  # scikit-learn's checks refuse them in words of their own
            raise UserError(
                f"y holds {missing} missing label(s) (NaN, None or NA); mark the rows without a class with a "
                "label of y's kind and name it: y = numpy.where(pandas.isna(y), -1, y) with unlabelled=-1"
            )
        X, y = validate(self, X, y, dtype=DTYPES)
        check_classification_targets(y)
        whole = isinstance(self.head_epochs, numbers.Integral) and not isinstance(self.head_epochs, bool)
        if not (whole or self.head_epochs is None):
            raise UserError(f"head_epochs must be a whole number of epochs or None, got {self.head_epochs!r}")
        if whole and self.head_epochs < 0:
            raise UserError(f"head_epochs must be >= 0, got {self.head_epochs}")
        if not isinstance(self.head_lr, numbers.Real) or not self.head_lr > 0:
            raise UserError(f"head_lr must be a number > 0, got {self.head_lr!r}")
        frozen = switch("freeze_encoder", self.freeze_encoder)  # before the autoencoder trains
        if self.head_epochs == 0 and not frozen:  # a frozen encoder's head is fitted to its codes first
            raise UserError(
                "head_epochs=0 trains no classifier: its head would stay random; give 1 or more, or "
                "freeze_encoder=True (the head is then fitted to the codes)"
            )
        text = y.dtype.kind in "USO"  # labels as text, or as numbers: the marker must be the same
        if self.unlabelled is not None and (np.asarray(self.unlabelled).dtype.kind in "USO") != text:
            raise UserError(
                f"unlabelled={self.unlabelled!r} and the labels ({y.dtype}) are not of one kind, so no label "
                "equals it; give it as the labels hold it (e.g. '-1' for text labels)"
            )
        if self.unlabelled is None:
            warn_if_unlabelled_marker(y, "y")
        labelled = np.ones(len(y), bool) if self.unlabelled is None else np.asarray(y != self.unlabelled)
        if not labelled.any():
            raise UserError(f"every label is unlabelled={self.unlabelled!r}; label some rows to classify")
        self.classes_, labels = np.unique(y[labelled], return_inverse=True)
        if len(self.classes_) < 2:  # nothing to tell apart, as scikit-learn's classifiers refuse it
            raise UserError(
                f"the labelled rows hold one class, {self.classes_.tolist()[0]!r}; a classifier needs rows "
                "of at least 2 classes"
            )
        X = self._fit_autoencoder(X, validated=True)  # every row, labelled or not
        epochs = self.head_epochs
        if epochs is None:  # as classify's default budget
            epochs = default_epochs(int(labelled.sum()), self.config_.train.batch_size)
        # the head's own Adam, as classify's, whatever optimizer options gave the autoencoder
        cfg = self.config_.replace(**HEAD_OPTIMIZER, epochs=epochs, lr=self.head_lr, patience=0).train
        # on the autoencoder's threads, not the caller's
        with (
            own_rng(resolve_device(cfg.device)),
            training_threads(cfg.threads, self.autoencoder_, cfg.batch_size),
        ):
            torch.manual_seed(cfg.seed)
            self.classifier_ = make_classifier(self.autoencoder_, len(self.classes_), frozen)
            x = self._rows(X[labelled], validated=True)
            y_t = torch.from_numpy(labels.astype(np.int64)).to(x.device)
            if frozen:
                fit_head(self.classifier_, x, y_t)
            fit_supervised(self.classifier_, (x, y_t), (x[:0], y_t[:0]), cfg, cfg.epochs, "classify")
        self.classifier_.eval()
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the rows of ``X``, columns in the order of ``classes_``."""
        x = self._rows(X).double()
        with torch.no_grad():
            return torch.softmax(in_float64(self.classifier_)(x), 1).cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row of ``X``."""
        proba = self.predict_proba(X)  # checks that the classifier is fitted
        return self.classes_[proba.argmax(1)]

    def _save_weights(self, path: Path) -> None:
        rundir.write_weights(path / rundir.CLASSIFIER_WEIGHTS, self.classifier_.state_dict())

    def _fitted_json(self) -> dict[str, Any]:
        # the dtype too: string labels read from a data frame are objects, which JSON would make <U
        return super()._fitted_json() | {
            "classes": self.classes_.tolist(),
            "classes_dtype": self.classes_.dtype.str,
        }

    def _restore(self, path: Path, saved: dict[str, Any]) -> None:
        dtype = np.dtype(saved["classes_dtype"]) if "classes_dtype" in saved else None  # earlier: inferred
        if dtype is not None and (dtype.kind not in "biufUO" or dtype.itemsize > 4096):  # not GBs a name
            raise ValueError(f"classes_dtype {dtype.str!r} is not one of labels")
        self.classes_ = np.asarray(saved["classes"], dtype=dtype)
        self.classifier_ = EncoderClassifier(copy.deepcopy(self.autoencoder_), len(self.classes_))
        self.classifier_.load_state_dict(
            rundir.read_weights(path, rundir.CLASSIFIER_WEIGHTS, rundir.read_manifest(path))
        )
        self.classifier_.eval()

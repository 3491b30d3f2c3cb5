"""The outlier detector: reconstruction error as the anomaly score."""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import OutlierMixin

from ..errors import UserError
from .base import AutoencoderEstimator, documented, fit_in_python_names


@documented
class AutoencoderOutlierDetector(OutlierMixin, AutoencoderEstimator):
    """Reconstruction error as the anomaly score (scikit-learn and PyOD conventions).

    ``score_samples`` is the negative squared reconstruction error, plus each value's squared
    distance beyond the training range (higher is more normal);
    ``offset_`` is its ``contamination`` quantile on the training rows, so ``predict`` labels
    that fraction of them −1 (outlier) and the rest 1.
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
        contamination: float = 0.1,
        options: dict[str, Any] | None = None,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        verbose: bool = False,
    ):
        super().__init__(
            model, layers, activation, code_activation, loss, corruption, noise, pretrain, pretrain_epochs,
            epochs, batch_size, lr, options, random_state, device, verbose,
        )  # fmt: skip
        self.contamination = contamination

    @fit_in_python_names
    def fit(self, X: Any, y: Any = None) -> AutoencoderOutlierDetector:
        """Train the autoencoder on ``X`` (``y`` is ignored) and set ``offset_``, the
        ``contamination`` quantile of the training rows' scores."""
        if not isinstance(self.contamination, numbers.Real) or not 0 < self.contamination <= 0.5:
            raise UserError(f"contamination must be a fraction in (0, 0.5], got {self.contamination!r}")
        X = self._fit_autoencoder(X)
        self.offset_ = float(np.percentile(-self._errors(X, validated=True), 100 * self.contamination))
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        """Minus each row's summed squared reconstruction error and distance beyond the training
        range: higher is more normal."""
        return -self._errors(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples`` minus ``offset_``: negative for the rows ``predict`` calls outliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """1 for an inlier, -1 for an outlier (``decision_function`` below 0)."""
        return np.where(self.decision_function(X) >= 0, 1, -1)

    def _fitted_json(self) -> dict[str, Any]:
        return super()._fitted_json() | {"offset": self.offset_}

    def _restore(self, path: Path, saved: dict[str, Any]) -> None:
        self.offset_ = saved["offset"]

"""The transformer: codes as features."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from ..errors import UserError
from ..eval.metrics import encode_all
from .base import AutoencoderEstimator, documented, fit_in_python_names, in_float64
from .checks import DTYPES, host, validate


@documented
class AutoencoderTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, AutoencoderEstimator):
    """Codes as features: ``fit(X)`` trains an autoencoder, ``transform`` encodes, ``inverse_transform``
    decodes.

    ``score(X)`` is minus the mean over rows of each row's summed squared reconstruction error
    (higher is better).
    """

    @fit_in_python_names
    def fit(self, X: Any, y: Any = None) -> AutoencoderTransformer:
        """Train the autoencoder on the rows of ``X`` (``y`` is ignored)."""
        self._fit_autoencoder(X)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]  # codes in the rows' precision
        return tags

    @property
    def _n_features_out(self) -> int:
        return self.autoencoder_.code_size

    def transform(self, X: Any) -> np.ndarray:
        """The codes of the rows of ``X`` (a VAE's posterior means), computed in float64 so that a
        row's code does not depend on the rows beside it; float32 for float32 rows, else float64."""
        check_is_fitted(self)
        X = validate(self, X, dtype=DTYPES, reset=False)
        codes = encode_all(in_float64(self.autoencoder_), self._rows(X, validated=True).double())
        return codes.cpu().numpy().astype(X.dtype)  # validated as float64 or float32

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Rows decoded from the codes ``X``, in the units of the rows ``fit`` was given; float32 for
        float32 codes, else float64, as ``transform``."""
        check_is_fitted(self)
        z = check_array(host(X), dtype=DTYPES)
        if z.shape[1] != self.autoencoder_.code_size:
            raise UserError(f"X has {z.shape[1]} features, but the codes have {self.autoencoder_.code_size}")
        device = next(self.autoencoder_.parameters()).device
        with torch.no_grad():  # in float64, as every prediction: a row's result whatever rows are beside it
            codes = torch.from_numpy(z.astype(np.float64)).to(device)
            rows = in_float64(self.autoencoder_).decode(codes).cpu().numpy()
        offset, span = self.scaler_
        return (rows * span + offset).astype(z.dtype)  # validated as float64 or float32

    def score(self, X: Any, y: Any = None) -> float:
        """Minus the mean over rows of each row's summed squared reconstruction error (and distance
        beyond the training range)."""
        return -float(self._errors(X).mean())

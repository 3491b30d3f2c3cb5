"""The clusterer: clusters of an autoencoder's codes."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import ClusterMixin
from sklearn.utils.validation import check_is_fitted

from ..clustering.methods import Clustering, find_clusters
from ..clustering.model import Clusterer
from ..errors import UserError
from ..fields import split_options, whole_at_least
from ..io import rundir
from ..options import ClusterOptions
from ..runtime.device import own_rng, resolve_device
from .base import AutoencoderEstimator, documented, fit_in_python_names, in_float64
from .checks import DTYPES, option_dict, validate


@documented
class AutoencoderClusterer(ClusterMixin, AutoencoderEstimator):
    """An autoencoder trained on X, then ``n_clusters`` clusters of its codes by ``method``:
    ``kmeans``, ``gmm``, ``dec``, ``idec`` or ``manifold`` (UMAP, then a Gaussian mixture).

    ``cluster_options`` takes the other clustering options of the method by name (``{"n_init": 5}``;
    with ``method="idec"`` also ``{"gamma": 0.5, "tol": 0.01}``; see
    :class:`autoencoders.options.ClusterOptions`). ``labels_`` are the training rows' clusters;
    ``predict`` assigns new rows (``manifold``: through UMAP's embedding of new points, which places
    even the training rows a little differently, so a few may differ from ``labels_``). A Gaussian
    mixture's fit also sets ``bic_``, its Bayesian information criterion on the training codes
    (lower is better): compare it across ``n_clusters`` to choose the number of clusters.
    """

    def __init__(
        self,
        n_clusters: int = 8,
        method: str = "kmeans",
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
        cluster_options: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        verbose: bool = False,
    ):
        super().__init__(
            model, layers, activation, code_activation, loss, corruption, noise, pretrain, pretrain_epochs,
            epochs, batch_size, lr, options, random_state, device, verbose,
        )  # fmt: skip
        self.n_clusters = n_clusters
        self.method = method
        self.cluster_options = cluster_options

    @fit_in_python_names
    def fit(self, X: Any, y: Any = None) -> AutoencoderClusterer:
        """Train the autoencoder on ``X`` (``y`` is ignored), then cluster its codes; ``labels_``
        are the rows' clusters."""
        X = validate(self, X, dtype=DTYPES, ensure_min_samples=2)
        n_clusters = whole_at_least("n_clusters", self.n_clusters, 1)
        if n_clusters > len(X):
            raise UserError(f"n_clusters={n_clusters} must be at least 1 and at most n_samples={len(X)}")
        given = option_dict("cluster_options", self.cluster_options, "cluster's options, e.g. {'gamma': 0.5}")
        own = sorted({"k", "method", "seed", "n_clusters", "random_state"} & set(given))
        if own:
            raise UserError(
                f"cluster_options may not hold {', '.join(own)}: set the estimator's own parameters "
                "n_clusters, method and random_state instead"
            )
        split_options(given, ClusterOptions, ())  # a mistyped name is named, with the nearest one
        how = Clustering(method=self.method, k=max(n_clusters, 2), seed=0, **given)
        how.check(len(X))  # before the autoencoder trains
        how.k = n_clusters  # scikit-learn admits one cluster (every row in it); the command does not
        X = self._fit_autoencoder(X, validated=True)
        how.seed = self.config_.train.seed
        with own_rng(resolve_device(self.config_.train.device)):
            result = find_clusters(self.autoencoder_, self._rows(X, validated=True), how, self.config_.train)
        self.clusterer_, self.labels_ = result.clusterer, result.labels.astype(np.int64)
        self.__dict__.pop("bic_", None)  # of an earlier fit by a mixture
        if "gmm_bic" in result.details:  # gmm, and manifold with dims: compare it across n_clusters
            self.bic_ = float(result.details["gmm_bic"])
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Each row of ``X``'s probability of each cluster under the fitted clusterer (k-means, DEC
        and IDEC: the Student's t soft assignment to the centres; gmm and manifold: the mixture's)."""
        x = self._rows(X).double()  # checks that the clusterer is fitted
        return in_float64(self.clusterer_).assign(x).cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The cluster of each row of ``X``: the most probable under the fitted clusterer."""
        return self.predict_proba(X).argmax(1).astype(np.int64)

    def save(self, path: str | Path, overwrite: bool = False) -> None:
        check_is_fitted(self)
        if self.clusterer_.embed is not None:  # refused before anything is written
            raise UserError(
                "a manifold clusterer holds a UMAP embedding, which is not saved; save one of method "
                "kmeans, gmm, dec or idec"
            )
        super().save(path, overwrite)

    def _save_weights(self, path: Path) -> None:
        rundir.write_weights(path / rundir.CLUSTERER_WEIGHTS, self.clusterer_.state_dict())

    def _fitted_json(self) -> dict[str, Any]:
        bic = {"bic": self.bic_} if hasattr(self, "bic_") else {}
        return (
            super()._fitted_json() | {"labels": self.labels_.tolist(), "alpha": self.clusterer_.alpha} | bic
        )

    def _restore(self, path: Path, saved: dict[str, Any]) -> None:
        self.labels_ = np.asarray(saved["labels"], dtype=np.int64)
        if "bic" in saved:
            self.bic_ = saved["bic"]
        tensors = rundir.read_weights(path, rundir.CLUSTERER_WEIGHTS, rundir.read_manifest(path))
        self.clusterer_ = Clusterer.from_state(
            copy.deepcopy(self.autoencoder_), tensors, saved["alpha"]
        ).eval()

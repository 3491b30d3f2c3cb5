"""Clusters of rows from an autoencoder's codes: k-means, a Gaussian mixture, DEC, IDEC, and UMAP
followed by a Gaussian mixture (N2D). Each gives the rows' clusters and, but for UMAP (whose
embedding of new rows is a model of its own), a ``Clusterer`` that assigns new rows."""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.batches import batches_per_epoch
from ..data.stream import RowStream
from ..errors import SettingWarning, UserError, user_stacklevel
from ..eval.clustering import gaussian_mixture, mixture_numbers
from ..eval.metrics import encode_all
from ..eval.probes import kmeans
from ..fields import check_fields, flags, moved
from ..io.rundir import saved_dir
from ..models import Autoencoder
from ..models.layers import set_trainable
from ..options import ClusterOptions, TrainConfig
from ..runtime.distributed import rank_and_size
from ..training.loop import fit
from .model import Clusterer, DECLosses, DECStep, Embedding

# the options of the methods that train the encoder, and of no other
DEC_OPTIONS = ("epochs", "update_interval", "tol", "lr", "batch_size")


@dataclass
class Clustering(ClusterOptions):
    """``ClusterOptions`` checked against the rows they cluster."""

    def check(self, n_rows: int) -> None:
        """Each option against its choices and range, then ``k`` against the rows."""
        check_fields(self)
        if self.k is not None and self.k > n_rows:
            raise UserError(f"--k {self.k} asks for more clusters than the {n_rows} rows; give a smaller --k")
        if moved(self, ["gamma"]) and self.method != "idec":
            raise UserError("--gamma weighs IDEC's reconstruction loss: give --method idec too")
        if moved(self, ["dims", "neighbors"]) and self.method != "manifold":
            raise UserError("--dims and --neighbors shape the UMAP embedding: give --method manifold too")
        trained = moved(self, DEC_OPTIONS)
        if trained and self.method not in ("dec", "idec"):
            raise UserError(
                f"{flags(trained)}: options of DEC and IDEC, which train the encoder; --method "
                f"{self.method} trains nothing: give --method dec or idec, or leave them out"
            )

    def used(self) -> dict[str, Any]:
        """The options its method uses, by name: those a record of the clustering shows."""
        names = ["method", "k", "seed", "n_init"]
        names += list(DEC_OPTIONS) if self.method in ("dec", "idec") else []
        names += ["gamma"] if self.method == "idec" else []
        names += ["dims", "neighbors"] if self.method == "manifold" else []
        return {name: getattr(self, name) for name in names}

    def name(self) -> str:
        """The default output directory's name."""
        return f"cluster-{self.method}-{self.k}"


def how_training_ended(summary: dict[str, Any]) -> str | None:
    """How DEC's or IDEC's fine-tuning ended, from a clustering's ``summary``; None for the others."""
    if "updates" not in summary:
        return None
    if summary.get("converged"):
        ended = "settled"
    elif summary.get("last_changed_fraction") is None:  # fewer updates than one --update-interval
        ended = "stopped by --epochs before the assignments were first checked for settling"
    else:
        ended = "stopped by --epochs before settling"
    return f"{summary['updates']} updates, {ended}"


@dataclass
class ClusterResult:
    """The clusters of some rows and what found them."""

    labels: np.ndarray  # the cluster of every row, 0 .. k-1
    confidence: np.ndarray  # each row's probability of its cluster
    clusterer: Clusterer  # assigns new rows (its ``embed`` is in memory only for manifold)
    space: np.ndarray  # the features the clusters were found in: codes, fine-tuned codes, UMAP's
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)  # what the method did (DEC: its updates)
    history: list[dict] = field(default_factory=list)
    start: np.ndarray | None = None  # DEC and IDEC: the clusters of the k-means they started from
    summary: dict[str, Any] = field(default_factory=dict)  # what ``cluster`` saved: numbers and settings
    out: Path | None = None  # where ``cluster`` saved it

    def __repr__(self) -> str:
        """Where, how and how well, in one line (the clusters, codes and clusterer are its fields)."""
        s = self.summary
        shown = {k: s[k] for k in ("accuracy", "nmi") if s.get(k) is not None}
        numbers = "".join(f", {k}={v:.4g}" for k, v in shown.items())
        where = "" if self.out is None else f"out={str(self.out)!r}, "
        found = f"clusters={len(np.unique(self.labels))}, rows={len(self.labels)}"
        return f"ClusterResult({where}method={s.get('method')}, {found}{numbers})"

    def __fspath__(self) -> str:
        """Its directory: the result goes wherever a ``cluster`` directory does (``predict``)."""
        return saved_dir(self.out, "clustering")


def find_clusters(
    autoencoder: Autoencoder, x: torch.Tensor | RowStream, how: Clustering, cfg: TrainConfig
) -> ClusterResult:
    """Cluster the rows ``x`` (scaled, on the model's device, or a stream delivering them there)
    into ``how.k`` groups by their codes under ``autoencoder`` (left as it is: DEC and IDEC
    fine-tune a copy)."""
    assert how.k is not None and how.seed is not None
    t0 = time.perf_counter()
    device = next(autoencoder.parameters()).device
    z = encode_all(autoencoder, x)  # a stream's part by part: its rows never in memory whole
    _check_codes(z, how.k)
    details: dict[str, Any] = {}
    history: list[dict] = []
    start = None
    if how.method in ("kmeans", "dec", "idec"):
        assigned, inertia, centres = kmeans(z, how.k, n_init=how.n_init, seed=how.seed)
        start = assigned.cpu().numpy() if how.method != "kmeans" else None
        details["kmeans_inertia"] = inertia
        clusterer = Clusterer(copy.deepcopy(autoencoder), centres)
        if how.method != "kmeans":
            history, tuned = _fine_tune(clusterer, x, how, cfg)
            details |= tuned
            z = encode_all(clusterer.autoencoder, x)  # the fine-tuned codes
        space = z.cpu().numpy()
    elif how.method == "gmm":
        space = z.cpu().numpy()
        clusterer, details["gmm_bic"] = _mixture(autoencoder, space, how)
    else:
        clusterer, bic, space = _manifold(autoencoder, z.cpu().numpy(), how)
        if how.dims is not None:  # by default UMAP embeds in k dimensions: each k a space of its own
            details["gmm_bic"] = bic
    clusterer.eval()
    # from the space itself: UMAP's embedding of rows anew is not the one the mixture was fitted to
    with torch.no_grad():
        log_p = clusterer.log_assign(torch.as_tensor(space, device=device))
    best = log_p.max(1)
    labels, confidence = best.indices.cpu().numpy(), best.values.exp().cpu().numpy()
    return ClusterResult(
        labels, confidence, clusterer, space, time.perf_counter() - t0, details, history, start
    )


def _check_codes(z: torch.Tensor, k: int) -> None:
    """A UserError unless ``k`` clusters can be found among the codes ``z``."""
    if not torch.isfinite(z).all():
        raise UserError(
            "the run's codes hold NaN or infinite values, so they cannot be clustered; train it again"
        )
    distinct = len(torch.unique(z[: 100 * k], dim=0))  # enough rows to tell a collapsed code
    if distinct < k:
        raise UserError(
            f"the run's codes take only {distinct} distinct values, fewer than the {k} clusters asked for; "
            "give a smaller --k or cluster a run whose codes tell the rows apart"
        )


def _fine_tune(
    clusterer: Clusterer, x: torch.Tensor | RowStream, how: Clustering, cfg: TrainConfig
) -> tuple[list[dict], dict[str, Any]]:
    """DEC (``gamma`` 0) or IDEC: the encoder and centres trained through the one loop on (rows,
    row indices) batches until the assignments settle or ``how.epochs`` passes end. A stream's
    batches come from shuffled chunks of the file, as training's do, and each refresh of the
    target reads it part by part."""
    if rank_and_size()[1] > 1:
        raise UserError("clustering runs in one process; start it without torchrun")
    set_trainable(clusterer, True)
    cfg = dataclasses.replace(
        cfg,
        epochs=how.epochs,
        lr=how.lr,
        batch_size=how.batch_size,
        seed=how.seed,
        optimizer="adam",
        weight_decay=0.0,  # DEC's objective has no penalty on the weights or the centres
        lr_decay="none",
        patience=0,
        keep="last",
    )
    torch.manual_seed(how.seed)
    losses = DECLosses(clusterer, len(x), how.gamma if how.method == "idec" else 0.0)
    per_epoch = batches_per_epoch(len(x), cfg.batch_size)
    # few rows make short epochs: the target is refreshed at least once per epoch
    refresh = min(how.update_interval, per_epoch)
    if moved(how, ["update_interval"]) and how.update_interval > how.epochs * per_epoch:
        warnings.warn(
            f"--update-interval {how.update_interval} is longer than the {how.epochs * per_epoch} updates "
            f"of --epochs {how.epochs} over {len(x)} rows: the assignments are never checked for settling, "
            "and --epochs ends the training; give a smaller --update-interval",
            SettingWarning,
            stacklevel=user_stacklevel(),
        )
    step = DECStep(losses, x, cfg, how.epochs * per_epoch, refresh, how.update_interval, how.tol)
    rows = torch.arange(len(x), device=x.device)
    no_rows = x.subset(np.arange(0)) if isinstance(x, RowStream) else x[:0]  # no validation split
    history = fit(step, (x, rows), (no_rows, rows[:0]), cfg, cfg.epochs, stage=how.method)
    return history, step.state()


def _mixture(
    autoencoder: Autoencoder, space: np.ndarray, how: Clustering, embed: Embedding | None = None
) -> tuple[Clusterer, float]:
    """A Clusterer whose clusters are a Gaussian mixture fitted to ``space`` (the codes, or their
    ``embed``-ding), and the mixture's BIC there."""
    n, d = space.shape
    numbers = mixture_numbers(how.k, d)
    if numbers > n:
        warnings.warn(
            f"a Gaussian mixture of {how.k} clusters with full covariances in {d} dimensions fits "
            f"{numbers:,} numbers to {n:,} rows, which cannot pin them down: its clusters may follow "
            "noise; give more rows, a smaller --k"
            + (" or --dims" if embed is not None else "")
            + ", or --method kmeans",
            SettingWarning,
            stacklevel=user_stacklevel(),
        )
    device = next(autoencoder.parameters()).device
    means, precision_cholesky, weights, bic = gaussian_mixture(
        torch.as_tensor(space, device=device), how.k, how.seed, how.n_init
    )
    clusterer = Clusterer(
        copy.deepcopy(autoencoder), means, precision_cholesky=precision_cholesky, weights=weights, embed=embed
    )
    return clusterer, bic


def _manifold(
    autoencoder: Autoencoder, z: np.ndarray, how: Clustering
) -> tuple[Clusterer, float, np.ndarray]:
    """(Clusterer, the mixture's BIC, the embedding) of N2D (McConville et al. 2020): the codes
    embedded by UMAP in ``how.dims`` (default k) dimensions, each row joined to its
    ``how.neighbors`` nearest, then a Gaussian mixture there."""
    try:
        import umap  # imported when used: it loads numba, a second or more
    except ImportError:
        raise UserError("--method manifold needs umap-learn: pip install 'autoencoders[manifold]'") from None
    reducer = umap.UMAP(
        n_components=how.dims or how.k,
        n_neighbors=min(how.neighbors, len(z) - 1),
        min_dist=0.0,
        random_state=how.seed,
        n_jobs=1,  # a seeded UMAP runs in one thread anyway; saying so silences its warning
    )
    space = reducer.fit_transform(z).astype(np.float64)
    return *_mixture(autoencoder, space, how, reducer.transform), space

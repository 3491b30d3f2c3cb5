"""Honest numbers: reconstruction error, the PCA baseline, and what codes are good for (linear probe,
kNN, k-means) beside the same on PCA codes and raw pixels."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import normalized_mutual_info_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from .data import Dataset
from .errors import UserError
from .nn import eval_mode


@torch.no_grad()
def _batched(model: nn.Module, fn, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """``fn`` over ``x`` in eval mode, restoring the model's mode afterwards."""
    with eval_mode(model):
        return torch.cat([fn(x[i : i + batch_size]).float() for i in range(0, len(x), batch_size)])


def encode_all(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Codes of all rows of ``x`` (eval mode, fp32)."""
    return _batched(model, model.encode, x)


def reconstruct_all(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Reconstructions of all rows of ``x`` (eval mode, fp32)."""
    return _batched(model, model.reconstruct, x)


def reconstruction_errors(
    x: np.ndarray, reconstruct: np.ndarray | Callable[[np.ndarray], np.ndarray], chunk: int = 8192
) -> dict[str, float]:
    """Per-pixel MSE, per-image SSE (sum over pixels, mean over images) and PSNR (peak 1).

    ``reconstruct`` is the reconstructions, or a function applied chunk by chunk (so large
    test sets never hold a float64 copy of themselves).
    """
    sse = 0.0
    for i in range(0, len(x), chunk):
        rows = x[i : i + chunk]
        recon = reconstruct[i : i + chunk] if isinstance(reconstruct, np.ndarray) else reconstruct(rows)
        sse += float(((recon.astype(np.float64) - rows.astype(np.float64)) ** 2).sum())
    mse = sse / x.size
    return {
        "mse": mse,
        "sse_per_image": sse / len(x),
        "psnr": 10 * math.log10(1.0 / mse) if mse > 0 else math.inf,
    }


def pca_fit(x_train: np.ndarray, k: int) -> PCA:
    """PCA with ``k`` components fitted on the training split (deterministic solver)."""
    return PCA(n_components=min(k, *x_train.shape), svd_solver="full").fit(x_train)


def linear_probe(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray) -> float:
    """Test accuracy of a logistic regression trained on standardised training codes."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(z_train, y_train)
    return float(clf.score(z_test, y_test))


def likelihood_metrics(model: nn.Module, x: torch.Tensor, iw_samples: int, quiet: bool = True) -> dict:
    """−ELBO (one sample per image), its reconstruction and KL parts, and the IW estimate of the NLL."""
    from .likelihood import elbo_parts, importance_sampled_nll

    with eval_mode(model):
        recon, kl = elbo_parts(model, x)
    out = {
        "test_neg_elbo": float((recon + kl).mean()),
        "test_recon_nll": float(recon.mean()),
        "test_kl": float(kl.mean()),
    }
    if iw_samples > 0:
        nll = importance_sampled_nll(model, x, iw_samples, quiet=quiet)
        out |= {"test_nll": float(nll.mean()), "iw_samples": iw_samples}
    return out


def clustering_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Accuracy of the best one-to-one matching of clusters to classes (Hungarian algorithm)."""
    _, y = np.unique(y_true, return_inverse=True)
    _, c = np.unique(y_pred, return_inverse=True)
    counts = np.zeros((c.max() + 1, y.max() + 1), dtype=np.int64)
    np.add.at(counts, (c, y), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(y))


def knn_accuracy(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray) -> float:
    """Test accuracy of a 5-nearest-neighbour classifier (Euclidean) on the features as they are."""
    knn = KNeighborsClassifier(n_neighbors=min(5, len(z_train)), algorithm="brute")
    return float(knn.fit(z_train, y_train).score(z_test, y_test))


def code_scores(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray) -> dict:
    """What features are good for: linear probe, kNN and k-means (accuracy, NMI), by metric name."""
    acc, nmi = kmeans_scores(z_test, y_test)
    return {
        "linear_probe_accuracy": linear_probe(z_train, y_train, z_test, y_test),
        "knn_accuracy": knn_accuracy(z_train, y_train, z_test, y_test),
        "kmeans_accuracy": acc,
        "kmeans_nmi": nmi,
    }


# part of every cache key: bump it when what a baseline computes changes
BASELINE_VERSION = b"baselines-2"


def _cached(arrays: tuple[np.ndarray | None, ...], compute: Callable[[], dict], prefix: str = "") -> dict:
    """``compute()``, or what it returned before for the same ``arrays`` and file-name ``prefix``:
    cached on disk for baselines that depend on the data alone, not on the model."""
    from .checkpoint import write_json
    from .sources import cache_dir

    h = hashlib.sha256(BASELINE_VERSION)
    for a in arrays:  # shapes and gaps too: the same bytes split or shaped otherwise are other data
        if a is None:
            h.update(b"none")
        else:
            a = np.ascontiguousarray(a)
            h.update(f"{a.shape}{a.dtype.str}".encode())
            h.update(a)
    path = cache_dir() / "baselines" / f"{prefix}{h.hexdigest()}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    out = compute()
    try:
        write_json(path, out)
    except UserError:  # an unwritable cache only costs the time to compute them again
        pass
    return out


def pixel_scores(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> dict:
    """``code_scores`` on the raw inputs, keys prefixed ``pixels_``; cached per dataset on disk,
    since they do not depend on the model and the probe on raw pixels is the slow one."""
    return _cached(
        (x_train, y_train, x_test, y_test),
        lambda: {f"pixels_{k}": v for k, v in code_scores(x_train, y_train, x_test, y_test).items()},
    )


def pca_scores(
    x_train: np.ndarray, y_train: np.ndarray | None, x_test: np.ndarray, y_test: np.ndarray | None, k: int
) -> dict:
    """PCA with ``k`` components fitted on the training rows: its test reconstruction error and,
    given labels (at least two classes), ``code_scores`` of its codes; keys prefixed ``pca_``.
    Cached per dataset and ``k`` on disk, like ``pixel_scores``: the same for every model of that
    code size."""

    def compute() -> dict:
        pca = pca_fit(x_train, k)
        err = reconstruction_errors(x_test, lambda rows: pca.inverse_transform(pca.transform(rows)))
        out = {"pca_sse_per_image": err["sse_per_image"], "pca_psnr": err["psnr"]}
        if y_train is not None and y_test is not None:
            codes = code_scores(pca.transform(x_train), y_train, pca.transform(x_test), y_test)
            out |= {f"pca_{name}": v for name, v in codes.items()}
        return out

    return _cached((x_train, y_train, x_test, y_test), compute, prefix=f"pca{k}-")


def kmeans_scores(z: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """(accuracy, NMI) of k-means on ``z`` with k = the number of classes in ``y``."""
    k = len(np.unique(y))
    pred = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(z.astype(np.float64))
    return clustering_accuracy(y, pred), float(normalized_mutual_info_score(y, pred))


def evaluate(
    model: nn.Module, ds: Dataset, pca_baseline: bool = True, iw_samples: int = 0, quiet: bool = True
) -> dict[str, float]:
    """Test-set metrics of ``model``, next to PCA with the same code size unless told not to.

    A model with a Gaussian posterior (VAE) also gets its ELBO parts and, with
    ``iw_samples`` > 0, the importance-sampled test NLL (nats per image).
    """
    device = next(model.parameters()).device
    # baselines and probes fit on all training rows, or on a sample of a stream from disk
    x_train, y_train = ds.train_sample()
    x_test = ds.x_test.to(device)
    xt = ds.x_test.numpy()
    ae = reconstruction_errors(
        xt, lambda rows: reconstruct_all(model, torch.from_numpy(rows).to(device)).cpu().numpy()
    )
    k = model.code_size
    out = {"test_mse": ae["mse"], "test_sse_per_image": ae["sse_per_image"], "test_psnr": ae["psnr"]}
    labelled = y_train is not None and ds.y_test is not None and len(np.unique(y_train)) > 1
    y_train, y_test = (y_train.numpy(), ds.y_test.numpy()) if labelled else (None, None)
    pca = pca_scores(x_train.numpy(), y_train, xt, y_test, k) if pca_baseline else {}
    out |= {name: pca[name] for name in ("pca_sse_per_image", "pca_psnr") if name in pca}
    out["code_size"] = k
    if hasattr(model, "posterior"):
        out |= likelihood_metrics(model, x_test, iw_samples, quiet)
    if labelled:
        z_train = encode_all(model, x_train.to(device)).cpu().numpy()
        z_test = encode_all(model, x_test).cpu().numpy()
        out |= code_scores(z_train, y_train, z_test, y_test)
    out |= pca  # the PCA codes' scores after the model's own
    if labelled and pca_baseline:
        out |= pixel_scores(x_train.numpy(), y_train, xt, y_test)
    return out

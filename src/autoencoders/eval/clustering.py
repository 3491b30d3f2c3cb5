"""Clusters in a feature space: soft assignments around centres (DEC's Student's t kernel), DEC's
target distribution, a Gaussian mixture, and the k-means baselines a clustering reads beside."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable

import numpy as np
import torch

from ..data.stream import RowStream, map_rows, rows_at
from ..errors import SettingWarning, UserError, say, user_stacklevel
from ..io.checkpoint import arrays_sha256
from . import probes
from .agreement import cluster_scores
from .metrics import PROBE_ROWS, cached, sample_rows


def soft_assignment(z: torch.Tensor, centres: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Each row's probability of each cluster under a Student's t kernel with ``alpha`` degrees of
    freedom around the ``centres`` (Xie et al. 2016, eq. 1): q_ij ∝ (1 + ‖z_i − μ_j‖² / α)^(−(α+1)/2)."""
    d = torch.cdist(z, centres.to(z.dtype)).pow(2)
    return torch.softmax(-(alpha + 1) / 2 * torch.log1p(d / alpha), dim=1)


def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """DEC's target (eq. 3): q squared over each cluster's total weight, normalised per row. It puts
    more weight on confident assignments and keeps large clusters from taking over."""
    weight = q.pow(2) / q.sum(0)
    return weight / weight.sum(1, keepdim=True)


def gaussian_mixture(
    z: torch.Tensor, k: int, seed: int, n_init: int = 1, max_iter: int = 100, tol: float = 1e-3
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Means, Cholesky factors of the precisions and weights of a mixture of ``k`` full-covariance
    Gaussians fitted to ``z`` by EM, as ``gaussian_log_responsibilities`` takes them, and its
    Bayesian information criterion on ``z`` (lower is better: among mixtures of several k, the one
    to choose). As scikit-learn's ``GaussianMixture`` defines it: each of ``n_init`` starts from the
    clusters of one k-means run (seeded in turn from ``seed``), ``REG_COVAR`` added to every
    variance (scikit-learn's ``reg_covar``, there 1e-6 by default), EM until the mean log-likelihood
    per row rises by less than ``tol`` (or ``max_iter`` steps); the start that ends highest is kept.
    In float64 on ``z``'s device: scikit-learn's import alone took a second of a command's four, and
    on a GPU EM runs there."""
    z = z.double()
    n, d = z.shape
    seeds = torch.randint(2**31 - 1, (n_init,), generator=torch.Generator().manual_seed(seed)).tolist()
    fits = [em(z, probes.kmeans(z, k, n_init=1, seed=start)[0], k, max_iter, tol) for start in seeds]
    # the likeliest start, the first of equal ones
    _, (means, precision_cholesky, weights), settled = max(fits, key=lambda fit: fit[0])
    if not settled:
        warnings.warn(
            f"the Gaussian mixture's EM did not settle in {max_iter} steps (its log-likelihood per row "
            f"still rose by {tol:g} or more at the last): its clusters are those of the last step; "
            "another --seed may settle, or use --method kmeans",
            SettingWarning,
            stacklevel=user_stacklevel(),
        )
    log_likelihood = _expectation(z, means, precision_cholesky, weights)[0] * n
    return means, precision_cholesky, weights, -2 * log_likelihood + mixture_numbers(k, d) * math.log(n)


def mixture_numbers(k: int, d: int) -> int:
    """The numbers a mixture of ``k`` full-covariance Gaussians in ``d`` dimensions fits: means,
    covariances and weights."""
    return k * (d + d * (d + 1) // 2) + k - 1


# added to every variance: a cluster of few rows, or flat in a direction, stays invertible
REG_COVAR = 1e-5


def em(
    z: torch.Tensor, labels: torch.Tensor, k: int, max_iter: int = 100, tol: float = 1e-3
) -> tuple[float, tuple[torch.Tensor, torch.Tensor, torch.Tensor], bool]:
    """EM for a mixture of ``k`` full-covariance Gaussians on ``z`` (float64), started from the
    clusters ``labels``: the mean log-likelihood per row of its last expectation step, the means,
    Cholesky factors of the precisions and weights of the maximisation step that follows it (as
    scikit-learn's ``GaussianMixture`` ends), and whether it settled within ``max_iter`` steps."""
    log_resp = torch.full((len(z), k), -math.inf, dtype=z.dtype, device=z.device)
    log_resp[torch.arange(len(z), device=z.device), labels] = 0.0
    lower_bound, settled = -math.inf, False
    for _ in range(max_iter):
        params = _mixture_parameters(z, log_resp.exp())
        previous, (lower_bound, log_resp) = lower_bound, _expectation(z, *params)
        settled = abs(lower_bound - previous) < tol  # a wait for the device per step, as for a collapse
        if settled:
            break
    return lower_bound, _mixture_parameters(z, log_resp.exp()), settled


def _mixture_parameters(
    z: torch.Tensor, resp: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """EM's maximisation step: the means, Cholesky factors of the precisions and weights that the
    responsibilities ``resp`` (rows × components) give ``z``."""
    counts = resp.sum(0) + 10 * torch.finfo(resp.dtype).eps  # an empty component: no division by 0
    means = resp.T @ z / counts[:, None]
    # about each mean (not E[zzᵀ] − μμᵀ, which cancels digits), one component at a time
    covariances = torch.stack([(resp[:, j, None] * (z - m)).T @ (z - m) for j, m in enumerate(means)])
    eye = torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
    covariances = covariances / counts[:, None, None] + REG_COVAR * eye
    lower, info = torch.linalg.cholesky_ex(covariances)
    if int(info.max()):
        raise UserError(
            "a Gaussian mixture's covariance collapsed (a cluster of too few distinct rows, or codes "
            "whose directions differ in scale by many orders of magnitude): give a smaller --k, or use "
            "--method kmeans"
        )
    precision_cholesky = torch.linalg.solve_triangular(lower, eye.expand_as(lower), upper=False).mT
    return means, precision_cholesky, counts / len(z)


def _expectation(
    z: torch.Tensor, means: torch.Tensor, precision_cholesky: torch.Tensor, weights: torch.Tensor
) -> tuple[float, torch.Tensor]:
    """EM's expectation step: the mean log-likelihood per row, and the log responsibilities."""
    weighted = gaussian_log_densities(z, means, precision_cholesky) + torch.log(weights)
    norm = torch.logsumexp(weighted, dim=1, keepdim=True)
    return float(norm.mean()), weighted - norm


def gaussian_log_responsibilities(
    z: torch.Tensor, means: torch.Tensor, precision_cholesky: torch.Tensor, log_weights: torch.Tensor
) -> torch.Tensor:
    """log p(cluster | z) under a Gaussian mixture (float64): the log densities of every component
    plus its log weight, normalised per row. ``precision_cholesky[j]`` is U with U Uᵀ = Σ_j⁻¹."""
    return torch.log_softmax(gaussian_log_densities(z, means, precision_cholesky) + log_weights, dim=1)


def gaussian_log_densities(
    z: torch.Tensor, means: torch.Tensor, precision_cholesky: torch.Tensor
) -> torch.Tensor:
    """log N(z | μ_j, Σ_j) of every row and component (float64), Σ_j⁻¹ = U_j U_jᵀ; in blocks of rows
    whose whitened differences (rows × components × features) hold at most 2^24 numbers (128 MiB)."""
    z = z.double()
    k, d = means.shape
    shift = torch.einsum("kd,kde->ke", means, precision_cholesky)
    log_det = torch.log(torch.diagonal(precision_cholesky, dim1=1, dim2=2)).sum(1)
    rows = max(1, 2**24 // (k * d))
    squares = torch.cat(
        [
            (torch.einsum("nd,kde->nke", block, precision_cholesky) - shift).pow(2).sum(2)
            for block in z.split(rows)
        ]
    )
    return -0.5 * (d * math.log(2 * math.pi) + squares) + log_det


def kmeans_baselines(
    x: torch.Tensor | RowStream,
    y: np.ndarray,
    k: int,
    code_size: int,
    seed: int,
    n_init: int,
    device: torch.device | str,
    quiet: bool = True,
) -> dict[str, float]:
    """``cluster_scores`` of k-means (``k`` clusters, ``n_init`` restarts) on the rows ``x``
    themselves and on their PCA codes of ``code_size`` components (PCA fitted on the same rows),
    keys prefixed ``pixels_kmeans_`` and ``pca_kmeans_``; cached on disk per rows and settings.
    Over more than ``PROBE_ROWS`` rows, k-means on the rows themselves (as wide as the data, the
    slow one) fits its centres on a fixed-seed sample of that many and every row goes to its nearest
    centre: on 70,000 Fashion-MNIST images 24 s instead of 76 s on 2 CPU cores, accuracy 0.543
    against 0.540. Rows streamed from a file (``RowStream``) are read in parts, and PCA too is
    fitted on that sample. Unless ``quiet``, a line on stderr says when they are computed."""
    streamed = isinstance(x, RowStream)

    def compute() -> dict[str, float]:
        say(
            f"k-means on the {len(x)} rows themselves and on their PCA codes, the clusters' baselines "
            "(once: cached for these rows)",
            quiet,
        )
        rows = x.to(device)

        def every_row(fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
            return map_rows(fn, rows) if streamed else fn(rows)

        sample = rows_at(rows, sample_rows(len(x)))
        pca = probes.PCA(sample if streamed else rows, code_size)
        codes = every_row(lambda part: pca.transform(part).float())
        out = {}
        spaces = (  # the raw rows' centres from a sample, the codes' from every row
            ("pixels", sample, every_row),
            ("pca", codes, lambda fn: fn(codes)),
        )
        for name, fitted_on, assign in spaces:
            centres = probes.kmeans(fitted_on, k, n_init=n_init, seed=seed)[2]
            pred = assign(functools.partial(probes.nearest_centre, centres=centres)).cpu().numpy()
            out |= {f"{name}_kmeans_{key}": v for key, v in cluster_scores(y, pred).items()}
        return out

    labels = torch.from_numpy(np.unique(y, return_inverse=True)[1])  # labels of any type, as numbers
    prefix = f"kmeans-k{k}-pca{code_size}-seed{seed}-init{n_init}-fit{PROBE_ROWS}-"
    if streamed:  # named by the digest of its rows as read, a pass over the file (no copy held)
        named = f"{len(x)} streamed rows {x.scan()[2]}, labels {arrays_sha256([labels.numpy()])}"
        return cached((), compute, device, prefix=prefix, data=named)
    return cached((x, labels), compute, device, prefix=prefix)

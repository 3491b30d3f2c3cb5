"""What features are good for, computed in torch on the features' own device (a GPU when the model
trained there): a logistic-regression probe, k nearest neighbours, k-means and PCA.

Each follows scikit-learn's definition (``LogisticRegression`` after ``StandardScaler``,
``KNeighborsClassifier(5)``, ``KMeans`` with k-means++ and restarts, ``PCA``); the tests compare
them with scikit-learn on digits. They compute in float32 (half the time of float64 on a CPU, far
less on most GPUs; the probe's accuracy moved by under 0.1 point on Fashion-MNIST), but PCA's
covariance, which sums over every row, adds its float32 blocks in float64. On a GPU their float32
products are float32 whatever the process allows (not TF32: its 10-bit mantissa would move the
distances ‖a‖² − 2a·b + ‖b‖², whose terms cancel, and the baselines cached on disk with them).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

import torch
import torch.nn.functional as F

from ..runtime.device import gpu_math

P = ParamSpec("P")
R = TypeVar("R")

# steps L-BFGS remembers: with scikit-learn's and torch's 10, the logistic regression on 20,000
# standardised Fashion-MNIST pixels took 806 evaluations; with 200, 191 to the same tolerance (the
# data's cold baselines on one thread: 36.7 s → 19.3 s); capped so that the remembered steps fill
# at most HISTORY_BYTES.
HISTORY, HISTORY_BYTES = 200, 1 << 28
# the most elements of one block of query-to-reference distances (float32: 4 MiB, a core's L2
# cache: ranking 10,000 codes against 20,000 took 0.46 s in blocks of 256 MiB, 0.25 s in these),
# and of one block of wide rows (256 MiB; ``_blocks``)
DISTANCE_BLOCK, DISTANCE_BLOCK_MOST = 1 << 20, 1 << 26
# columns per group when a row's few smallest of many distances are sought (``smallest``): one
# pass for each group's least and a short ``topk`` over the groups replace a ``topk`` over the
# whole row (the kNN of 10,000 Fashion-MNIST codes among 20,000: 0.20 s against 0.29 s)
GROUP = 32
# the most bytes of rows in one block of a CPU pass that reads each block twice (a product, then
# one with what the first gave), so that the second finds it in cache: a logistic regression's
# evaluation on 20,000 rows of 784 features, 2 cores, three timings each, took 21–24 ms at once,
# in blocks of 2 MiB 17–19 ms, of 4 MiB 16–20 ms, of 8 MiB 17–25 ms; a k-means step on 10,000
# such rows (4 runs × 10 centres) 20–21 ms at once, 16–18 ms in blocks of 2 MiB (one thread:
# 36–40 ms, 28–35 ms)
CACHE_BLOCK = 1 << 21
# rows per float32 block of PCA's covariance (``_centred_gram``): Fashion-MNIST's 54,000 × 784
# training pixels (its validation split out) took 1.68 s in float64 at once, 0.87 s in float32
# blocks of 1,024–8,192 rows, its 30 components' variances within 3e-7 of float64's
GRAM_ROWS = 4096


def _fp32(fn: Callable[Concatenate[torch.Tensor, P], R]) -> Callable[Concatenate[torch.Tensor, P], R]:
    """``fn`` of rows (its first argument), its float32 products in float32 on their device."""

    @functools.wraps(fn)
    def in_fp32(rows: torch.Tensor, *args: P.args, **kwargs: P.kwargs) -> R:
        with gpu_math("fp32", rows.device):
            return fn(rows, *args, **kwargs)

    return in_fp32


def feature_scale(train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and standard deviation of the training rows (float64), as ``StandardScaler``
    fits them (a constant feature keeps scale 1)."""
    variance, mean = torch.var_mean(train.double(), 0, correction=0)
    std = variance.sqrt()
    return mean, torch.where(std > 0, std, torch.ones_like(std))


def standardize(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """``train`` and ``others`` (float32) scaled by the training rows' ``feature_scale``: centred
    by ``_centred``, then divided in float32 (float32 rows within an ulp or two of scaling in
    float64, in a seventh of the time: 0.45 → 0.06 s for 30,000 rows of 784 features)."""
    mean, std = feature_scale(train)
    return [_centred(t, mean).div_(std.float()) for t in (train, *others)]


def _centred(rows: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """``rows`` less the float64 ``mean``, as float32. Float64 rows are centred in float64 (a large
    offset would swallow their spread in float32); others in float32, less the mean's float32
    value and then what that left of it, so that a mean far from zero against the spread (1000 ±
    0.01) is taken off whole, not rounded to float32 first."""
    if rows.dtype == torch.float64:
        return (rows - mean).float()
    high = mean.float()
    return (rows.float() - high).sub_((mean - high.double()).float())


def minimize(
    evaluate: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    x: torch.Tensor,
    max_iter: int,
    tolerance: float,
    history: int,
) -> torch.Tensor:
    """The minimum from ``x`` (a vector) of a smooth function by L-BFGS (its direction by the
    two-loop recursion, Nocedal & Wright 2006, algorithm 7.4) with a backtracking line search;
    ``evaluate(x)`` gives the loss and its gradient. Stops once every gradient entry is at most
    ``tolerance``, after ``max_iter`` iterations, or when a step changes the loss by under 1e-12.
    The ``history`` last steps shape each direction.

    Written here rather than taken from ``torch.optim.LBFGS``: building a torch optimizer imports
    torch's compiler stack (over a second), which every evaluation of a run would pay for nothing.
    The loop's numbers stay on ``x``'s device; each line search reads the loss once per trial.
    """
    loss, gradient = evaluate(x)
    if not math.isfinite(float(loss)):
        raise ValueError(
            f"the function to minimise is {float(loss)} at the starting point, not a finite number"
        )
    memory: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # steps s, changes y, 1 / yᵀs
    for _ in range(max_iter):
        if float(gradient.abs().max()) <= tolerance:
            break
        direction = -gradient  # −H·gradient by the two-loop recursion, H the memory's inverse Hessian
        alphas = []
        for s, y, rho in reversed(memory):
            alphas.append(rho * s.dot(direction))
            direction = direction - alphas[-1] * y
        if memory:  # the initial Hessian's scale from the newest pair (yᵀs / yᵀy)
            s, y, rho = memory[-1]
            direction = direction / (rho * y.dot(y))
        for (s, y, rho), alpha in zip(memory, reversed(alphas), strict=True):
            direction = direction + (alpha - rho * y.dot(direction)) * s
        slope = float(gradient.dot(direction))
        if slope >= 0:  # not downhill (rounding in a poor memory): start the memory again
            memory, direction, slope = [], -gradient, -float(gradient.dot(gradient))
        # a first step of length at most 1 in L1, as torch's L-BFGS takes; then the full step
        step = min(1.0, 1.0 / float(gradient.abs().sum())) if not memory else 1.0
        while True:  # Armijo's sufficient decrease, the step shrunk by quadratic interpolation
            trial = x + step * direction
            trial_loss, trial_gradient = evaluate(trial)
            rise = float(trial_loss - loss)
            if rise <= 1e-4 * step * slope:  # never for a loss that is not a number
                break
            if step < 1e-10:  # no step along this direction lowers the loss measurably: done
                return x
            shrink = -slope * step / (2 * (rise - slope * step))
            step *= min(max(shrink, 0.1), 0.5) if math.isfinite(shrink) else 0.1
        s, y = trial - x, trial_gradient - gradient
        ys = y.dot(s)
        if float(ys) > 1e-10:  # a pair that keeps the inverse Hessian positive definite
            memory = [*memory, (s, y, 1 / ys)][-history:]
        x, gradient, change, loss = trial, trial_gradient, abs(rise), trial_loss
        if change < 1e-12:
            break
    return x


@_fp32
def logistic_regression(
    z: torch.Tensor, y: torch.Tensor, n_classes: int, c: float = 1.0, max_iter: int = 1000
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (classes × features) and biases of multinomial logistic regression with an L2
    penalty of strength 1/``c`` on the weights (not the biases), fitted by L-BFGS.

    The objective is scikit-learn's (mean cross-entropy + ‖W‖² / (2·c·n)), and so is the
    stopping rule: every gradient entry below 1e-4, or ``max_iter`` iterations. Two classes take
    twice the penalty per row of W: their softmax depends on w = w₁ − w₂ alone, whose optimum has
    w₁ = −w₂, so ‖W‖² is ‖w‖² / 2, and scikit-learn's binary model penalises ‖w‖² / (2·c·n).
    """
    z = z.float()
    n, features = z.shape
    weights, penalty = n_classes * features, (1.0 if n_classes == 2 else 0.5) / (c * n)
    onehot = F.one_hot(y, n_classes).float()

    # rows per block on a CPU: each block's logits and its share of the gradient while the block
    # is still in cache, so that an evaluation reads the rows from memory once, not twice
    block = _cache_rows(z) or n

    # the gradient in closed form, (softmax − one-hot)ᵀ z / n: a third of autograd's time per
    # evaluation on 20,000 codes, where L-BFGS needs a few hundred of them. The loss is summed in
    # float64: near the optimum the line search compares losses that differ by less than a float32
    # sum's rounding, and would then stop short of the tolerance
    def evaluate(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w, b = theta[:weights].view(n_classes, features), theta[weights:]
        loss = penalty * w.double().pow(2).sum()
        grad_w, grad_b = 2 * penalty * w, torch.zeros_like(b)
        for start in range(0, n, block):
            rows, targets = z[start : start + block], onehot[start : start + block]
            logits = torch.addmm(b, rows, w.T)
            norm = logits.logsumexp(1, keepdim=True)
            loss = loss + (norm.squeeze(1) - (logits * targets).sum(1)).double().sum() / n
            error = (logits - norm).exp_().sub_(targets).div_(n)
            grad_w.addmm_(error.T, rows)
            grad_b += error.sum(0)
        return loss, torch.cat([grad_w.flatten(), grad_b])

    # steps and gradient changes remembered, at most HISTORY_BYTES of them
    history = max(10, min(HISTORY, HISTORY_BYTES // (2 * 4 * (weights + n_classes))))
    theta = minimize(evaluate, torch.zeros(weights + n_classes, device=z.device), max_iter, 1e-4, history)
    return theta[:weights].view(n_classes, features), theta[weights:]


def _classes(y_train: torch.Tensor, y_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Training and test labels as indices into the training labels' sorted classes (-1: unseen)."""
    classes, train_idx = torch.unique(y_train, return_inverse=True)
    pos = torch.searchsorted(classes, y_test.contiguous()).clamp(max=len(classes) - 1)
    test_idx = torch.where(classes[pos] == y_test, pos, -1)
    return train_idx, test_idx, len(classes)


@_fp32
def linear_probe_accuracy(
    z_train: torch.Tensor, y_train: torch.Tensor, z_test: torch.Tensor, y_test: torch.Tensor
) -> float:
    """Test accuracy of logistic regression (C = 1) trained on standardised training features."""
    train_idx, test_idx, n_classes = _classes(y_train, y_test)
    z_train, z_test = standardize(z_train, z_test)
    if n_classes < 2:  # one class: every prediction is it
        return float((test_idx == 0).double().mean())
    w, b = logistic_regression(z_train, train_idx, n_classes)
    return float(((z_test @ w.T + b).argmax(1) == test_idx).float().mean())


def squared_distances(
    query: torch.Tensor, reference: torch.Tensor, query_norms: torch.Tensor | None = None
) -> torch.Tensor:
    """Squared Euclidean distances between every row of ``query`` and of ``reference`` (float32);
    ``query_norms``: the query rows' squared norms, when already known."""
    query, reference = query.float(), reference.float()
    if query_norms is None:
        query_norms = (query * query).sum(1)
    d = query_norms[:, None] - 2 * query @ reference.T + (reference * reference).sum(1)
    return d.clamp_(min=0)


def _blocks(n_query: int, n_reference: int, features: int = 1) -> range:
    """Starts of query blocks small enough that a block's distances fit ``DISTANCE_BLOCK``, and of
    at least ``features`` rows: a block's product then does as much arithmetic as it writes
    distances, which wide rows make the larger cost (10,000 × 20,000 Fashion-MNIST pixels: 3.7 s
    in blocks of 52 rows, 2.0 s in blocks of 784), up to ``DISTANCE_BLOCK_MOST``."""
    rows = max(DISTANCE_BLOCK, min(features * n_reference, DISTANCE_BLOCK_MOST)) // max(n_reference, 1)
    return range(0, n_query, max(1, rows))


def smallest(values: torch.Tensor, k: int) -> torch.Tensor:
    """The column indices of each row's ``k`` smallest values (of equal values, any), as
    ``topk(k, largest=False)`` for values that are not NaN (a NaN makes its group's least NaN,
    which hides the group). Where rows are long, from the ``k`` groups of ``GROUP`` columns whose
    least values are smallest, and the columns after the last whole group: a row's ``k`` smallest
    lie in groups whose least is at most the k-th smallest, and at most ``k`` groups hold them."""
    rows, n = values.shape
    whole = n - n % GROUP
    if whole < 4 * k * GROUP:  # too few groups to pass over: one pass is as cheap
        return values.topk(k, dim=1, largest=False).indices
    groups = values[:, :whole].view(rows, whole // GROUP, GROUP)
    best = groups.amin(2).topk(k, dim=1, largest=False).indices  # rows × k groups
    candidates = groups.gather(1, best[:, :, None].expand(-1, -1, GROUP)).flatten(1)
    columns = (best[:, :, None] * GROUP + torch.arange(GROUP, device=values.device)).flatten(1)
    if whole < n:
        candidates = torch.cat([candidates, values[:, whole:]], 1)
        columns = torch.cat([columns, torch.arange(whole, n, device=values.device).expand(rows, -1)], 1)
    return columns.gather(1, candidates.topk(k, dim=1, largest=False).indices)


@_fp32
def knn_predict(
    z_train: torch.Tensor, y_train: torch.Tensor, z_query: torch.Tensor, k: int = 5
) -> torch.Tensor:
    """The majority class among each query row's ``k`` nearest training rows (Euclidean); a tie
    goes to the smallest class, as in ``KNeighborsClassifier``."""
    classes, idx = torch.unique(y_train, return_inverse=True)
    k = min(k, len(z_train))
    step = _blocks(len(z_query), len(z_train), z_train.shape[1]).step
    z_query, z_train = z_query.float(), z_train.float()
    # a reference whose code is not finite is farther than every other: its distances would be NaN,
    # and a NaN would hide the references grouped with it from ``smallest``
    finite = z_train.isfinite().all(1)
    train_norms = torch.where(finite, (z_train * z_train).sum(1), math.inf)
    z_train = torch.where(finite[:, None], z_train, 0.0)
    out = []
    for i in range(0, len(z_query), step):
        # a query row's own norm shifts all its distances alike: the ranking needs only the rest
        ranking = torch.addmm(train_norms, z_query[i : i + step], z_train.T, alpha=-2)
        near = smallest(ranking, k)
        votes = F.one_hot(idx[near], len(classes)).sum(1)
        out.append(classes[votes.argmax(1)])  # argmax takes the first of equal counts
    return torch.cat(out) if out else y_train[:0]


def knn_accuracy(
    z_train: torch.Tensor, y_train: torch.Tensor, z_test: torch.Tensor, y_test: torch.Tensor
) -> float:
    """Test accuracy of the 5-nearest-neighbour classifier on the features as they are."""
    return float((knn_predict(z_train, y_train, z_test) == y_test).double().mean())


def _nearest(
    z: torch.Tensor, centres: torch.Tensor, norms: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's nearest centre and its squared distance (``norms``: the rows' squared norms); of
    several runs' centres (runs × k × features), the nearest of each run's (rows × runs)."""
    flat = centres.reshape(-1, centres.shape[-1])
    step = _blocks(len(z), len(flat)).step
    parts = [
        squared_distances(z[i : i + step], flat, norms[i : i + step]).view(-1, *centres.shape[:-1]).min(-1)
        for i in range(0, len(z), step)
    ]
    return torch.cat([p.indices for p in parts]), torch.cat([p.values for p in parts])


@_fp32
def nearest_centre(z: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Each row's nearest of ``centres`` (as ``kmeans`` assigns them)."""
    z = z.float()
    return _nearest(z, centres, (z * z).sum(1))[0]


def _kmeans_plus_plus(
    z: torch.Tensor, k: int, generator: torch.Generator, norms: torch.Tensor
) -> torch.Tensor:
    """Greedy k-means++ seeding (scikit-learn's): of 2 + ⌊ln k⌋ candidates drawn in proportion to
    the squared distance to the chosen centres, the one that lowers the potential most."""
    trials = 2 + int(math.log(k))
    first = torch.randint(len(z), (1,), generator=generator, device=z.device)
    centres = [z[first]]
    closest = squared_distances(z, centres[0], norms)[:, 0]
    for _ in range(1, k):
        weights = closest if float(closest.sum()) > 0 else torch.ones_like(closest)
        candidates = torch.multinomial(weights, trials, replacement=True, generator=generator)
        with_each = torch.minimum(closest[:, None], squared_distances(z, z[candidates], norms))
        best = with_each.sum(0).argmin()
        centres.append(z[candidates[best]][None])
        closest = with_each[:, best]
    return torch.cat(centres)


def _cache_rows(z: torch.Tensor) -> int | None:
    """On a CPU, the rows of ``z`` in a block of ``CACHE_BLOCK`` bytes; elsewhere None (a GPU's
    memory is fast enough that more, smaller kernels would cost more than they save)."""
    return max(1, CACHE_BLOCK // (z.element_size() * z.shape[1])) if z.device.type == "cpu" else None


def _assigned_sums(z: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of Lloyd's algorithm for several runs' ``centres`` (runs × k × features): each
    run's sums of the rows nearest each of its centres (runs × k × features) and their counts
    (runs × k × 1). Block by block, each block's ranking of the centres and then its sums while
    it is in cache. The sums are products with the one-hot assignments: a GPU's ``index_add_`` adds with
    atomics in no fixed order, so the centres, and the clusters after them, would differ from one
    run to the next."""
    runs, k = centres.shape[:2]
    flat = centres.reshape(runs * k, -1)
    flat_norms = (flat * flat).sum(1)
    offsets = k * torch.arange(runs, device=z.device)  # the runs' clusters side by side
    sums = torch.zeros(runs * k, z.shape[1], dtype=z.dtype, device=z.device)
    counts = torch.zeros(runs * k, 1, dtype=z.dtype, device=z.device)
    step = min(_blocks(len(z), runs * k).step, _cache_rows(z) or len(z))
    for i in range(0, len(z), step):
        rows = z[i : i + step]
        # a row's own norm shifts its distances to every centre alike: the nearest needs only the
        # rest, in one pass (Fashion-MNIST's 10,000 test images, 4 runs: 26 → 17 ms a step)
        nearest = torch.addmm(flat_norms, rows, flat.T, alpha=-2).view(len(rows), runs, k).argmin(-1)
        one_hot = torch.zeros(len(rows), runs * k, dtype=z.dtype, device=z.device)
        one_hot.scatter_(1, nearest + offsets, 1.0)
        sums += one_hot.T @ rows
        counts += one_hot.sum(0)[:, None]
    return sums.view(runs, k, -1), counts.view(runs, k, 1)


@_fp32
def kmeans(
    z: torch.Tensor, k: int, n_init: int = 4, seed: int = 0, max_iter: int = 300, tol: float = 1e-4
) -> tuple[torch.Tensor, float, torch.Tensor]:
    """Cluster index of every row of ``z``, the inertia and the centres of the best of ``n_init``
    runs of Lloyd's algorithm from k-means++ seeds. A run stops when the centres move less
    (squared, summed) than ``tol`` times the features' mean variance, as in ``KMeans``.

    The runs are seeded in turn from one generator, as one run after another would draw them
    (Lloyd's steps draw nothing); then every run still moving takes its step in the same passes
    over the rows (Fashion-MNIST's 10,000 test images: 3.5 s one run after another, 2.2 s together,
    on 2 CPU cores), and on a GPU with one wait for the host per step, not one per run. Each run
    ends as it would alone but for rounding: its distances are computed in products shaped by the
    runs still moving.
    """
    z = z.float()
    norms = (z * z).sum(1)  # every distance below needs them: once, not per pass
    generator = torch.Generator(device=z.device).manual_seed(seed)
    threshold = tol * float(z.var(0, correction=0).mean())
    centres = torch.stack([_kmeans_plus_plus(z, k, generator, norms) for _ in range(n_init)])
    moving = torch.arange(n_init, device=z.device)
    for _ in range(max_iter):
        current = centres[moving]
        sums, counts = _assigned_sums(z, current)
        # an emptied cluster keeps its centre
        moved = torch.where(counts > 0, sums / counts.clamp(min=1), current)
        centres[moving] = moved
        moving = moving[(moved - current).pow(2).sum((1, 2)).double() > threshold]
        if len(moving) == 0:
            break
    labels, dist = _nearest(z, centres, norms)
    inertia = dist.double().sum(0)
    best = int(inertia.argmin())  # the first of equal ones
    return labels[:, best].clone(), float(inertia[best]), centres[best].clone()


def _centred_gram(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """(x − mean)ᵀ(x − mean) in float64, summed over blocks of ``GRAM_ROWS`` rows (``_centred``)
    whose products are float32: each entry's error is then that of a float32 sum of
    so many terms, and the blocks add up in float64."""
    gram = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64, device=x.device)
    with gpu_math("fp32", x.device):
        for start in range(0, len(x), GRAM_ROWS):
            centred = _centred(x[start : start + GRAM_ROWS], mean)
            gram += (centred.T @ centred).double()
    return gram


class PCA:
    """Principal components of the training rows (eigenvectors of their covariance, float64)."""

    def __init__(self, x: torch.Tensor, k: int):
        self.mean = x.sum(0, dtype=torch.float64) / max(len(x), 1)
        k = min(k, *x.shape)
        if len(x) < x.shape[1]:  # wide rows: the rows' own SVD, not a features × features covariance
            # (10,000 features: an eigendecomposition of 10,000 × 10,000 took minutes and 3.8 GB)
            _, values, vectors = torch.linalg.svd(x.double() - self.mean, full_matrices=False)
            self.components, values = vectors[:k].contiguous(), values[:k].square()
        else:
            values, vectors = torch.linalg.eigh(_centred_gram(x, self.mean))
            self.components = vectors[:, -k:].flip(1).T.contiguous()  # largest variance first
            values = values[-k:].flip(0)
        self.explained_variance = values / max(len(x) - 1, 1)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return (x.double() - self.mean) @ self.components.T

    def inverse_transform(self, codes: torch.Tensor) -> torch.Tensor:
        return codes.double() @ self.components + self.mean

    def squared_errors(self, x: torch.Tensor) -> torch.Tensor:
        """Each row's squared reconstruction error (float64)."""
        return (self.inverse_transform(self.transform(x)) - x.double()).pow(2).sum(1)

"""How a clustering agrees with known classes: the contingency of clusters and classes, the
best one-to-one matching of the two (Hungarian algorithm), accuracy under it, normalised mutual
information and the adjusted Rand index, in numpy."""

from __future__ import annotations

import numpy as np

from ..data.classes import UNLABELLED


def contingency(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Counts of rows per (cluster, class)."""
    _, y = np.unique(y_true, return_inverse=True)
    _, c = np.unique(y_pred, return_inverse=True)
    counts = np.zeros((c.max() + 1, y.max() + 1), dtype=np.int64)
    np.add.at(counts, (c, y), 1)
    return counts


def best_matching(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the one-to-one matching of largest total weight (as many pairs as the
    smaller side), by the Hungarian algorithm with potentials: O(n² m) for n ≤ m, each step one
    vector operation over the columns. Here, not scipy's ``linear_sum_assignment``: importing
    ``scipy.optimize`` costs every run 0.3 s, more than matching a few hundred clusters does."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape[0] > w.shape[1]:
        cols, rows = best_matching(w.T)
        order = np.argsort(rows)
        return rows[order], cols[order]
    n, m = w.shape
    cost = -w  # every row is matched: a minimum-cost matching of these is a maximum-weight one of ``w``
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    owner = np.zeros(m + 1, dtype=np.int64)  # the row (1-based) matched to each column; column 0 is a root
    for i in range(1, n + 1):
        owner[0], j0 = i, 0
        slack, via = np.full(m + 1, np.inf), np.zeros(m + 1, dtype=np.int64)
        used = np.zeros(m + 1, dtype=bool)
        while owner[j0] != 0:  # column 0 is the root: ``owner[0] = i``
            used[j0] = True
            i0 = owner[j0]
            reduced = cost[i0 - 1] - u[i0] - v[1:]
            better = ~used[1:] & (reduced < slack[1:])
            slack[1:][better], via[1:][better] = reduced[better], j0
            open_slack = np.where(used[1:], np.inf, slack[1:])
            j1 = int(np.argmin(open_slack)) + 1
            delta = open_slack[j1 - 1]
            u[owner[used]] += delta
            v[used] -= delta
            slack[~used] -= delta
            j0 = j1
        while j0:  # augment along the path of columns that led to the free column
            owner[j0] = owner[via[j0]]
            j0 = via[j0]
    cols = np.flatnonzero(owner[1:]) + 1
    rows = owner[cols] - 1
    order = np.argsort(rows)
    return rows[order], cols[order] - 1


def clustering_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Accuracy of the best one-to-one matching of clusters to classes (Hungarian algorithm)."""
    counts = contingency(y_true, y_pred)
    rows, cols = best_matching(counts)
    return float(counts[rows, cols].sum() / counts.sum())


def normalized_mutual_information(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """I(classes; clusters) / the mean of their entropies (scikit-learn's default normalisation);
    1 when either is a single group and the other agrees, as there."""
    p = contingency(y_true, y_pred) / len(y_true)
    pc, py = p.sum(1), p.sum(0)
    h_c, h_y = -(pc * np.log(pc)).sum(), -(py * np.log(py)).sum()
    if h_c == 0 or h_y == 0:
        return 1.0 if h_c == h_y else 0.0
    nz = p > 0
    mi = (p[nz] * np.log(p[nz] / np.outer(pc, py)[nz])).sum()
    return float(max(mi, 0.0) / ((h_c + h_y) / 2))


def adjusted_rand_index(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Agreement of two partitions by pairs of rows, 0 for chance and 1 for the same partition
    (Hubert & Arabie 1985, as scikit-learn's ``adjusted_rand_score``)."""
    counts = contingency(y_true, y_pred).astype(np.float64)

    def pairs(n: np.ndarray) -> float:
        return float((n * (n - 1) / 2).sum())

    together, rows, cols = pairs(counts), pairs(counts.sum(1)), pairs(counts.sum(0))
    expected = rows * cols / pairs(np.array([counts.sum()]))
    top = (rows + cols) / 2
    if top == expected:  # both partitions trivial (one group, or every row alone): they agree
        return 1.0
    return (together - expected) / (top - expected)


def cluster_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """A clustering against known classes: accuracy of the best one-to-one matching of clusters to
    classes (Hungarian), normalised mutual information and adjusted Rand index, over the rows that
    have a class (of class indices, ``UNLABELLED`` marks those without)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if np.issubdtype(y_true.dtype, np.integer):
        known = y_true != UNLABELLED
        y_true, y_pred = y_true[known], y_pred[known]
    return {
        "accuracy": clustering_accuracy(y_true, y_pred),
        "nmi": normalized_mutual_information(y_true, y_pred),
        "ari": adjusted_rand_index(y_true, y_pred),
    }

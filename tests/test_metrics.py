"""Code-quality metrics: clustering accuracy by Hungarian matching, k-means on codes."""

from __future__ import annotations

import numpy as np
import pytest

from autoencoders.metrics import clustering_accuracy, kmeans_scores


def test_clustering_accuracy_is_one_for_permuted_labels():
    y = np.repeat(np.arange(5), 20)
    permuted = np.array([3, 0, 4, 1, 2])[y] + 10  # other names, same partition
    assert clustering_accuracy(y, permuted) == 1.0


def test_clustering_accuracy_counts_the_best_matching():
    y = np.array([0, 0, 0, 1, 1, 1])
    pred = np.array([1, 1, 0, 0, 0, 0])  # cluster 1 -> class 0 (2 right), cluster 0 -> class 1 (3 right)
    assert clustering_accuracy(y, pred) == pytest.approx(5 / 6)
    assert clustering_accuracy(y, np.zeros(6)) == pytest.approx(0.5)  # one cluster matches one class


def test_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 50)
    z = rng.normal(size=(150, 2)) * 0.1 + np.array([[0, 0], [5, 0], [0, 5]])[y]
    accuracy, nmi = kmeans_scores(z, y)
    assert accuracy == 1.0 and nmi == pytest.approx(1.0)

"""Code-quality metrics: clustering accuracy by Hungarian matching, k-means on codes."""

from __future__ import annotations

import numpy as np
import pytest

from autoencoders.metrics import (
    clustering_accuracy,
    kmeans_scores,
    knn_accuracy,
    pca_fit,
    pca_scores,
    pixel_scores,
    reconstruction_errors,
)


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


def test_knn_and_pixel_scores_are_measured_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path))
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    x = rng.normal(size=(120, 4)) * 0.1 + np.eye(3, 4)[y] * 3
    assert knn_accuracy(x[::2], y[::2], x[1::2], y[1::2]) == 1.0
    assert knn_accuracy(x[::2], rng.permutation(y[::2]), x[1::2], y[1::2]) < 0.7  # labels carry no signal
    first = pixel_scores(x[::2], y[::2], x[1::2], y[1::2])
    assert set(first) == {
        "pixels_linear_probe_accuracy",
        "pixels_knn_accuracy",
        "pixels_kmeans_accuracy",
        "pixels_kmeans_nmi",
    }
    (cached,) = (tmp_path / "baselines").iterdir()
    cached.write_text('{"pixels_knn_accuracy": 0.5}')  # the cache is what the next call returns
    assert pixel_scores(x[::2], y[::2], x[1::2], y[1::2]) == {"pixels_knn_accuracy": 0.5}


def test_pca_scores_are_measured_per_code_size_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path))
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    x = (rng.normal(size=(120, 6)) * 0.1 + np.eye(3, 6)[y] * 3).astype(np.float32)
    first = pca_scores(x[::2], y[::2], x[1::2], y[1::2], 2)
    pca = pca_fit(x[::2], 2)
    direct = reconstruction_errors(x[1::2], lambda rows: pca.inverse_transform(pca.transform(rows)))
    assert first["pca_sse_per_image"] == pytest.approx(direct["sse_per_image"])
    assert first["pca_linear_probe_accuracy"] == 1.0  # three separated classes in two components
    assert set(first) == {
        "pca_sse_per_image",
        "pca_psnr",
        "pca_linear_probe_accuracy",
        "pca_knn_accuracy",
        "pca_kmeans_accuracy",
        "pca_kmeans_nmi",
    }
    unlabelled = pca_scores(x[::2], None, x[1::2], None, 2)
    assert set(unlabelled) == {"pca_sse_per_image", "pca_psnr"}
    one = pca_scores(x[::2], y[::2], x[1::2], y[1::2], 1)
    assert one["pca_sse_per_image"] > first["pca_sse_per_image"]  # another code size, its own entry
    assert len(list((tmp_path / "baselines").iterdir())) == 3
    # the same bytes split elsewhere are another dataset, not a cache hit
    assert pca_scores(x[:50], None, x[50:], None, 2) != pca_scores(x[:60], None, x[60:], None, 2)
    assert len(list((tmp_path / "baselines").iterdir())) == 5
    for cached in (tmp_path / "baselines").iterdir():
        cached.write_text('{"pca_psnr": 1.0}')  # the cache is what the next call returns
    assert pca_scores(x[::2], y[::2], x[1::2], y[1::2], 2) == {"pca_psnr": 1.0}


def test_run_metrics_compare_codes_with_pca_and_pixels(digits_run):
    m = digits_run.metrics
    for name in ("linear_probe_accuracy", "knn_accuracy", "kmeans_accuracy", "kmeans_nmi"):
        assert 0 <= m[name] <= 1 and 0 <= m[f"pca_{name}"] <= 1 and 0 <= m[f"pixels_{name}"] <= 1
    assert m["pixels_knn_accuracy"] > 0.9  # digits are easy for kNN on pixels

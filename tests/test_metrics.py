"""Code-quality metrics: clustering accuracy by Hungarian matching, k-means on codes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import FAST

import autoencoders
from autoencoders import DataConfig, load_dataset
from autoencoders.eval.agreement import best_matching, clustering_accuracy, normalized_mutual_information
from autoencoders.eval.metrics import (
    active_units,
    baselines,
    cached,
    code_scores,
    dead_units,
    encode_all,
    in_batches,
    kmeans_scores,
    pca_name,
    pca_scores,
    pixel_scores,
    probe_sample,
    reconstruction_errors,
)
from autoencoders.eval.probes import (
    GROUP,
    PCA,
    _assigned_sums,
    _kmeans_plus_plus,
    kmeans,
    knn_accuracy,
    knn_predict,
    smallest,
)


def test_rows_are_encoded_in_batches_into_one_result_and_none_give_none():
    """Batch by batch as one call would, in the rows' precision (float64 for float64 rows)."""
    from autoencoders.models import DenseAutoencoder

    torch.manual_seed(0)
    model = DenseAutoencoder([6, 5, 3])
    x = torch.rand(10, 6)
    with torch.no_grad():
        whole = model.encode(x)
    np.testing.assert_allclose(in_batches(model, model.encode, x, batch_size=4), whole, rtol=1e-6)
    assert in_batches(model.double(), model.encode, x.double(), batch_size=4).dtype == torch.float64
    assert encode_all(model.float(), x[:0]).shape == (0, 3)


def test_clustering_accuracy_is_one_for_permuted_labels():
    y = np.repeat(np.arange(5), 20)
    permuted = np.array([3, 0, 4, 1, 2])[y] + 10  # other names, same partition
    assert clustering_accuracy(y, permuted) == 1.0


def test_clustering_accuracy_counts_the_best_matching():
    y = np.array([0, 0, 0, 1, 1, 1])
    pred = np.array([1, 1, 0, 0, 0, 0])  # cluster 1 -> class 0 (2 right), cluster 0 -> class 1 (3 right)
    assert clustering_accuracy(y, pred) == pytest.approx(5 / 6)
    assert clustering_accuracy(y, np.zeros(6)) == pytest.approx(0.5)  # one cluster matches one class
    # two clusters of class 0: one-to-one, only one of them counts (each cluster's majority: all 6)
    two_of_one = np.array([0, 0, 1, 1, 2, 2])
    assert clustering_accuracy(np.array([0, 0, 0, 0, 1, 1]), two_of_one) == pytest.approx(4 / 6)


def test_best_matching_agrees_with_scipy_on_random_and_tied_weights():
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(0)
    for trial in range(600):
        n, m = rng.integers(1, 13, size=2)
        w = rng.integers(0, 4, size=(n, m)) if trial % 2 else rng.normal(size=(n, m))  # ties, then not
        rows, cols = best_matching(w)
        expected_rows, expected_cols = linear_sum_assignment(w, maximize=True)
        assert len(rows) == min(n, m) and np.all(np.diff(rows) > 0) and len(set(cols)) == len(cols)
        assert w[rows, cols].sum() == pytest.approx(w[expected_rows, expected_cols].sum(), abs=1e-9)


@pytest.mark.parametrize("block", ["distances", "cache"])
def test_a_lloyd_step_sums_each_runs_rows_by_nearest_centre_in_blocks(monkeypatch, block):
    """k-means' centres come from one-hot products (fixed order on a GPU, unlike index_add_'s
    atomics), every run's at once, taken block by block (blocks the distances' size bounds, or a
    CPU's cache): the same sums and counts as each row's nearest centre gives, an empty cluster's
    being 0."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(1000, 5, generator=g, dtype=torch.float64)
    centres = torch.randn(3, 7, 5, generator=g, dtype=torch.float64)
    centres[:, 6] = 100.0  # far from every row: empty
    if block == "distances":
        monkeypatch.setattr("autoencoders.eval.probes.DISTANCE_BLOCK", 3 * 7 * 100)  # 100 rows a block
    else:
        monkeypatch.setattr("autoencoders.eval.probes.CACHE_BLOCK", 8 * 5 * 64)  # 64 rows a block
    sums, counts = _assigned_sums(z, centres)
    assert sums.shape == (3, 7, 5) and counts.shape == (3, 7, 1)
    for run in range(3):
        labels = torch.cdist(z, centres[run]).argmin(1)
        expected = torch.zeros(7, 5, dtype=z.dtype).index_add_(0, labels, z)
        torch.testing.assert_close(sums[run], expected)
        assert torch.equal(counts[run, :, 0], torch.bincount(labels, minlength=7).to(z.dtype))
        assert counts[run, 6, 0] == 0


def _lloyd(
    z: torch.Tensor, centres: torch.Tensor, threshold: float
) -> tuple[torch.Tensor, float, torch.Tensor]:
    """Lloyd's algorithm from ``centres``, one run, as plainly as it is written."""
    for _ in range(300):
        labels = torch.cdist(z, centres).argmin(1)
        moved = torch.stack(
            [z[labels == j].mean(0) if (labels == j).any() else centres[j] for j in range(len(centres))]
        )
        shift, centres = float((moved - centres).pow(2).sum()), moved
        if shift <= threshold:
            break
    labels = torch.cdist(z, centres).argmin(1)
    return labels, float((z - centres[labels]).double().pow(2).sum()), centres


def test_kmeans_runs_together_as_they_would_one_after_another():
    """The runs take their steps together; each ends where it would alone, and the best is kept."""
    z = (
        torch.randn(600, 4, generator=torch.Generator().manual_seed(2))
        + torch.arange(3).repeat(200)[:, None] * 2
    )
    labels, inertia, centres = kmeans(z, 5, n_init=3, seed=7)
    generator = torch.Generator().manual_seed(7)
    threshold = 1e-4 * float(z.var(0, correction=0).mean())
    alone = []
    for _ in range(3):  # one run at a time from the same generator: the seeds each run drew together
        alone.append(_lloyd(z, _kmeans_plus_plus(z, 5, generator, (z * z).sum(1)), threshold))
    assert len({round(r[1], 3) for r in alone}) > 1  # the runs end apart: which is best matters
    best = min(alone, key=lambda r: r[1])
    assert torch.equal(labels, best[0]) and inertia == pytest.approx(best[1], rel=1e-6)
    torch.testing.assert_close(centres, best[2])


def test_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 50)
    z = rng.normal(size=(150, 2)) * 0.1 + np.array([[0, 0], [5, 0], [0, 5]])[y]
    accuracy, nmi = kmeans_scores(torch.from_numpy(z), torch.from_numpy(y))
    assert accuracy == 1.0 and nmi == pytest.approx(1.0)


@pytest.mark.parametrize("columns", [7, 4 * 5 * GROUP, 4 * 5 * GROUP + 13, 3000])
@pytest.mark.parametrize("ties", [False, True])
def test_smallest_finds_what_topk_finds(columns, ties):
    values = torch.randn(50, columns, generator=torch.Generator().manual_seed(columns))
    if ties:  # few distinct values: of equal ones any may be taken, but the values agree
        values = values.mul(2).round()
    for k in (min(1, columns), min(5, columns)):
        near = smallest(values, k)
        assert near.shape == (50, k) and all(len(set(row)) == k for row in near.tolist())
        expected = values.topk(k, dim=1, largest=False)
        assert torch.equal(values.gather(1, near).sort(1).values, expected.values.sort(1).values)
        if not ties:
            assert torch.equal(near.sort(1).values, expected.indices.sort(1).values)
    assert smallest(values[:0], 1).shape == (0, 1)


def test_knn_passes_over_a_reference_whose_code_is_not_finite():
    """Nearest neighbours are taken from groups of references (``smallest``): a NaN code must not
    hide the references grouped with it."""
    g = torch.Generator().manual_seed(0)
    z_train, z_query = torch.randn(2000, 3, generator=g), torch.randn(300, 3, generator=g)
    y_train = torch.randint(10, (2000,), generator=g)  # one neighbour's label: which one it is
    bad, broken, kept = [7, 40, 1999], z_train.clone(), torch.ones(2000, dtype=torch.bool)
    broken[bad, 1], kept[bad] = torch.tensor([float("nan"), float("inf"), -float("inf")]), False
    expected = knn_predict(z_train[kept], y_train[kept], z_query, k=1)
    assert torch.equal(knn_predict(broken, y_train, z_query, k=1), expected)


def test_knn_and_pixel_scores_are_measured_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path))
    rng = np.random.default_rng(0)
    y = torch.arange(3).repeat_interleave(40)
    x = torch.from_numpy(rng.normal(size=(120, 4)) * 0.1).float() + torch.eye(3, 4)[y] * 3
    assert knn_accuracy(x[::2], y[::2], x[1::2], y[1::2]) == 1.0
    assert (
        knn_accuracy(x[::2], y[::2][torch.from_numpy(rng.permutation(60))], x[1::2], y[1::2]) < 0.7
    )  # labels carry no signal
    first = pixel_scores(x[::2], y[::2], x[1::2], y[1::2])
    assert set(first) == {
        "pixels_linear_probe_accuracy",
        "pixels_knn_accuracy",
        "pixels_kmeans_accuracy",
        "pixels_kmeans_nmi",
    }
    (file,) = (tmp_path / "baselines").iterdir()
    file.write_text('{"pixels_knn_accuracy": 0.5, "names": ["pixels_knn_accuracy"]}')  # what it returns next
    assert pixel_scores(x[::2], y[::2], x[1::2], y[1::2]) == {"pixels_knn_accuracy": 0.5}
    monkeypatch.setattr(torch, "__version__", "0.0.0")  # whose generator may draw other k-means starts
    assert pixel_scores(x[::2], y[::2], x[1::2], y[1::2]) == first


def test_each_kind_of_device_keeps_its_own_cached_baselines(tmp_path, monkeypatch):
    """A GPU's k-means starts and roundings are not the CPU's: neither reads the other's numbers."""
    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path))
    rows = (torch.arange(6.0),)
    cpu, gpu = {"accuracy": 0.5}, {"accuracy": 0.25}
    assert cached(rows, lambda: cpu, "cpu") == cpu
    assert cached(rows, lambda: gpu, torch.device("cuda", 1)) == gpu  # not computed there
    assert cached(rows, dict, "cuda:0") == gpu and cached(rows, dict, "cpu") == cpu


def test_a_datasets_baselines_are_cached_by_its_digest_without_hashing_the_rows_again(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path))
    ds = load_dataset(DataConfig(data="digits"))
    first = baselines(ds, 4)
    hashed = []
    monkeypatch.setattr("autoencoders.eval.metrics.arrays_sha256", lambda *a, **k: hashed.append(1) or "rows")
    assert baselines(ds, 4) == first and not hashed  # read back by the dataset's digest alone
    assert len(list((tmp_path / "baselines").iterdir())) == 2  # PCA's and the pixels'
    other = load_dataset(DataConfig(data="digits", val_fraction=0.2))  # other training rows
    assert other.digest() != ds.digest()
    assert baselines(other, 4)["pca_sse_per_image"] != first["pca_sse_per_image"]
    # another torch may draw another probe sample from the same seed: its baselines are its own too
    monkeypatch.setattr(torch, "__version__", "0.0.0")
    baselines(ds, 4)
    assert len(list((tmp_path / "baselines").iterdir())) == 6


def test_a_datasets_digest_is_taken_again_once_a_split_changed():
    ds = load_dataset(DataConfig(data="digits"))
    before = ds.digest()
    assert ds.digest() == before
    full = ds.x_test
    ds.x_test = full[:10].clone()  # replaced by a tensor as unchanged as the one before
    assert ds.digest() != before
    ds.x_test = full
    assert ds.digest() == before
    ds.x_test[0, 0] += 0.5  # changed in place
    changed = ds.digest()
    assert changed != before
    with torch.inference_mode():  # tensors whose changes torch does not count: hashed every time
        same = load_dataset(DataConfig(data="digits"))
    assert same.digest() == before
    with torch.inference_mode():
        same.x_test[0, 0] += 0.5
    assert same.digest() == changed


def test_reconstruction_errors_sum_each_rows_squares_close_to_float64():
    gen = torch.Generator().manual_seed(0)
    x, recon = torch.rand(300, 784, generator=gen), torch.rand(300, 784, generator=gen)
    exact = float((recon.double() - x.double()).pow(2).sum())
    for chunk in (300, 7):
        errors = reconstruction_errors(x, recon, chunk=chunk)
        assert errors["sse_per_image"] == pytest.approx(exact / 300, rel=1e-8)
        assert errors["mse"] == pytest.approx(exact / x.numel(), rel=1e-8)


def test_a_cached_file_that_is_not_a_dict_of_scores_is_computed_again(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path))
    rows = (torch.arange(6.0),)
    assert cached(rows, lambda: {"score": 1}, "cpu") == {"score": 1}
    (file,) = (tmp_path / "baselines").iterdir()
    for damaged in (
        "null",
        "[1]",
        "NaN",
        "{",
        "{}",
        '{"score": 1}',  # without the names it was written under
        '{"score": 1, "names": ["other"]}',
        '{"score": "abc"}',
        '{"score": null}',
        '{"score": [1]}',
        '{"score": true}',
    ):
        file.write_text(damaged)
        assert cached(rows, lambda: {"score": 2}, "cpu") == {"score": 2}  # and written again
        assert json.loads(file.read_text()) == {"score": 2, "names": ["score"]}


def test_a_baseline_that_is_infinite_is_read_back_from_the_cache(tmp_path, monkeypatch):
    """As the PSNR of an exact reconstruction is: computed once, not on every run."""
    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path))
    computed = []
    scores = lambda: computed.append(1) or {"psnr": float("inf"), "se": float("nan")}  # noqa: E731
    for _ in range(2):
        out = cached((torch.arange(6.0),), scores, "cpu")
    assert len(computed) == 1 and out["psnr"] == float("inf") and out["se"] != out["se"]


def test_pca_scores_are_measured_per_code_size_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path))
    rng = np.random.default_rng(0)
    y = torch.arange(3).repeat_interleave(40)
    x = torch.from_numpy(rng.normal(size=(120, 6)) * 0.1).float() + torch.eye(3, 6)[y] * 3
    first = pca_scores(x[::2], y[::2], x[1::2], y[1::2], 2)
    pca = PCA(x[::2], 2)
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
    for file in (tmp_path / "baselines").iterdir():
        file.write_text('{"pca_psnr": 1.0, "names": ["pca_psnr"]}')  # the cache is what the next call returns
    assert pca_scores(x[::2], y[::2], x[1::2], y[1::2], 2) == {"pca_psnr": 1.0}
    for damaged in ("{}", '{"pca_psnr": 1.0}', "[1]"):  # not what it wrote: computed again
        for file in (tmp_path / "baselines").iterdir():
            file.write_text(damaged)
        assert pca_scores(x[::2], y[::2], x[1::2], y[1::2], 2) == first


def test_run_metrics_are_its_test_codes_scores_beside_pca_at_its_code_size(digits_run):
    """Each number recomputed from its definition: the probes fit on the training rows' codes and
    score the test rows' codes; PCA has as many components as the code has units. A row or two may
    fall the other way where the run computed on other threads."""
    m, device = digits_run.metrics, digits_run.metrics["device"]
    ds = load_dataset(digits_run.config.data)
    model = autoencoders.load(digits_run.dir, device=device)
    x_train, y_train = ds.train_sample()
    probe_x, probe_y = probe_sample(x_train, y_train)
    z_probe, z_test = encode_all(model, probe_x.to(device)), encode_all(model, ds.x_test.to(device))
    two_rows = 2 / len(ds.x_test)
    for name, value in code_scores(z_probe, probe_y.to(device), z_test, ds.y_test.to(device)).items():
        assert m[name] == pytest.approx(value, abs=two_rows), name
    pca = pca_scores(x_train, None, ds.x_test, None, 8, device)["pca_sse_per_image"]
    assert m["code_size"] == 8 and m["pca_sse_per_image"] == pytest.approx(pca, rel=1e-5)
    assert pca_scores(x_train, None, ds.x_test, None, 7, device)["pca_sse_per_image"] > pca * 1.01
    assert m["pixels_knn_accuracy"] > 0.9  # digits are easy for kNN on pixels


def test_pca_is_named_by_the_components_it_has(digits_run, tmp_path):
    assert digits_run.metrics["pca_components"] == 8 and pca_name(digits_run.metrics) == "PCA-8"
    wide = autoencoders.train(data="digits", layers=[64, 80], epochs=1, out=str(tmp_path / "r"), **FAST)
    assert wide.metrics["pca_components"] == 64  # digits have 64 features
    assert pca_name(wide.metrics) == "PCA-64, every component"
    assert wide.metrics["pca_sse_per_image"] == pytest.approx(0, abs=1e-6)
    assert pca_name({"code_size": 30}) == "PCA-30"  # a run from before the count was recorded


def test_probe_sample_is_fixed_and_bounded():
    x, y = torch.arange(100.0)[:, None], torch.arange(100)
    assert probe_sample(x, y, n=200)[0] is x  # small data: every row
    xs, ys = probe_sample(x, y, n=30)
    assert len(xs) == 30 and torch.equal(xs[:, 0].long(), ys) and bool((ys.diff() > 0).all())
    assert torch.equal(probe_sample(x, y, n=30)[1], ys)  # the same rows every time


@pytest.fixture(scope="module")
def digits_halves():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    return x[::2], y[::2], x[1::2], y[1::2]


def test_device_probes_agree_with_scikit_learn_on_digits(digits_halves):
    """The torch probes keep scikit-learn's definitions: within 1 point of its numbers on digits."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA as SkPCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xt, yt, xs, ys = digits_halves
    ours = pixel_scores(*(torch.from_numpy(a) for a in digits_halves))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(xt, yt).score(xs, ys)
    knn = KNeighborsClassifier(5, algorithm="brute").fit(xt, yt).score(xs, ys)
    kmeans = clustering_accuracy(ys, KMeans(10, n_init=4, random_state=0).fit_predict(xs.astype(np.float64)))
    assert ours["pixels_linear_probe_accuracy"] == pytest.approx(probe, abs=0.01)
    assert ours["pixels_knn_accuracy"] == pytest.approx(knn, abs=0.01)
    # k-means has local optima: both are restarts from k-means++, so equal within a point, not bitwise
    assert ours["pixels_kmeans_accuracy"] == pytest.approx(kmeans, abs=0.01)
    theirs = SkPCA(8, svd_solver="full").fit(xt)
    sk_sse = ((theirs.inverse_transform(theirs.transform(xs)) - xs) ** 2).sum(1).mean()
    assert float(PCA(torch.from_numpy(xt), 8).squared_errors(torch.from_numpy(xs)).mean()) == pytest.approx(
        sk_sse, rel=1e-6
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_logistic_regression_meets_its_stopping_rule_on_correlated_features(seed):
    """Thirty features sharing one factor, the classes in what is left: the optimum is where losses
    differ below a float32 sum's rounding, and the fit still ends with every gradient entry at
    scikit-learn's tolerance, 1e-4 (measured here in float64)."""
    from autoencoders.eval.probes import logistic_regression, standardize

    g = torch.Generator().manual_seed(seed)
    common, own = torch.randn(20_000, 1, generator=g), torch.randn(20_000, 30, generator=g)
    z = standardize(common + 0.1 * own)[0]
    y = (own[:, :10] @ torch.randn(10, 10, generator=g) + torch.randn(20_000, 10, generator=g)).argmax(1)
    w, b = (t.double().requires_grad_() for t in logistic_regression(z, y, 10))
    loss = torch.nn.functional.cross_entropy(z.double() @ w.T + b, y) + w.pow(2).sum() / (2 * len(z))
    loss.backward()
    # within float32's rounding of the gradient the fit stopped on; a float32 loss left 3e-4 here
    assert max(w.grad.abs().max(), b.grad.abs().max()) < 1.1e-4


def test_a_two_class_probe_is_scikit_learns_binary_logistic_regression(digits_halves):
    """Two classes: scikit-learn fits one weight vector with the penalty ‖w‖² / (2·C·n); the
    softmax's two rows must come to the same w = w₁ − w₀ (at C = 2 they would differ by 0.1)."""
    from sklearn.linear_model import LogisticRegression

    from autoencoders.eval.probes import logistic_regression, standardize

    xt, yt = digits_halves[:2]
    pair = np.flatnonzero((yt == 3) | (yt == 8))[:120]
    z = standardize(torch.from_numpy(xt[pair]))[0]
    y = torch.from_numpy((yt[pair] == 8).astype(np.int64))
    w, b = logistic_regression(z, y, 2)
    theirs = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(z.numpy(), y.numpy())
    np.testing.assert_allclose((w[1] - w[0]).numpy(), theirs.coef_[0], atol=0.02)
    assert float(b[1] - b[0]) == pytest.approx(theirs.intercept_[0], abs=0.02)


def test_minimize_reaches_known_minima():
    """L-BFGS down Rosenbrock's curved valley from its classic start, and to the minimum of a
    quadratic whose curvatures span three orders of magnitude."""
    from autoencoders.eval.probes import minimize

    def rosenbrock(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = x
        valley = b - a * a
        return (1 - a) ** 2 + 100 * valley**2, torch.stack([-2 * (1 - a) - 400 * a * valley, 200 * valley])

    start = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    assert minimize(rosenbrock, start, 200, 1e-8, 10) == pytest.approx(torch.ones(2), abs=1e-5)
    g = torch.Generator().manual_seed(0)
    rotation = torch.linalg.qr(torch.randn(100, 100, generator=g, dtype=torch.float64))[0]
    a = rotation @ torch.diag(torch.logspace(0, 3, 100, dtype=torch.float64)) @ rotation.T
    b = torch.randn(100, generator=g, dtype=torch.float64)
    x = minimize(
        lambda x: (x @ a @ x / 2 - b @ x, a @ x - b), torch.zeros(100, dtype=torch.float64), 1000, 1e-9, 20
    )
    assert (x - torch.linalg.solve(a, b)).abs().max() < 1e-4


def test_minimize_stops_where_no_step_lowers_the_loss_and_refuses_a_start_that_is_not_finite():
    from autoencoders.eval.probes import minimize

    evaluations = []

    def misleading(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x², its gradient given with the wrong sign: every step it points to goes uphill."""
        evaluations.append(1)
        return (x * x).sum(), -2 * x

    start = torch.ones(1, dtype=torch.float64)
    assert torch.equal(minimize(misleading, start, 50, 1e-8, 10), start)  # the loss never rose
    assert len(evaluations) < 40  # one line search, given up
    with pytest.raises(ValueError, match="not a finite number"):
        minimize(lambda x: (x.sum() * float("nan"), x), start, 50, 1e-8, 10)


def test_normalized_mutual_information_is_scikit_learns():
    from sklearn.metrics import normalized_mutual_info_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 300)
    pred = np.where(rng.random(300) < 0.6, y + 10, rng.integers(0, 7, 300))  # partly agreeing
    assert normalized_mutual_information(y, pred) == pytest.approx(normalized_mutual_info_score(y, pred))
    assert normalized_mutual_information(y, y + 3) == pytest.approx(1.0)
    assert normalized_mutual_information(y, np.zeros(300)) == 0.0  # one cluster tells nothing


def test_dead_units_are_those_constant_over_the_rows():
    codes = torch.rand(50, 4)
    codes[:, 1] = 0.0  # a ReLU unit that never fires
    codes[:, 3] = 7.5  # a saturated one
    codes[0, 0] = codes[1, 0] = 0.0  # zero on some rows only: alive, as k-sparse codes are
    assert dead_units(codes) == 2


def test_active_units_are_those_whose_posterior_mean_varies_over_the_rows():
    means = torch.randn(500, 4, generator=torch.Generator().manual_seed(0))
    means[:, 1] *= 0.05  # variance about 0.0025: collapsed to the prior, yet not constant
    means[:, 3] = 2.0  # dead
    assert active_units(means) == 2 and dead_units(means) == 1


def test_majority_class_accuracy_is_what_guessing_the_commonest_training_class_scores(digits_run):
    from autoencoders.eval.metrics import majority_class_accuracy

    assert majority_class_accuracy(torch.tensor([0, 1, 1, 2]), torch.tensor([1, 1, 1, 0, 2])) == 0.6
    assert 0.05 < digits_run.metrics["majority_class_accuracy"] < 0.15  # ten nearly even classes


def test_knn_of_wide_rows_in_blocks_of_as_many_rows_as_features(monkeypatch):
    """Wide rows are ranked in blocks of at least as many query rows as features: the same
    neighbours as scikit-learn's, however the blocks fall."""
    from sklearn.neighbors import KNeighborsClassifier

    from autoencoders.eval import probes

    rng = np.random.default_rng(0)
    x_train, x_test = rng.normal(size=(300, 50)), rng.normal(size=(230, 50))
    y_train = rng.integers(0, 4, 300)
    expected = KNeighborsClassifier(5).fit(x_train, y_train).predict(x_test)
    monkeypatch.setattr(probes, "DISTANCE_BLOCK", 7 * 300)  # 7 rows a block by the size alone
    assert probes._blocks(230, 300, 50).step == 50
    as_tensors = [torch.from_numpy(a) for a in (x_train, y_train, x_test)]
    np.testing.assert_array_equal(probes.knn_predict(*as_tensors).numpy(), expected)
    monkeypatch.setattr(probes, "DISTANCE_BLOCK_MOST", 20 * 300)  # at most 20 rows
    assert probes._blocks(230, 300, 50).step == 20
    np.testing.assert_array_equal(probes.knn_predict(*as_tensors).numpy(), expected)


@pytest.mark.parametrize("shape", [(300, 64), (43, 500)], ids=["tall", "wide"])
def test_pca_agrees_with_scikit_learns_on_tall_and_wide_rows(shape):
    """Wide rows (fewer than their features) take the rows' own SVD: a features × features
    covariance of 10,000 features took minutes; the components are scikit-learn's either way."""
    from sklearn.decomposition import PCA as ScikitPCA

    from autoencoders.eval.probes import PCA

    rng = np.random.default_rng(0)
    x, rows = rng.random(shape), rng.random((20, shape[1]))
    ours, theirs = PCA(torch.from_numpy(x), 10), ScikitPCA(10, svd_solver="full").fit(x)
    np.testing.assert_allclose(ours.explained_variance.numpy(), theirs.explained_variance_)
    recon = theirs.inverse_transform(theirs.transform(rows))
    np.testing.assert_allclose(
        ours.squared_errors(torch.from_numpy(rows)).numpy(), ((recon - rows) ** 2).sum(1)
    )


def test_rows_far_from_zero_keep_their_spread_in_pca_and_standardisation():
    """Rows are centred before their float32 products: float64 rows a million from zero keep spreads
    of a few units, which float32's 24 bits would round to 1/16; float32 rows at 1000 ± 0.01 lose
    no more than their own rounding to a mean rounded to float32 first."""
    from autoencoders.eval.probes import PCA, standardize

    g = torch.Generator().manual_seed(0)
    spread = torch.randn(1000, 5, generator=g, dtype=torch.float64) * torch.arange(1, 6)
    far = 1e6 + spread
    torch.testing.assert_close(standardize(far)[0], standardize(spread)[0], atol=1e-5, rtol=0)
    near, shifted = PCA(spread, 2), PCA(far, 2)
    torch.testing.assert_close(shifted.explained_variance, near.explained_variance, rtol=1e-5, atol=0)
    torch.testing.assert_close(shifted.squared_errors(far), near.squared_errors(spread), rtol=1e-4, atol=1e-6)
    rows = (1000 + 0.01 * spread).float()
    exact = (rows.double() - rows.double().mean(0)) / rows.double().std(0, correction=0)
    torch.testing.assert_close(standardize(rows)[0].double(), exact, atol=1e-5, rtol=0)


def test_kmeans_scores_need_two_test_rows_per_class(tmp_path):
    """With as many clusters as test rows each row is a cluster: a perfect score of nothing, left out."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    z = torch.from_numpy(x[:40] / 16).float()
    few = code_scores(z, torch.from_numpy(y[:40]), z[:12], torch.from_numpy(y[:12]))
    assert "kmeans_accuracy" not in few and "knn_accuracy" in few  # 10 classes in 12 rows
    many = code_scores(z, torch.from_numpy(y[:40]), z[:20], torch.from_numpy(y[:20]))
    assert {"kmeans_accuracy", "kmeans_nmi"} <= many.keys()
    run = autoencoders.train(
        data=x[:20] / 16,
        labels=y[:20],
        layers=[64, 8, 2],
        epochs=1,
        test_fraction=0.05,
        out=tmp_path / "r",
        **FAST,
    )
    assert run.metrics["n_test"] == 1 and not any("kmeans" in k for k in run.metrics)

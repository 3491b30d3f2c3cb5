"""Clustering a run's rows by their codes: the scores, DEC's pieces, every method on separated blobs,
saved clusterers, the CLI and bad input."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import DEVICE, FAST, on_cpu
from sklearn.datasets import load_digits
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

import autoencoders
from autoencoders.cli import main
from autoencoders.clustering.methods import Clustering, find_clusters
from autoencoders.commands import _seconds
from autoencoders.errors import SettingWarning, UserError
from autoencoders.eval import probes
from autoencoders.eval.agreement import adjusted_rand_index, cluster_scores
from autoencoders.eval.clustering import (
    _mixture_parameters,
    em,
    gaussian_log_responsibilities,
    gaussian_mixture,
    kmeans_baselines,
    soft_assignment,
    target_distribution,
)
from autoencoders.eval.metrics import PROBE_ROWS
from autoencoders.options import CLUSTER_METHODS
from autoencoders.trained import open_run


def test_a_permuted_labelling_scores_one_and_ari_is_scikit_learns():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 300)
    permuted = np.array([3, 0, 4, 1, 2])[y] + 10  # other names, same partition
    assert cluster_scores(y, permuted) == {
        "accuracy": 1.0,
        "nmi": pytest.approx(1.0),
        "ari": pytest.approx(1.0),
    }
    for _ in range(3):
        a, b = rng.integers(0, 4, 200), rng.integers(0, 6, 200)
        assert adjusted_rand_index(a, b) == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)
    assert cluster_scores(y, np.zeros_like(y))["accuracy"] == pytest.approx(np.bincount(y).max() / len(y))


def test_soft_assignment_is_students_t_and_the_target_sums_to_one_and_sharpens():
    torch.manual_seed(0)
    z, centres = torch.randn(50, 3), torch.randn(4, 3)
    q = soft_assignment(z, centres)
    kernel = 1 / (1 + torch.cdist(z, centres).pow(2))
    torch.testing.assert_close(q, kernel / kernel.sum(1, keepdim=True))
    assert torch.equal(q.argmax(1), torch.cdist(z, centres).argmin(1))
    p = target_distribution(q)
    torch.testing.assert_close(p.sum(1), torch.ones(50))

    def entropy(t: torch.Tensor) -> torch.Tensor:
        return -(t * t.log()).sum(1)

    assert (entropy(p) < entropy(q)).float().mean() > 0.9 and entropy(p).mean() < entropy(q).mean()
    assert (p.max(1).values >= q.max(1).values - 1e-6).float().mean() > 0.9


def test_gaussian_responsibilities_are_scikit_learns():
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(c, 0.5 + c / 4, (100, 3)) for c in range(3)])
    gm = GaussianMixture(3, covariance_type="full", random_state=0).fit(z)
    log_r = gaussian_log_responsibilities(
        torch.from_numpy(z),
        torch.from_numpy(gm.means_),
        torch.from_numpy(gm.precisions_cholesky_),
        torch.log(torch.from_numpy(gm.weights_)),
    )
    np.testing.assert_allclose(log_r.exp().numpy(), gm.predict_proba(z), atol=1e-10)


def test_em_from_the_same_start_ends_where_scikit_learns_does():
    """The mixture's EM on digits (PCA-10, 10 components) from the same k-means clusters:
    scikit-learn's means, weights, precisions and mean log-likelihood."""
    x = load_digits().data / 16
    z = torch.from_numpy(x - x.mean(0)) @ torch.linalg.svd(torch.from_numpy(x - x.mean(0)))[2][:10].T
    labels = probes.kmeans(z, 10, n_init=1, seed=0)[0]
    start = _mixture_parameters(z.double(), torch.eye(10, dtype=torch.float64)[labels])
    lower_bound, (means, precision_cholesky, weights), settled = em(z.double(), labels, 10)
    precisions = start[1] @ start[1].mT
    gm = GaussianMixture(
        10, covariance_type="full", reg_covar=1e-5, means_init=start[0].numpy(),
        weights_init=start[2].numpy(), precisions_init=precisions.numpy(),
    ).fit(z.numpy())  # fmt: skip
    assert settled and gm.converged_ and gm.n_iter_ > 5  # EM moved well away from its start
    np.testing.assert_allclose(means.numpy(), gm.means_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(weights.numpy(), gm.weights_, rtol=1e-6)
    np.testing.assert_allclose(precision_cholesky.numpy(), gm.precisions_cholesky_, rtol=1e-5, atol=1e-6)
    assert lower_bound == pytest.approx(gm.lower_bound_, rel=1e-9)


def test_a_mixture_with_one_best_fit_is_scikit_learns():
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(3 * c, 1 + c / 4, (150, 4)) for c in range(4)])
    means, precision_cholesky, weights, bic = gaussian_mixture(torch.from_numpy(z), 4, seed=0, n_init=3)
    gm = GaussianMixture(4, covariance_type="full", reg_covar=1e-5, n_init=3, random_state=0).fit(z)
    assert bic == pytest.approx(gm.bic(z), rel=1e-9)
    ours = gaussian_log_responsibilities(torch.from_numpy(z), means, precision_cholesky, torch.log(weights))
    assert adjusted_rand_index(gm.predict(z), ours.argmax(1).numpy()) == 1.0


def test_a_mixture_that_does_not_settle_says_so():
    z = torch.randn(300, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.warns(SettingWarning, match="EM did not settle in 2 steps"):
        gaussian_mixture(z, 6, seed=0, max_iter=2)


def test_a_mixture_whose_covariance_collapses_says_so():
    z = torch.randn(200, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z[:, 5] = z[:, 4] * 1e9 + z[:, 3]  # two directions 1e9 apart in scale: no invertible covariance
    with pytest.raises(UserError, match="covariance collapsed .*give a smaller --k, or use --method kmeans"):
        gaussian_mixture(z * 1e6, 4, seed=0)


@pytest.fixture(scope="module")
def blobs_run(tmp_path_factory):
    """A run on 4 well-separated blobs in 12-D (240 rows, labels known)."""
    root = tmp_path_factory.mktemp("blobs")
    rng = np.random.default_rng(0)
    centres = rng.random((4, 12))
    y = np.repeat(np.arange(4), 60)
    x = (centres[y] + rng.normal(0, 0.03, (240, 12))).astype(np.float32)
    np.save(root / "x.npy", x)
    np.save(root / "y.npy", y)
    out = root / "run"
    autoencoders.train(
        data=f"npy:{root / 'x.npy'}", labels=str(root / "y.npy"), layers=[12, 16, 3], epochs=60,
        batch_size=16, loss="mse", out=str(out), val_fraction=0.0, compare=False, **FAST,
    )  # fmt: skip
    return out, x, y


@pytest.mark.parametrize("method", CLUSTER_METHODS)
def test_every_method_recovers_separated_blobs_and_writes_its_files(blobs_run, method, tmp_path):
    run, x, y = blobs_run
    out = tmp_path / method
    result = autoencoders.cluster(run, method=method, out=out, quiet=True)
    assert result.summary["k"] == 4 and result.summary["rows"] == 240  # k: the number of classes
    assert result.summary["accuracy"] == 1.0 and result.summary["ari"] == pytest.approx(1.0)
    assert result.summary["pixels_kmeans_accuracy"] > 0.9  # the baseline beside it, on the same rows
    with open(out / "clusters.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 240 and [int(r["cluster"]) for r in rows] == result.labels.tolist()
    assert [int(r["label"]) for r in rows] == y.tolist()
    saved = json.loads((out / "clusters.json").read_text())
    assert saved["method"] == method and saved["settings"]["k"] == 4 and saved["seconds"] > 0
    assert ("gamma" in saved["settings"]) == (method == "idec")  # only the options the method uses
    assert ("tol" in saved["settings"]) == (method in ("dec", "idec"))
    assert ("dims" in saved["settings"]) == (method == "manifold")
    assert (out / "clusters.png").stat().st_size > 0 and (out / "cluster-map.png").stat().st_size > 0
    if method in ("dec", "idec"):  # 240 rows are one batch: the target is refreshed every update
        assert saved["target_refresh_interval"] == 1
        # settling is judged over DEC's 140 updates, not one short epoch: the 100 epochs end first
        assert saved["updates"] == 100 and saved["last_changed_fraction"] is None
        assert not saved["converged"]


@pytest.mark.parametrize("method", ["kmeans", "gmm", "dec"])
def test_a_saved_clusterer_reloads_to_identical_assignments_of_new_rows(blobs_run, method, tmp_path):
    run, x, _ = blobs_run
    result = autoencoders.cluster(run, method=method, out=tmp_path / "c", quiet=True)
    clusterer = autoencoders.load(tmp_path / "c")
    assert isinstance(clusterer, autoencoders.Clusterer) and clusterer.k == 4
    offset, span = open_run(run).scaler
    scaled = torch.from_numpy((x - offset) / span).float()
    # both on the CPU: the loaded clusterer's device, whatever the one the clustering ran on
    torch.testing.assert_close(
        clusterer.assign(scaled), on_cpu(result.clusterer).assign(scaled), rtol=0, atol=0
    )
    assert np.array_equal(clusterer.assign(scaled).argmax(1).numpy(), result.labels)
    assert clusterer.assign(scaled).dtype == torch.float32  # the rows' precision, whatever the centres'
    new_rows = f"npy:{run.parent / 'x.npy'}"
    predicted, proba, clusters = autoencoders.predict(tmp_path / "c", new_rows, device=DEVICE)
    assert np.array_equal(predicted, result.labels) and proba.shape == (240, 4)
    with pytest.raises(SystemExit) as done:
        main(["predict", str(tmp_path / "c"), "--data", new_rows, "--out", str(tmp_path / "p.csv")])
    assert done.value.code == 0
    header = (tmp_path / "p.csv").read_text().splitlines()[0]
    assert header.startswith("row,cluster,p_0,")  # named as in clusters.csv


def test_a_mixtures_bic_is_lowest_at_the_number_of_blobs(blobs_run, tmp_path):
    run, _, _ = blobs_run
    bic = {
        k: autoencoders.cluster(run, method="gmm", k=k, out=tmp_path / str(k), quiet=True).summary["gmm_bic"]
        for k in (2, 3, 4, 6)
    }
    assert min(bic, key=bic.get) == 4, bic
    saved = json.loads((tmp_path / "4" / "clusters.json").read_text())
    assert saved["gmm_bic"] == bic[4]


def test_idec_with_gamma_zero_is_dec(blobs_run):
    run, x, _ = blobs_run
    opened = open_run(run)
    rows = torch.from_numpy((x - opened.scaler[0]) / opened.scaler[1]).float()
    results = []
    for method in ("dec", "idec"):
        how = Clustering(
            method=method, k=4, seed=0, gamma=0.0 if method == "idec" else 1.0, update_interval=5
        )
        results.append(find_clusters(opened.model, rows, how, opened.cfg.train))
    dec, idec = results
    assert np.array_equal(dec.labels, idec.labels) and dec.details == idec.details
    for a, b in zip(dec.clusterer.state_dict().values(), idec.clusterer.state_dict().values()):
        assert torch.equal(a, b)
    assert dec.clusterer.autoencoder is not opened.model  # the run's model is left as it was
    # γ > 0 trains something else: the decoder too, on the reconstruction beside the KL
    how = Clustering(method="idec", k=4, seed=0, gamma=10.0, update_interval=5)
    kept = find_clusters(opened.model, rows, how, opened.cfg.train).clusterer.state_dict()
    decoder = [k for k in kept if ".decoder" in k or k.startswith("autoencoder.decoder")]
    assert decoder and any(not torch.equal(kept[k], dec.clusterer.state_dict()[k]) for k in decoder)


def test_dec_is_not_penalised_by_the_weight_decay_the_autoencoder_trained_with(blobs_run):
    """DEC's objective has no penalty: the run's --weight-decay would shrink the centres too."""
    run, x, _ = blobs_run
    opened = open_run(run)
    rows = torch.from_numpy((x - opened.scaler[0]) / opened.scaler[1]).float()
    how = Clustering(method="dec", k=4, seed=0, update_interval=5, epochs=5, tol=0.0)
    found = [
        find_clusters(opened.model, rows, how, dataclasses.replace(opened.cfg.train, weight_decay=decay))
        for decay in (0.0, 0.5)
    ]
    for a, b in zip(*(f.clusterer.state_dict().values() for f in found), strict=True):
        assert torch.equal(a, b)


def test_dec_judges_settling_over_the_update_interval_not_one_short_epoch(blobs_run):
    run, x, _ = blobs_run
    opened = open_run(run)
    rows = torch.from_numpy((x - opened.scaler[0]) / opened.scaler[1]).float()
    how = Clustering(method="dec", k=4, seed=0, update_interval=7)
    details = find_clusters(opened.model, rows, how, opened.cfg.train).details
    # one batch an epoch: the target is refreshed every update, settling checked every 7
    assert details["target_refresh_interval"] == 1 and details["converged"]
    assert details["updates"] >= 7 and details["updates"] % 7 == 0
    # four batches an epoch: refreshed every 4 updates, checked at the first refresh 10 or more
    # updates after the last check (12, 24, ...)
    how = Clustering(method="dec", k=4, seed=0, update_interval=10, batch_size=64)
    details = find_clusters(opened.model, rows, how, opened.cfg.train).details
    assert details["target_refresh_interval"] == 4 and details["converged"]
    assert details["updates"] % 12 == 0


def test_dec_moves_the_encoder_and_centres_and_idec_keeps_reconstructing(blobs_run):
    run, x, _ = blobs_run
    opened = open_run(run)
    rows = torch.from_numpy((x - opened.scaler[0]) / opened.scaler[1]).float()
    before = {k: v.clone() for k, v in opened.model.state_dict().items()}
    how = Clustering(method="idec", k=4, seed=0, update_interval=2, tol=0.0, epochs=3)
    result = find_clusters(opened.model, rows, how, opened.cfg.train)
    after = result.clusterer.autoencoder.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("encoder"))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder"))
    assert all(torch.equal(before[k], v) for k, v in opened.model.state_dict().items())
    assert len(result.history) == 3 and {"train_kl", "train_recon"} <= set(result.history[0])
    assert not result.details["converged"]  # tol 0: it ran every epoch


def test_cluster_command_prints_scores_and_the_report_gets_a_section(blobs_run, capsys):
    run, _, _ = blobs_run
    autoencoders.figures.report.write_report(run)
    with pytest.raises(SystemExit) as e:
        main(["cluster", str(run), "--method", "gmm", "--k", "3", "--quiet"])
    assert e.value.code == 0
    printed = capsys.readouterr().out
    assert "3 clusters of 240 rows (gmm" in printed and "k-means on the raw rows" in printed
    assert (run / "cluster-gmm-3" / "clusters.json").is_file()
    page = (run / "report.html").read_text()
    assert "Clusters" in page and "cluster-gmm-3" in page
    with pytest.raises(SystemExit) as e:  # another split's clustering goes beside it
        main(["cluster", str(run), "--method", "gmm", "--k", "3", "--split", "test", "--quiet"])
    assert e.value.code == 0
    assert json.loads((run / "cluster-gmm-3-test" / "clusters.json").read_text())["split"] == "test"
    assert json.loads((run / "cluster-gmm-3" / "clusters.json").read_text())["split"] == "all"
    seeded = autoencoders.cluster(run, method="gmm", k=3, seed=5, quiet=True)  # beside the run's seed's
    assert seeded.out == run / "cluster-gmm-3-seed5" and (run / "cluster-gmm-3").is_dir()
    capsys.readouterr()
    argv = ["cluster", str(run), "--method", "dec", "--k", "3", "--epochs", "1", "--tol", "0", "--quiet"]
    with pytest.raises(SystemExit) as done:
        main([*argv, "--out", str(run / "dec")])
    assert done.value.code == 0
    saved = json.loads((run / "dec" / "clusters.json").read_text())
    said = f"(dec, {_seconds(saved['seconds'])}, {saved['updates']} updates, stopped by --epochs before the "
    printed = capsys.readouterr().out
    assert said + "assignments were first checked for settling)" in printed  # as clusters.json records it
    assert saved["last_changed_fraction"] is None
    assert f"the k-means it started from {saved['kmeans_start_accuracy']:.4f}\n" in printed
    with pytest.raises(SystemExit) as done:  # 140 updates: checked once, not settled at --tol 0
        main([*argv[:-4], "140", "--tol", "0", "--batch-size", "240", "--quiet", "--out", str(run / "dec2")])
    assert done.value.code == 0
    assert "140 updates, stopped by --epochs before settling)" in capsys.readouterr().out


def test_dec_ending_below_the_k_means_it_started_from_is_said(blobs_run, tmp_path, monkeypatch):
    """DEC's claim is to improve on k-means of the codes: where it falls below, the numbers say so."""
    import autoencoders.clusters as clusters_module

    run, _, y = blobs_run

    def from_a_perfect_start(*args, **kwargs):
        result = find_clusters(*args, **kwargs)
        worse = y.copy()
        worse[:30] = (y[:30] + 1) % 4  # the blobs are easy: DEC keeps every row in its class
        return dataclasses.replace(result, labels=worse, start=y.copy())

    monkeypatch.setattr(clusters_module, "find_clusters", from_a_perfect_start)
    with pytest.warns(
        SettingWarning,
        match=r"^DEC ended below the k-means it started from \(accuracy 0\.\d+ against 1\.0000\)",
    ):
        result = autoencoders.cluster(run, method="dec", k=4, epochs=1, out=tmp_path / "dec", quiet=True)
    assert result.summary["kmeans_start_accuracy"] == 1.0 and result.summary["accuracy"] == 0.875

    def a_row_below(*args, **kwargs):
        result = find_clusters(*args, **kwargs)
        worse = y.copy()
        worse[0] = (y[0] + 1) % 4  # one row of 240: 0.4 points, noise
        return dataclasses.replace(result, labels=worse, start=y.copy())

    monkeypatch.setattr(clusters_module, "find_clusters", a_row_below)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SettingWarning)
        autoencoders.cluster(run, method="dec", k=4, epochs=1, out=tmp_path / "dec2", quiet=True)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--k", "1"], "argument --k: must be >= 2, got 1"),
        (["--k", "241"], "more clusters than the 240 rows"),
        (["--method", "spectral"], "invalid choice: 'spectral'"),
        (["--gamma", "2"], "give --method idec too"),
        (["--dims", "2"], "give --method manifold too"),
    ],
)
def test_bad_cluster_options_get_one_line(blobs_run, argv, message, capsys):
    run, _, _ = blobs_run
    with pytest.raises(SystemExit) as e:
        main(["cluster", str(run), "--quiet", *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_labels_of_the_wrong_length_unlabelled_rows_and_collapsed_codes_are_refused(blobs_run, tmp_path):
    run, x, y = blobs_run
    with pytest.raises(UserError, match="labels has 239 entries but there are 240 rows"):
        autoencoders.cluster(run, data=x, labels=y[:-1], out=tmp_path / "a")
    with pytest.raises(
        UserError, match=r"labels must hold one label per row \(a 1-D array\), got shape \(240, 2\)"
    ):
        autoencoders.cluster(run, data=x, labels=np.stack([y, y], 1), out=tmp_path / "a")
    with pytest.raises(UserError, match=r"unknown option 'gama' \(did you mean 'gamma'\?\)"):
        autoencoders.cluster(run, method="idec", gama=3.0, out=tmp_path / "a")
    with pytest.raises(UserError, match="no labels to count the classes of; give the number of clusters, k"):
        autoencoders.cluster(run, data=x, out=tmp_path / "b")
    opened = open_run(run)
    with torch.no_grad():
        for p in opened.model.parameters():
            p.zero_()
    how = Clustering(method="kmeans", k=4, seed=0)
    with pytest.raises(UserError, match="take only 1 distinct values, fewer than the 4 clusters"):
        find_clusters(opened.model, torch.from_numpy(x), how, opened.cfg.train)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="holds files that are not a clustering's"):
        autoencoders.cluster(run, out=tmp_path / "c")


def test_kmeans_baselines_on_many_wide_rows_fit_the_raw_rows_on_a_sample_and_assign_every_row(monkeypatch):
    fitted, real = [], probes.kmeans
    monkeypatch.setattr(probes, "kmeans", lambda z, *a, **kw: fitted.append(len(z)) or real(z, *a, **kw))
    generator = torch.Generator().manual_seed(0)
    y = torch.arange(PROBE_ROWS + 5000) % 3
    x = torch.randn(len(y), 4, generator=generator) * 0.1 + torch.eye(4)[y]  # three blobs
    scores = kmeans_baselines(x, y.numpy(), 3, 2, seed=0, n_init=1, device="cpu")
    assert fitted == [PROBE_ROWS, len(x)]  # the raw rows' centres from a sample; PCA codes from all
    assert scores["pixels_kmeans_accuracy"] == scores["pca_kmeans_accuracy"] == 1.0  # every row assigned


def test_nearest_centre_assigns_rows_as_kmeans_does():
    z = torch.randn(500, 6, generator=torch.Generator().manual_seed(1))
    labels, _, centres = probes.kmeans(z, 4, n_init=2, seed=0)
    assert torch.equal(probes.nearest_centre(z, centres), labels)


def test_a_clustering_that_cannot_be_read_says_why(blobs_run, tmp_path):
    run, x, _ = blobs_run
    autoencoders.cluster(run, method="kmeans", out=tmp_path / "c", quiet=True)
    summary = json.loads((tmp_path / "c" / "clusters.json").read_text())
    summary["autoencoder"]["data"]["shuffle_twice"] = True  # written by another version, say
    (tmp_path / "c" / "clusters.json").write_text(json.dumps(summary))
    with pytest.raises(UserError, match=r"unknown key\(s\) 'shuffle_twice' in \[data\].*make it again with"):
        autoencoders.predict(tmp_path / "c", x[:5])


def test_an_update_interval_longer_than_the_training_is_warned_of(blobs_run, tmp_path):
    from autoencoders.errors import SettingWarning

    run, _, _ = blobs_run  # 240 rows: one batch of 256, one update an epoch
    said = "--update-interval 51 is longer than the 50 updates of --epochs 50"
    with pytest.warns(SettingWarning, match=said):
        autoencoders.cluster(run, method="dec", epochs=50, update_interval=51, out=tmp_path / "d", quiet=True)


def test_a_mixture_with_more_numbers_than_rows_is_warned_of_where_it_was_asked_for(blobs_run, tmp_path):
    from autoencoders.errors import SettingWarning

    run, _, _ = blobs_run  # 240 rows, 3-D codes: each full-covariance cluster fits 3 + 6 numbers
    said = "mixture of 30 clusters with full covariances in 3 dimensions fits 299 numbers to 240 rows"
    with pytest.warns(SettingWarning, match=said) as caught:
        autoencoders.cluster(run, method="gmm", k=30, out=tmp_path / "30", quiet=True)
    assert {Path(w.filename).name for w in caught if said in str(w.message)} == {Path(__file__).name}
    with warnings.catch_warnings():
        warnings.simplefilter("error", SettingWarning)
        autoencoders.cluster(run, method="gmm", k=4, out=tmp_path / "4", quiet=True)  # 39 numbers


def test_a_k_counted_from_fewer_classes_than_the_run_names_is_said(blobs_run, tmp_path, capsys):
    _, x, y = blobs_run
    names = np.array(["ash", "birch", "cedar", "elm"])[y]
    out = str(tmp_path / "run")
    run = autoencoders.train(data=x, labels=names, layers=[12, 3], epochs=2, out=out, **FAST)
    assert run.config.data.classes == ["ash", "birch", "cedar", "elm"]
    two = np.isin(names, ["ash", "elm"])
    result = autoencoders.cluster(run.dir, data=x[two], labels=names[two], out=tmp_path / "two", quiet=False)
    assert result.summary["k"] == 2
    said = "k = 2, the classes among these rows' labels, of the 4 the run's data names; give --k"
    assert said in capsys.readouterr().err
    autoencoders.cluster(run.dir, out=tmp_path / "all", quiet=False)  # every class among the rows
    assert "the classes among these rows' labels" not in capsys.readouterr().err


@pytest.mark.slow  # a process of its own
def test_methods_that_train_nothing_load_no_compiler(digits_run, tmp_path):
    """k-means, a mixture and kNN classification load nothing of torch's compiler stack (about 1 s
    on a 2-core CPU, which torch's own optimizers import when built)."""
    run = shutil.copytree(digits_run.dir, tmp_path / "run")  # they write into the run's report
    script = "\n".join(
        [
            "import sys, autoencoders",
            f"run, to = {str(run)!r}, {str(tmp_path)!r}",
            "autoencoders.cluster(run, method='kmeans', out=to + '/k', quiet=True)",
            "autoencoders.cluster(run, method='gmm', out=to + '/g', quiet=True)",
            "autoencoders.classify(run, 0.1, method='knn', out=to + '/c', quiet=True)",
            "print('torch._dynamo' in sys.modules)",
        ]
    )
    said = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert said.stdout.split()[-1] == "False"


def test_a_clustering_is_written_whole_or_not_at_all(digits_run, tmp_path, monkeypatch):
    """A stop while its figures are drawn (seconds, after the clusters are found) leaves the
    clustering there before, not one without its figures; what it did not write refuses --out."""
    from autoencoders import clusters

    out = tmp_path / "c"
    first = autoencoders.cluster(digits_run.dir, k=3, out=out, quiet=True)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"clusters.png", "cluster-map.png", "clusters.json"} <= before.keys()

    def stopped(new, *args):
        (new / "clusters.png").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(clusters, "_figures", stopped)
    with pytest.raises(KeyboardInterrupt):
        autoencoders.cluster(digits_run.dir, k=4, out=out, quiet=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and first.summary["k"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["c"]  # nothing left beside it
    monkeypatch.undo()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"holds a clustering and what it did not write \(notes\.txt\); move"):
        autoencoders.cluster(digits_run.dir, k=4, out=out, quiet=True)

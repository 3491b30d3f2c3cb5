"""The classifier head on a trained encoder: shared parameters, label subsets, CLI and API."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from helpers import DEVICE, FAST, on_cpu
from safetensors.torch import load_file

import autoencoders
from autoencoders.classify.few_labels import labelled_subset
from autoencoders.classify.heads import EncoderClassifier
from autoencoders.cli import main
from autoencoders.config import UserError
from autoencoders.training.optimizers import Adam


def test_classifier_trains_the_autoencoders_own_encoder():
    ae = autoencoders.DenseAutoencoder([6, 4, 2])
    clf = EncoderClassifier(ae, n_classes=3)
    assert clf.autoencoder.encoder[0].weight is ae.encoder[0].weight
    with torch.no_grad():
        ae.encoder[0].weight.add_(1.0)
    assert torch.equal(clf.autoencoder.encoder[0].weight, ae.encoder[0].weight)
    assert clf(torch.rand(5, 6)).shape == (5, 3)


def test_the_head_gets_the_codes_in_use_while_semi_reconstruction_keeps_winner_take_all():
    from autoencoders.classify.few_labels import SemiLosses
    from autoencoders.models.layers import CodeSelect

    torch.manual_seed(0)
    ae = autoencoders.DenseAutoencoder([6, 8], code_activation="relu", code_select=CodeSelect(lifetime=0.25))
    clf = EncoderClassifier(ae, n_classes=3).train()
    x = torch.rand(40, 6)
    dense = clf.head(ae.eval().encode(x))
    ae.train()
    assert torch.equal(clf(x), dense)  # no lifetime selection on the classifier's path
    assert ae.training and (ae.encode(x) == 0).float().mean() > 0.5  # the autoencoder still selects
    semi = SemiLosses(clf, weight=1.0).train()
    with torch.no_grad():
        sparse_loss = semi.reconstruction(x, x)["loss"]
        ae.eval()
        dense_loss = semi.reconstruction(x, x)["loss"]
    assert sparse_loss != dense_loss  # the reconstruction term trains the winner-take-all code


def test_labelled_subset_is_stratified_and_deterministic():
    y = np.repeat(np.arange(4), [100, 50, 10, 2])
    rows = labelled_subset(y, 0.1, seed=0)
    counts = np.bincount(y[rows], minlength=4)
    assert counts.tolist() == [10, 5, 1, 1]  # every class keeps at least one label
    np.testing.assert_array_equal(rows, labelled_subset(y, 0.1, seed=0))
    with pytest.raises(UserError, match="labels-fraction"):
        labelled_subset(y, 0.0, seed=0)


def test_classify_beats_chance_and_leaves_the_run_untouched(digits_run, tmp_path):
    before = autoencoders.load(digits_run.dir).state_dict()
    result = autoencoders.classify(digits_run.dir, 0.5, out=tmp_path / "c", epochs=20, lr=5e-3, **FAST)
    assert result.metrics["test_accuracy"] > 0.5  # 10 classes: chance is 0.1
    n_train = digits_run.metrics["n_train"]
    assert abs(result.metrics["labelled_examples"] - n_train / 2) <= 10  # half, rounded per class
    saved = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert saved["test_accuracy"] == result.metrics["test_accuracy"]
    assert (tmp_path / "c" / "classifier.safetensors").is_file()
    after = autoencoders.load(digits_run.dir).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_classifier_starts_from_the_pretrained_encoder_unless_from_scratch(digits_run, tmp_path):
    kw = dict(epochs=1, method="frozen", **FAST)  # a frozen encoder keeps its starting weights
    pre = autoencoders.classify(digits_run.dir, 1.0, out=tmp_path / "a", **kw).model
    scratch = autoencoders.classify(digits_run.dir, 1.0, out=tmp_path / "b", from_scratch=True, **kw).model
    trained = digits_run.model.encoder[0].weight
    assert torch.equal(pre.autoencoder.encoder[0].weight, trained)
    assert not torch.equal(scratch.autoencoder.encoder[0].weight, trained)


def test_classify_needs_labels(tmp_path, npy_data):
    xp, _, _ = npy_data
    run = autoencoders.train(data=f"npy:{xp}", layers=[6, 3], epochs=1, out=str(tmp_path / "r"), **FAST)
    with pytest.raises(UserError, match="labels"):
        autoencoders.classify(run.dir, 0.5, epochs=1, **FAST)


def test_classify_cli(digits_run, tmp_path, capsys):
    out = tmp_path / "cli"
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "classify",
                str(digits_run.dir),
                "--labels-fraction",
                "0.2",
                "--epochs",
                "2",
                "--quiet",
                "--out",
                str(out),
            ]
        )
    assert exc.value.code == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and f"wrote {out}" in printed  # where predict finds it
    m = json.loads((out / "metrics.json").read_text())
    raw = m["pixels_linear_probe_accuracy"]  # the same labels without the encoder: digits' pixels
    assert 0.85 < raw < 1 and f"the same {m['labelled_examples']} labelled rows' pixels" in printed
    assert f"without the encoder: {raw:.4f}, above the classifier\n" in printed  # at chance: no why
    with pytest.raises(SystemExit) as exc:
        main(["sample", str(out), "--out", str(tmp_path / "s.png")])
    assert exc.value.code == 2
    assert f"it holds a classifier made from the run {digits_run.dir}: give that" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["classify", str(digits_run.dir), "--labels-fraction", "2", "--quiet", "--out", str(out)])
    assert exc.value.code == 2
    assert "labels-fraction" in capsys.readouterr().err


def test_a_classifier_below_the_pixels_is_told_why_where_the_runs_probes_say(digits_run, tmp_path, capsys):
    """This 3-epoch run's codes hold less than digits' pixels (its linear probes say so): a classifier
    that learned from them falls below the pixels', and the line says why."""
    argv = ["classify", str(digits_run.dir), "--n-labels", "100", "--method", "frozen", "--quiet"]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", str(tmp_path / "clf")])
    assert exc.value.code == 0
    printed, m = capsys.readouterr().out, json.loads((tmp_path / "clf" / "metrics.json").read_text())
    run, raw = digits_run.metrics, m["pixels_linear_probe_accuracy"]
    assert m["majority_class_accuracy"] < m["test_accuracy"] < raw
    assert run["linear_probe_accuracy"] < run["pixels_linear_probe_accuracy"]
    assert (
        f"without the encoder: {raw:.4f}, above the classifier: the run's codes keep less of what tells "
        f"these classes apart than its pixels (its own linear probes, with its training labels: codes "
        f"{run['linear_probe_accuracy']:.3f}, pixels {run['pixels_linear_probe_accuracy']:.3f})\n"
    ) in printed


def test_frozen_encoder_trains_the_head_only_and_reports_the_labels_used(digits_run, tmp_path, capsys):
    from autoencoders.cli import run as cli_run

    out = tmp_path / "frozen"
    assert cli_run(["classify", str(digits_run.dir), "--labels-fraction", "0.01", "--method", "frozen",
                    "--epochs", "3", "--quiet", "--out", str(out)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    saved = json.loads((out / "metrics.json").read_text())
    n_train = digits_run.metrics["n_train"]
    assert saved["method"] == "frozen" and saved["labelled_examples"] == 10  # one per class: more than 1 %
    assert saved["labels_used_fraction"] == pytest.approx(10 / n_train)
    assert f"({100 * 10 / n_train:.2f} % of the training labels)" in text
    result = autoencoders.classify(
        digits_run.dir, 0.2, out=tmp_path / "f2", method="frozen", epochs=3, **FAST
    )
    for name, value in digits_run.model.state_dict().items():  # the encoder did not move
        if name.startswith("encoder"):
            assert torch.equal(result.model.autoencoder.state_dict()[name], value), name


def test_unfreezing_after_the_head_moves_the_encoder_from_the_head_only_result(digits_run, tmp_path):
    opts = dict(labels_fraction=0.2, method="frozen", epochs=3, **FAST)
    head_only = autoencoders.classify(digits_run.dir, out=tmp_path / "a", **opts)
    both = autoencoders.classify(
        digits_run.dir, out=tmp_path / "b", unfreeze_epochs=2, unfreeze_lr=1e-3, **opts
    )
    assert [h["stage"] for h in both.history] == ["classify"] * 3 + ["unfreeze"] * 2
    losses = lambda result: [h["train_loss"] for h in result.history[:3]]  # noqa: E731
    assert losses(both) == losses(head_only)  # the same head-only phase first
    moved = [
        name
        for name, value in digits_run.model.state_dict().items()
        if name.startswith("encoder") and not torch.equal(both.model.autoencoder.state_dict()[name], value)
    ]
    assert moved  # the unfrozen phase trained the encoder
    assert both.metrics["unfreeze_epochs"] == 2
    with pytest.raises(UserError, match="unfreeze_epochs follows head-only training"):
        autoencoders.classify(digits_run.dir, out=tmp_path / "c", unfreeze_epochs=2, epochs=1, **FAST)


def test_metrics_count_the_updates_made(digits_run, tmp_path, monkeypatch):
    made = []
    adam_step = Adam.step

    def counted(self):
        made.append(1)
        return adam_step(self)

    monkeypatch.setattr(Adam, "step", counted)
    # eager steps, each a call of Adam.step (a CUDA graph replays them without one)
    opts = dict(labels_fraction=0.2, batch_size=16, cuda_graph="off", **FAST)
    result = autoencoders.classify(
        digits_run.dir, out=tmp_path / "a", method="frozen", epochs=3, unfreeze_epochs=2, **opts
    )
    assert result.metrics["updates"] == len(made) > result.metrics["epochs_run"]  # batches per epoch
    knn = autoencoders.classify(digits_run.dir, out=tmp_path / "k", method="knn", **opts)
    assert knn.metrics["updates"] == 0 and len(made) == result.metrics["updates"]
    made.clear()  # early stopping: only the epochs run count
    stopped = autoencoders.classify(digits_run.dir, out=tmp_path / "s", epochs=50, patience=1, **opts)
    assert stopped.metrics["epochs_run"] < 50 and stopped.metrics["updates"] == len(made)
    made.clear()  # semi-supervised epochs pass over every training row, one update per batch
    semi = autoencoders.classify(digits_run.dir, out=tmp_path / "m", method="semi", epochs=1, **opts)
    assert semi.metrics["updates"] == len(made) == -(-digits_run.metrics["n_train"] // 16)


def test_a_classifier_directory_reloads_and_predicts(digits_run, tmp_path, capsys):
    from autoencoders.cli import run as cli_run

    out = tmp_path / "clf"
    result = autoencoders.classify(digits_run.dir, 0.5, out=out, epochs=5, lr=5e-3, **FAST)
    loaded = autoencoders.load(out)
    assert isinstance(loaded, EncoderClassifier) and not loaded.training
    x = autoencoders.reconstruct(digits_run.dir, "digits", "test")[0]
    with torch.no_grad():
        assert torch.equal(loaded(torch.from_numpy(x)), on_cpu(result.model).eval()(torch.from_numpy(x)))
    predicted, proba, classes = autoencoders.predict(out, "digits", split="test", device=DEVICE)
    assert list(classes) == list(range(10)) and proba.shape == (len(x), 10)
    assert (predicted == proba.argmax(1)).all()
    assert (predicted == autoencoders.load_dataset(digits_run.config.data).y_test.numpy()).mean() == (
        pytest.approx(result.metrics["test_accuracy"])
    )
    csv_path = tmp_path / "pred.csv"
    argv = ["predict", str(out), "--data", "digits", "--split", "test", "--device", DEVICE]
    assert cli_run([*argv, "--out", str(csv_path)]) == 0
    assert b"\r" not in csv_path.read_bytes()  # lines end as in every file the toolkit writes
    lines = csv_path.read_text().splitlines()
    # each test row's place in the data beside its own, and the data's own labels
    header = "row,data_row,predicted," + ",".join(f"p_{c}" for c in range(10)) + ",label"
    assert lines[0] == header and len(lines) == len(x) + 1
    assert [int(line.split(",")[2]) for line in lines[1:]] == predicted.tolist()
    y_test = autoencoders.load_dataset(digits_run.config.data).y_test.tolist()
    assert [int(line.split(",")[-1]) for line in lines[1:]] == y_test
    from sklearn.datasets import load_digits

    rows = (load_digits().data[:5] / 16).astype(np.float32)  # in the units digits are read in
    assert autoencoders.api.predictions(out, rows, device=DEVICE)[3] is None  # rows in memory: no labels
    np.save(tmp_path / "rows.npy", rows), np.save(tmp_path / "y.npy", load_digits().target[:5])
    npy = ["predict", str(out), "--data", f"npy:{tmp_path / 'rows.npy'}", "--device", DEVICE]
    assert cli_run([*npy, "--labels", str(tmp_path / "y.npy"), "--out", str(csv_path)]) == 0
    assert [line.split(",")[-1] for line in csv_path.read_text().splitlines()[1:]] == [
        "0",
        "1",
        "2",
        "3",
        "4",
    ]
    with pytest.raises(UserError, match="rows in memory have none to read"):
        autoencoders.api.predictions(out, rows, labels=str(tmp_path / "y.npy"))
    with pytest.raises(UserError, match="give a file name ending in .csv"):
        cli_run(["predict", str(out), "--data", "digits", "--out", str(tmp_path / "p.txt")])
    with pytest.raises(UserError, match="is not a classifier or clustering itself; pass one that it holds"):
        autoencoders.predict(tmp_path, "digits")


def test_predict_on_a_run_names_the_classifiers_and_clusterings_it_holds(tmp_path):
    """Given the run instead of one of its outputs, predict names those that can predict: a manifold
    clustering keeps no clusterer to assign rows with."""
    from autoencoders.io import rundir

    for name, file in [
        ("classifier-0.1", rundir.CLASSIFIER_CONFIG),
        ("cluster-gmm-10", rundir.CLUSTERER_WEIGHTS),
        ("cluster-manifold-10", rundir.CLUSTERS_JSON),
        ("figures", "latent.png"),
    ]:
        (tmp_path / name).mkdir()
        (tmp_path / name / file).write_text("{}")
    held = f"pass one that it holds: {tmp_path / 'classifier-0.1'}, {tmp_path / 'cluster-gmm-10'}"
    with pytest.raises(UserError, match=re.escape(held) + "$"):
        autoencoders.predict(tmp_path, "digits")


def test_version_flag(capsys):
    from autoencoders.parser import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["--version"])
    assert capsys.readouterr().out.strip() == f"autoencoders {autoencoders.__version__}"


def test_a_frozen_head_starts_at_the_logistic_regression_of_the_codes(digits_run, tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from autoencoders.classify.few_labels import labelled_subset

    result = autoencoders.classify(digits_run.dir, 0.1, out=tmp_path / "f", method="frozen", epochs=1, **FAST)
    ds = autoencoders.load_dataset(digits_run.config.data)
    model = autoencoders.load(digits_run.dir)
    rows = labelled_subset(ds.y_train.numpy(), 0.1, 0)
    with torch.no_grad():
        z_train, z_test = model.encode(ds.x_train[rows]).numpy(), model.encode(ds.x_test).numpy()
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    reference = probe.fit(z_train, ds.y_train.numpy()[rows]).score(z_test, ds.y_test.numpy())
    assert result.metrics["test_accuracy"] >= reference - 0.03  # one Adam epoch from that start
    assert result.metrics["test_accuracy"] > 0.6  # 10 classes from ~130 labels; random heads gave ~0.45


def test_classify_and_cluster_take_a_device_and_leave_the_runs_own_by_default(
    digits_run, monkeypatch, tmp_path
):
    from autoencoders import classifiers, clusters
    from autoencoders.cli import run as cli_run

    seen, classify, cluster = [], classifiers.classify, clusters.cluster
    monkeypatch.setattr(
        classifiers, "classify", lambda *a, **kw: seen.append(kw.get("device")) or classify(*a, **kw)
    )
    monkeypatch.setattr(
        clusters, "cluster", lambda *a, **kw: seen.append(kw.get("device")) or cluster(*a, **kw)
    )
    run_dir, out = str(digits_run.dir), str(tmp_path / "out")
    for device in ([], ["--device", "cpu"]):
        assert (
            cli_run(
                ["classify", run_dir, "--method", "knn", "--n-labels", "20", "--quiet", "--out", out, *device]
            )
            == 0
        )
        assert (
            cli_run(["cluster", run_dir, "--k", "3", "--quiet", "--out", str(tmp_path / "c"), *device]) == 0
        )
    assert seen == [None, None, "cpu", "cpu"]  # None: the run's own --device


def test_a_classifier_no_better_than_naming_the_commonest_class_is_warned_of(digits_run, tmp_path):
    """Two updates leave the head where it began: an accuracy that looks like a number, at chance.
    Its yardstick, the test rows' commonest class's share, is 42 of digits' 359 test rows."""
    from autoencoders.errors import SettingWarning

    said = (
        r"no better on the test rows than naming their commonest class for every one \(accuracy [\d.]+ "
        r"against 0\.117\) after 2 updates of its weights; train longer \(.* at least 1,000 updates\)"
    )
    with pytest.warns(SettingWarning, match=said):
        result = autoencoders.classify(digits_run.dir, n_labels=100, epochs=1, out=tmp_path / "c", **FAST)
    ds = autoencoders.load_dataset(autoencoders.trained.open_run(digits_run.dir).cfg.data)
    y, commonest = ds.y_test.numpy(), np.bincount(ds.y_train.numpy()).argmax()  # of every training label
    assert (np.bincount(y).max(), len(y)) == (42, 359)
    assert result.metrics["majority_class_accuracy"] == np.mean(y == commonest)


@pytest.mark.parametrize(
    "how, updates, fix",
    [
        ({"epochs": 1}, 2, r"train longer \(more --epochs, or leave --epochs out for at least 1,000 upd"),
        ({}, 300, r"early stopping ended it: give a larger --patience$"),
        ({}, 1000, r"the run's codes may carry nothing of the classes \(see its linear probe accuracy\)$"),
        ({"method": "knn"}, 0, r"\(accuracy 0\.100 against 0\.117\); the run's codes may carry nothing"),
        ({"from_scratch": True}, 1000, r"only the labels to learn from: leave out --from-scratch$"),
        ({"from_scratch": True, "method": "ladder"}, 1000, r"or unlabelled rows: try another --lr$"),
        ({"from_scratch": True, "epochs": 1}, 2, r"train longer \(more --epochs"),  # the budget first
    ],
    ids=[
        "epochs-given",
        "stopped-early",
        "enough-updates",
        "knn",
        "from-scratch",
        "ladder-from-scratch",
        "from-scratch-cut-short",
    ],
)
def test_a_classifier_at_chance_is_told_what_most_likely_holds_it_there(how, updates, fix):
    from autoencoders.classify.few_labels import FewLabels, _warn_no_better
    from autoencoders.errors import SettingWarning

    with pytest.warns(SettingWarning, match=fix):
        _warn_no_better({"test_accuracy": 0.1, "updates": updates}, 0.117, FewLabels(n_labels=100, **how))


def test_classify_trains_the_same_whatever_the_callers_thread_count(tmp_path):
    """On the threads training would choose, not the caller's: a sum over threads rounds
    differently, and a narrow head's gradients on every label of digits did."""
    run = autoencoders.train(data="digits", layers=[64, 16], epochs=2, out=tmp_path / "run", **FAST)
    weights = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out = tmp_path / f"c{threads}"
            autoencoders.classify(run.dir, epochs=5, out=out, **FAST)
            weights.append(load_file(out / "classifier.safetensors"))
    finally:
        torch.set_num_threads(1)  # the suite's own setting (conftest)
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_a_classifier_is_written_whole_or_not_at_all(digits_run, tmp_path, monkeypatch):
    """A stop while it is written leaves the classifier there before, not new weights beside the old
    checksum; what it did not write refuses --out."""
    from autoencoders.io import rundir

    out = tmp_path / "c"
    first = autoencoders.classify(digits_run.dir, n_labels=30, epochs=1, out=out, quiet=True)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert before.keys() == rundir.CLASSIFIER_FILES
    real = rundir.write_metrics

    def stopped(path, metrics):
        real(path, metrics)
        raise KeyboardInterrupt

    monkeypatch.setattr(rundir, "write_metrics", stopped)
    with pytest.raises(KeyboardInterrupt):
        autoencoders.classify(digits_run.dir, n_labels=50, epochs=1, out=out, quiet=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and first.metrics["n_labels"] == 30
    assert [p.name for p in tmp_path.iterdir()] == ["c"]  # nothing left beside it
    monkeypatch.undo()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"holds a classifier and what it did not write \(notes\.txt\); move"):
        autoencoders.classify(digits_run.dir, n_labels=30, epochs=1, out=out, quiet=True)


def test_a_classifier_trains_by_its_own_optimizer_and_records_its_budget(tmp_path):
    """Not the run's: a run's SGD at classify's Adam rate had left its classifier at chance."""
    run = autoencoders.train(
        data="digits", layers=[64, 8], epochs=1, optimizer="sgd", lr=0.1, lr_decay="cosine",
        weight_decay=1e-3, out=tmp_path / "sgd", **FAST,
    )  # fmt: skip
    result = autoencoders.classify(run.dir, n_labels=30, out=tmp_path / "clf", quiet=True)
    trained = json.loads((result.out / "classifier.json").read_text())["train"]
    assert (trained["optimizer"], trained["lr_decay"], trained["weight_decay"], trained["lr"]) == (
        "adam",
        "none",
        0.0,
        1e-3,
    )
    # the epochs and patience it ran with, as budgeted, not the run's
    assert (trained["epochs"], trained["patience"]) == (result.metrics["epochs"], result.metrics["patience"])
    given = autoencoders.classify(run.dir, n_labels=30, weight_decay=1e-4, out=tmp_path / "wd", quiet=True)
    assert json.loads((given.out / "classifier.json").read_text())["train"]["weight_decay"] == 1e-4


def test_the_ladder_s_default_budget_counts_full_batches(digits_run, tmp_path):
    """At least 1,000 updates, as every method's: its epochs leave a last partial batch out."""
    result = autoencoders.classify(
        digits_run.dir, n_labels=50, method="ladder", patience=1000, out=tmp_path / "l", quiet=True
    )
    assert result.metrics["updates"] >= 1000


def test_a_classifier_far_below_the_runs_own_probe_is_told_to_train_longer(digits_run, tmp_path, capsys):
    """Not half way from chance to what the run's codes hold: the classifier, not the codes, is why."""
    argv = ["classify", str(digits_run.dir), "--n-labels", "500", "--epochs", "8", "--quiet"]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", str(tmp_path / "clf")])
    assert exc.value.code == 0
    printed, m = capsys.readouterr().out, json.loads((tmp_path / "clf" / "metrics.json").read_text())
    codes = digits_run.metrics["linear_probe_accuracy"]
    assert m["majority_class_accuracy"] < m["test_accuracy"] < (codes + m["majority_class_accuracy"]) / 2
    assert (
        f"above the classifier: it is far below the run's own linear probe of its codes ({codes:.3f}, with "
        "its training labels); train it longer (more --epochs), or give it more labels\n"
    ) in printed


def test_options_of_the_runs_model_or_data_are_refused_as_the_command_line_has_no_flags_for_them(
    digits_run, tmp_path
):
    """The run's encoder and its split are what a classifier or clustering works on: a layer width
    or another split given to either would change nothing, or quietly measure on other rows."""
    for call in (autoencoders.classify, autoencoders.cluster):
        with pytest.raises(
            UserError, match=r"works on the run's model and data as they are; leave out layers"
        ):
            call(digits_run.dir, layers=[64, 4], quiet=True)
    with pytest.raises(UserError, match=r"leave out split_seed, val_fraction \(training options such as lr"):
        autoencoders.classify(digits_run.dir, method="knn", val_fraction=0.5, split_seed=3, quiet=True)
    # how other data is read is its own: a CSV's label column
    import pandas as pd
    from sklearn.datasets import load_digits

    frame = pd.DataFrame(load_digits().data / 16, columns=[f"p{i}" for i in range(64)])
    frame.assign(target=load_digits().target).to_csv(tmp_path / "b.csv", index=False)
    spec = f"csv:{tmp_path / 'b.csv'}"
    clf = autoencoders.classify(
        digits_run.dir, data=spec, label_column="target", method="knn", quiet=True, out=tmp_path / "k"
    )
    assert clf.metrics["test_accuracy"] > 0.5
    for call in (autoencoders.classify, autoencoders.cluster):  # the run's rows, as read
        with pytest.raises(
            UserError, match=r"^how data is read \(label_column\) needs data, the rows to read$"
        ):
            call(digits_run.dir, label_column="target", quiet=True)


def test_other_data_is_read_as_told_and_predicted_as_its_classifier_or_clustering_read_it(
    digits_run, tmp_path, capsys
):
    """A CSV whose label is its first column, without a header: every command that reads data takes
    how to read it, and a classifier or clustering made from it predicts that file as it read it
    (before, the run's reading took the label for a feature, or the file for one column too wide)."""
    from sklearn.datasets import load_digits

    from autoencoders.api import predictions

    digits = load_digits()
    rows = digits.data / 16  # in the units the run read digits in
    np.savetxt(tmp_path / "t.csv", np.column_stack([digits.target, rows]), delimiter=",", fmt="%.6g")
    spec = f"csv:{tmp_path / 't.csv'}"
    clf = autoencoders.classify(
        digits_run.dir, data=spec, label_column=0, method="knn", quiet=True, out=tmp_path / "k"
    )
    for made in (
        clf.out,
        autoencoders.cluster(digits_run.dir, spec, label_column=0, quiet=True, out=tmp_path / "c").out,
    ):
        predicted, _, _, labels, _ = predictions(made, spec, device=DEVICE)
        np.testing.assert_array_equal(labels, digits.target)  # the first column, as labels
        np.testing.assert_array_equal(predicted, autoencoders.predict(made, rows, device=DEVICE)[0])
    with pytest.raises(UserError, match=r"label_column 65 is out of range: .*t.csv has 65 columns"):
        autoencoders.encode(digits_run.dir, spec, label_column=65)  # before: read without labels, silently
    import pandas as pd

    frame = pd.DataFrame(rows, columns=[f"p{i}" for i in range(64)]).assign(digit=digits.target)
    scores, labels = autoencoders.score(digits_run.dir, frame, label_column="digit")  # a frame's, by name
    np.testing.assert_array_equal(labels, digits.target)
    np.testing.assert_array_equal(scores, autoencoders.score(digits_run.dir, rows)[0])
    with pytest.raises(
        UserError, match=r"label_column 'digt' is neither a column of the data frame .*'digit'"
    ):
        autoencoders.score(digits_run.dir, frame, label_column="digt")
    with pytest.raises(
        UserError, match=r"label_column names a column of a CSV file or a data frame, and rows"
    ):
        autoencoders.encode(digits_run.dir, rows, label_column=0)
    numbered = pd.DataFrame(np.column_stack([rows, digits.target]))  # pandas' own names: 0, 1, ..., 64
    for column in (64, -1, "64"):  # by its name, or its index
        scored = autoencoders.score(digits_run.dir, numbered, label_column=column)
        np.testing.assert_array_equal(scored[1], digits.target)
    with pytest.raises(UserError, match=r"label_column 'digits' is neither a column of the data frame nor"):
        autoencoders.score(digits_run.dir, frame, label_column="digits")
    with pytest.raises(
        UserError, match=r"label_column names a column of csv: data, and digits has none; leave"
    ):
        autoencoders.score(digits_run.dir, "digits", label_column="target")  # before: ignored
    with pytest.raises(UserError, match=r"is a path, .*t.csv; give a file as a data spec, such as 'csv:"):
        autoencoders.encode(digits_run.dir, tmp_path / "t.csv", label_column=0)
    codes = autoencoders.encode(digits_run.dir, spec, label_column=0)
    np.testing.assert_array_equal(codes, autoencoders.encode(digits_run.dir, rows))

    def command(*argv: str) -> None:
        with pytest.raises(SystemExit) as done:
            main(list(argv))
        assert done.value.code == 0

    flags = ("--data", spec, "--label-column", "0")
    command("encode", str(digits_run.dir), *flags, "--out", str(tmp_path / "c.npy"))
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), codes)
    command("score", str(digits_run.dir), *flags, "--anomalous-class", "3", "--out", str(tmp_path / "s.csv"))
    assert "class 3 as anomalies" in capsys.readouterr().out
    metrics = autoencoders.evaluate_run(digits_run.dir, spec, label_column=0, device=DEVICE)
    assert metrics["linear_probe_accuracy"] > 0.5  # labelled by the first column
    with pytest.raises(UserError, match=r"^how data is read \(label_column\) needs data, the rows to read$"):
        autoencoders.evaluate_run(digits_run.dir, label_column=0)
    with pytest.raises(
        UserError,
        match=r"^encode takes no option splt; besides its own, it takes how the data given is read: lab",
    ):
        autoencoders.encode(digits_run.dir, spec, splt="test")


def test_a_run_trained_again_meanwhile_gets_no_classifier_or_clustering_of_the_model_it_replaced(
    tmp_path, monkeypatch
):
    """train --overwrite RUN while classify or cluster RUN ran: their results belong to the old model,
    so they are not written into the new run (before, its report listed them as its own)."""
    from autoencoders import classifiers, clusters

    settings = {"data": "digits", "layers": [64, 8], "epochs": 1, "out": str(tmp_path / "r"), **FAST}
    autoencoders.train(**settings)
    made = {
        "classifier": (
            classifiers,
            "train_classifier",
            lambda: autoencoders.classify(tmp_path / "r", method="knn", quiet=True),
        ),
        "clustering": (clusters, "find_clusters", lambda: autoencoders.cluster(tmp_path / "r", quiet=True)),
    }
    for width, (what, (module, name, call)) in enumerate(made.items(), start=3):
        real = getattr(module, name)

        def retrained(*args, real=real, width=width, **kwargs):  # another model each time
            autoencoders.train(overwrite=True, **(settings | {"layers": [64, width]}))
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, retrained)
        with pytest.raises(UserError, match=rf"r was trained again while this {what} was made from it"):
            call()
        monkeypatch.undo()
        assert not [p.name for p in (tmp_path / "r").iterdir() if p.name.startswith(what[:7])]

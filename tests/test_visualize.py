"""Figures of what a run learned, and anomaly scores: each does what its name says."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import DEVICE, FAST
from matplotlib.image import imread
from sklearn.datasets import load_digits

import autoencoders
from autoencoders import UserError
from autoencoders.cli import main
from autoencoders.errors import DataWarning, SettingWarning
from autoencoders.eval.metrics import encode_all
from autoencoders.figures import canvas, curves, plots
from autoencoders.figures.run_figures import maximize_units, visualize
from autoencoders.options import FIGURE_KINDS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae") / "run"
    return autoencoders.train(
        data="digits", model="vae", layers=[64, 32, 4], epochs=3, iw_samples=4, out=out, **FAST
    )


@pytest.mark.parametrize("what", sorted(FIGURE_KINDS))
def test_every_figure_kind_is_written(what, digits_run, vae_run, tmp_path):
    run = vae_run if what in ("samples", "interpolate", "traverse") else digits_run
    torch.manual_seed(7)
    path = autoencoders.visualize(run.dir, what, tmp_path / f"{what}.png", n=4)
    assert path.read_bytes()[:8] == PNG_MAGIC
    drawn = torch.rand(3)
    torch.manual_seed(7)
    assert torch.equal(drawn, torch.rand(3))  # the caller's random state as it was


@pytest.mark.parametrize("what", sorted(FIGURE_KINDS))
def test_figures_are_cropped_to_the_pixel_as_matplotlib_crops_them(
    what, digits_run, vae_run, tmp_path, monkeypatch
):
    # the crop is found with the images hidden, in one draw; matplotlib's "tight" draws them twice
    save = canvas.save

    def and_tight(fig, path):
        save(fig, path)
        fig.savefig(tmp_path / "tight.png", dpi=canvas.DPI, bbox_inches="tight")

    monkeypatch.setattr(canvas, "save", and_tight)
    run = vae_run if what in ("samples", "interpolate", "traverse") else digits_run
    path = visualize(run.dir, what, tmp_path / f"{what}.png", n=4)
    np.testing.assert_array_equal(imread(path), imread(tmp_path / "tight.png"))


def test_drawing_leaves_the_caller_s_backend_and_figures_as_they_were(digits_run, tmp_path):
    """A notebook's inline backend and open figures stay: figures are drawn to files without pyplot."""
    import matplotlib
    import matplotlib.pyplot as plt

    before = matplotlib.get_backend()
    plt.switch_backend("svg")
    try:
        mine = plt.figure()
        visualize(digits_run.dir, "recon", tmp_path / "recon.png", n=4)
        assert matplotlib.get_backend() == "svg" and plt.get_fignums() == [mine.number]
    finally:
        plt.close("all")
        plt.switch_backend(before)


@pytest.mark.parametrize("case", ["an image drawn beyond its axes", "a layout engine"])
def test_a_figure_the_one_draw_crop_cannot_take_is_cropped_by_matplotlib(case, tmp_path):
    def figure():
        fig, ax = canvas.subplots(
            figsize=(6.4, 4.8), layout="constrained" if case == "a layout engine" else None
        )
        image = ax.imshow(np.arange(16.0).reshape(4, 4), extent=(0, 4, 0, 4))
        if case == "an image drawn beyond its axes":
            image.set_clip_on(False)
            ax.set_xlim(1, 3)
        ax.set_title("rows")
        return fig

    canvas.save(figure(), tmp_path / "saved.png")
    figure().savefig(tmp_path / "tight.png", dpi=canvas.DPI, bbox_inches="tight")
    np.testing.assert_array_equal(imread(tmp_path / "saved.png"), imread(tmp_path / "tight.png"))


def _test_rows(run) -> torch.Tensor:
    return torch.from_numpy(autoencoders.reconstruct(run.dir, "digits", "test")[0])


def test_top_shows_the_test_images_at_both_ends_of_each_signed_unit(digits_run, tmp_path, monkeypatch):
    shown = {}
    monkeypatch.setattr(plots, "labelled_rows", lambda groups, *a, **k: shown.update(groups=groups))
    visualize(digits_run.dir, "top", tmp_path / "top.png", n=3)
    x = _test_rows(digits_run)
    codes = encode_all(autoencoders.load(digits_run.dir), x)
    assert (codes < 0).any()  # a linear code: both ends of each unit
    labels = [f"unit {j}\n{end}" for j in range(3) for end in ("largest", "smallest")]
    assert [label for label, _ in shown["groups"]] == labels
    for i, (_, images) in enumerate(shown["groups"]):
        sign = 1 if i % 2 == 0 else -1
        expected = x[(sign * codes[:, i // 2]).topk(len(images)).indices].numpy()
        np.testing.assert_array_equal(images, expected)


def test_maximize_finds_inputs_in_range_that_excite_their_unit_more_than_test_images(digits_run):
    model = autoencoders.load(digits_run.dir)
    x = _test_rows(digits_run)
    z = maximize_units(model, x, 3)
    radius = x.norm(dim=1).mean()
    assert (z.norm(dim=1) <= radius * (1 + 1e-6)).all()  # within the ball of the data's mean norm
    assert z.min() >= 0 and z.max() <= 1 and z.max() == 1  # in the data's range, reaching its top
    with torch.no_grad():
        inside = x * (radius / x.norm(dim=1, keepdim=True)).clamp(max=1)  # test images in the ball
        # an ascent among ReLUs may stop short of the very best test image: above 99 % of them
        assert (model.encode(z).diagonal()[:3] > model.encode(inside)[:, :3].quantile(0.99, dim=0)).all()


def test_maximize_takes_the_steps_torchs_adam_takes():
    """The ascent takes the steps of ``torch.optim.Adam(lr=0.05)``, to the bit."""
    torch.manual_seed(0)
    model = autoencoders.DenseAutoencoder([16, 12, 3])
    x = torch.rand(40, 16)
    ours = maximize_units(model, x, 3, steps=25)
    assert all(p.grad is None and p.requires_grad for p in model.parameters())  # the model untouched
    radius = x.norm(dim=1).mean()
    z = x.mean(0, keepdim=True).repeat(3, 1).clamp(0, 1).requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=0.05)
    for _ in range(25):
        optimizer.zero_grad()
        (-model.encode(z).diagonal().sum()).backward()
        optimizer.step()
        with torch.no_grad():
            z.clamp_(0, 1).mul_((radius / z.norm(dim=1, keepdim=True).clamp_min(1e-12)).clamp(max=1))
    assert torch.equal(ours, z.detach())


def test_latent_is_the_code_itself_when_two_dimensional(tmp_path, monkeypatch):
    run = autoencoders.train(data="digits", layers=[64, 16, 2], epochs=2, out=tmp_path / "r", **FAST)
    drawn = {}
    monkeypatch.setattr(
        plots, "scatter", lambda points, labels, path, axes, title, *_: drawn.update(p=points, a=axes)
    )
    visualize(run.dir, "latent", tmp_path / "l.png")
    assert drawn["a"] == ("code 0", "code 1")
    codes = encode_all(autoencoders.load(run.dir), _test_rows(run)).numpy()
    assert {tuple(np.round(p, 4)) for p in drawn["p"]} <= {tuple(np.round(c, 4)) for c in codes}
    with pytest.warns(
        SettingWarning, match=r"^--method tsne maps codes of more than two .* leave --method out$"
    ):
        visualize(run.dir, "latent", tmp_path / "t.png", method="tsne")  # asked for, not done: said
    assert drawn["a"] == ("code 0", "code 1")


def test_visualize_refuses_what_does_not_apply(digits_run, tmp_path):
    with pytest.raises(UserError, match="no prior to sample from"):
        visualize(digits_run.dir, "samples", tmp_path / "s.png")
    with pytest.raises(UserError, match="--what must be one of"):
        visualize(digits_run.dir, "everything", tmp_path / "s.png")
    with pytest.raises(UserError, match="ending in .png"):
        visualize(digits_run.dir, "recon", tmp_path / "s.jpg")
    for n, said in ((2.5, "n must be a whole number, not 2.5"), ("3", "n must be a whole number, not '3'")):
        with pytest.raises(UserError, match=f"^{said}$"):
            autoencoders.visualize(digits_run.dir, "recon", tmp_path / "s.png", n=n)


@pytest.fixture(scope="module")
def without_zeros(tmp_path_factory):
    """A run trained on digits 1-9 (CSV with a label column), and the CSV of all digits."""
    base = tmp_path_factory.mktemp("anomaly")
    x, y = load_digits(return_X_y=True)
    header = ",".join([f"p{i}" for i in range(64)] + ["label"])
    for name, keep in (("normal.csv", y != 0), ("all.csv", np.ones(len(y), bool))):
        np.savetxt(base / name, np.c_[x[keep], y[keep]], delimiter=",", fmt="%g", header=header, comments="")
    run = autoencoders.train(
        data=f"csv:{base / 'normal.csv'}",
        label_column="label",
        layers=[64, 32, 8],
        epochs=40,
        out=base / "run",
        **FAST,
    )
    return run, base / "all.csv"


def test_scores_flag_a_held_out_class_and_are_compared_with_pca(without_zeros):
    run, all_rows = without_zeros
    scores, labels = autoencoders.score(run.dir, f"csv:{all_rows}")
    assert scores.shape == (1797,) and (scores >= 0).all()
    assert scores[labels == 0].mean() > scores[labels != 0].mean()  # the unseen digit is reconstructed worse
    m = autoencoders.anomaly_scores_against_pca(run.dir, f"csv:{all_rows}", 0, scored=(scores, labels))
    assert m["anomalies"] == (labels == 0).sum() and m["rows"] == 1797
    assert m["roc_auc"] > 0.8 and 0 < m["pca_roc_auc"] < 1 and 0 < m["average_precision"] <= 1
    assert not m["training_rows"]  # other data than the run's: none of its rows was trained on
    with pytest.raises(UserError, match="^scored holds 1797 scores for 359 rows: give score's result"):
        scored = (scores, labels)  # of all rows, not of the test split's
        autoencoders.anomaly_scores_against_pca(run.dir, f"csv:{all_rows}", 0, "test", scored=scored)


def test_a_class_held_out_of_training_is_found_as_novel_and_a_class_trained_on_is_warned_of(tmp_path):
    settings = FAST | {"epochs": 20}
    held = autoencoders.train(out=str(tmp_path / "held"), hold_out=["3"], **settings)
    every = autoencoders.train(out=str(tmp_path / "every"), **settings)
    assert held.config.data.hold_out == ["3"] and held.metrics["n_train"] < every.metrics["n_train"]
    novel = autoencoders.anomaly_scores_against_pca(held.dir, "digits", 3, "test", device=DEVICE)
    with pytest.warns(DataWarning, match="trained on rows of class 3.*train with --hold-out 3"):
        seen = autoencoders.anomaly_scores_against_pca(every.dir, "digits", 3, "test", device=DEVICE)
    assert novel["roc_auc"] > 0.8 > seen["roc_auc"] and novel["anomalies"] == seen["anomalies"] > 0
    with pytest.raises(UserError, match=r"left class\(es\) 3 out of its training rows \(hold_out\)"):
        autoencoders.classify(held.dir, n_labels=50, **FAST)
    # other data, split as the run's: labelled, its test rows scored alike; unlabelled, still split
    x, y = load_digits(return_X_y=True)
    np.save(tmp_path / "x.npy", (x / 16).astype(np.float32)), np.save(tmp_path / "y.npy", y)
    other, labels = f"npy:{tmp_path / 'x.npy'}", str(tmp_path / "y.npy")
    again = autoencoders.anomaly_scores_against_pca(held.dir, other, 3, "test", labels=labels, device=DEVICE)
    assert again["roc_auc"] == pytest.approx(novel["roc_auc"]) and again["rows"] == novel["rows"]
    assert autoencoders.encode(held.dir, other, "test").shape[0] == novel["rows"]
    with pytest.raises(UserError, match="split='test' picks rows of a data spec, and rows in memory"):
        autoencoders.score(held.dir, (x / 16).astype(np.float32), "test")


def test_anomaly_scores_say_when_their_rows_include_training_rows(digits_run):
    with pytest.warns(DataWarning, match="trained on rows of class 3"):  # a run trained on every class
        everything = autoencoders.anomaly_scores_against_pca(digits_run.dir, "digits", 3, device="cpu")
        test = autoencoders.anomaly_scores_against_pca(digits_run.dir, "digits", 3, "test", device="cpu")
    assert (everything["rows"], everything["training_rows"]) == (1797, True)
    assert (test["rows"], test["training_rows"]) == (359, False)


def test_score_cli_writes_csv_and_reports_auc(without_zeros, tmp_path, capsys):
    run, all_rows = without_zeros
    out = tmp_path / "scores.csv"
    with pytest.raises(SystemExit) as done:
        main(
            ["score", str(run.dir), "--data", f"csv:{all_rows}", "--out", str(out), "--anomalous-class", "0"]
        )
    assert done.value.code == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "row,score,label" and len(lines) == 1798
    printed = capsys.readouterr().out
    assert "class 0 as anomalies (178 of 1797 rows): ROC-AUC" in printed and "(PCA: " in printed
    with pytest.raises(SystemExit):
        main(
            ["score", str(run.dir), "--data", f"csv:{all_rows}", "--out", str(out), "--anomalous-class", "42"]
        )
    assert "must hold that class and others" in capsys.readouterr().err


def test_vae_scores_are_importance_sampled_nll(vae_run):
    scores, _ = autoencoders.score(vae_run.dir, "digits", "test", iw_samples=4, device=DEVICE)  # as trained
    assert scores.mean() == pytest.approx(vae_run.metrics["test_nll"], rel=1e-4)


def test_snapshots_save_reconstructions_every_n_epochs_without_changing_training(tmp_path):
    common = dict(data="digits", layers=[64, 16], epochs=5, **FAST)
    plain = autoencoders.train(out=tmp_path / "plain", **common)
    snap = autoencoders.train(out=tmp_path / "snap", snapshots=2, **common)
    assert sorted(p.name for p in (tmp_path / "snap" / "snapshots").iterdir()) == [
        "train-epoch-0002.png",
        "train-epoch-0004.png",
    ]
    assert (tmp_path / "snap" / "snapshots" / "train-epoch-0002.png").read_bytes()[:8] == PNG_MAGIC
    for k, v in plain.model.state_dict().items():
        assert torch.equal(snap.model.state_dict()[k], v), k


def test_legends_name_fashion_mnist_items_beside_their_class_numbers(monkeypatch, tmp_path):
    from autoencoders.data.classes import item_names

    names = item_names("fashion-mnist")
    assert names[5] == "Sandal" and len(names) == 10 and item_names("digits") is None
    legends, save = [], canvas.save
    monkeypatch.setattr(canvas, "save", lambda fig, path: legends.append(fig) or save(fig, path))
    points, labels = np.random.default_rng(0).normal(size=(30, 2)), np.arange(30) % 3
    plots.scatter(points, labels, tmp_path / "s.png", ("a", "b"), "t", names=names)
    clusters = (labels + 1) % 3  # cluster 1 holds class 0's rows, and so on
    plots.cluster_map(points, clusters, labels, tmp_path / "c.png", ("a", "b"), "t", names=names)
    texts = [[t.get_text() for t in ax.get_legend().get_texts()] for fig in legends for ax in fig.axes]
    assert texts == [
        ["0 T-shirt/top", "1 Trouser", "2 Pullover"],
        ["0 → 2", "1 → 0", "2 → 1"],  # each cluster beside the class it is matched to
        ["0 T-shirt/top", "1 Trouser", "2 Pullover"],
    ]
    by_cluster, by_label = (
        [tuple(h.get_facecolor()[0]) for h in ax.get_legend().legend_handles] for ax in legends[1].axes
    )
    assert by_cluster == [by_label[2], by_label[0], by_label[1]]  # in its matched class's colour


@pytest.mark.parametrize("palette", ["clusters", None])
@pytest.mark.parametrize("k", [3, 15, 20, 45])
def test_every_group_is_drawn_in_a_colour_of_its_own(k, palette):
    """Clusters or classes, however many: every point is drawn in its group's colour, the groups
    mixed (drawn group after group, the last would hide the first), the legend names the first 20."""
    fig, ax = canvas.subplots(figsize=(6.4, 4.8))
    groups = np.arange(k).repeat(4)
    points = np.random.default_rng(0).random((4 * k, 2))
    plots._scatter_on(ax, points, groups, "cluster", None, ("a", "b"), "", palette)
    (drawn,) = [c for c in ax.collections if len(c.get_offsets())]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    order = [np.flatnonzero((points == xy).all(1))[0] for xy in np.asarray(drawn.get_offsets())]
    assert sorted(order) == list(range(4 * k))  # every point, once
    colour_of = {}
    for i, rgba in zip(order, drawn.get_facecolor()):
        colour_of.setdefault(groups[i], set()).add(tuple(np.round(rgba[:3], 3)))
    assert all(len(c) == 1 for c in colour_of.values())  # a group, one colour
    assert len({c.pop() for c in colour_of.values()}) == k  # a colour of its own
    assert (np.diff(groups[order]) < 0).any()  # not in the groups' order
    assert legend == [str(j) for j in range(min(k, 20))] + ([f"and {k - 20} more"] if k > 20 else [])


def test_a_tables_rows_are_drawn_as_a_heatmap_of_examples_by_features(tmp_path, monkeypatch):
    """One row per example and one column per feature, a block per group with a blank row between,
    the groups named at their left and the colours given their scale."""
    drawn = {}
    monkeypatch.setattr(canvas, "save", lambda fig, path: drawn.update(fig=fig))
    first, second = np.random.default_rng(0).random((2, 4, 6))
    plots.labelled_rows([("original", first), ("reconstruction", second)], tmp_path / "t.png", None)
    ax = drawn["fig"].axes[0]
    heat = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
    assert heat.shape == (4 + 1 + 4, 6)
    np.testing.assert_allclose(heat[:4], first, rtol=1e-6)
    np.testing.assert_allclose(heat[5:], second, rtol=1e-6)
    assert np.isnan(heat[4]).all()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["original", "reconstruction"]
    assert len(drawn["fig"].axes) == 2 and "scaled value" in drawn["fig"].axes[1].get_xlabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(j) for j in range(6)]
    names = ["age", "height", "weight", "income", "score", "rank"]  # a table's own column names
    plots.labelled_rows([("original", first)], tmp_path / "t.png", None, features=names)
    assert [t.get_text() for t in drawn["fig"].axes[0].get_xticklabels()] == names
    plots.image_grid(
        first[:2], tmp_path / "t.png", None, names=["unit 0", "unit 1"]
    )  # one block per named row
    assert [t.get_text() for t in drawn["fig"].axes[0].get_yticklabels()] == ["unit 0", "unit 1"]


def test_a_denoising_run_s_loss_legend_says_its_training_inputs_were_corrupted(monkeypatch, tmp_path):
    figures, save = [], canvas.save
    monkeypatch.setattr(canvas, "save", lambda fig, path: figures.append(fig) or save(fig, path))
    history = [{"stage": "train", "epoch": e, "train_loss": 2.0 / e, "val_loss": 1.5 / e} for e in (1, 2)]
    curves.loss_curve(history, tmp_path / "a.png", corrupted=True)
    curves.loss_curve(history, tmp_path / "b.png")
    legends = [[t.get_text() for t in fig.axes[0].get_legend().get_texts()] for fig in figures]
    assert legends[0][0] == "train (corrupted inputs)" and legends[1][0] == "train"


def test_loss_legends_stay_within_their_own_panel(monkeypatch, tmp_path):
    """A greedy stack's six panels in rows of three: a legend as wide as three long labels in a row
    would run into the legend beside it, so it takes fewer columns."""
    figures = []
    monkeypatch.setattr(canvas, "save", lambda fig, path: figures.append(fig))
    stages = [f"pretrain layer {i}" for i in (1, 2, 3, 4)] + ["fine-tune", "no pretraining"]
    history = [
        {"stage": s, "epoch": e, "train_loss": 2.0 / e, "val_loss": 1.5 / e} for s in stages for e in (1, 2)
    ]
    curves.loss_curve(history, tmp_path / "l.png", floor=0.5, corrupted=True)
    fig = figures[0]
    boxes = [ax.get_legend().get_window_extent() for ax in fig.axes]
    assert len(boxes) == 6
    for left, right in ((boxes[3], boxes[4]), (boxes[4], boxes[5])):  # the bottom row, side by side
        assert left.x1 < right.x0


def test_a_loss_terms_axis_starts_at_zero_where_its_values_cannot_be_negative(monkeypatch, tmp_path):
    """Else each axis would end where its own curve does, and a term's last value would sit on the
    loss's floor line as if it were measured against it."""
    figures = []
    monkeypatch.setattr(canvas, "save", lambda fig, path: figures.append(fig))
    for low in (0.5, -2.0):
        history = [
            {"stage": "train", "epoch": e, "train_loss": 20 / e, "val_loss": 21 / e, "train_kl": low + 3 / e}
            for e in (1, 2, 3)
        ]
        curves.loss_curve(history, tmp_path / "l.png", floor=5.0)
    assert figures[0].axes[1].get_ylim()[0] == 0  # every value at least 0
    assert figures[1].axes[1].get_ylim()[0] < -1  # the axis reaches its values below 0 (the least -1)


def test_rows_in_memory_are_drawn_as_given_with_their_labels(digits_run, tmp_path, monkeypatch):
    """As encode and score take them: in the data's own units, whole (no test split), and named so."""
    from sklearn.datasets import load_digits

    titles, save = [], canvas.save
    monkeypatch.setattr(
        canvas, "save", lambda fig, path: titles.append(fig.axes[0].get_title()) or save(fig, path)
    )
    x, y = load_digits(return_X_y=True)
    for what in ("recon", "top", "latent", "traverse", "interpolate"):
        autoencoders.visualize(
            digits_run.dir, what, tmp_path / f"{what}.png", data=x[:50] / 16, labels=y[:50]
        )
    assert titles[2] == "the codes of 50 given rows (code size 8)"
    assert titles[0] == "given images and their reconstructions"
    assert all("test" not in title for title in titles), titles
    with pytest.raises(autoencoders.UserError, match="labels go with rows in memory"):
        autoencoders.visualize(digits_run.dir, "latent", tmp_path / "l.png", data="digits", labels=y)


def test_the_loss_axis_draws_what_its_label_names(monkeypatch, tmp_path):
    """A sparse run's training loss adds the weighted penalty to the reconstruction: its figure's
    left axis, labelled as the reconstruction's (beside the floor of a perfect one), draws the
    reconstruction, and the penalty goes to the right axis; a VAE's draws its labelled total. So
    do the run's own loss.png and visualize's."""
    figures, save = [], canvas.save
    monkeypatch.setattr(canvas, "save", lambda fig, path: figures.append(fig) or save(fig, path))
    sparse = autoencoders.train(
        data="digits", layers=[64, 16], code_activation="sigmoid", sparsity="kl", sparsity_weight=3.0,
        epochs=2, out=tmp_path / "s", **FAST,
    )  # fmt: skip
    vae = autoencoders.train(
        data="digits", model="vae", layers=[64, 16, 4], epochs=2, out=tmp_path / "v", **FAST
    )
    for run in (sparse, vae):
        autoencoders.visualize(run, "loss")
    losses = [fig for fig in figures if fig.axes[0].get_title() == "stage: train"]
    assert len(losses) == 4
    for fig, (run, term) in zip(losses, [(sparse, "recon"), (vae, "loss")] * 2):  # trained, then visualized
        assert fig.axes[0].get_lines()[0].get_ydata().tolist() == [
            row[f"train_{term}"] for row in run.history
        ]
    assert sparse.history[0]["train_loss"] > sparse.history[0]["train_recon"]  # the penalty is in the loss
    figures.clear()  # a greedy stack's: each panel its reconstruction, after one that drew its penalty
    history = [
        {"stage": s, "epoch": e, "train_loss": 9.0 + e, "train_recon": 5.0 + e, "train_sparsity": 1.0 / e}
        for s in ("pretrain layer 1", "fine-tune") for e in (1, 2)
    ]  # fmt: skip
    curves.loss_curve(history, tmp_path / "g.png", term="recon")
    assert [ax.get_lines()[0].get_ydata().tolist() for ax in figures[0].axes[:2]] == [[6.0, 7.0]] * 2


def test_a_grid_of_samples_leaves_its_last_row_as_full_as_a_count_near_ten_can():
    """64 samples in 8 rows of 8, not 6 rows of 10 over a row of 4 and a wide empty block."""
    from autoencoders.figures.plots import _columns

    assert [_columns(n) for n in (4, 10, 13, 40, 64, 100)] == [4, 10, 7, 10, 8, 10]


def test_a_cluster_matched_to_no_class_says_so_in_the_legend():
    """More clusters than classes leave some matched to none: a bare number would read as a class."""
    fig, ax = canvas.subplots(figsize=(6.4, 4.8))
    groups = np.arange(3).repeat(4)
    points = np.random.default_rng(0).random((12, 2))
    plots._scatter_on(ax, points, groups, "cluster", None, ("a", "b"), "", "clusters", matched={0: 1, 2: 0})
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["0 → 1", "1 → no class", "2 → 0"]

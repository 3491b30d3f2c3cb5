"""Training runs end to end: run directory, save/load, metrics, encode/reconstruct, early stopping."""

from __future__ import annotations

import contextlib
import csv
import json
import re
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import DEVICE, FAST, ctrl_c_at_batch, on_cpu
from safetensors.torch import load_file

import autoencoders
from autoencoders import Config, DataConfig, UserError, finish, load_dataset
from autoencoders import run as run_module
from autoencoders.cli import run as cli_run
from autoencoders.errors import SettingWarning
from autoencoders.eval import metrics as eval_metrics
from autoencoders.figures import canvas
from autoencoders.figures import report as report_module
from autoencoders.figures import training as training_figures
from autoencoders.runtime.alongside import Alongside
from autoencoders.training.loop import evaluate_step
from autoencoders.training.steps import autoencoder_step

RUN_FILES = (
    "config.json",
    "model.safetensors",
    "metrics.json",
    "history.csv",
    "reconstructions.png",
    "loss.png",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def digits_x():
    return load_dataset(DataConfig(data="digits")).x_test


# ---------------------------------------------------------------- run directory and save/load


def test_run_directory_contents(digits_run):
    for name in RUN_FILES:
        assert (digits_run.dir / name).is_file(), name
    for name in ("reconstructions.png", "loss.png"):
        assert (digits_run.dir / name).read_bytes()[:8] == PNG_MAGIC
    assert not list(digits_run.dir.glob("*.tmp"))  # atomic writes leave no temporaries


def test_metrics_json(digits_run):
    metrics = json.loads((digits_run.dir / "metrics.json").read_text())
    for key in (
        "test_mse",
        "test_sse_per_image",
        "pca_sse_per_image",
        "linear_probe_accuracy",
        "train_seconds",
        "samples_per_second",
        "epochs_run",
    ):
        assert key in metrics, key
    assert metrics["epochs_run"] == 3
    assert metrics["code_size"] == 8
    assert metrics["train_seconds"] > 0 and metrics["samples_per_second"] > 0
    assert metrics["evaluation_seconds"] > 0  # written last: it counts the figures and the report
    assert metrics["setup_seconds"] > 0  # the data read and the model built before training
    assert 0.1 < metrics["linear_probe_accuracy"] <= 1.0  # ten classes: chance is 0.1
    assert metrics["test_sse_per_image"] == pytest.approx(metrics["test_mse"] * 64, rel=1e-9)
    assert metrics == json.loads(json.dumps(digits_run.metrics))  # the file is what train() returned
    # BCE's floor: the test rows' own binary entropy, below every loss the model reached
    from autoencoders.trained import open_run, scaled_data

    run = open_run(digits_run.dir)
    x = torch.from_numpy(scaled_data(run.cfg.data, run.cfg.data.data, "test", run.scaler)[0])
    entropy = torch.nn.functional.binary_cross_entropy(x, x, reduction="none").sum(1).mean()
    assert metrics["test_bce_floor"] == pytest.approx(float(entropy), rel=1e-5)
    assert 0 < metrics["test_bce_floor"] < min(row["val_loss"] for row in digits_run.history)


def test_config_json_records_the_run(digits_run):
    cfg = Config.load_json(digits_run.dir / "config.json")
    assert cfg == digits_run.config
    assert cfg.model.layers == [64, 32, 8]
    assert cfg.train.epochs == 3 and cfg.data.data == "digits"


def test_config_json_records_default_layers(tmp_path, npy_data):
    xp, _, _ = npy_data
    run = autoencoders.train(data=f"npy:{xp}", epochs=1, out=str(tmp_path / "r"), **FAST)
    assert Config.load_json(tmp_path / "r" / "config.json").model.layers == [6, 256, 64, 3]
    assert run.model.layers == [6, 256, 64, 3]  # a code narrower than the rows it encodes


def test_history_csv(digits_run):
    assert b"\r" not in (digits_run.dir / "history.csv").read_bytes()  # plain line ends, as every file
    with open(digits_run.dir / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert {"stage", "epoch", "train_loss", "val_loss"} <= set(rows[0])
    for row, h in zip(rows, digits_run.history):
        assert float(row["train_loss"]) == pytest.approx(h["train_loss"], rel=1e-12)
        assert float(row["val_loss"]) == pytest.approx(h["val_loss"], rel=1e-12)


def test_save_then_load_gives_identical_outputs(digits_run, digits_x):
    loaded = autoencoders.load(digits_run.dir)
    assert not loaded.training
    assert loaded.layers == [64, 32, 8]
    digits_run.model.eval()
    model = on_cpu(digits_run.model)  # the loaded model's device: both compute on the CPU
    with torch.no_grad():
        assert torch.equal(loaded.reconstruct(digits_x), model.reconstruct(digits_x))
        assert torch.equal(loaded.encode(digits_x), model.encode(digits_x))


def test_checkpoint_holds_weights_and_input_scaling(digits_run):
    tensors = load_file(digits_run.dir / "model.safetensors")
    state = digits_run.model.state_dict()
    assert set(tensors) == set(state) | {"input_offset", "input_span"}
    for key, value in state.items():
        assert torch.equal(tensors[key], value.cpu()), key


def test_tied_run_round_trip(tmp_path, npy_data):
    xp, _, x = npy_data
    run = autoencoders.train(
        data=f"npy:{xp}", layers=[6, 4, 2], tied=True, epochs=2, out=str(tmp_path / "r"), **FAST
    )
    tensors = load_file(tmp_path / "r" / "model.safetensors")
    assert not any(k.startswith("decoder.") and k.endswith("weight") for k in tensors)
    loaded = autoencoders.load(run.dir)
    assert loaded.tied
    assert loaded.decoder[0].weight.data_ptr() == loaded.encoder[-1].weight.data_ptr()
    xt = torch.from_numpy(x)
    with torch.no_grad():
        assert torch.equal(loaded.reconstruct(xt), on_cpu(run.model).eval().reconstruct(xt))


def test_evaluate_run_reproduces_metrics(digits_run, capsys):
    again = autoencoders.evaluate_run(digits_run.dir, device=DEVICE)  # where the run computed them
    saved = json.loads((digits_run.dir / "metrics.json").read_text())
    for key in ("test_mse", "test_sse_per_image", "pca_sse_per_image", "linear_probe_accuracy"):
        assert again[key] == pytest.approx(saved[key], rel=1e-6), key
    assert cli_run(["evaluate", str(digits_run.dir), "--device", DEVICE]) == 0
    assert json.loads(capsys.readouterr().out) == again


def _spy_on_baselines(monkeypatch, fail: bool = False, hold: threading.Event | None = None) -> list[str]:
    """The names of the threads that compute a run's PCA baseline (then the pixels' ones, named
    ``pixels``), as they do; ``fail``: the PCA baseline raises; ``hold``: it waits for this first."""
    seen = []
    pca_scores, pixel_scores = eval_metrics.pca_scores, eval_metrics.pixel_scores

    def pca_spy(*args, **kwargs):
        seen.append(threading.current_thread().name)
        if hold is not None:
            hold.wait(timeout=60)
        if fail:
            raise RuntimeError("the baselines failed")
        return pca_scores(*args, **kwargs)

    def pixels_spy(*args, **kwargs):
        seen.append("pixels")
        return pixel_scores(*args, **kwargs)

    monkeypatch.setattr(eval_metrics, "pca_scores", pca_spy)
    monkeypatch.setattr(eval_metrics, "pixel_scores", pixels_spy)
    return seen


def _train_digits(tmp_path, threads: str = "1") -> autoencoders.Run:
    """On the CPU, whatever ``DEVICE``: only a CPU run computes its baselines beside training."""
    settings = FAST | {"device": "cpu"}
    return autoencoders.train(
        data="digits", layers=[64, 32, 8], epochs=1, threads=threads, out=str(tmp_path / "r"), **settings
    )


def test_baselines_run_beside_training_when_a_cpu_is_spare(tmp_path, monkeypatch):
    """With as many CPUs idle as training uses, the data's baselines are computed in a thread
    while it trains; the run records the numbers computing them afterwards gives."""
    seen = _spy_on_baselines(monkeypatch)
    monkeypatch.setattr(run_module, "available_cpus", lambda: 2)
    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path / "cold"))
    r = _train_digits(tmp_path)
    assert seen == ["baselines", "pixels"]
    assert sys.getswitchinterval() == pytest.approx(0.005)  # Python's default, given back
    assert not [t for t in threading.enumerate() if t.name == "baselines"]
    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path / "again"))  # computed anew, not read back
    expected = eval_metrics.baselines(load_dataset(DataConfig(data="digits")), 8)
    assert {"pixels_linear_probe_accuracy", "pca_knn_accuracy", "pca_sse_per_image"} <= set(expected)
    assert {name: r.metrics[name] for name in expected} == expected


@pytest.mark.parametrize("cpus, threads", [(1, "1"), (3, "2")])
def test_baselines_wait_for_training_without_as_many_idle_cpus(tmp_path, monkeypatch, cpus, threads):
    seen = _spy_on_baselines(monkeypatch)
    monkeypatch.setattr(run_module, "available_cpus", lambda: cpus)
    _train_digits(tmp_path, threads)
    assert seen == ["MainThread", "pixels"]


def test_a_failure_of_the_baselines_thread_stops_the_run_with_its_error(tmp_path, monkeypatch):
    seen = _spy_on_baselines(monkeypatch, fail=True)
    monkeypatch.setattr(run_module, "available_cpus", lambda: 2)
    with pytest.raises(RuntimeError, match="the baselines failed"):
        _train_digits(tmp_path)
    assert seen == ["baselines"]
    assert not (tmp_path / "r" / "metrics.json").exists()
    assert sys.getswitchinterval() == pytest.approx(0.005)


def test_a_run_that_fails_stops_its_baselines_thread_and_waits_for_it(tmp_path, monkeypatch):
    """Training fails while the baselines' first part runs: the run ends only after that part,
    skipping the rest; no thread is left and Python's switch interval is back."""
    hold = threading.Event()
    seen = _spy_on_baselines(monkeypatch, hold=hold)
    monkeypatch.setattr(run_module, "available_cpus", lambda: 2)

    def fail(*args, **kwargs):
        raise RuntimeError("training failed")

    close = Alongside.close

    def close_then_release(alongside):
        alongside.stop.set()
        hold.set()  # the baselines finish their part only once told to stop
        close(alongside)

    monkeypatch.setattr(run_module, "train_stages", fail)
    monkeypatch.setattr(Alongside, "close", close_then_release)
    with pytest.raises(RuntimeError, match="training failed"):
        _train_digits(tmp_path)
    assert seen == ["baselines"]  # the pixels' part never started
    assert not [t for t in threading.enumerate() if t.name == "baselines"]
    assert sys.getswitchinterval() == pytest.approx(0.005)


def _spy_on_report_figures(monkeypatch, fail: bool = False) -> list[str]:
    """The names of the threads that draw a run's report figures, as they start; ``fail``: they raise."""
    seen = []
    draw_figures = finish.draw_figures

    def spy(*args, **kwargs):
        seen.append(threading.current_thread().name)
        if fail:
            raise RuntimeError("a figure failed")
        return draw_figures(*args, **kwargs)

    monkeypatch.setattr(finish, "draw_figures", spy)
    return seen


@pytest.mark.parametrize(("work", "drawn_in"), [(0, "report figures"), (None, "MainThread")])
def test_the_report_figures_are_drawn_beside_large_metrics(tmp_path, monkeypatch, work, drawn_in):
    """Beside the metrics where their products outweigh a thread's cost; after them on digits."""
    if work is not None:
        monkeypatch.setattr(training_figures, "BESIDE_WORK", work)
    seen = _spy_on_report_figures(monkeypatch)
    r = _train_digits(tmp_path)
    assert seen == [drawn_in]
    page = (r.dir / "report.html").read_text()
    assert page.count("<img ") == len(report_module.DRAWN) + 2  # and the run's loss and reconstructions
    assert not [t for t in threading.enumerate() if t.name == "report figures"]
    assert sys.getswitchinterval() == pytest.approx(0.005)


def test_the_figures_beside_the_metrics_never_use_the_trained_model(tmp_path, monkeypatch):
    """They draw from a CPU copy: around each call on a model its mode is set and put back (and on
    a GPU, how products compute), which would change under the metrics computed meanwhile."""
    monkeypatch.setattr(training_figures, "BESIDE_WORK", 0)
    calls, decode = [], autoencoders.Autoencoder.decode

    def spy(self, z):
        calls.append((threading.current_thread().name, self))
        return decode(self, z)

    monkeypatch.setattr(autoencoders.Autoencoder, "decode", spy)
    r = _train_digits(tmp_path)
    beside = [model for thread, model in calls if thread == "report figures"]
    assert beside and all(model is not r.model for model in beside)  # reconstructions, traversals
    assert any(thread == "MainThread" and model is r.model for thread, model in calls)  # the metrics


@pytest.mark.parametrize("work", [0, None])
def test_the_loss_figure_draws_bce_s_floor_that_the_metrics_record(tmp_path, monkeypatch, work):
    """loss.png is drawn beside the metrics (``work`` 0) or after them, and either way its floor
    line is the ``val_bce_floor`` the run records: the floor of the validation curve's rows, which
    on small data differs from the test rows'."""
    if work is not None:
        monkeypatch.setattr(training_figures, "BESIDE_WORK", work)
    drawn, save = {}, canvas.save
    monkeypatch.setattr(
        canvas, "save", lambda fig, path: drawn.setdefault(Path(path).name, fig) and save(fig, path)
    )
    r = _train_digits(tmp_path)
    floors = [line.get_ydata()[0] for line in drawn["loss.png"].axes[0].lines if line.get_linestyle() == "--"]
    assert floors == [pytest.approx(r.metrics["val_bce_floor"], rel=1e-6)]
    assert r.metrics["val_bce_floor"] != r.metrics["test_bce_floor"]
    legend = [t.get_text() for t in drawn["loss.png"].axes[0].get_legend().get_texts()]
    assert "a perfect reconstruction (validation rows)" in legend


@pytest.mark.parametrize("work", [0, None])
def test_a_report_figure_that_fails_leaves_the_run_complete(tmp_path, monkeypatch, work):
    if work is not None:
        monkeypatch.setattr(training_figures, "BESIDE_WORK", work)
    _spy_on_report_figures(monkeypatch, fail=True)
    with pytest.raises(RuntimeError, match="a figure failed"):
        _train_digits(tmp_path)
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["completed"]
    assert "test_sse_per_image" in json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert not (tmp_path / "r" / "report.html").exists()
    assert sys.getswitchinterval() == pytest.approx(0.005)


def test_metrics_that_fail_stop_the_report_figures_and_wait_for_them(tmp_path, monkeypatch):
    """The metrics fail while the first figure is drawn: the run ends once that figure is done,
    drawing no more; no thread is left."""
    drawing, closing, drawn = threading.Event(), threading.Event(), []
    draw, close = report_module.draw, Alongside.close

    def slow_draw(*args, **kwargs):
        drawing.set()
        closing.wait(timeout=60)  # the metrics have failed
        drawn.append(args[2])
        return draw(*args, **kwargs)

    def fail(*args, **kwargs):
        drawing.wait(timeout=60)
        raise RuntimeError("the metrics failed")

    def close_then_release(alongside):
        alongside.stop.set()
        closing.set()
        close(alongside)

    monkeypatch.setattr(training_figures, "BESIDE_WORK", 0)  # digits' metrics are small: drawn after them
    monkeypatch.setattr(report_module, "draw", slow_draw)
    monkeypatch.setattr(finish, "evaluate", fail)
    monkeypatch.setattr(Alongside, "close", close_then_release)
    with pytest.raises(RuntimeError, match="the metrics failed"):
        _train_digits(tmp_path)
    assert len(drawn) == 1
    assert not [t for t in threading.enumerate() if t.name == "report figures"]
    assert not json.loads((tmp_path / "r" / "manifest.json").read_text())["completed"]


def test_scaler_is_stored_and_reused(tmp_path):
    """Data outside [0, 1]: the training split's scaling travels with the checkpoint."""
    rng = np.random.default_rng(7)
    x = rng.uniform(-5, 300, size=(40, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    spec = f"npy:{tmp_path / 'x.npy'}"
    run = autoencoders.train(data=spec, layers=[5, 2], loss="mse", epochs=2, out=str(tmp_path / "r"), **FAST)
    ds = load_dataset(DataConfig(data=spec))
    tensors = load_file(tmp_path / "r" / "model.safetensors")
    assert torch.equal(tensors["input_offset"], ds.offset)
    assert torch.equal(tensors["input_span"], ds.span)
    assert not torch.equal(ds.span, torch.ones(5))
    codes = autoencoders.encode(run.dir, spec, split="test", device="cpu")
    with torch.no_grad():
        np.testing.assert_array_equal(codes, on_cpu(run.model).eval().encode(ds.x_test).numpy())


# ---------------------------------------------------------------- training behaviour


def test_training_lowers_the_loss(digits_run):
    first, last = digits_run.history[0], digits_run.history[-1]
    assert first["train_loss"] > last["train_loss"]
    assert first["val_loss"] > last["val_loss"]


def test_default_architecture_beats_pca_on_digits(tmp_path):
    # default layers D,256,64,16; 80 epochs give a margin of ~20% over PCA-16 for seeds 0-2
    run = autoencoders.train(data="digits", epochs=80, out=str(tmp_path / "r"), **FAST)
    m = run.metrics
    assert run.model.layers == [64, 256, 64, 16]
    assert m["test_sse_per_image"] < m["pca_sse_per_image"]


def test_same_seed_same_run_other_seed_other_run(tmp_path, npy_data):
    xp, _, _ = npy_data
    common = {**FAST, "data": f"npy:{xp}", "layers": [6, 4, 2], "epochs": 3, "batch_size": 8}
    a = autoencoders.train(out=str(tmp_path / "a"), **common)
    b = autoencoders.train(out=str(tmp_path / "b"), **common)
    c = autoencoders.train(out=str(tmp_path / "c"), **{**common, "seed": 1})
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.model.encoder[0].weight, c.model.encoder[0].weight)
    timing = {
        "setup_seconds",
        "train_seconds",
        "pretrain_seconds",
        "samples_per_second",
        "evaluation_seconds",
    }
    same = lambda run: {k: v for k, v in run.metrics.items() if k not in timing}  # noqa: E731
    assert same(a) == same(b) and same(a) != same(c)  # identical metrics from the same seed


def test_zero_epochs_writes_an_untrained_run(tmp_path, npy_data):
    xp, _, _ = npy_data
    with pytest.warns(SettingWarning, match="--epochs 0 and no pretraining leave the model") as said:
        run = autoencoders.train(data=f"npy:{xp}", layers=[6, 3], epochs=0, out=str(tmp_path / "r"), **FAST)
    assert said[0].filename == __file__  # where the caller asked for it, not inside the package
    assert run.history == [] and run.metrics["epochs_run"] == 0
    assert (tmp_path / "r" / "model.safetensors").is_file()


# ---------------------------------------------------------------- early stopping


def test_early_stopping_stops_and_restores_the_best_weights(tmp_path, npy_data):
    xp, _, _ = npy_data
    patience, epochs = 2, 50
    run = autoencoders.train(
        data=f"npy:{xp}",
        layers=[6, 3],
        lr=0.05,
        batch_size=8,
        patience=patience,
        epochs=epochs,
        out=str(tmp_path / "r"),
        **FAST,
    )
    val = [h["val_loss"] for h in run.history]
    assert run.metrics["epochs_run"] == len(val)
    assert len(val) < epochs  # lr 0.05 on 48 random rows plateaus within ~10 epochs

    # it stopped exactly when the rule says: `patience` epochs in a row without a new best
    best, bad, stop = float("inf"), 0, None
    for epoch, v in enumerate(val, start=1):
        best, bad = (v, 0) if v < best else (best, bad + 1)
        if bad >= patience:
            stop = epoch
            break
    assert stop == len(val)

    # the returned and the saved model are the best epoch's, not the last one's
    ds = load_dataset(run.config.data)
    assert min(val) < val[-1]
    assert _val_loss(run.model, ds.x_val) == pytest.approx(min(val), rel=1e-6)
    loaded = autoencoders.load(run.dir, device=DEVICE)  # where training measured the validation losses
    assert _val_loss(loaded, ds.x_val) == pytest.approx(min(val), rel=1e-6)


def _val_loss(model, x):
    """The validation loss of ``model`` on ``x``, computed on the model's device."""
    x = x.to(next(model.parameters()).device)
    return evaluate_step(autoencoder_step(model, autoencoders.TrainConfig(), 1), x, 8)["loss"]


def test_patience_0_runs_every_epoch_and_keeps_the_best_weights_unless_told_last(tmp_path, npy_data):
    xp, _, _ = npy_data
    common = dict(data=f"npy:{xp}", layers=[6, 3], lr=0.05, batch_size=8, epochs=12, patience=0, **FAST)
    best = autoencoders.train(out=str(tmp_path / "best"), **common)
    last = autoencoders.train(out=str(tmp_path / "last"), keep="last", **common)
    assert len(best.history) == len(last.history) == 12 and best.metrics["epochs_run"] == 12
    val = [h["val_loss"] for h in best.history]
    assert best.metrics["best_epoch"] == 1 + int(np.argmin(val)) and last.metrics["best_epoch"] == 12
    x_val = load_dataset(best.config.data).x_val
    assert _val_loss(best.model, x_val) == pytest.approx(min(val), rel=1e-6)
    assert _val_loss(last.model, x_val) == pytest.approx(val[-1], rel=1e-6)


def test_early_stopping_and_best_weights_are_the_default(tmp_path, npy_data):
    xp, _, _ = npy_data
    run = autoencoders.train(
        data=f"npy:{xp}", layers=[6, 3], lr=0.05, batch_size=8, epochs=200, out=tmp_path / "r", **FAST
    )
    assert run.config.train.patience == 10 and run.config.train.keep == "best"
    assert run.metrics["epochs_run"] == run.metrics["best_epoch"] + 10 < 200


def test_without_validation_data_every_epoch_runs_and_the_last_weights_stay(tmp_path, npy_data):
    xp, _, _ = npy_data
    with pytest.warns(SettingWarning, match="^--patience judges epochs on the validation split, and"):
        run = autoencoders.train(
            data=f"npy:{xp}",
            layers=[6, 3],
            val_fraction=0.0,
            patience=2,
            epochs=6,
            out=str(tmp_path / "r"),
            **FAST,
        )
    assert run.metrics["epochs_run"] == 6 and run.metrics["best_epoch"] == 6


# ---------------------------------------------------------------- encode / reconstruct


def test_encode_api(digits_run):
    codes = autoencoders.encode(digits_run.dir, "digits")
    assert codes.shape == (1797, 8) and codes.dtype == np.float32
    test_codes = autoencoders.encode(digits_run.dir, "digits", split="test", device="cpu")
    ds = load_dataset(DataConfig(data="digits"))
    with torch.no_grad():
        expected = autoencoders.load(digits_run.dir).encode(ds.x_test).numpy()
    np.testing.assert_array_equal(test_codes, expected)


def test_the_python_face_leaves_the_caller_s_random_state_as_it_was(digits_run, tmp_path):
    """Loading builds a model (random initial weights) before its own are read in: a notebook's
    next draws are the same with or without it."""
    before = torch.random.get_rng_state()
    autoencoders.load(digits_run.dir)
    autoencoders.encode(digits_run.dir, "digits", split="test")
    autoencoders.score(digits_run.dir, "digits", split="test")
    assert torch.equal(before, torch.random.get_rng_state())
    # and the functions that seed it from their own seed and train
    run = autoencoders.train(data="digits", layers=[64, 8], epochs=1, out=tmp_path / "r", **FAST)
    autoencoders.classify(run.dir, n_labels=30, epochs=1, quiet=True)
    autoencoders.cluster(run.dir, k=3, quiet=True)
    assert torch.equal(before, torch.random.get_rng_state())


def test_reconstruct_api(digits_run):
    x, recon, shape = autoencoders.reconstruct(digits_run.dir, "digits", split="val")
    assert shape == (8, 8)
    assert x.shape == recon.shape == (len(load_dataset(DataConfig(data="digits")).x_val), 64)
    assert recon.min() >= 0 and recon.max() <= 1


def test_encode_and_reconstruct_cli(digits_run, tmp_path, capsys):
    codes_path, png, npy = tmp_path / "codes.npy", tmp_path / "r.png", tmp_path / "r.npy"
    run_dir = str(digits_run.dir)
    assert cli_run(["encode", run_dir, "--data", "digits", "--out", str(codes_path)]) == 0
    np.testing.assert_array_equal(np.load(codes_path), autoencoders.encode(digits_run.dir, "digits"))

    assert cli_run(["reconstruct", run_dir, "--data", "digits", "--out", str(png), "--n", "5"]) == 0
    assert png.read_bytes()[:8] == PNG_MAGIC

    assert cli_run(["reconstruct", run_dir, "--data", "digits", "--split", "test", "--out", str(npy)]) == 0
    recon = np.load(npy)
    _, expected, _ = autoencoders.reconstruct(digits_run.dir, "digits", split="test")
    np.testing.assert_array_equal(recon, expected)
    assert "wrote" in capsys.readouterr().out

    with pytest.raises(UserError, match="writes .png or .npy files"):
        cli_run(["reconstruct", run_dir, "--data", "digits", "--out", str(tmp_path / "r.txt")])


def test_encode_reconstruct_and_predict_compute_on_the_device_asked_for(digits_run, tmp_path):
    run_dir, codes = str(digits_run.dir), tmp_path / "codes.npy"
    assert cli_run(["encode", run_dir, "--data", "digits", "--device", "cpu", "--out", str(codes)]) == 0
    np.testing.assert_array_equal(np.load(codes), autoencoders.encode(run_dir, "digits", device="cpu"))
    for use in (autoencoders.encode, autoencoders.reconstruct):
        with pytest.raises(UserError, match="device must be auto, cpu or cuda, not 'gpu'"):
            use(run_dir, "digits", device="gpu")
    with pytest.raises(UserError, match="device must be auto, cpu or cuda"):
        autoencoders.predict(run_dir, "digits", device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU is available; use --device cpu"):
            cli_run(["reconstruct", run_dir, "--data", "digits", "--device", "cuda", "--out", str(codes)])


def test_evaluate_and_score_show_progress_unless_given_quiet(digits_run, monkeypatch, tmp_path):
    from autoencoders import api, scoring

    seen = []
    monkeypatch.setattr(api, "evaluate", lambda *a, quiet, **k: seen.append(quiet) or {})
    run_dir = str(digits_run.dir)  # trained with quiet=True: a display's choice, not the run's
    assert cli_run(["evaluate", run_dir]) == 0 and cli_run(["evaluate", run_dir, "--quiet"]) == 0
    autoencoders.evaluate_run(run_dir)
    assert seen == [False, True, True]  # the API's default: as the run trained
    scored = []
    monkeypatch.setattr(scoring, "scored_rows", lambda *a: scored.append(a[-1]) or (np.zeros(3), None, None))
    for quiet in ([], ["--quiet"]):
        assert cli_run(["score", run_dir, "--data", "digits", "--out", str(tmp_path / "s.csv"), *quiet]) == 0
    assert scored == [False, True]


def test_training_says_where_it_writes_unless_quiet(tmp_path, capsys):
    settings = FAST | {"layers": [64, 8], "epochs": 1}
    autoencoders.train(out=str(tmp_path / "loud"), **(settings | {"quiet": False}))
    assert f"autoencoders: training in {tmp_path / 'loud'}\n" in capsys.readouterr().err
    autoencoders.train(out=str(tmp_path / "quiet"), **settings)
    assert "training in" not in capsys.readouterr().err


def test_encode_data_of_the_wrong_width(digits_run, npy_data):
    xp, _, _ = npy_data
    with pytest.raises(UserError, match="has 6 features but the model expects 64"):
        autoencoders.encode(digits_run.dir, f"npy:{xp}")


def test_train_cli_in_process(tmp_path, npy_data, capsys):
    xp, _, _ = npy_data
    out = tmp_path / "cli-run"
    argv = [
        "train",
        "--data",
        f"npy:{xp}",
        "--layers",
        "6,3",
        "--epochs",
        "2",
        "--quiet",
        "--precision",
        "fp32",
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    assert cli_run(argv) == 0
    assert f"run directory: {out}" in capsys.readouterr().out
    assert Config.load_json(out / "config.json").model.layers == [6, 3]
    assert autoencoders.evaluate_run(out)["code_size"] == 3


def test_greedy_run_reports_the_no_pretraining_baseline(tmp_path):
    greedy = dict(data="digits", layers=[64, 32, 8], pretrain="greedy", pretrain_epochs=1, epochs=2, **FAST)
    run = autoencoders.train(out=str(tmp_path / "g"), **greedy)
    m = run.metrics
    assert {"no_pretraining_sse_per_image", "no_pretraining_linear_probe_accuracy"} <= set(m)
    assert m["no_pretraining_sse_per_image"] != m["test_sse_per_image"]
    assert (run.dir / "pretraining.png").is_file()
    assert [h["stage"] for h in run.history].count("no pretraining") == 2
    assert m["epochs_run"] == 2
    plain = autoencoders.train(compare=False, out=str(tmp_path / "n"), **greedy)
    assert "no_pretraining_sse_per_image" not in plain.metrics


def test_encode_and_reconstruct_accept_arrays_and_tensors(digits_run):
    from sklearn.datasets import load_digits

    raw = load_digits().images[:5]  # 0..16 grey levels, N×8×8, as the run's training data was read
    from_spec = autoencoders.encode(digits_run.dir, "digits")[:5]
    # 5 rows against 1,797 in one call: a GPU may take another kernel for the other count (atol)
    np.testing.assert_allclose(
        autoencoders.encode(digits_run.dir, raw / 16.0), from_spec, rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(
        autoencoders.encode(digits_run.dir, torch.from_numpy(raw / 16.0).float()),
        from_spec,
        rtol=1e-5,
        atol=1e-6,
    )
    x, recon, shape = autoencoders.reconstruct(digits_run.dir, raw / 16.0)
    assert x.shape == recon.shape == (5, 64) and shape == (8, 8)
    with pytest.raises(UserError, match="the data given in memory has 3 features but the model expects 64"):
        autoencoders.encode(digits_run.dir, np.zeros((2, 3)))


def test_tensorboard_events_hold_every_history_value(tmp_path):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    run = autoencoders.train(
        data="digits", layers=[64, 16], epochs=3, tensorboard=True, out=tmp_path / "r", **FAST
    )
    events = accumulator.EventAccumulator(str(tmp_path / "r" / "tensorboard"))
    events.Reload()
    assert set(events.Tags()["scalars"]) >= {"train/train_loss", "train/val_loss", "train/train_recon"}
    logged = [(e.step, e.value) for e in events.Scalars("train/val_loss")]
    assert logged == [(h["epoch"], pytest.approx(h["val_loss"], rel=1e-6)) for h in run.history]


@pytest.mark.parametrize("where", ["batch", "write"])
def test_tensorboard_logs_every_epoch_once_across_an_interruption(tmp_path, monkeypatch, where):
    """Epochs after the last state on disk run again on resume: they are logged once saved, whether
    the run stopped inside a batch (nothing saved yet) or while a state was being written."""
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    from autoencoders.io.state import write_state
    from autoencoders.training import state

    count = [0]

    def writes(path, tensors, info):  # while the third state is written: the second stays on disk
        count[0] += 1
        if count[0] == 3:
            raise KeyboardInterrupt
        write_state(path, tensors, info)

    if where == "write":
        monkeypatch.setattr(state, "write_state", writes)
    settings = {"data": "digits", "layers": [64, 16], "epochs": 5, "tensorboard": True}
    said = {"batch": "has no saved epoch yet", "write": "kept as saved in stage 'train' after epoch 2"}[where]
    # "batch": in epoch 3 of 5, with an hour between saves: nothing saved yet
    stop = ctrl_c_at_batch(60) if where == "batch" else contextlib.nullcontext()
    with stop, pytest.raises(KeyboardInterrupt, match=said):
        autoencoders.train(out=tmp_path / "r", save_every=3600 if where == "batch" else 0, **settings, **FAST)
    monkeypatch.undo()
    autoencoders.resume(tmp_path / "r")
    events = accumulator.EventAccumulator(str(tmp_path / "r" / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/val_loss")] == [1, 2, 3, 4, 5]


def test_tensorboard_without_the_package_is_refused_before_writing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    with pytest.raises(UserError, match="tensorboard=True needs the tensorboard package: pip install"):
        autoencoders.train(
            data="digits", layers=[64, 16], epochs=1, tensorboard=True, out=tmp_path / "r", **FAST
        )
    assert not (tmp_path / "r").exists()


def test_a_run_shows_itself_in_one_line(digits_run):
    shown = repr(digits_run)
    assert "\n" not in shown and len(shown) < 300  # not its config, weights and every epoch
    assert shown.startswith(
        f"Run(dir='{digits_run.dir}', model=dense 64-32-8, epochs_run=3, test_sse_per_image="
    )


def test_training_classifying_and_clustering_leave_the_callers_random_numbers(digits_run, tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    autoencoders.train(data="digits", layers=[64, 8], epochs=1, out=str(tmp_path / "r"), **FAST)
    autoencoders.classify(digits_run.dir, n_labels=30, epochs=1, out=tmp_path / "c", **FAST)
    autoencoders.cluster(digits_run.dir, k=10, out=tmp_path / "k", quiet=True)
    assert torch.equal(torch.rand(3), expected)  # as if they had not run: a notebook's draws are its own


def test_data_that_does_not_vary_is_named_as_the_cause_not_the_learning_rate(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((40, 6), np.float32))
    with pytest.warns(
        SettingWarning, match="every test row equals the training rows' mean row: the data"
    ) as said:
        autoencoders.train(
            data=f"npy:{tmp_path / 'x.npy'}", layers=[6, 2], epochs=1, out=str(tmp_path / "r"), **FAST
        )
    assert not [w for w in said if "learning rate" in str(w.message) or "--lr" in str(w.message)]


def test_a_run_another_process_finished_meanwhile_is_not_trained_over(tmp_path, monkeypatch):
    """--out is checked before the data loads and again once this process holds it: a run that
    another process trained there in between (a slow data load, say) is kept."""
    out, real, settings = tmp_path / "r", run_module.measure_setting, {"data": "digits", **FAST}

    def meanwhile(*args):
        monkeypatch.setattr(run_module, "measure_setting", real)
        autoencoders.train(layers=[64, 4], epochs=1, out=str(out), **settings)  # the other process
        return real(*args)

    monkeypatch.setattr(run_module, "measure_setting", meanwhile)
    with pytest.raises(UserError, match=r"out .*r is not empty; add overwrite=True to replace the run in it"):
        autoencoders.train(layers=[64, 8], epochs=1, out=str(out), **settings)
    assert autoencoders.load(out).code_size == 4  # the other run, whole


def test_a_ctrl_c_right_after_the_run_directory_is_made_says_how_to_continue(tmp_path, monkeypatch):
    from autoencoders import run as run_module

    def stopped(*args, **kwargs):  # before the training clock starts: the directory holds no state
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "Progress", stopped)
    with pytest.raises(KeyboardInterrupt, match=r"has no saved epoch yet; start it again with: .* --resume"):
        autoencoders.train(data="digits", layers=[64, 8], epochs=1, out=tmp_path / "r", **FAST)
    monkeypatch.undo()
    assert autoencoders.resume(tmp_path / "r").metrics["epochs_run"] == 1  # as the message says


def test_a_log_gets_a_line_on_training_now_and_then_where_no_bar_is_drawn(tmp_path, monkeypatch, capsys):
    """stderr into a file (a batch job's log) shows no progress bar; a line every ``LOG_EVERY``
    seconds says how far training is. None when quiet, and none on a terminal, which has the bar."""
    import re

    from autoencoders.training import loop

    monkeypatch.setattr(loop, "LOG_EVERY", 0.0)
    settings = FAST | {"data": "digits", "layers": [64, 8], "epochs": 2}
    autoencoders.train(**(settings | {"quiet": False}), out=tmp_path / "log")
    lines = [line for line in capsys.readouterr().err.splitlines() if ", epoch " in line]
    number = r"\d[\d.e+-]*"
    assert len(lines) == 2
    for epoch, line in enumerate(lines, 1):
        assert re.fullmatch(
            rf"autoencoders: train, epoch {epoch} of 2: train loss {number}, validation loss {number}, "
            rf"[\d,]+ samples/s(, about \d+ s left)?",
            line,
        ), line
    autoencoders.train(**settings, out=tmp_path / "quiet")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    autoencoders.train(**(settings | {"quiet": False}), out=tmp_path / "terminal")
    assert ", epoch " not in capsys.readouterr().err


def test_a_log_line_says_how_long_training_has_left_at_its_epochs_mean_so_far():
    from autoencoders.training.loop import _epoch_line

    rows = [
        {"epoch": e, "train_loss": 2.0, "val_loss": float("nan"), "seconds": s, "samples_per_second": 1234.5}
        for e, s in ((1, 30.0), (2, 50.0))
    ]
    assert _epoch_line("fine-tune", 10, rows) == (
        "fine-tune, epoch 2 of 10: train loss 2, 1,234 samples/s, about 5 min left"
    )
    assert _epoch_line("fine-tune", 200, rows).endswith("about 2.2 h left")
    assert _epoch_line("fine-tune", 2, rows).endswith("1,234 samples/s")


def test_a_run_and_its_classifier_and_clusters_go_where_their_directories_do(tmp_path):
    """What ``train``, ``classify`` and ``cluster`` return is taken wherever their directory is
    (``os.PathLike``), and reads in one line."""
    import os

    run = autoencoders.train(data="digits", layers=[64, 8], epochs=1, out=tmp_path / "run", **FAST)
    assert os.fspath(run) == str(tmp_path / "run")
    assert autoencoders.encode(run, "digits").shape == (1797, 8)
    classifier = autoencoders.classify(run, n_labels=100, epochs=1, out=tmp_path / "clf", **FAST)
    clusters = autoencoders.cluster(run, out=tmp_path / "clusters", **FAST)
    for result, folder in ((classifier, "clf"), (clusters, "clusters")):
        assert os.fspath(result) == str(tmp_path / folder)
        assert len(autoencoders.predict(result, "digits")[0]) == 1797
    assert repr(classifier) == (
        f"ClassifierResult(out={str(tmp_path / 'clf')!r}, method=finetune, classes=10, "
        f"test_accuracy={classifier.metrics['test_accuracy']:.4g}, n_labels=100)"
    )
    assert repr(clusters).startswith(f"ClusterResult(out={str(tmp_path / 'clusters')!r}, method=kmeans, ")
    assert "clusters=10, rows=1797, accuracy=" in repr(clusters)
    classifier.out = None
    with pytest.raises(UserError, match="this classifier was never saved"):
        os.fspath(classifier)
    named = re.escape(str(tmp_path / "run"))
    with pytest.raises(UserError, match=rf"^{named} holds a 'dense' model, which has no prior"):
        autoencoders.sample(run)  # its message names the directory, not the Run


def test_a_run_that_reconstructs_no_better_than_the_mean_row_is_warned_of(tmp_path):
    """One epoch of 21 updates leaves this stack worse than reconstructing every test row by the
    training rows' mean row (SSE per image 4.648 on digits' test split): a number that looks like a
    result. The yardstick is the training rows' mean: the test rows' own would be fitted to them."""
    from autoencoders.eval.metrics import mean_row_sse

    assert mean_row_sse(torch.tensor([[0.0, 0.0], [2.0, 2.0]]), torch.tensor([[1.0, 1.0], [1.0, 1.0]])) == 2.0
    assert mean_row_sse(torch.tensor([[2.0, 2.0]]), torch.tensor([[0.0, 0.0], [2.0, 0.0]])) == 5.0
    said = (
        r"no better than the training rows' mean row does \(SSE per image [\d.]+, the mean row's 4\.648\): "
    )
    with pytest.warns(SettingWarning, match=said + r".* 21 updates"):
        autoencoders.train(data="digits", layers=[64, 32, 8], epochs=1, out=tmp_path / "r", **FAST)


def test_a_run_that_learned_nothing_because_its_loss_blew_up_is_told_to_lower_the_rate():
    """More epochs or a higher rate would not help a run whose training loss blew up on the way."""
    from autoencoders.outcome import warn_learned_nothing

    metrics = {"test_sse_per_image": 4.653, "mean_row_sse_per_image": 4.648}
    history = [
        {"stage": "train", "epoch": e, "train_loss": loss} for e, loss in enumerate([5.5e10, 143, 105], 1)
    ]
    with pytest.warns(
        SettingWarning, match=r"reached 5.5e\+10 in epoch 1, over 100 times its last; .*lower --lr than 0.2$"
    ):
        warn_learned_nothing(metrics, history, 63, 0.2, "image")
    history[0]["train_loss"] = 300.0  # no blow-up: too few updates, or too low a rate
    with pytest.warns(SettingWarning, match=r"learned next to nothing in 63 updates"):
        warn_learned_nothing(metrics, history, 63, 0.2, "image")


def test_a_runs_data_reloads_split_and_scaled_as_encode_reads_it(digits_run):
    """The README's way to the labels of ``encode``'s rows: the run's own splits, in the same order."""
    from autoencoders.trained import open_run

    run = open_run(digits_run.dir)
    ds = load_dataset(run.cfg.data)
    codes = autoencoders.encode(digits_run.dir, "digits", split="test", device="cpu")
    with torch.no_grad():
        assert np.array_equal(codes, run.model.encode(ds.x_test).numpy())
    assert np.array_equal(autoencoders.score(digits_run.dir, "digits", split="test")[1], ds.y_test.numpy())
    # and each row's place in the data: the row of an output over all of them
    from sklearn.datasets import load_digits

    digits = load_digits()
    for split in ("train", "val", "test"):
        at = ds.places[split]
        np.testing.assert_allclose(getattr(ds, f"x_{split}").numpy(), digits.data[at] / 16, atol=1e-6)
        np.testing.assert_array_equal(getattr(ds, f"y_{split}").numpy(), digits.target[at])
    assert sorted(np.concatenate(list(ds.places.values())).tolist()) == list(range(len(digits.data)))


def test_resume_refuses_settings_in_words_as_the_command_does(tmp_path):
    with pytest.raises(
        UserError, match=r"^a resumed run continues with its own settings; leave out epochs, lr$"
    ):
        autoencoders.resume(tmp_path, epochs=10, lr=0.1)
    with pytest.raises(UserError, match=r"^unknown option 'save_evry' \(did you mean 'save_every'\?\)$"):
        autoencoders.resume(tmp_path, save_evry=1)  # its own, mistyped


def test_a_runs_model_encodes_as_the_saved_model_does(tmp_path):
    """In training mode a winner-take-all code keeps each unit's largest activations over the batch:
    the model a Run hands back is in eval mode, as a loaded one is, and gives its codes."""
    run = autoencoders.train(
        data="digits", layers=[64, 32, 8], lifetime_sparsity=0.05, epochs=1, out=tmp_path / "r", **FAST
    )
    assert not run.model.training
    x = load_dataset(run.config.data).x_test
    with torch.no_grad():
        assert torch.equal(run.model.cpu().encode(x), autoencoders.load(run.dir).encode(x))


def test_runs_without_out_started_in_one_second_each_take_their_own_directory(tmp_path, monkeypatch):
    """A sweep of trains without --out: the name is taken when it is chosen, so two processes that
    start in the same second do not pick the same one (before, the second was refused as still
    training there). A run that fails before writing anything leaves no empty directory behind."""
    import datetime as real

    class Frozen(real.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 1, 2, 3, 4, 5)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run_module, "datetime", Frozen)
    cfg = Config()
    first, second = run_module._new_run_dir(cfg), run_module._new_run_dir(cfg)
    assert (first.name, second.name) == ("20260102-030405-dense", "20260102-030405-dense-2")
    assert first.is_dir() and second.is_dir()
    with pytest.raises(UserError, match="layers starts with 10"):
        autoencoders.train(data="digits", layers=[10, 4], **FAST)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [first.name, second.name]
    monkeypatch.chdir(tmp_path / "runs" / first.name)
    (tmp_path / "runs" / first.name / "runs").write_text("")  # a file where runs/ would go
    with pytest.raises(UserError, match=r"cannot write under runs/20260102-030405-dense: .* is a file"):
        run_module._new_run_dir(cfg)


def test_outputs_of_a_split_name_each_rows_place_in_the_data(digits_run, tmp_path):
    """score, predict and cluster of --split test rows: data_row is where each lies among the data's
    rows (before, only its place in the split), so that its label there is its own."""
    import pandas as pd
    from sklearn.datasets import load_digits

    target = load_digits().target
    clf = autoencoders.classify(digits_run.dir, method="knn", quiet=True, out=tmp_path / "k")
    found = autoencoders.cluster(digits_run.dir, split="test", quiet=True, out=tmp_path / "c")
    for argv in (
        ["score", str(digits_run.dir), "--out", str(tmp_path / "s.csv")],
        ["predict", str(clf.out), "--out", str(tmp_path / "p.csv")],
    ):
        assert cli_run([*argv, "--data", "digits", "--split", "test"]) == 0
    test = load_dataset(autoencoders.trained.open_run(digits_run.dir).cfg.data).places["test"]
    for written in (tmp_path / "s.csv", tmp_path / "p.csv", found.out / "clusters.csv"):
        table = pd.read_csv(written)
        np.testing.assert_array_equal(table["data_row"], test)
        np.testing.assert_array_equal(table["label"], target[table["data_row"]])
    assert cli_run(["score", str(digits_run.dir), "--data", "digits", "--out", str(tmp_path / "a.csv")]) == 0
    assert "data_row" not in pd.read_csv(tmp_path / "a.csv")  # every row: row is its place

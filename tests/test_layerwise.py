"""Greedy layer-wise pretraining: cached features, shared and frozen parameters, schedules.

Everything runs on tiny widths and small slices of the digits data with fixed seeds, fp32
and the CPU, so the whole module takes a few seconds on one thread.
"""

from __future__ import annotations

import csv
import functools
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import DEVICE, FAST

import autoencoders
import autoencoders.stages as stages_module
import autoencoders.training.layerwise as layerwise
import autoencoders.training.state as state_module
from autoencoders import Config, DenseAutoencoder
from autoencoders.data.stream import RowStream
from autoencoders.models import LayerPair
from autoencoders.models.layers import set_trainable
from autoencoders.training.layerwise import cache_features
from autoencoders.training.state import Progress

LAYERS = [64, 16, 8, 4]  # depth 3: three pretraining stages


@functools.cache
def _digits_rows() -> torch.Tensor:
    from sklearn.datasets import load_digits

    return torch.from_numpy((load_digits().data / 16.0).astype(np.float32))


def _digits(n_train: int = 200, n_val: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    x = _digits_rows()
    return x[:n_train].clone(), x[n_train : n_train + n_val].clone()


def _model(layers: list[int] = LAYERS, **kw) -> DenseAutoencoder:
    torch.manual_seed(0)
    return DenseAutoencoder(layers, **kw)


def _cfg(**overrides) -> Config:
    settings = {"pretrain": "greedy", "pretrain_epochs": 2, "batch_size": 32, "lr": 5e-3, **FAST}
    settings.update(overrides)
    return Config().replace(**settings)


def greedy_pretrain(model, x_train, x_val, cfg, memory_budget: int = 1 << 30) -> list[dict]:
    """Greedy pretraining outside a run directory (nothing saved)."""
    return layerwise.greedy_pretrain(model, x_train, x_val, cfg, Progress(None), memory_budget)


def _pair_loss(pair: LayerPair, h: torch.Tensor, target: torch.Tensor | None = None) -> float:
    """The pair's reconstruction objective on clean ``h`` (target: ``h``, or the stack's input)."""
    with torch.no_grad():
        return float(pair.nll(pair(h).logits, h if target is None else target).mean())


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _stages(history: list[dict]) -> list[str]:
    return [row["stage"] for row in history]


def _spy_on_stages(monkeypatch, phase: list[str]) -> dict[str, list]:
    """Make ``phase[0]`` name what greedy_pretrain is doing; record the caches it makes."""
    real_fit, real_cache = state_module.fit, layerwise.cache_features
    seen: dict[str, list] = {"caches": []}

    def fit(step, train, val, cfg, epochs, **kw):
        phase[0] = kw["stage"]
        try:
            return real_fit(step, train, val, cfg, epochs, **kw)
        finally:
            phase[0] = "between stages"

    def cache(pair, h, *args, **kw):
        phase[0] = f"cache {pair.k + 1}"
        try:
            out = real_cache(pair, h, *args, **kw)
        finally:
            phase[0] = "between stages"
        seen["caches"].append((pair.k, out))
        return out

    monkeypatch.setattr(state_module, "fit", fit)
    monkeypatch.setattr(layerwise, "cache_features", cache)
    return seen


# ---------------------------------------------------------------- cached features


@pytest.mark.parametrize(
    ("schedule", "budget"),
    [("stagewise", 1 << 30), ("phased", 1 << 30), ("stagewise", 1), ("phased", 1)],
    ids=["stagewise-ram", "phased-ram", "stagewise-disk", "phased-disk"],
)
def test_frozen_layers_run_once_per_stage(monkeypatch, schedule, budget):
    n_train, n_val, epochs = 50, 10, 3
    x_train, x_val = _digits(n_train, n_val)
    model = _model()
    phase = ["setup"]
    rows: Counter = Counter()  # (encoder layer, phase) -> rows that went through it

    def counter(i):
        def hook(_module, args, _out):
            rows[(i, phase[0])] += args[0].shape[0]

        return hook

    handles = [layer.register_forward_hook(counter(i)) for i, layer in enumerate(model.encoder)]
    seen = _spy_on_stages(monkeypatch, phase)
    cfg = _cfg(schedule=schedule, pretrain_epochs=epochs, batch_size=8)
    greedy_pretrain(model, x_train, x_val, cfg, memory_budget=budget)
    for handle in handles:
        handle.remove()

    per_epoch = n_train + n_val  # every training row, then the validation pass
    assert dict(rows) == {
        (0, "pretrain layer 1"): epochs * per_epoch,
        (0, "cache 1"): n_train + n_val,  # once, not per batch or per epoch of later stages
        (1, "pretrain layer 2"): epochs * per_epoch,
        (1, "cache 2"): n_train + n_val,
        (2, "pretrain layer 3"): epochs * per_epoch,  # the top layer is never cached
    }

    # the caches stay valid: the layers below are frozen, so they equal a fresh partial encode
    # (budget 1 spills every cache to a file stream; materialise it to compare)
    caches = [out.materialise() if isinstance(out, RowStream) else out for _, out in seen["caches"]]
    assert all(isinstance(out, RowStream) == (budget == 1) for _, out in seen["caches"])
    assert [k for k, _ in seen["caches"]] == [0, 0, 1, 1]
    with torch.no_grad():
        h_train, h_val = x_train, x_val
        for k in range(2):
            layer, act = model.encoder[k], model.encoder_acts[k]
            h_train, h_val = act(layer(h_train)), act(layer(h_val))
            torch.testing.assert_close(caches[2 * k], h_train)
            torch.testing.assert_close(caches[2 * k + 1], h_val)


# ---------------------------------------------------------------- shared parameters


def test_layer_pair_holds_the_stack_own_layers():
    model = _model()
    d = model.depth
    for k in range(d):
        pair = LayerPair(model, k)
        assert pair.layer is model.encoder[k]
        assert pair.mirror is model.decoder[d - 1 - k]
        assert pair.layer.weight.data_ptr() == model.encoder[k].weight.data_ptr()
        assert pair.mirror.weight.data_ptr() == model.decoder[d - 1 - k].weight.data_ptr()
        # the mirror decoder maps layer k's output back to its input width
        assert (pair.mirror.in_features, pair.mirror.out_features) == (
            pair.layer.out_features,
            pair.layer.in_features,
        )

    pair = LayerPair(model, 1)
    enc_before = model.encoder[1].weight.detach().clone()
    with torch.no_grad():
        pair.layer.weight.add_(1.0)
        pair.mirror.bias.fill_(0.25)
    assert torch.equal(model.encoder[1].weight, enc_before + 1.0)
    assert torch.all(model.decoder[d - 2].bias == 0.25)
    # the pair's state is a view of the model's, never a copy
    model_ptrs = {p.data_ptr() for p in model.parameters()}
    assert {p.data_ptr() for p in pair.parameters()} <= model_ptrs


def test_greedy_pretrain_changes_every_layer_in_place():
    x_train, x_val = _digits()
    model = _model()
    init = _snapshot(model)
    history = greedy_pretrain(model, x_train, x_val, _cfg())
    assert len(history) == model.depth * 2
    after = _snapshot(model)
    unchanged = [name for name in init if torch.equal(init[name], after[name])]
    assert unchanged == []  # every encoder layer and its mirror was pretrained in place
    assert all(p.requires_grad for p in model.parameters())  # unfrozen for fine-tuning


@pytest.fixture(scope="module")
def greedy_run(tmp_path_factory):
    """One tiny greedy run through the API, with spies on pretraining and fine-tuning."""
    seen: dict[str, object] = {}
    real_pretrain, real_fit = stages_module.greedy_pretrain, state_module.fit

    def pretrain(model, *args, **kw):
        seen["model"], seen["init"] = model, _snapshot(model)
        history = real_pretrain(model, *args, **kw)
        seen["pretrained"] = _snapshot(model)
        return history

    def fit(step, *args, **kw):
        if kw.get("stage") == "fine-tune":  # not a from-scratch baseline run, if any
            module = step.module
            seen["fit_module"], seen["fit_start"] = module, _snapshot(module)
            seen["trainable"] = [name for name, p in module.named_parameters() if p.requires_grad]
            history = real_fit(step, *args, **kw)
            seen["fine_tuned"] = _snapshot(module)
            return history
        return real_fit(step, *args, **kw)

    out = tmp_path_factory.mktemp("greedy") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stages_module, "greedy_pretrain", pretrain)
        mp.setattr(state_module, "fit", fit)
        run = autoencoders.train(
            data="digits",
            layers=[64, 32, 16, 8],
            pretrain="greedy",
            pretrain_epochs=1,
            epochs=2,
            out=str(out),
            **FAST,
        )
    return run, seen


def test_fine_tuning_starts_from_the_pretrained_weights(greedy_run):
    run, seen = greedy_run
    assert seen["fit_module"] is seen["model"] is run.model
    init, pretrained, start = seen["init"], seen["pretrained"], seen["fit_start"]
    assert len(init) == 12  # 3 encoder and 3 decoder layers, weight and bias each
    for name in init:
        assert not torch.equal(init[name], pretrained[name]), name  # pretraining did something
        assert torch.equal(start[name], pretrained[name]), name  # fine-tuning starts right there
    # every layer is trainable again when fine-tuning starts, and fine-tuning moves them all
    assert seen["trainable"] == list(init)
    final = seen["fine_tuned"]
    assert [name for name in init if torch.equal(final[name], pretrained[name])] == []
    for name, value in _snapshot(run.model).items():
        assert torch.equal(value, final[name]), name  # the run's model is the fine-tuned stack


# ---------------------------------------------------------------- freezing


@pytest.mark.parametrize(
    ("schedule", "tied"), [("stagewise", False), ("phased", False), ("stagewise", True), ("phased", True)]
)
def test_each_stage_trains_only_its_pair(monkeypatch, schedule, tied):
    x_train, x_val = _digits(100, 20)
    model = _model(tied=tied)
    d = model.depth
    real_fit = state_module.fit
    changed_per_stage, trainable_per_stage = [], []

    def fit(step, *args, **kw):
        trainable = {id(p) for p in model.parameters() if p.requires_grad}
        assert trainable == {id(p) for p in step.module.parameters()}
        # the step's optimizer holds exactly the pair's parameters
        assert trainable == {id(p) for g in step.optimizers["main"].param_groups for p in g["params"]}
        trainable_per_stage.append(sorted(n for n, p in model.named_parameters() if p.requires_grad))
        before = _snapshot(model)
        history = real_fit(step, *args, **kw)
        after = _snapshot(model)
        changed_per_stage.append(sorted(n for n in before if not torch.equal(before[n], after[n])))
        return history

    monkeypatch.setattr(state_module, "fit", fit)
    greedy_pretrain(model, x_train, x_val, _cfg(schedule=schedule))

    for k in range(d):
        j = d - 1 - k
        expected = [f"decoder.{j}.bias", f"encoder.{k}.bias", f"encoder.{k}.weight"]
        if not tied:
            expected.insert(1, f"decoder.{j}.weight")
        assert trainable_per_stage[k] == expected, k
        # the pair's parameters moved; every other parameter is bitwise unchanged
        assert changed_per_stage[k] == expected, k
    assert len(changed_per_stage) == d


def test_set_trainable_toggles_every_parameter():
    model = _model(tied=True)
    params = list(model.parameters())
    assert len(params) == 3 * 2 + 3  # encoder weights + biases, tied decoder biases
    set_trainable(model, False)
    assert not any(p.requires_grad for p in params)
    model.encoder[1].bias.requires_grad_(True)  # a mixed state is made uniform again
    set_trainable(model, True)
    assert all(p.requires_grad for p in params)
    set_trainable(model.encoder[2], False)
    assert [p.requires_grad for p in params].count(False) == 2
    set_trainable(model, False)
    assert not any(p.requires_grad for p in params)


# ---------------------------------------------------------------- schedules


def _reference_stage_loss(model: DenseAutoencoder, x: torch.Tensor, k: int, schedule: str) -> float:
    """Stage ``k``'s loss on clean ``x``, computed from the model's layers directly.

    stagewise: layer k's mirror reconstructs the features of layer k-1 (BCE on the input for
    k = 0, MSE on the ReLU features above it). phased: layers 0..k, then decoder layers from
    layer k's mirror outward, BCE against the input.
    """
    d = model.depth
    with torch.no_grad():
        h = x
        for i in range(k):
            h = model.encoder_acts[i](model.encoder[i](h))
        code = model.encoder_acts[k](model.encoder[k](h))
        pre = model.decoder[d - 1 - k](code)
        if schedule == "stagewise" and k > 0:
            return float((model.decoder_acts[d - 1 - k](pre) - h).pow(2).sum() / len(x))
        for j in range(d - k, d):
            pre = model.decoder[j](model.decoder_acts[j - 1](pre))
        return float(F.binary_cross_entropy_with_logits(pre, x, reduction="sum") / len(x))


@pytest.mark.parametrize("schedule", ["stagewise", "phased"])
def test_schedules_reduce_their_stage_loss(schedule):
    x_train, x_val = _digits(300, 60)
    model = _model()
    epochs = 4
    history = greedy_pretrain(model, x_train, x_val, _cfg(schedule=schedule, pretrain_epochs=epochs))
    names = [f"pretrain layer {k + 1}" for k in range(model.depth)]
    assert _stages(history) == [name for name in names for _ in range(epochs)]
    for k, name in enumerate(names):
        rows = [row for row in history if row["stage"] == name]
        assert [row["epoch"] for row in rows] == list(range(1, epochs + 1))
        assert all(math.isfinite(row["val_loss"]) for row in rows)
        assert rows[-1]["train_loss"] < rows[0]["train_loss"], (name, rows)
        # each stage optimises its schedule's objective: the last validation loss is exactly
        # that objective under the final weights (later stages never touch these layers)
        expected = _reference_stage_loss(model, x_val, k, schedule)
        assert rows[-1]["val_loss"] == pytest.approx(expected, rel=1e-4), name


def test_schedules_differ_above_the_first_stage():
    x_train, x_val = _digits(100, 20)
    histories = {}
    for schedule in ("stagewise", "phased"):
        model = _model()
        histories[schedule] = greedy_pretrain(model, x_train, x_val, _cfg(schedule=schedule))
    first = [
        [row["train_loss"] for row in histories[s] if row["stage"] == "pretrain layer 1"]
        for s in ("stagewise", "phased")
    ]
    assert first[0] == first[1]  # stage 1 is the same shallow autoencoder in both
    above = [
        [row["val_loss"] for row in histories[s] if row["stage"] != "pretrain layer 1"]
        for s in ("stagewise", "phased")
    ]
    assert all(a != pytest.approx(b, rel=1e-3) for a, b in zip(*above, strict=True))


# ---------------------------------------------------------------- tied weights


def test_tied_pair_decodes_with_the_transposed_encoder_weight():
    model = _model(tied=True)
    for k in range(model.depth):
        pair = LayerPair(model, k)
        w = pair.layer.weight
        assert pair.mirror.weight.shape == w.t().shape
        assert pair.mirror.weight.data_ptr() == w.data_ptr()  # a view, not a copy
        assert torch.equal(pair.mirror.weight, w.t())
        # the shared weight is one parameter of the pair (encoder W and b, decoder b)
        assert len(list(pair.parameters())) == 3
        assert sum(p is w for p in pair.parameters()) == 1


def test_tied_pretraining_learns_and_keeps_the_tie():
    x_train, x_val = _digits(300, 60)
    model = _model(tied=True)
    init = _snapshot(model)
    history = greedy_pretrain(model, x_train, x_val, _cfg(pretrain_epochs=4))
    for k in range(model.depth):
        rows = [row for row in history if row["stage"] == f"pretrain layer {k + 1}"]
        assert rows[-1]["train_loss"] < rows[0]["train_loss"]
        dec = model.decoder[model.depth - 1 - k]
        assert torch.equal(dec.weight, model.encoder[k].weight.t())
        assert not torch.equal(model.encoder[k].weight, init[f"encoder.{k}.weight"])


# ---------------------------------------------------------------- denoising


@pytest.mark.parametrize("schedule", ["stagewise", "phased"])
def test_pair_objective_is_the_stage_objective(schedule):
    x, _ = _digits(64, 0)
    model = _model()
    h = x
    for k in range(model.depth):
        pair = LayerPair(model, k, schedule)
        got = _pair_loss(pair, h, x if schedule == "phased" else None)
        assert got == pytest.approx(_reference_stage_loss(model, x, k, schedule), rel=1e-5), k
        with torch.no_grad():
            h = pair.encode(h)


def test_pretraining_corrupts_training_rows_only(monkeypatch):
    n_train, n_val, epochs = 60, 20, 2
    x_train, x_val = _digits(n_train, n_val)
    model = _model()
    real_make = layerwise.make_corruption
    corrupted: list[int] = []

    def make_corruption(kind, level, value_range):
        assert (kind, level) == ("masking", 0.3)
        transform = real_make(kind, level, value_range)

        def corrupt(h):
            corrupted.append(len(h))
            return transform(h)

        return corrupt

    monkeypatch.setattr(layerwise, "make_corruption", make_corruption)
    # a pass over the features that only salt-and-pepper needs
    monkeypatch.setattr(layerwise, "value_range", lambda h: pytest.fail("masking needs no value range"))
    torch.manual_seed(0)
    cfg = _cfg(pretrain_epochs=epochs, batch_size=16, corruption="masking", noise=0.3)
    history = greedy_pretrain(model, x_train, x_val, cfg)
    # every training row of every epoch of every stage; no validation or caching rows
    assert sum(corrupted) == model.depth * epochs * n_train
    # the validation loss is the clean objective, whatever the random state
    last = [row["val_loss"] for row in history if row["epoch"] == epochs]
    for k in range(model.depth):
        assert last[k] == pytest.approx(_reference_stage_loss(model, x_val, k, "stagewise"), rel=1e-4)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("budget", [1 << 30, 1], ids=["ram", "disk"])
def test_salt_and_pepper_writes_each_stage_input_s_lowest_and_highest_value(monkeypatch, activation, budget):
    """Vincent et al. (2010) set corrupted inputs to their minimum or maximum possible value: 0 and 1
    for the data, -1 and 1 above a tanh layer, the lowest and highest seen above a ReLU layer."""
    x_train, x_val = _digits(60, 20)
    model = _model(activation_name=activation)
    caches = _spy_on_stages(monkeypatch, ["start"])["caches"]
    real_make, spans, written = layerwise.make_corruption, [], []

    def make_corruption(kind, level, value_range):
        transform = real_make(kind, level, value_range)
        spans.append(value_range)

        def corrupt(h):
            out = transform(h)
            written.append((len(spans) - 1, out[out != h]))
            return out

        return corrupt

    monkeypatch.setattr(layerwise, "make_corruption", make_corruption)
    torch.manual_seed(0)
    greedy_pretrain(model, x_train, x_val, _cfg(corruption="salt-and-pepper", noise=0.3), budget)
    if activation == "tanh":
        assert spans == [(0.0, 1.0), (-1.0, 1.0), (-1.0, 1.0)]
    else:
        seen = [c.materialise() if isinstance(c, RowStream) else c for _, c in caches[::2]]  # training rows
        assert spans == [(0.0, 1.0)] + [(float(h.min()), float(h.max())) for h in seen]
        assert spans[1][1] > 1  # a ReLU layer's features are not in [0, 1]
    for stage, values in written:
        assert set(values.unique().tolist()) <= set(spans[stage])


# ---------------------------------------------------------------- disk-backed cache


def test_cache_features_spills_to_a_file_stream():
    x, _ = _digits(300, 0)
    model = _model()
    pair = LayerPair(model, 0)
    in_ram = cache_features(pair, x, memory_budget=1 << 30)
    on_disk = cache_features(pair, x, memory_budget=1)
    assert isinstance(in_ram, torch.Tensor) and in_ram.shape == (300, 16)
    with torch.no_grad():
        torch.testing.assert_close(in_ram, pair.encode(x))
    assert pair.training  # back in training mode for the next stage
    # the spilled features live in a temporary file, read back in chunks
    assert isinstance(on_disk, RowStream)
    assert (len(on_disk), on_disk.n_features) == (300, 16)
    path = Path(on_disk.path)  # a name of its own only where the system cannot name open files
    assert path.parent == Path("/proc/self/fd") or path.name.startswith("ae-features-")
    assert path.stat().st_size == 300 * 16 * 4
    np.testing.assert_array_equal(np.fromfile(path, dtype=np.float32).reshape(300, 16), in_ram.numpy())
    torch.testing.assert_close(on_disk.materialise(), in_ram)
    # a stream is also a valid input to the next stage's cache, to RAM or to disk again
    above = LayerPair(model, 1)
    expected = cache_features(above, in_ram, memory_budget=1 << 30)
    torch.testing.assert_close(cache_features(above, on_disk, memory_budget=1 << 30), expected)
    torch.testing.assert_close(cache_features(above, on_disk, memory_budget=1).materialise(), expected)


def test_cache_features_budget_is_in_bytes():
    x, _ = _digits(10, 0)
    pair = LayerPair(_model(), 0)
    exact = cache_features(pair, x, memory_budget=10 * 16 * 4)  # fits exactly: RAM
    spilled = cache_features(pair, x, memory_budget=10 * 16 * 4 - 1)
    assert isinstance(exact, torch.Tensor)
    assert isinstance(spilled, RowStream)
    torch.testing.assert_close(spilled.materialise(), exact)


@pytest.mark.parametrize("schedule", ["stagewise", "phased"])
def test_pretraining_from_the_disk_cache(schedule):
    x_train, x_val = _digits(300, 60)
    epochs = 4
    cfg = _cfg(schedule=schedule, pretrain_epochs=epochs)
    in_ram = greedy_pretrain(_model(), x_train, x_val, cfg, memory_budget=1 << 30)
    model = _model()
    on_disk = greedy_pretrain(model, x_train, x_val, cfg, memory_budget=1)
    assert _stages(on_disk) == _stages(in_ram)
    # stage 1 trains on the input itself, so it is the same run either way
    first = [(r["train_loss"], r["val_loss"]) for r in on_disk if r["stage"] == "pretrain layer 1"]
    assert first == [(r["train_loss"], r["val_loss"]) for r in in_ram if r["stage"] == "pretrain layer 1"]
    for k in range(model.depth):
        rows = [row for row in on_disk if row["stage"] == f"pretrain layer {k + 1}"]
        assert rows[-1]["train_loss"] < rows[0]["train_loss"]
        # the streamed features were layer k-1's true outputs: the last validation loss is
        # the stage objective recomputed from the input under the final weights
        expected = _reference_stage_loss(model, x_val, k, schedule)
        assert rows[-1]["val_loss"] == pytest.approx(expected, rel=1e-4)


# ---------------------------------------------------------------- history


def test_greedy_history_has_every_stage_epoch_with_its_seconds():
    x_train, x_val = _digits(100, 20)
    model = _model()
    history = greedy_pretrain(model, x_train, x_val, _cfg(pretrain_epochs=3))
    stages = [f"pretrain layer {k + 1}" for k in range(model.depth)]
    assert [row["stage"] for row in history] == [stage for stage in stages for _ in range(3)]
    assert [row["epoch"] for row in history] == [1, 2, 3] * model.depth
    assert all(row["seconds"] > 0 for row in history)


# ---------------------------------------------------------------- end to end


def test_train_api_with_greedy_pretraining(greedy_run):
    run, _ = greedy_run
    with open(run.dir / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # pretraining stages in order, then fine-tuning (rows of a from-scratch baseline may follow)
    assert [row["stage"] for row in rows[:5]] == [
        "pretrain layer 1",
        "pretrain layer 2",
        "pretrain layer 3",
        "fine-tune",
        "fine-tune",
    ]
    assert [int(row["epoch"]) for row in rows[:5]] == [1, 1, 1, 1, 2]
    later = {row["stage"] for row in rows[5:]}
    assert not later & {"fine-tune", "pretrain layer 1", "pretrain layer 2", "pretrain layer 3"}
    assert all(math.isfinite(float(row["train_loss"])) for row in rows)
    assert _stages(run.history) == [row["stage"] for row in rows]
    assert run.metrics["epochs_run"] == 2
    saved = json.loads((run.dir / "config.json").read_text())["pretrain"]
    assert (saved["pretrain"], saved["pretrain_epochs"], saved["schedule"]) == ("greedy", 1, "stagewise")
    # the saved weights are the fine-tuned, pretrained stack
    loaded = autoencoders.load(run.dir)
    for name, value in run.model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value.cpu()), name


def test_the_summary_of_a_pretrained_run_shows_the_stack_trained_without_pretraining(tmp_path, capsys):
    from autoencoders.cli import run as cli_run

    out = tmp_path / "run"
    argv = ["train", "--pretrain", "greedy", "--pretrain-epochs", "1", "--epochs", "1", "--layers", "64,16,8"]
    assert cli_run([*argv, "--quiet", "--precision", "fp32", "--device", DEVICE, "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    line = capsys.readouterr().out.splitlines()[1]
    assert line.endswith(
        f"; without pretraining (the same stack from random init): test SSE/image "
        f"{m['no_pretraining_sse_per_image']:.3f}, "
        f"linear probe {m['no_pretraining_linear_probe_accuracy']:.3f}"
    )

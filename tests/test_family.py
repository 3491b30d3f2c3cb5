"""The contract every registered model kind keeps, checked for each one by the same tests.

Builds from its config, returns an ``Output`` of the right shapes, trains (the loss falls),
writes the same run directory, reloads to identical outputs, works with evaluate, encode,
reconstruct and classify, resumes after an interruption to identical weights, and either
pretrains greedily or refuses to clearly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import DEVICE, FAST, ctrl_c_at_batch, on_cpu

import autoencoders
from autoencoders import Config, UserError, kinds
from autoencoders.io.checkpoint import file_sha256
from autoencoders.models import Output

# Small settings per kind; a kind registered without an entry here fails the first test.
SETTINGS = {
    "dense": {"layers": [64, 32, 8]},
    "conv": {"layers": [64, 8], "channels": [8, 16]},
    "vae": {"layers": [64, 32, 8], "iw_samples": 10},
    "aae": {"layers": [64, 32, 8], "disc_layers": [32]},
}
KINDS = sorted(kinds.KINDS)


def _digits(n: int = 16) -> torch.Tensor:
    from sklearn.datasets import load_digits

    return torch.from_numpy((load_digits().data[:n] / 16.0).astype(np.float32))


def _config(kind: str, **extra) -> Config:
    return Config().replace(model=kind, **SETTINGS[kind], **FAST, **extra)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny digits run per kind, shared by the tests below."""
    out = {}
    for kind in KINDS:
        path = tmp_path_factory.mktemp(kind) / "run"
        out[kind] = autoencoders.train(_config(kind, epochs=4, out=str(path)))
    return out


def test_every_kind_has_contract_settings_and_a_summary():
    assert set(SETTINGS) == set(KINDS)
    for kind in kinds.KINDS.values():
        assert kind.summary and kind.example.startswith("autoencoders train")


@pytest.mark.parametrize("kind", KINDS)
def test_forward_returns_an_output_record(kind):
    torch.manual_seed(0)
    model = kinds.build(_config(kind).model, _config(kind).kind_options, (1, 8, 8))
    assert model.kind == kind
    x = _digits(8)
    out = model(x)
    assert isinstance(out, Output)
    assert out.logits.shape == (8, 64) and out.code.shape == (8, model.code_size)
    assert out.hidden["code"] is out.code
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.encode(x), model(x).code)  # the code is deterministic (VAE: the mean)
        recon = model.reconstruct(x)
        assert recon.shape == (8, 64) and 0 <= recon.min() and recon.max() <= 1
        assert torch.equal(recon, model.reconstruct(x))
        if kind != "vae":  # reconstructions are the forward pass's, which evaluation gets by decoding codes
            assert torch.equal(model.output_act(model(x).logits), recon)
    assert (out.posterior is not None) == (kind == "vae")


@pytest.mark.parametrize("kind", KINDS)
def test_training_lowers_the_loss_and_logs_every_term(runs, kind):
    history = runs[kind].history
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    terms = {w.term.name for w in runs[kind].model.terms()}
    for row in history:
        assert {f"train_{t}" for t in terms} | {f"val_{t}" for t in terms} <= set(row)
    header = (runs[kind].dir / "history.csv").read_text().splitlines()[0].split(",")
    assert {f"train_{t}" for t in terms} <= set(header)


@pytest.mark.parametrize("kind", KINDS)
def test_run_directory_and_manifest(runs, kind):
    run = runs[kind]
    manifest = json.loads((run.dir / "manifest.json").read_text())
    assert manifest == {
        "format": 3,
        "kind": kind,
        "input_shape": [1, 8, 8],
        "code_size": run.model.code_size,
        "completed": True,
        "sha256": {"model.safetensors": file_sha256(run.dir / "model.safetensors")},
    }
    saved = json.loads((run.dir / "config.json").read_text())
    assert saved["model"]["model"] == kind
    own = kinds.get(kind).section_name
    assert (own in saved) == (own is not None)
    for name in ("model.safetensors", "metrics.json", "history.csv", "reconstructions.png", "loss.png"):
        assert (run.dir / name).is_file(), name


@pytest.mark.parametrize("kind", KINDS)
def test_reload_gives_identical_outputs_and_metrics(runs, kind):
    run = runs[kind]
    loaded = autoencoders.load(run.dir)
    assert type(loaded) is type(run.model) and not loaded.training
    x = _digits(32)
    run.model.eval()
    model = on_cpu(run.model)  # the loaded model's device: both compute on the CPU
    with torch.no_grad():
        assert torch.equal(loaded.reconstruct(x), model.reconstruct(x))
        assert torch.equal(loaded.encode(x), model.encode(x))
    again = autoencoders.evaluate_run(run.dir, device=DEVICE)  # where the run computed its metrics
    for key in ("test_sse_per_image", "linear_probe_accuracy", "test_nll"):
        if key in run.metrics:
            assert again[key] == run.metrics[key], key


@pytest.mark.parametrize("kind", KINDS)
def test_encode_reconstruct_and_classify(runs, kind, tmp_path):
    run = runs[kind]
    codes = autoencoders.encode(run.dir, "digits", split="test")
    assert codes.shape == (run.metrics["n_test"], run.model.code_size)
    x, recon, shape = autoencoders.reconstruct(run.dir, "digits", split="test")
    assert recon.shape == x.shape and shape == (8, 8)
    result = autoencoders.classify(run.dir, 0.5, out=tmp_path / "clf", epochs=10, lr=5e-3, **FAST)
    assert result.metrics["test_accuracy"] > 0.3  # ten classes: chance is 0.1
    assert (tmp_path / "clf" / "classifier.safetensors").is_file()
    # the classifier fine-tuned a copy of the run's own encoder, and only the encoder
    encoder = {id(p) for m in result.model.autoencoder.encoder_modules() for p in m.parameters()}
    trainable = {id(p) for p in result.model.autoencoder.parameters() if p.requires_grad}
    assert trainable == encoder


@pytest.mark.parametrize("kind", KINDS)
def test_every_part_exports_to_onnx_and_torchscript_and_serves_rows_in_their_own_units(runs, kind, tmp_path):
    import onnxruntime

    from autoencoders.deploy import export
    from autoencoders.trained import open_run

    run = runs[kind]
    raw = digits_as_read(40)
    codes = autoencoders.encode(run.dir, raw, device="cpu")  # as the exports serve them
    offset, span = open_run(run.dir).scaler
    expected = {
        "encoder": (raw, codes),
        "decoder": (
            codes,
            on_cpu(run.model).decode(torch.from_numpy(codes)).detach().numpy() * span + offset,
        ),
        "autoencoder": (raw, autoencoders.reconstruct(run.dir, raw, device="cpu")[1] * span + offset),
    }
    for part, (given, wanted) in expected.items():
        onnx_path, script_path = tmp_path / f"{part}.onnx", tmp_path / f"{part}.pt"
        sidecar = export(run.dir, onnx_path, "onnx", part)[1]
        export(run.dir, script_path, "torchscript", part)
        session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        served = session.run(None, {"input": given.astype(sidecar["input"]["dtype"])})[
            0
        ]  # as a server reads it
        assert served.dtype == sidecar["output"]["dtype"] == "float32"
        np.testing.assert_allclose(served, wanted, atol=1e-5, rtol=0)
        # a server reads the outputs as they come: no gradient is tracked
        scripted = torch.jit.load(str(script_path))(torch.from_numpy(given).float()).numpy()
        np.testing.assert_allclose(scripted, wanted, atol=1e-5, rtol=0)
        assert sidecar["kind"] == kind and sidecar["code_size"] == run.model.code_size
        assert sidecar["input"]["shape"] == ["batch", given.shape[1]]
        rows = sidecar["output" if part == "decoder" else "input"]["units"]
        assert "digits: pixel values 0 to 16 divided by 16" in rows and Path(sidecar["run_dir"]).is_absolute()
        assert json.loads((tmp_path / f"{part}.onnx.json").read_text()) == sidecar


def digits_as_read(n: int) -> np.ndarray:
    """The first ``n`` digits in the units the toolkit reads them in (scikit-learn's 0..16 / 16)."""
    from sklearn.datasets import load_digits

    return (load_digits().data[:n] / 16).astype(np.float32)


@pytest.mark.parametrize("kind", KINDS)
def test_interrupted_run_resumes_to_identical_weights(runs, kind, tmp_path, monkeypatch):
    out = tmp_path / "run"
    with ctrl_c_at_batch(50), pytest.raises(KeyboardInterrupt):  # in epoch 3 of 4, whatever the kind's step
        autoencoders.train(_config(kind, epochs=4, save_every=0, out=str(out)))  # resumed after epoch 2
    resumed = autoencoders.resume(out)
    for name, value in runs[kind].model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name


@pytest.mark.parametrize("kind", KINDS)
def test_greedy_pretraining_runs_or_is_refused_clearly(kind, tmp_path):
    model = kinds.build(_config(kind).model, _config(kind).kind_options, (1, 8, 8))
    cfg = _config(
        kind, pretrain="greedy", pretrain_epochs=1, epochs=1, compare=False, out=str(tmp_path / "r")
    )
    if not model.layer_pairs():
        with pytest.raises(UserError, match=f"pretrain greedy is not available for model {kind}"):
            autoencoders.train(cfg)
        return
    run = autoencoders.train(cfg)
    stages = [row["stage"] for row in run.history]
    assert stages == [f"pretrain layer {k + 1}" for k in range(len(model.layer_pairs()))] + ["fine-tune"]
    # each pair holds the stack's own layers: pretraining trains what fine-tuning starts from
    for k, pair in enumerate(run.model.layer_pairs()):
        assert pair.layer is run.model.encoder[k]
        assert pair.mirror is run.model.decoder[len(run.model.decoder) - 1 - k]


@pytest.mark.parametrize("kind", KINDS)
def test_cli_trains_evaluates_and_encodes_every_kind(kind, tmp_path, capsys):
    from autoencoders.cli import run as cli_run

    out = tmp_path / "run"
    flags = []
    for key, value in {**SETTINGS[kind], **FAST}.items():
        flag = "--" + key.replace("_", "-")
        flags += (
            [flag]
            if value is True
            else [flag, ",".join(map(str, value)) if isinstance(value, list) else str(value)]
        )
    assert cli_run(["train", "--model", kind, "--epochs", "1", "--out", str(out), *flags]) == 0
    m, printed = json.loads((out / "metrics.json").read_text()), capsys.readouterr().out
    assert "test SSE/image" in printed
    assert (  # the probe beside its baselines, as the SSE is
        f"linear probe {m['linear_probe_accuracy']:.3f} (PCA-{m['code_size']}: "
        f"{m['pca_linear_probe_accuracy']:.3f}, pixels: {m['pixels_linear_probe_accuracy']:.3f})"
    ) in printed
    assert cli_run(["evaluate", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["code_size"] == SETTINGS[kind]["layers"][-1]
    assert cli_run(["encode", str(out), "--data", "digits", "--out", str(tmp_path / "codes.npy")]) == 0
    assert np.load(tmp_path / "codes.npy").shape == (1797, SETTINGS[kind]["layers"][-1])

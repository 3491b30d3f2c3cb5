"""Files are data, never code; random bytes give a dataset, an object or the toolkit's own error.

A pickle payload whose unpickling would create a file is planted in place of every file the
toolkit reads; it must be refused and never run. Then hypothesis feeds random and mutated
bytes to the readers (IDX, npy, CSV, TOML, config.json, manifest, weights, training state):
each outcome is a valid result or a UserError, never another exception.
"""

from __future__ import annotations

import json
import pickle
import shutil
import string
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import FAST, idx_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import autoencoders
from autoencoders import Config, UserError
from autoencoders.cli import main
from autoencoders.config import load_toml
from autoencoders.data.sources import load_npy, read_idx
from autoencoders.data.tables import load_csv
from autoencoders.io import rundir
from autoencoders.io.checkpoint import load_weights
from autoencoders.io.state import read_state


class Payload:
    """Unpickling this creates ``path``: proof that a file was executed."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _pickle_bytes(marker: Path, how: str) -> bytes:
    if how == "pickle":
        return pickle.dumps({"weights": Payload(marker)})
    buf = __import__("io").BytesIO()
    torch.save({"weights": Payload(marker)}, buf)  # the zip-of-pickles format of torch.save
    return buf.getvalue()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A completed run, an incomplete one (with its state), a classifier and a saved estimator."""
    base = tmp_path_factory.mktemp("trusted")
    run = autoencoders.train(data="digits", layers=[64, 8], epochs=2, out=str(base / "run"), **FAST)
    autoencoders.classify(run.dir, 0.5, out=base / "clf", epochs=1, **FAST)
    real = autoencoders.finish.evaluate
    autoencoders.finish.evaluate = _stop  # a run stopped after its last epoch keeps its training state
    try:
        with pytest.raises(KeyboardInterrupt):
            autoencoders.train(data="digits", layers=[64, 8], epochs=2, out=str(base / "cut"), **FAST)
    finally:
        autoencoders.finish.evaluate = real
    assert (base / "cut" / "state.safetensors").is_file()
    from sklearn.datasets import load_digits

    from autoencoders.sklearn import AutoencoderTransformer

    AutoencoderTransformer(layers=(8,), epochs=1, random_state=0).fit(load_digits().data).save(base / "est")
    return base


def _stop(*args, **kwargs):
    raise KeyboardInterrupt


def _incomplete_with_state(src: Path, dst: Path, marker: Path, how: str) -> None:
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["completed"] = False
    (dst / "manifest.json").write_text(json.dumps(manifest))
    (dst / "state.safetensors").write_bytes(_pickle_bytes(marker, how))


# (file replaced by the payload, directory copied, command reading it)
PLANTED = [
    ("model.safetensors", "run", "evaluate {d}"),
    ("config.json", "run", "evaluate {d}"),
    ("manifest.json", "run", "encode {d} --data digits --out {tmp}/c.npy"),
    ("classifier.safetensors", "clf", "predict {d} --data digits --out {tmp}/p.csv"),
    ("classifier.json", "clf", "predict {d} --data digits --out {tmp}/p.csv"),
    ("state.safetensors", "run", "train --resume {d}"),
]


@pytest.mark.parametrize("how", ["pickle", "torch.save"])
@pytest.mark.parametrize("name, source, command", PLANTED, ids=[p[0] for p in PLANTED])
def test_a_planted_pickle_is_refused_and_never_run(trained, tmp_path, capsys, how, name, source, command):
    marker = tmp_path / "EXECUTED"
    d = tmp_path / "planted"
    if name == "state.safetensors":
        _incomplete_with_state(trained / source, d, marker, how)
    else:
        shutil.copytree(trained / source, d)
        (d / name).write_bytes(_pickle_bytes(marker, how))
    with pytest.raises(SystemExit) as done:
        main(command.format(d=d, tmp=tmp_path).split())
    assert done.value.code == 2
    assert "autoencoders: error:" in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize("how", ["pickle", "torch.save"])
def test_planted_pickles_in_data_and_estimators_are_refused(trained, tmp_path, how):
    marker = tmp_path / "EXECUTED"
    np.save(tmp_path / "x.npy", np.array([Payload(marker)] * 20, dtype=object), allow_pickle=True)
    with pytest.raises(UserError):
        autoencoders.load_dataset(autoencoders.DataConfig(data=f"npy:{tmp_path / 'x.npy'}"))
    from autoencoders.sklearn import AutoencoderTransformer

    est = tmp_path / "est"
    shutil.copytree(trained / "est", est)
    (est / "model.safetensors").write_bytes(_pickle_bytes(marker, how))
    with pytest.raises(UserError):
        AutoencoderTransformer.load(est)
    assert not marker.exists()


FUZZ = settings(
    max_examples=120,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    out = bytearray(data)
    for at, value in edits:
        if out:
            out[at % len(out)] = value
    return bytes(out[:cut] if cut is not None else out)


EDITS = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8)
CUTS = st.one_of(st.none(), st.integers(0, 4000))


def _outcome(read, path: Path) -> None:
    """``read(path)`` returns, or raises the toolkit's own error."""
    try:
        read(path)
    except UserError:
        pass


@FUZZ
@given(data=st.binary(max_size=300), edits=EDITS, cut=CUTS, valid=st.booleans())
def test_fuzz_idx_reader(tmp_path, data, edits, cut, valid):
    raw = idx_bytes(np.arange(48, dtype=np.uint8).reshape(3, 4, 4)) if valid else data
    path = tmp_path / "f-idx3-ubyte"
    path.write_bytes(_mutate(raw, edits, cut))
    _outcome(read_idx, path)


@FUZZ
@given(data=st.binary(max_size=300), edits=EDITS, cut=CUTS, valid=st.booleans())
def test_fuzz_npy_reader(tmp_path, data, edits, cut, valid):
    path = tmp_path / "x.npy"
    if valid:
        np.save(path, np.ones((12, 3), np.float32))
        data = path.read_bytes()
    path.write_bytes(_mutate(data, edits, cut))
    _outcome(lambda p: load_npy(p), path)


CSV_TEXT = st.text(alphabet=string.digits + ".,-e\n ab\tnaif", max_size=200)


@FUZZ
@given(text=CSV_TEXT, label=st.one_of(st.none(), st.sampled_from(["0", "-1", "3", "a", "99"])))
def test_fuzz_csv_reader(tmp_path, text, label):
    path = tmp_path / "t.csv"
    path.write_text(text)
    _outcome(lambda p: load_csv(p, label), path)


TOML_TEXT = st.text(alphabet=string.ascii_letters + string.digits + '[]=."-,_ \n#', max_size=200)


@FUZZ
@given(text=TOML_TEXT)
def test_fuzz_toml_config(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text)
    _outcome(lambda p: Config.from_dict(load_toml(p)), path)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 300) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
SECTION_KEYS = st.sampled_from(["data", "model", "train", "pretrain", "vae", "conv", "aae", "out", "x"])
FIELD_KEYS = st.sampled_from(
    ["layers", "lr", "model", "epochs", "noise", "data", "beta", "channels", "prior"]
)


@FUZZ
@given(
    config=st.dictionaries(SECTION_KEYS, st.dictionaries(FIELD_KEYS, JSON_VALUES, max_size=4) | JSON_VALUES),
    manifest=st.dictionaries(st.sampled_from(["format", "kind", "completed", "input_shape"]), JSON_VALUES),
)
def test_fuzz_config_json_and_manifest(tmp_path, config, manifest):
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    _outcome(Config.load_json, tmp_path / "config.json")
    _outcome(rundir.require_complete, tmp_path)


@FUZZ
@given(edits=EDITS, cut=CUTS)
def test_fuzz_weights_and_state_files(trained, tmp_path, edits, cut):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(_mutate((trained / "run" / "model.safetensors").read_bytes(), edits, cut))
    _outcome(load_weights, weights)
    manifest = json.loads((trained / "run" / "manifest.json").read_text())
    _outcome(lambda p: rundir.read_weights(p.parent, p.name, manifest), weights)
    state = tmp_path / "state.safetensors"
    state.write_bytes(_mutate((trained / "cut" / "state.safetensors").read_bytes(), edits, cut))
    _outcome(read_state, state)


@pytest.mark.parametrize(
    "span",
    [np.zeros(64, np.float32), np.ones(3, np.float32), np.full(64, np.nan, np.float32)],
    ids=["zero", "width", "nan"],
)
def test_a_weight_files_input_scaling_that_cannot_scale_rows_is_refused(trained, tmp_path, span):
    """With checksums to match: a span of 0 gave NaN codes, one of another width a traceback."""
    from autoencoders.io.checkpoint import save_weights

    run = tmp_path / "run"
    shutil.copytree(trained / "run", run)
    tensors = load_weights(run / "model.safetensors")
    tensors["input_span"] = torch.from_numpy(span)
    save_weights(run / "model.safetensors", tensors)
    manifest = json.loads((run / "manifest.json").read_text())
    rundir.write_manifest(
        run, manifest["kind"], manifest["input_shape"], manifest["code_size"], completed=True
    )
    with pytest.raises(
        autoencoders.UserError, match=r"holds an input scaling that is not one of 64 features"
    ):
        autoencoders.encode(run, "digits")


def test_a_config_asking_for_a_huge_model_is_compared_with_the_weights_before_it_is_built(
    trained, tmp_path, monkeypatch
):
    """A width of 10**9 would take 238 GiB before the weights could say they do not fit it: no model
    of such settings is built, other than on the meta device."""
    from autoencoders import kinds

    run = tmp_path / "run"
    shutil.copytree(trained / "run", run)
    autoencoders.cluster(run, k=3, out=tmp_path / "clusters", quiet=True)
    real = kinds.build

    def build(model, options, shape):
        if model.layers and 10**9 in model.layers and torch.get_default_device().type != "meta":
            raise AssertionError("a model of the edited settings was built")
        return real(model, options, shape)

    monkeypatch.setattr(kinds, "build", build)
    config = json.loads((run / "config.json").read_text())
    config["model"]["layers"] = [64, 10**9, 8]
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"the weights do not fit its config\.json \(Missing key"):
        autoencoders.encode(run, "digits")
    clf = tmp_path / "clf"  # a classifier's settings hold the autoencoder's too, as a clustering's do
    shutil.copytree(trained / "clf", clf)
    for settings_file, said in (
        (clf / "classifier.json", "the classifier's settings do not match its weights"),
        (tmp_path / "clusters" / "clusters.json", "the clustering's summary does not match its weights"),
    ):
        settings = json.loads(settings_file.read_text())
        settings["autoencoder"]["model"]["layers"] = [64, 10**9, 8]
        settings_file.write_text(json.dumps(settings))
        with pytest.raises(UserError, match=said):
            autoencoders.predict(settings_file.parent, "digits")


@pytest.mark.parametrize(
    "name, text, call",
    [
        ("manifest.json", "[" * 100_000 + "]" * 100_000, lambda run: autoencoders.encode(run, "digits")),
        ("manifest.json", '{"format": ' + "9" * 5000 + "}", lambda run: autoencoders.encode(run, "digits")),
        ("metrics.json", "[1]", lambda run: autoencoders.visualize(run, "loss")),
        (
            "history.csv",
            "stage,epoch,train_loss\ntrain,1,abc\n",
            lambda run: autoencoders.visualize(run, "loss"),
        ),
    ],
    ids=["deep-json", "long-number", "metrics-list", "history-text"],
)
def test_run_files_this_toolkit_never_writes_are_named_damaged(trained, tmp_path, name, text, call):
    run = tmp_path / "run"
    shutil.copytree(trained / "run", run)
    (run / name).write_text(text)
    with pytest.raises(UserError, match=rf"{name}"):
        call(run)

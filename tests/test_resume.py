"""Resumable training: a run killed with SIGKILL resumes to bit-identical weights.

The child process counts training batches and kills itself in the middle of an epoch
(during greedy pretraining, during fine-tuning, during the no-pretraining baseline, and
during a VAE's KL warm-up); ``train --resume`` then finishes it in this process. Every
weight, history loss and metric must equal an uninterrupted run with the same seed.
"""

from __future__ import annotations

import csv
import errno
import json
import math
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import DEVICE, ctrl_c_at_batch
from safetensors.torch import load_file

import autoencoders
from autoencoders import UserError
from autoencoders.cli import run as cli_run
from autoencoders.io.rundir import cut_short

# the child below counts calls of the step, which a CUDA graph's replays make none of: eager on a GPU too
EAGER = {"cuda_graph": "off"}
# a greedy denoising run with cosine decay and early stopping: every piece of state matters
GREEDY = {
    "data": "digits",
    "layers": [64, 32, 16, 8],
    "pretrain": "greedy",
    "pretrain_epochs": 2,
    "epochs": 3,
    "corruption": "masking",
    "noise": 0.2,
    "lr_decay": "cosine",
    "patience": 2,
    **EAGER,
}
VAE = {"data": "digits", "model": "vae", "layers": [64, 32, 4], "epochs": 4, "kl_warmup": 2, "iw_samples": 8}
VAE |= EAGER
# a state after every epoch, so that each kill below finds the state it names
COMMON = {"quiet": True, "precision": "fp32", "device": DEVICE, "seed": 3, "save_every": 0}

CHILD = """
import os, signal, sys
import torch
torch.set_num_threads(1)
from autoencoders.training import steps
from autoencoders.cli import main
where, kill_at = sys.argv[1].split(":")
kill_at, seen = int(kill_at), [0]
real = steps.GradientStep.train_batch
def train_batch(self, batch):
    seen[0] += 1
    if seen[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, batch)
real_replace = os.replace
def replace(src, dst):  # the checkpoint write: the new state is complete but not yet in place
    if str(dst).endswith("state.safetensors"):
        seen[0] += 1
        if seen[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst)
if where == "batch":
    steps.GradientStep.train_batch = train_batch
else:
    os.replace = replace
main(sys.argv[2:])
"""


def _argv(settings: dict, out) -> list[str]:
    argv = ["train", "--out", str(out)]
    for key, value in {**COMMON, **settings}.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        else:
            argv += [flag, ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    return argv


def _history(run_dir) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as f:
        return [
            {k: v for k, v in row.items() if k not in ("seconds", "samples_per_second")}
            for row in csv.DictReader(f)
        ]


TIMING = {
    "setup_seconds",
    "train_seconds",
    "pretrain_seconds",
    "samples_per_second",
    "no_pretraining_train_seconds",
    "evaluation_seconds",
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Factory: the uninterrupted run of some settings, trained once per module."""
    runs: dict[str, autoencoders.Run] = {}

    def get(settings: dict) -> autoencoders.Run:
        settings = {k: v for k, v in settings.items() if k != "save_every"}  # the same weights
        key = json.dumps(settings, sort_keys=True)
        if key not in runs:
            out = tmp_path_factory.mktemp("whole") / "run"
            runs[key] = autoencoders.train(**settings, **COMMON, out=str(out))
        return runs[key]

    return get


@pytest.mark.slow
# 1,294 training rows in batches of 64: 21 batches per epoch, 42 per pretraining stage
@pytest.mark.parametrize(
    ("settings", "kill_at", "saved"),
    [
        (GREEDY, "batch:30", "stage 'pretrain layer 1' after epoch 1"),
        (GREEDY, "batch:55", "stage 'pretrain layer 1' after epoch 2"),  # killed before layer 2's first save
        (GREEDY, "batch:70", "stage 'pretrain layer 2' after epoch 1"),
        (GREEDY, "batch:110", "stage 'pretrain layer 3' after epoch 1"),  # layers 1-2 features recomputed
        (GREEDY, "batch:160", "stage 'fine-tune' after epoch 1"),
        (GREEDY, "batch:215", "stage 'no pretraining' after epoch 1"),
        (VAE, "batch:30", "stage 'train' after epoch 1"),
        # during the 4th checkpoint write (pretrain layer 2, epoch 2): the 3rd one stays in place
        (GREEDY, "write:4", "stage 'pretrain layer 2' after epoch 1"),
        # saved only at the end of each stage: layer 2 starts again from layer 1's last epoch
        ({**GREEDY, "save_every": 3600}, "batch:70", "stage 'pretrain layer 1' after epoch 2"),
    ],
    ids=[
        "layer1",
        "between-layers",
        "layer2",
        "layer3",
        "fine-tune",
        "baseline",
        "vae",
        "checkpoint-write",
        "stage-ends-only",
    ],
)
def test_sigkill_then_resume_gives_bit_identical_weights(tmp_path, uninterrupted, settings, kill_at, saved):
    whole = uninterrupted(settings)
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kill_at, *_argv(settings, killed)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    # the killed run says it is incomplete, and where it stopped
    assert json.loads((killed / "manifest.json").read_text())["completed"] is False
    assert not (killed / "model.safetensors").exists()
    with pytest.raises(UserError, match=r"stopped before it finished training .*: autoencoders\.resume\("):
        autoencoders.evaluate_run(killed)  # Python's call, where the CLI says train --resume
    with pytest.raises(UserError, match="stopped before it finished training"):
        autoencoders.encode(killed, "digits")
    with pytest.raises(UserError, match=saved):
        autoencoders.load(killed)

    assert cli_run(["train", "--resume", str(killed), "--quiet"]) == 0
    a, b = load_file(whole.dir / "model.safetensors"), load_file(killed / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert _history(killed) == _history(whole.dir)
    m_whole = {k: v for k, v in whole.metrics.items() if k not in TIMING}
    m_resumed = json.loads((killed / "metrics.json").read_text())
    assert {k: v for k, v in m_resumed.items() if k not in TIMING} == m_whole
    assert json.loads((killed / "manifest.json").read_text())["completed"] is True
    assert not (killed / "state.safetensors").exists()  # optimizer state is dropped once complete
    assert not [p for p in killed.iterdir() if cut_short(p.name)]  # no stray file behind


@pytest.mark.slow
def test_resume_of_a_run_killed_before_its_first_epoch_starts_over(tmp_path):
    killed = tmp_path / "killed"
    settings = {"data": "digits", "layers": [64, 16, 4], "epochs": 2}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "batch:3", *_argv(settings, killed)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL
    assert not (killed / "state.safetensors").exists()
    resumed = autoencoders.resume(killed)
    whole = autoencoders.train(**settings, **COMMON, out=str(tmp_path / "whole"))
    for k, v in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[k], v), k


def test_resume_refuses_data_that_changed_since_the_run_started(tmp_path):
    """Other rows, or more of them (which moves the fixed-seed split), would make the resumed run
    another one, its test rows perhaps trained on: refused, and resumed once the data is back.
    Streamed from disk too, where the training rows are hashed as their scaling is fitted."""
    from sklearn.datasets import load_digits

    from autoencoders.config import DataConfig
    from autoencoders.data.datasets import load_dataset

    x = load_digits().data[:400].astype("float32")
    data = tmp_path / "rows.npy"
    np.save(data, x)
    streamed = load_dataset(DataConfig(data=f"npy:{data}", memory_budget=1e-6)).x_train
    row = int(streamed.rows[0])  # a training row, which a stream does not hold in memory
    settings = {"data": f"npy:{data}", "layers": [64, 8], "epochs": 3}
    for case, (changed, budget) in enumerate([(x.copy(), 2.0), (x[:-1].copy(), 2.0), (x.copy(), 1e-6)]):
        changed[row] = changed[row][::-1]  # one image turned upside down, or one row fewer as well
        np.save(data, x)
        out = tmp_path / f"run{case}"
        with ctrl_c_at_batch(8), pytest.raises(KeyboardInterrupt, match="after epoch 1"):
            autoencoders.train(**settings, memory_budget=budget, **COMMON, out=str(out))  # 5 batches an epoch
        np.save(data, changed)
        with pytest.raises(UserError, match="rows.npy has changed since .* started training.*restore"):
            autoencoders.resume(out)
        np.save(data, x)
        assert autoencoders.resume(out).metrics["epochs_run"] == 3


def test_a_table_a_run_began_unscaled_resumes_as_it_began(tmp_path, monkeypatch):
    """Versions before tables were scaled column by column left a table within [0, 1] as it was:
    a run they began and this version resumes keeps that scaling, rather than being refused as if
    its data had changed."""
    from autoencoders.data import datasets

    rows = np.random.default_rng(0).uniform(0.3, 0.7, (200, 6))
    (tmp_path / "t.csv").write_text(
        "a,b,c,d,e,f\n" + "\n".join(",".join(f"{v:.4f}" for v in r) for r in rows)
    )
    settings = {"data": f"csv:{tmp_path / 't.csv'}", "layers": [6, 3], "epochs": 3}
    monkeypatch.setattr(datasets, "is_table", lambda cfg: False)  # as an earlier version read it
    with ctrl_c_at_batch(5), pytest.raises(KeyboardInterrupt, match="after epoch 1"):
        autoencoders.train(**settings, **COMMON, out=str(tmp_path / "run"))
    monkeypatch.undo()
    resumed = autoencoders.resume(tmp_path / "run")
    assert resumed.metrics["epochs_run"] == 3
    offset, span = autoencoders.trained.open_run(resumed.dir).scaler
    assert not offset.any() and (span == 1).all()  # the scaling it began with


def test_resume_says_where_the_data_it_needs_was_when_it_has_moved(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((200, 6), dtype=np.float32))
    settings = {"data": f"npy:{tmp_path / 'x.npy'}", "layers": [6, 3], "epochs": 3}
    with ctrl_c_at_batch(5), pytest.raises(KeyboardInterrupt, match="after epoch 1"):
        autoencoders.train(**settings, **COMMON, out=str(tmp_path / "run"))
    (tmp_path / "x.npy").rename(tmp_path / "moved.npy")
    gone = f"run was trained on {tmp_path / 'x.npy'}, which is no longer there; put it back there to resume"
    with pytest.raises(UserError, match=re.escape(gone)):
        autoencoders.resume(tmp_path / "run")
    (tmp_path / "moved.npy").rename(tmp_path / "x.npy")
    assert autoencoders.resume(tmp_path / "run").metrics["epochs_run"] == 3


def test_a_run_directory_is_held_by_the_process_training_there(tmp_path, monkeypatch):
    """While one process trains in a directory, another may not train into it, resume it or replace
    it; commands that need a finished run tell one still training from one that stopped. The hold
    is a lock on the directory, which another open descriptor in this process meets as another
    process's would."""
    from autoencoders.io import rundir
    from autoencoders.training import loop

    out = tmp_path / "run"
    settings = {"data": "digits", "layers": [64, 8], "epochs": 2, "out": out, **COMMON}
    seen, real = [], loop.epoch_batches

    def looking(*args, **kw):  # what another process sees while this one trains
        seen.append(rundir.training_elsewhere(out))
        yield from real(*args, **kw)

    monkeypatch.setattr(loop, "epoch_batches", looking)
    with ctrl_c_at_batch(30), pytest.raises(KeyboardInterrupt, match="after epoch 1"):
        autoencoders.train(**settings)
    monkeypatch.undo()
    assert seen and all(seen)
    named = re.escape(str(out))
    with rundir.held(out, "held"):  # as a process training there holds it
        with pytest.raises(
            UserError, match=rf"^{named} is still training in another process \(its last saved "
        ):
            autoencoders.evaluate_run(out)
        with pytest.raises(
            UserError, match=rf"^{named} is still training .*, so there is nothing to resume; wait"
        ):
            autoencoders.resume(out)
        refused = (
            rf"^out {named} is still training in another process; .*, or choose another out: nothing was"
        )
        with pytest.raises(UserError, match=refused):
            autoencoders.train(**settings, overwrite=True)
        # the hold itself refuses one that began before the other process took the directory
        monkeypatch.setattr(rundir, "training_elsewhere", lambda run_dir: False)
        with pytest.raises(UserError, match=refused):
            autoencoders.train(**settings, overwrite=True)
        monkeypatch.undo()
        assert (out / "state.safetensors").is_file()  # nothing was deleted
    assert rundir.training_elsewhere(out) is False
    with pytest.raises(
        UserError, match=rf"^{named} stopped before it finished training .*autoencoders\.resume\("
    ):
        autoencoders.evaluate_run(out)
    assert autoencoders.resume(out).metrics["epochs_run"] == 2


def test_a_state_edited_or_of_another_run_is_refused_in_one_line(tmp_path):
    """Its stage, epoch and settings have a SHA-256 as its tensors do: an edited epoch would end the
    run early as if finished, and text there would fail deep in the loop."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    runs = {}
    for name, layers in (("a", [64, 16, 4]), ("b", [64, 8, 4])):
        with ctrl_c_at_batch(30), pytest.raises(KeyboardInterrupt, match="after epoch 1"):
            autoencoders.train(data="digits", layers=layers, epochs=3, out=tmp_path / name, **COMMON)
        runs[name] = tmp_path / name / "state.safetensors"
    with safe_open(str(runs["a"]), "pt") as f:
        tensors, metadata = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    original = runs["a"].read_bytes()
    info = json.loads(metadata["state"])
    for edit in ({"loop": {**info["loop"], "epoch": 999}}, {"elapsed": "x"}):
        save_file(tensors, str(runs["a"]), metadata={"state": json.dumps(info | edit)})
        with pytest.raises(
            UserError, match=r"state\.safetensors has changed since it was written \(its stage, "
        ):
            autoencoders.resume(tmp_path / "a")
    runs["a"].write_bytes(runs["b"].read_bytes())  # another run's, of other widths
    with pytest.raises(
        UserError, match=r"^the saved training state does not fit this run's model \(size mismatch"
    ):
        autoencoders.resume(tmp_path / "a")
    runs["a"].write_bytes(original)
    assert autoencoders.resume(tmp_path / "a").metrics["epochs_run"] == 3


def test_resume_refuses_a_finished_run_and_extra_settings(digits_run, tmp_path):
    with pytest.raises(UserError, match="nothing to resume"):
        autoencoders.resume(digits_run.dir)
    with pytest.raises(UserError, match="leave out --epochs"):
        cli_run(["train", "--resume", str(digits_run.dir), "--epochs", "5"])
    with pytest.raises(UserError, match="not a run directory"):
        autoencoders.resume(tmp_path)


@pytest.mark.parametrize("background", [False, True], ids=["written-in-turn", "written-in-background"])
def test_a_full_disk_loses_nothing_already_saved(tmp_path, uninterrupted, monkeypatch, background):
    """Written in the background (as on a GPU), the failed write is reported at the next save, and
    that save writes nothing: the last state on disk is still the last one written whole."""
    from autoencoders.io import state as state_file
    from autoencoders.io.checkpoint import atomic_write
    from autoencoders.training import state

    settings = {"data": "digits", "layers": [64, 16, 4], "epochs": 4, "lr_decay": "cosine"}
    whole = uninterrupted(settings)
    real, calls = state_file.write_safetensors, [0]

    def partial(tmp):
        with open(tmp, "wb") as f:
            f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    def full_disk(path, tensors, metadata):
        calls[0] += 1
        if calls[0] == 3:  # the third epoch's checkpoint finds the disk full
            return atomic_write(path, partial)
        return real(path, tensors, metadata)

    monkeypatch.setattr(state_file, "write_safetensors", full_disk)
    monkeypatch.setattr(state, "writes_in_background", lambda tensors: background)
    out = tmp_path / "full"
    with pytest.raises(UserError, match=r"cannot write .*state.safetensors \(No space left on device\)"):
        autoencoders.train(**settings, **COMMON, out=str(out))
    monkeypatch.setattr(state_file, "write_safetensors", real)
    assert not [p.name for p in out.iterdir() if cut_short(p.name)]
    with pytest.raises(UserError, match="its last saved state: stage 'train' after epoch 2"):
        autoencoders.load(out)  # the second epoch's state is intact
    resumed = autoencoders.resume(out)
    for k, v in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[k], v), k


def test_a_state_written_in_the_background_holds_its_own_epoch(tmp_path, monkeypatch):
    """A state written while the next epoch trains (as on a GPU) holds the history, counters and
    weights of the epoch it was saved after, however long its writing takes."""
    import time

    from autoencoders.io.state import write_state
    from autoencoders.training import state

    written = []

    def slow_write(path, tensors, info):
        time.sleep(0.3)  # longer than an epoch here: the next one ends while this one is written
        written.append(
            (info["loop"]["epoch"], len(info["history"]), tensors["model.encoder.0.weight"].clone())
        )
        write_state(path, tensors, info)

    monkeypatch.setattr(state, "writes_in_background", lambda tensors: True)
    monkeypatch.setattr(state, "write_state", slow_write)
    run = autoencoders.train(data="digits", layers=[64, 8], epochs=4, out=str(tmp_path / "r"), **COMMON)
    assert [(epoch, rows) for epoch, rows, _ in written] == [(1, 1), (2, 2), (3, 3), (4, 4)]
    last = run.model.state_dict()["encoder.0.weight"].cpu()  # a state holds host copies
    assert torch.equal(written[-1][2], last)
    assert not torch.equal(written[0][2], written[-1][2])  # each holds its own epoch's weights


@pytest.mark.parametrize("save_every", [0, 3600])
def test_a_state_is_saved_every_few_seconds_and_after_each_stage(tmp_path, monkeypatch, save_every):
    from autoencoders.io.state import write_state
    from autoencoders.training import state

    written = []

    def spy(path, tensors, info):
        written.append((info["stage"], info["loop"]["epoch"]))
        write_state(path, tensors, info)

    monkeypatch.setattr(state, "write_state", spy)
    settings = {**COMMON, "save_every": save_every}
    autoencoders.train(
        data="digits", layers=[64, 16, 8], pretrain="greedy", pretrain_epochs=2, epochs=3, compare=False,
        out=str(tmp_path / "r"), **settings,
    )  # fmt: skip
    stages = [("pretrain layer 1", 2), ("pretrain layer 2", 2), ("fine-tune", 3)]
    if save_every:
        assert written == stages  # an hour between saves: only each stage's last epoch
    else:
        assert written == [(stage, e + 1) for stage, epochs in stages for e in range(epochs)]


def test_tensorboard_rows_wait_until_their_state_is_on_disk(tmp_path, monkeypatch):
    """Written in the background (as on a GPU), a state's rows reach TensorBoard only once the
    state is on disk: a run killed before then logs those epochs on resume, and only then."""
    import time

    from autoencoders import run as run_module
    from autoencoders.io.state import read_state, write_state
    from autoencoders.training import state

    seen = []

    class Log:  # stands in for TensorBoard's writer
        def __init__(self, directory):
            pass

        def __call__(self, rows):
            on_disk = read_state(tmp_path / "r" / "state.safetensors")[1]["loop"]["epoch"]
            seen.extend((row["epoch"], on_disk) for row in rows)

        def close(self):
            pass

    def slow_write(path, tensors, info):
        time.sleep(0.2)  # longer than an epoch here
        write_state(path, tensors, info)

    monkeypatch.setattr(run_module.events, "require", lambda: None)
    monkeypatch.setattr(run_module.events, "EventLog", Log)
    monkeypatch.setattr(state, "writes_in_background", lambda tensors: True)
    monkeypatch.setattr(state, "write_state", slow_write)
    autoencoders.train(
        data="digits",
        layers=[64, 8],
        epochs=3,
        tensorboard=True,
        out=str(tmp_path / "r"),
        **COMMON,
    )
    assert [epoch for epoch, _ in seen] == [1, 2, 3]
    assert all(on_disk >= epoch for epoch, on_disk in seen)


def test_temporary_files_a_killed_write_left_go_with_resume_and_overwrite(tmp_path):
    """A kill during a write leaves its temporary file (``atomic_write``'s, or the one safetensors'
    ``save_file`` made of a state, as earlier versions let it): the run's own, not the user's."""
    out, left = tmp_path / "r", (".state.safetensors.a1b2c3.tmp", ".tmpXy12ab")
    settings = {"data": "digits", "layers": [64, 8], "epochs": 3, **COMMON}
    with ctrl_c_at_batch(30), pytest.raises(KeyboardInterrupt):
        autoencoders.train(out=str(out), **settings)
    for name in left:
        (out / name).write_bytes(b"cut short")
    autoencoders.resume(out)
    assert not [p.name for p in out.iterdir() if cut_short(p.name)]
    for name in left:
        (out / name).write_bytes(b"cut short")
    autoencoders.train(out=str(out), overwrite=True, **settings)  # not taken for the user's files
    assert not [p.name for p in out.iterdir() if cut_short(p.name)]
    # a clustering's or classifier's write killed midway: its new folder, and what it set aside
    (out / ".cluster-kmeans-10.ab12cd34.new").mkdir()
    (out / ".cluster-kmeans-10.ab12cd34.new" / "clusters.json").write_text("{")
    (out / ".classifier-1.ef56gh78.old" / "old").mkdir(parents=True)
    (out / ".classifier-1.ef56gh78.old" / "old" / "classifier.json").write_text("{}")
    autoencoders.train(out=str(out), overwrite=True, **settings)  # before: refused as the user's
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    (out / ".photos.new").mkdir()  # a folder of the user's so named
    (out / ".photos.new" / "cat.png").write_bytes(b"")
    with pytest.raises(UserError, match=r"also holds what it did not write \(\.photos\.new\)"):
        autoencoders.train(out=str(out), overwrite=True, **settings)


@pytest.mark.parametrize("left", ["config.json", ".config.json.a1b2c3.tmp"])
def test_a_run_killed_before_its_manifest_is_replaced_by_overwrite(tmp_path, left):
    """A process killed between writing a new run's config and its manifest left a directory that
    train, even with --overwrite, refused as holding no run."""
    out = tmp_path / "r"
    out.mkdir()
    (out / left).write_text(json.dumps(autoencoders.Config().to_dict()))
    settings = {"data": "digits", "layers": [64, 8], "epochs": 1, "out": str(out), **COMMON}
    with pytest.raises(UserError, match=r"is not empty; add overwrite=True to replace the run in it"):
        autoencoders.train(**settings)
    autoencoders.train(overwrite=True, **settings)
    assert json.loads((out / "manifest.json").read_text())["completed"]
    assert (out / left).exists() == (left == "config.json")  # the new run's config, or no temporary file
    mine = tmp_path / "mine"  # a folder of the user's that holds a config.json of its own
    mine.mkdir()
    (mine / "config.json").write_text('{"editor": "vim"}')
    with pytest.raises(UserError, match="is not empty and holds no run, so nothing was deleted"):
        autoencoders.train(overwrite=True, **(settings | {"out": str(mine)}))
    assert (mine / "config.json").read_text() == '{"editor": "vim"}'


def test_a_ctrl_c_inside_a_logger_logs_no_row_twice_and_the_next_logger_still_gets_them():
    """Stopped inside TensorBoard's logger, a run then logs what its last state holds: that logger
    must not be given the same rows again, history.csv's logger after it must."""
    from autoencoders.training.state import Progress

    progress, calls = Progress(None), []

    def stopped(rows):
        calls.append(("first", len(rows)))
        if len(calls) == 1:
            raise KeyboardInterrupt

    progress.loggers = [stopped, lambda rows: calls.append(("second", len(rows)))]
    progress.on_disk = [{"epoch": 1}, {"epoch": 2}]
    with pytest.raises(KeyboardInterrupt):
        progress.written()
    progress.written()  # as the stopped run does before it ends
    assert calls == [("first", 2), ("second", 2)]
    progress.on_disk = [{"epoch": 3}]
    progress.written()
    assert calls[2:] == [("first", 1), ("second", 1)]  # the next state's rows: every logger again


def test_history_csv_follows_the_saved_states_and_draws_the_loss_of_an_unfinished_run(
    tmp_path, uninterrupted, monkeypatch
):
    """``history.csv`` is rewritten with each saved state, so the loss curve of a run still training
    (or stopped) can be drawn; it holds the saved epochs, which a resumed run continues from."""
    from autoencoders.figures import curves
    from autoencoders.io import rundir

    settings = {"data": "digits", "layers": [64, 16, 4], "epochs": 4, "lr_decay": "cosine"}
    whole = uninterrupted(settings)
    written, drawn = [], []
    real_write, real_draw = rundir.write_history, curves.loss_curve

    def write_history(run_dir, rows):
        written.append([row["epoch"] for row in rows])
        real_write(run_dir, rows)

    def loss_curve(
        history, path, loss_name, floor, corrupted, title="", term="loss", floor_rows="validation"
    ):
        drawn.append(([row["epoch"] for row in history], loss_name, floor, title))
        real_draw(history, path, loss_name, floor, corrupted, title, term, floor_rows)

    monkeypatch.setattr(rundir, "write_history", write_history)
    monkeypatch.setattr(curves, "loss_curve", loss_curve)
    out = tmp_path / "r"
    with ctrl_c_at_batch(50), pytest.raises(KeyboardInterrupt):  # in epoch 3 of 4
        autoencoders.train(**settings, **COMMON, out=str(out))
    assert written == [[1], [1, 2]]  # after each saved state, not at the end only
    assert autoencoders.visualize(out, "loss").is_file()
    with rundir.held(out, "held"):  # as a process training there holds it
        autoencoders.visualize(out, "loss")
    assert drawn == [
        ([1.0, 2.0], whole.model.loss_label, None, f"{state}: stage 'train' after epoch 2")
        for state in ("stopped", "still training")
    ]
    autoencoders.resume(out)  # from the saved rows on: each state's, then the finished run's
    assert written == [[1], [1, 2], [1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4]]
    columns = ("epoch", "train_loss", "val_loss")
    assert [[row[k] for k in columns] for row in rundir.read_history(out)] == [
        [row[k] for k in columns] for row in whole.history
    ]


def test_resume_may_save_more_often_without_changing_the_run(tmp_path, uninterrupted, monkeypatch):
    settings = {"data": "digits", "layers": [64, 16, 4], "epochs": 4, "lr_decay": "cosine"}
    whole = uninterrupted(settings)
    out = tmp_path / "r"
    with ctrl_c_at_batch(50), pytest.raises(KeyboardInterrupt):  # in epoch 3 of 4
        autoencoders.train(**settings, **COMMON, out=str(out))
    with pytest.raises(UserError, match="save_every must be"):
        autoencoders.resume(out, save_every=-1)
    assert cli_run(["train", "--resume", str(out), "--save-every", "3600", "--quiet"]) == 0
    for k, v in whole.model.state_dict().items():
        assert torch.equal(load_file(out / "model.safetensors")[k], v.cpu()), k
    assert json.loads((out / "config.json").read_text())["train"]["save_every"] == 0  # as it was trained


def test_a_state_edited_and_hashed_again_is_refused_in_one_line(tmp_path):
    """A state whose checksums were written again over edited contents passes the SHA-256 checks:
    what it holds is then found wrong where it is applied, and named, not a traceback."""
    from autoencoders.io.state import read_state, write_state

    out = tmp_path / "r"
    with ctrl_c_at_batch(30), pytest.raises(KeyboardInterrupt):
        autoencoders.train(out=str(out), data="digits", layers=[64, 8], epochs=3, **COMMON)
    state = out / "state.safetensors"
    tensors, info = read_state(state)
    step_key = next(k for k in tensors if k.startswith("step.") and "exp_avg" in k)
    edits = {
        "loop counters missing": (tensors, info | {"loop": {}}),
        "a step tensor missing": ({k: v for k, v in tensors.items() if k != step_key}, info),
        "a step tensor of another shape": (tensors | {step_key: torch.zeros(3)}, info),
        "the shuffle state missing": ({k: v for k, v in tensors.items() if k != "loop.shuffle"}, info),
        "an RNG state of another length": (tensors | {"rng.torch": torch.zeros(3, dtype=torch.uint8)}, info),
        "the epoch a word": (tensors, info | {"loop": info["loop"] | {"epoch": "one"}}),
        "an epoch beyond the stage's": (tensors, info | {"loop": info["loop"] | {"epoch": 99}}),
        "a best loss that is not a number": (tensors, info | {"loop": info["loop"] | {"best": math.nan}}),
        "a moment of no shape": (tensors | {step_key: torch.zeros(())}, info),
        "a negative step count": (tensors | {step_key.replace("exp_avg", "step"): torch.tensor(-5.0)}, info),
        "a stage in words": (tensors, info | {"stage_index": "0"}),
        "a stage the run has not": (tensors, info | {"stage_index": 5}),
        "a history that is text": (tensors, info | {"history": "x"}),
    }
    for what, (edited, edited_info) in edits.items():
        write_state(state, edited, edited_info)
        with pytest.raises(UserError, match=r"does not hold a state .*train again without --resume"):
            autoencoders.resume(out)
        assert (out / "state.safetensors").is_file(), what  # nothing of the run is lost
    write_state(state, tensors, info)  # as it was: it resumes
    assert autoencoders.resume(out).metrics["epochs_run"] == 3

"""Every command in README.md and examples/ runs as written.

Fashion-MNIST cannot be read in tests, so ``$AUTOENCODERS_DATA`` points at a small stand-in in
the same IDX format (digits scaled up to 28×28: 600 training and 150 test images); everything
else, epochs and layer sizes included, is exactly what the documents say.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import IDX_STEMS, write_idx
from sklearn.datasets import load_digits

from autoencoders.cli import main

pytestmark = pytest.mark.slow  # every example and README command, as written: the -m slow tier

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
SCRIPTS = sorted((ROOT / "examples").glob("*.py"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working directory with examples/ in it, and a stand-in Fashion-MNIST under $AUTOENCODERS_DATA."""
    base = tmp_path_factory.mktemp("docs")
    data = base / "data" / "fashion-mnist"
    data.mkdir(parents=True)
    x, y = load_digits(return_X_y=True)
    images = np.pad(np.kron(x.reshape(-1, 8, 8), np.ones((3, 3))), ((0, 0), (2, 2), (2, 2)))
    images = np.round(images * 255 / 16).astype(np.uint8)
    arrays = (images[:600], y[:600], images[600:750], y[600:750])
    for stem, array in zip(IDX_STEMS, arrays):
        write_idx(data / stem, array.astype(np.uint8), gz=True)
    work = base / "work"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    _own_data(work, x, y)
    old = os.environ.get("AUTOENCODERS_DATA")
    os.environ["AUTOENCODERS_DATA"] = str(base / "data")
    yield work
    if old is None:
        del os.environ["AUTOENCODERS_DATA"]
    else:
        os.environ["AUTOENCODERS_DATA"] = old


def _own_data(work: Path, x: np.ndarray, y: np.ndarray) -> None:
    """What "Your own data" reads: a folder of PNGs per class, rows.npy with labels.npy, table.csv (an
    id column, the features, the label)."""
    from PIL import Image

    for digit in range(3):
        folder = work / "photos" / f"digit-{digit}"
        folder.mkdir(parents=True)
        for i, row in enumerate(x[y == digit][:40]):
            Image.fromarray((row.reshape(8, 8) * 255 / 16).astype(np.uint8)).save(folder / f"{i}.png")
    np.save(work / "rows.npy", x[:400].astype(np.float32))
    np.save(work / "labels.npy", y[:400])
    header = ",".join(["customer", *(f"p{i}" for i in range(64)), "label"])
    lines = [
        ",".join([f"c{i:04d}", *(f"{v:g}" for v in row), str(label)])
        for i, (row, label) in enumerate(zip(x[:400], y[:400]))
    ]
    (work / "table.csv").write_text("\n".join([header, *lines]) + "\n")


def commands(text: str) -> list[list[str]]:
    """The ``autoencoders ...`` commands of shell text: continuation lines joined, ``&&`` chains
    split, comments dropped; other commands (pip, pytest) are not ours to run."""
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        for part in line.split("&&"):
            words = shlex.split(part, comments=True)
            if words and words[0] == "autoencoders":
                out.append(words)
    return out


def run_in(work: Path, words: list[str], monkeypatch) -> None:
    """Run one command in-process in ``work``; it must succeed."""
    monkeypatch.chdir(work)
    if "--resume" in words:
        _interrupt(work, words[words.index("--resume") + 1])
    with pytest.raises(SystemExit) as done:
        main(words[1:])
    assert done.value.code == 0, shlex.join(words)


# The child below stops itself with Ctrl-C's signal right after it saves its first resumable state:
# the interruption lands at the same point however loaded the machine is (a parent that polled for
# the state file and then signalled could be outrun by a child that finished training meanwhile).
INTERRUPTED_CHILD = """
import os, signal, sys
from autoencoders.training import state
from autoencoders.cli import main

save = state.Progress.save

def save_then_interrupt(self, *args, **kwargs):
    save(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGINT)

state.Progress.save = save_then_interrupt
main(sys.argv[1:])
"""


def _interrupt(work: Path, run_dir: str) -> None:
    """Make ``run_dir`` what ``--resume`` is for: start its training again, interrupted (SIGINT, as
    Ctrl-C sends) right after its first epoch's state is saved."""
    made_by = next(w for w in _history if "--out" in w and w[w.index("--out") + 1] == run_dir)
    run = work / run_dir
    for f in run.iterdir():
        f.unlink()
    child = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_CHILD, *made_by[1:], "--quiet"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == 130, child.stderr
    assert "autoencoders train --resume" in child.stderr
    assert not json.loads((run / "manifest.json").read_text())["completed"]


_history: list[list[str]] = []


def _readme_blocks(language: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def _chains(steps: list[list[str]]) -> list[list[list[str]]]:
    """The commands grouped by the run directories (``runs/...``) they share, each group in README
    order: a group needs only its own earlier commands, so the groups run as separate tests."""
    groups: list[tuple[set[str], list[list[str]]]] = []
    for words in steps:
        runs = {w for w in words if w.startswith("runs/")}
        joined = [g for g in groups if g[0] & runs]
        merged = (runs.union(*(g[0] for g in joined)), [w for g in joined for w in g[1]] + [words])
        groups = [g for g in groups if g not in joined] + [merged]
    return [commands for _, commands in groups]


README_STEPS = [w for block in _readme_blocks("bash") for w in commands(block)]


def test_readme_has_its_quick_start_commands():
    assert len(README_STEPS) >= 10
    assert sum(len(chain) for chain in _chains(README_STEPS)) == len(README_STEPS)


@pytest.mark.parametrize("chain", _chains(README_STEPS), ids=lambda chain: shlex.join(chain[0][:4]))
def test_readme_shell_commands_run_as_written(workdir, monkeypatch, chain):
    for words in chain:
        run_in(workdir, words, monkeypatch)
        _history.append(words)
    for words in chain:  # what each command was asked to write is there, and every run finished
        out = workdir / words[words.index("--out") + 1] if "--out" in words else None
        if out is not None and out.suffix:
            assert out.stat().st_size > 0, shlex.join(words)
        elif out is not None:
            assert json.loads((out / "manifest.json").read_text())["completed"], shlex.join(words)
    if any("codes.npy" in words for words in chain):
        assert np.load(workdir / "codes.npy").shape == (1797, 16)


@pytest.mark.parametrize("block", range(len(_readme_blocks("python"))))
def test_readme_python_runs_as_written(workdir, block):
    code = _readme_blocks("python")[block]
    done = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_configs_and_their_commands_run_as_written(workdir, monkeypatch, example):
    text = example.read_text()
    steps = commands("\n".join(line.lstrip("#") for line in text.splitlines() if line.startswith("#   ")))
    assert steps[0] == ["autoencoders", "train", "--config", f"examples/{example.name}"]
    for words in steps:
        run_in(workdir, words, monkeypatch)
    out = workdir / re.search(r'^out = "(.+)"', text, flags=re.M).group(1)
    rows = list(csv.DictReader((out / "history.csv").open()))
    final = [r for r in rows if r["stage"] == rows[-1]["stage"]]
    # it learned something: judged on the validation split, or on the training rows without one
    key = "val_loss" if math.isfinite(float(final[0]["val_loss"])) else "train_loss"
    assert float(final[-1][key]) < float(final[0][key])


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_example_scripts_run_as_written(workdir, script):
    done = subprocess.run([sys.executable, str(script)], cwd=workdir, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()

"""Data-parallel training under torchrun: 2 CPU processes (gloo) match one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from autoencoders.data.batches import epoch_batches
from autoencoders.io.checkpoint import load_weights
from autoencoders.runtime.distributed import launched, rank_and_size

ARGS = ["train", "--layers", "64,32,8", "--epochs", "3", "--batch-size", "64", "--precision", "fp32"]
ARGS += ["--device", "cpu", "--quiet", "--seed", "3"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def _run(cmd: list[str], tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")
@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    _run([*TORCHRUN, "-m", "autoencoders", *ARGS, "--out", "two"], tmp_path)
    _run([sys.executable, "-m", "autoencoders", *ARGS, "--out", "one"], tmp_path)
    one, two = (
        load_weights(tmp_path / "one" / "model.safetensors"),
        load_weights(tmp_path / "two" / "model.safetensors"),
    )
    assert one.keys() == two.keys()
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-5)
    m1 = json.loads((tmp_path / "one" / "metrics.json").read_text())
    m2 = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert m2["processes"] == 2 and m1["processes"] == 1
    assert m2["test_sse_per_image"] == pytest.approx(m1["test_sse_per_image"], rel=1e-4)
    # rank 0 alone writes: one run directory, nothing else beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")
@pytest.mark.slow
def test_every_rank_returns_the_run_directory_rank_0_chose(tmp_path):
    # without an out, rank 0 names a new directory by the clock: the other ranks must name the same
    script = tmp_path / "api.py"
    script.write_text(  # rank 1 a second late: a name of its own would then be another second's
        "import os, time\n"
        "import autoencoders\n"
        "time.sleep(1.1 * int(os.environ['RANK']))\n"
        "run = autoencoders.train(layers=[64, 8], epochs=1, device='cpu', precision='fp32', quiet=True)\n"
        "print('DIR', run.dir.resolve())\n"
    )
    done = _run([*TORCHRUN, str(script)], tmp_path)
    named = {line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith("DIR ")}
    made = list((tmp_path / "runs").iterdir())
    assert len(made) == 1 and named == {str(made[0].resolve())}
    assert done.stdout.count("DIR ") == 2


def test_ranks_split_every_global_batch_between_them():
    x = torch.arange(100).float().unsqueeze(1)
    full = [b[0] for b in epoch_batches((x,), 10, torch.Generator().manual_seed(0))]
    halves = [
        [b[0] for b in epoch_batches((x,), 10, torch.Generator().manual_seed(0), rank, 2)] for rank in (0, 1)
    ]
    for whole, a, b in zip(full, *halves):
        assert sorted(torch.cat([a, b]).flatten().tolist()) == sorted(whole.flatten().tolist())
        assert len(a) == len(b) == 5


def test_a_single_process_is_not_distributed():
    assert not launched() and rank_and_size() == (0, 1)

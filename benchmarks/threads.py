"""Thread policy on a shared CPU: one run alone vs two identical runs at once, small and large network.

Run: ``python benchmarks/threads.py``. 4,000 Fashion-MNIST training images as an ``npy:`` file,
15 epochs, batch 64 (the default) and 256; every run is its own ``python -m autoencoders train``
process and its training time is read from ``metrics.json`` (start-up and metrics excluded).
Alone: ``--threads 1``, ``2`` and ``auto``. Together: two ``auto`` runs started at the same
moment; and, for the cliff this policy removes, two runs with spinning OpenMP threads
(``OMP_WAIT_POLICY=ACTIVE``) and ``--threads 2``; and for the large network at batch 256, two
``--threads 2`` runs as the package starts them and as processes that imported torch first (too
late for the policy: their threads spin). Results: ``results/threads.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from autoencoders.config import DataConfig
from autoencoders.data.datasets import read_data

HERE = Path(__file__).parent
NETWORKS = {"small 784-256-64-30": "784,256,64,30", "large 784-1000-500-250-30": "784,1000,500,250,30"}
TIMEOUT = 120  # for the spinning pair: long enough to show the cliff, short enough to wait for


# the command as a process that imported torch before the package, as many scripts and notebooks do
TORCH_FIRST = "import runpy, torch; runpy.run_module('autoencoders', run_name='__main__')"


def _start(
    data: Path, layers: str, batch: int, threads: str, out: Path, env: dict, torch_first: bool = False
) -> subprocess.Popen:
    cmd = [sys.executable, *(("-c", TORCH_FIRST) if torch_first else ("-m", "autoencoders"))]
    cmd += ["train", "--data", f"npy:{data}", "--layers", layers]
    cmd += ["--epochs", "15", "--batch-size", str(batch), "--threads", threads, "--quiet", "--out", str(out)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _finish(procs: list[subprocess.Popen], outs: list[Path]) -> list[float | None]:
    """Training seconds of each run, or None when it did not finish within TIMEOUT."""
    deadline, seconds = time.monotonic() + TIMEOUT, []
    for proc, out in zip(procs, outs):
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            seconds.append(None)
            continue
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.read()[-2000:])
        seconds.append(json.loads((out / "metrics.json").read_text())["train_seconds"])
    return seconds


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # --help: what it does
    work = Path(tempfile.mkdtemp(prefix="ae-threads-"))
    raw = read_data(DataConfig(data="fashion-mnist"))
    data = work / "fashion4000.npy"
    np.save(data, (raw.x[:4000] * 255).round().astype(np.uint8).reshape(-1, 28, 28))
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    results: dict = {}
    run = 0
    for (name, layers), batch in [(n, b) for n in NETWORKS.items() for b in (64, 256)]:
        row: dict = {"alone": {}}
        for threads in ("1", "2", "auto"):
            run += 1
            out = work / f"r{run}"
            row["alone"][threads] = _finish([_start(data, layers, batch, threads, out, env)], [out])[0]
            print(
                f"{name}, batch {batch}: alone, --threads {threads}: {row['alone'][threads]:.2f} s",
                flush=True,
            )
        pairs = {"auto": (env, "auto", False)}
        if name.startswith("small") and batch == 64:
            pairs["spinning, 2 threads"] = ({**env, "OMP_WAIT_POLICY": "ACTIVE"}, "2", False)
        if name.startswith("large") and batch == 256:  # where two threads win alone
            pairs["2 threads"] = (env, "2", False)
            pairs["2 threads, torch imported first"] = (env, "2", True)
        for label, (pair_env, threads, torch_first) in pairs.items():
            outs = [work / f"r{run + 1}", work / f"r{run + 2}"]
            run += 2
            procs = [_start(data, layers, batch, threads, out, pair_env, torch_first) for out in outs]
            row[f"together, {label}"] = _finish(procs, outs)
            print(f"{name}, batch {batch}: two at once, {label}: {row[f'together, {label}']}", flush=True)
        results[f"{name}, batch {batch}"] = row
    (HERE / "results" / "threads.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

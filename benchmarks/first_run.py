"""A user's first ``autoencoders train`` on Fashion-MNIST, whole command, against the tutorial loop.

In one process, nothing else running: the tutorial stacked autoencoder of ``stacked_vs_tutorial.py``
(greedy pretraining 3 epochs per layer, 10 epochs of fine-tuning; its training time, test
evaluations excluded), then ``autoencoders train --config examples/fashion-sae-fast.toml`` as a
subprocess, timed from start to exit: once with an empty ``$AUTOENCODERS_CACHE`` (the pixel and
PCA baselines are computed), then ``--warm-runs`` times with the cache warm (one run on a VM can be
10-20 % off the next: the run of median evaluation share is kept, and the range of that share).
Printed: wall times, the run's own training time, its evaluation (what the run records as
following training: metrics, baselines not ready yet, figures, report), start-up and exit (the rest
of the wall time), and test SSE/image; written: ``first_run.json`` in ``--out-dir``.

Run (repository root; Debian's ``dataset-fashion-mnist``; about 8 minutes on 2 cores)::

    python benchmarks/first_run.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CONFIG = ROOT / "examples" / "fashion-sae-fast.toml"


def first_train(work: Path, cache: Path, label: str) -> dict[str, Any]:
    """``autoencoders train`` with the fast recipe's config, timed as a whole command."""
    out = work / label
    command = [
        sys.executable,
        "-m",
        "autoencoders",
        "train",
        "--config",
        str(CONFIG),
        "--quiet",
        "--out",
        str(out),
    ]
    t0 = time.perf_counter()
    subprocess.run(
        command, check=True, env=os.environ | {"AUTOENCODERS_CACHE": str(cache)}, stdout=subprocess.DEVNULL
    )
    wall = time.perf_counter() - t0
    m = json.loads((out / "metrics.json").read_text())
    return {
        "wall_seconds": wall,
        "train_seconds": m["train_seconds"],
        "evaluation_seconds": m["evaluation_seconds"],
        "setup_seconds": m["setup_seconds"],  # the data read (and cached), the model built, auto's timing
        "start_seconds": wall - m["setup_seconds"] - m["train_seconds"] - m["evaluation_seconds"],
        "test_sse_per_image": m["test_sse_per_image"],
        "precision": m["precision"],
        "threads": m["threads"],
    }


def evaluation_share(run: dict[str, Any]) -> float:
    """What a run's evaluation took, as a share of its training time."""
    return run["evaluation_seconds"] / run["train_seconds"]


def show(label: str, run: dict[str, Any], tutorial_seconds: float | None) -> None:
    """One line of a timed command: its parts, against the tutorial loop's training time (None:
    not timed)."""
    against = ""
    if tutorial_seconds is not None:
        against = f" ({run['wall_seconds'] / tutorial_seconds:.2f}x the tutorial)"
    print(
        f"autoencoders train, {label}: {run['wall_seconds']:.1f} s wall{against}, "
        f"{run['setup_seconds']:.1f} s setup + {run['train_seconds']:.1f} s training + "
        f"{run['evaluation_seconds']:.1f} s evaluation ({evaluation_share(run):.1%} of training) + "
        f"{run['start_seconds']:.1f} s start-up and exit, test SSE/image {run['test_sse_per_image']:.3f}",
        flush=True,
    )


def positive(text: str) -> int:
    """A whole number of at least 1, for argparse."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return int(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out-dir", type=Path, default=RESULTS, help="where first_run.json goes")
    p.add_argument(
        "--skip-tutorial", action="store_true", help="time the command alone (e.g. another version)"
    )
    p.add_argument(
        "--warm-runs",
        type=positive,
        default=3,
        help="runs with the cache warm; the one of median evaluation share is kept "
        "(of an even count, the lower)",
    )
    args = p.parse_args()
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}"
    }
    ref = {"total_seconds": None}
    if not args.skip_tutorial:
        from stacked_vs_tutorial import parse_args, run_reference, setup

        tutorial = parse_args(["--device", "cpu"])
        device, x_train, x_test = setup(tutorial)
        print(f"tutorial loop on {len(x_train)} rows, {torch.get_num_threads()} threads ...", flush=True)
        ref = run_reference(x_train, x_test, tutorial, device)
        report["tutorial"] = {
            "train_seconds": ref["total_seconds"],
            "test_sse_per_image": ref["final_test_sse"],
        }
        print(
            f"tutorial: {ref['total_seconds']:.1f} s training, test SSE {ref['final_test_sse']:.3f}",
            flush=True,
        )
    with tempfile.TemporaryDirectory(prefix="ae-first-run-") as tmp:
        work, cache = Path(tmp), Path(tmp) / "cache"
        report["empty cache"] = first_train(work, cache, "empty")
        show("empty cache", report["empty cache"], ref["total_seconds"])
        warm = []
        for i in range(args.warm_runs):
            warm.append(first_train(work, cache, f"warm{i}"))
            show(f"warm cache, run {i + 1}", warm[-1], ref["total_seconds"])
    ordered = sorted(warm, key=evaluation_share)
    report["warm cache"] = ordered[(len(warm) - 1) // 2] | {"runs": warm}
    low, high = evaluation_share(ordered[0]), evaluation_share(ordered[-1])
    print(f"evaluation in the {len(warm)} warm runs: {low:.1%}-{high:.1%} of training; the median run:")
    show("warm cache", report["warm cache"], ref["total_seconds"])
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / "first_run.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

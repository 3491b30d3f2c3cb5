"""Training on more rows than the memory budget: a 1,000,000 × 784 float32 .npy streamed from disk.

Synthesises the file from Fashion-MNIST's 60k training images with small augmentations
(random shifts of up to 2 pixels, contrast jitter, a little noise), written sequentially
so that making it needs no more memory than one chunk. Then trains on it with the CLI in a
child process — greedy pretraining whose cached layer features also go to disk — and
reports the child's peak resident memory (ru_maxrss), wall time and test error. Then runs
``encode``, ``score``, ``reconstruct``, ``cluster`` (k-means, with the rows' labels: its
baselines too) and ``cluster --method dec`` (one epoch, its target refreshed every 1,000 updates)
over every row of the file, each in a child of its own, streamed (the file over
``--memory-budget``) and read whole (a budget above it), side by side.

Run (from the repository root)::

    python benchmarks/beyond_ram.py                       # 1M rows, ~3.1 GB file in /tmp
    python benchmarks/beyond_ram.py --rows 100000         # a quicker check
    python benchmarks/beyond_ram.py --commands cluster    # one command's streamed and whole reads
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from autoencoders.config import DataConfig
from autoencoders.data.datasets import read_data

RESULTS = Path(__file__).resolve().parent / "results"


def synthesise(path: Path, labels: Path, rows: int, seed: int = 0, chunk: int = 20_000) -> None:
    """Write ``rows`` augmented Fashion-MNIST images as an N×784 float32 .npy, chunk by chunk, and
    their classes to ``labels``."""
    fashion = read_data(DataConfig(data="fashion-mnist"))
    base = fashion.x.reshape(-1, 28, 28)
    rng = np.random.default_rng(seed)
    classes = np.empty(rows, np.int64)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (rows, 784)}
        )
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            picked = rng.integers(0, len(base), n)
            imgs, classes[start : start + n] = base[picked], fashion.y[picked]
            dy, dx = rng.integers(-2, 3, size=2)  # one shift per chunk keeps this vectorised
            imgs = np.roll(imgs, (dy, dx), axis=(1, 2))
            imgs = imgs * rng.uniform(0.8, 1.0, (n, 1, 1)) + rng.normal(0, 0.02, imgs.shape)
            f.write(np.clip(imgs, 0, 1).astype(np.float32).reshape(n, 784).tobytes())
    np.save(labels, classes)


def peak_of(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in GiB, wall seconds) of ``cmd`` run in a child of a child of its own: this
    process's RUSAGE_CHILDREN holds the largest of all its children's."""
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", probe, *cmd], check=True, capture_output=True, text=True)
    return int(out.stdout.split()[-1]) / 2**20, time.perf_counter() - t  # Linux reports KiB


# each command over every row: the command, what it writes, and its options beyond the data
COMMANDS = {
    "encode": ("encode", "codes.npy", []),
    "score": ("score", "scores.csv", []),
    "reconstruct": ("reconstruct", "recon.npy", []),
    "cluster": ("cluster", "clusters", ["--k", "10", "--quiet"]),  # with --labels its baselines too
    "dec": (
        "cluster",
        "clusters",
        ["--method", "dec", "--k", "10", "--epochs", "1", "--update-interval", "1000", "--quiet"],
    ),
}


def commands_over_every_row(
    run_dir: Path, path: Path, labels: Path, budget: float, scratch: Path, commands: list[str]
) -> list[dict]:
    """Peak RSS and wall time of ``commands`` over every row of ``path``, streamed under ``budget``
    GiB and read whole under a budget above the file's size."""
    whole = str(max(64.0, 2 * path.stat().st_size / 2**30))
    rows = []
    for name in commands:
        command, out, options = COMMANDS[name]
        for how, b in (("streamed", str(budget)), ("whole", whole)):
            given = ["--labels", str(labels)] if command == "cluster" else []
            cmd = [sys.executable, "-m", "autoencoders", command, str(run_dir), "--data", f"npy:{path}",
                   *given, "--out", str(scratch / out), "--memory-budget", b, *options]  # fmt: skip
            peak, wall = peak_of(cmd)
            row = {"command": name, "read": how, "peak_rss_gib": peak, "wall_seconds": wall}
            if command == "cluster":
                summary = json.loads((scratch / out / "clusters.json").read_text())
                row |= {k: summary[k] for k in ("accuracy", "pixels_kmeans_accuracy", "pca_kmeans_accuracy")}
            rows.append(row)
            print(f"{name:12s} {how:9s} peak RSS {peak:5.2f} GiB  {wall:6.1f} s", flush=True)
            if (scratch / out).is_dir():
                shutil.rmtree(scratch / out)
            else:
                (scratch / out).unlink()
    return rows


def main() -> None:
    """Synthesise the data, train on it in a child process, report peak RSS."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()), help="where the .npy goes")
    p.add_argument("--memory-budget", type=float, default=2.0, help="GiB (the project's default)")
    p.add_argument("--layers", default="784,256,64,30")
    p.add_argument("--pretrain-epochs", type=int, default=1)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    p.add_argument("--commands", default=",".join(COMMANDS), help=f"of {','.join(COMMANDS)}, comma-separated")
    args = p.parse_args()

    commands = args.commands.split(",")
    if unknown := sorted(set(commands) - set(COMMANDS)):
        p.error(f"no command {', '.join(unknown)} here; give some of {','.join(COMMANDS)}")
    path = args.dir / f"fashion-augmented-{args.rows}.npy"
    labels = path.with_name(f"{path.stem}-labels.npy")
    if not (path.exists() and labels.exists()):
        t = time.perf_counter()
        synthesise(path, labels, args.rows)
        print(f"wrote {path} ({path.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - t:.0f} s")
    run_dir = Path(tempfile.mkdtemp(prefix="ae-beyond-ram-"))
    cmd = [
        sys.executable, "-m", "autoencoders", "train", "--data", f"npy:{path}",
        "--memory-budget", str(args.memory_budget), "--layers", args.layers,
        "--pretrain", "greedy", "--pretrain-epochs", str(args.pretrain_epochs), "--no-compare",
        "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--quiet", "--out", str(run_dir),
    ]  # fmt: skip
    print(" ".join(cmd), flush=True)
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux reports KiB
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = (run_dir / "history.csv").read_text()
    report = {
        "rows": args.rows,
        "file_gib": path.stat().st_size / 2**30,
        "memory_budget_gib": args.memory_budget,
        "peak_rss_gib": peak / 2**30,
        "wall_seconds": wall,
        "command": " ".join(cmd),
        "metrics": metrics,
        "history_csv": history,
    }
    print(
        f"\nrows {args.rows:,} ({report['file_gib']:.2f} GiB as float32), memory budget "
        f"{args.memory_budget} GiB\npeak RSS of the training process: {report['peak_rss_gib']:.2f} GiB\n"
        f"wall time {wall:.0f} s (training {metrics['train_seconds']:.0f} s, "
        f"{metrics['samples_per_second']:,.0f} samples/s end to end)\n"
        f"test SSE/image {metrics['test_sse_per_image']:.2f} vs PCA-{metrics['code_size']} "
        f"{metrics['pca_sse_per_image']:.2f} (PCA fitted on a 50,000-row sample)"
    )
    print("\nevery row of the file under the trained run, each command in a process of its own:")
    report["commands"] = commands_over_every_row(run_dir, path, labels, args.memory_budget, run_dir, commands)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "beyond_ram.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

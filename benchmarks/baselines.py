"""The parts of a dataset's cold baselines, timed one by one on Fashion-MNIST: PCA-30 fitted on the
training rows (the default validation split out), its test error, the probe, kNN and k-means on
its codes, then the same three on the raw pixels (the probes on the fixed-seed sample of 20,000
training rows, k-means on the 10,000 test rows). This is what a first ``train`` on a dataset
computes once and caches.

With ``--before SRC`` (another checkout's ``src`` folder, e.g. from ``git worktree add``), each
repeat times that code and this checkout's in turn, each in a fresh process.

Run (repository root, Debian's ``dataset-fashion-mnist``, nothing else running; about a minute a
repeat and tree)::

    python benchmarks/baselines.py --threads 1 --before /tmp/before/src
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def measure(threads: int) -> dict[str, float]:
    """Seconds of each part, in this process, with the package on the path as it is."""
    import torch

    import autoencoders
    from autoencoders.data.datasets import load_dataset
    from autoencoders.eval import metrics, probes

    torch.set_num_threads(threads)
    # the rows a first ``train`` on Fashion-MNIST computes its baselines from (its validation split out)
    ds = load_dataset(autoencoders.Config().replace(data="fashion-mnist").data)
    (x, y), xt, yt = ds.train_sample(), ds.x_test, ds.y_test
    xp, yp = metrics.probe_sample(x, y)
    seconds: dict[str, float] = {}

    def timed(name: str, fn):
        t0 = time.perf_counter()
        out = fn()
        seconds[name] = time.perf_counter() - t0
        return out

    pca = timed("PCA-30 fit", lambda: probes.PCA(x, 30))
    timed("PCA-30 test error", lambda: pca.squared_errors(xt).mean())
    zp, zt = pca.transform(xp), pca.transform(xt)
    timed("PCA-30 codes: probe", lambda: probes.linear_probe_accuracy(zp, yp, zt, yt))
    timed("PCA-30 codes: kNN", lambda: probes.knn_accuracy(zp, yp, zt, yt))
    timed("PCA-30 codes: k-means", lambda: metrics.kmeans_scores(zt, yt))
    timed("pixels: probe", lambda: probes.linear_probe_accuracy(xp, yp, xt, yt))
    timed("pixels: kNN", lambda: probes.knn_accuracy(xp, yp, xt, yt))
    timed("pixels: k-means", lambda: metrics.kmeans_scores(xt, yt))
    seconds["all"] = sum(seconds.values())
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1, help="1: as beside training on 2 cores")
    p.add_argument("--before", type=Path, help="another checkout's src folder, timed alongside")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one measurement, printed
    args = p.parse_args()
    if args.json:
        print(json.dumps(measure(args.threads)))
        return
    trees = {"before": args.before, "now": SRC} if args.before else {"now": SRC}
    runs: dict[str, list[dict[str, float]]] = {tree: [] for tree in trees}
    for _ in range(args.repeats):
        for tree, src in trees.items():
            env = {**os.environ, "PYTHONPATH": str(src)}
            call = [sys.executable, __file__, "--json", "--threads", str(args.threads)]
            said = subprocess.run(call, env=env, capture_output=True, text=True, check=True)
            runs[tree].append(json.loads(said.stdout.splitlines()[-1]))
    print(f"{args.threads} thread(s); seconds, median of {args.repeats} fresh processes (range)")
    print(f"| part | {' | '.join(trees)} |\n|---|{'---:|' * len(trees)}")
    for part in runs["now"][0]:
        cells = []
        for tree in trees:
            values = [r[part] for r in runs[tree]]
            cells.append(f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})")
        print(f"| {part} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()

"""What a run's evaluation spends its time on, part by part, each alone.

Run (repository root, nothing else running), on a trained run whose data's baselines are cached::

    autoencoders train --config examples/fashion-sae-fast.toml --epochs 1 --out /tmp/ev --quiet
    python benchmarks/evaluation_parts.py /tmp/ev

The parts ``evaluate`` computes after training (``eval.metrics``): the test rows encoded and
their codes decoded, the probes' sample encoded, the linear probe, kNN and k-means on the codes,
the cached baselines read back, the test NLL of a VAE; then the report's drawn figures, one by
one. Each is timed on its own (the median of ``--repeat`` runs after one untimed), on the CPU
with the process's thread count; a run overlaps some of them (the figures beside the metrics).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

# isort: off
import autoencoders  # noqa: F401  (before torch: the package's thread policy)
import torch

# isort: on
from autoencoders.data.datasets import load_dataset
from autoencoders.eval import probes
from autoencoders.eval.metrics import (
    _baselines,
    _rows,
    encode_all,
    in_batches,
    kmeans_scores,
    likelihood_metrics,
    reconstruction_errors,
)
from autoencoders.figures.report import DRAWN
from autoencoders.figures.run_figures import FigureRows, draw
from autoencoders.trained import open_run


def timed(work: Callable[[], object], repeat: int) -> float:
    """The median seconds of ``repeat`` calls of ``work`` after one untimed."""
    work()
    seconds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - t0)
    return statistics.median(seconds)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="a trained run's directory")
    p.add_argument("--repeat", type=int, default=3, help="timed calls of each part")
    args = p.parse_args()
    run = open_run(args.run)
    model = run.model
    ds = load_dataset(run.cfg.data)
    rows = _rows(ds)
    z_test = encode_all(model, ds.x_test)
    parts: dict[str, Callable[[], object]] = {
        "encode the test rows": lambda: encode_all(model, ds.x_test),
        "decode their codes, the error": lambda: reconstruction_errors(
            ds.x_test, in_batches(model, model.decode, z_test)
        ),
    }
    if rows[2] is not None:
        (x_probe, y_probe), y_test = rows[2], rows[3]
        z_probe = encode_all(model, x_probe)
        parts |= {
            f"encode the probes' {len(x_probe)} rows": lambda: encode_all(model, x_probe),
            "linear probe": lambda: probes.linear_probe_accuracy(z_probe, y_probe, z_test, y_test),
            "kNN": lambda: probes.knn_accuracy(z_probe, y_probe, z_test, y_test),
            "k-means": lambda: kmeans_scores(z_test, y_test),
        }
    parts["the baselines (cached)"] = lambda: _baselines(ds, rows, model.code_size, "cpu")
    if model.likelihood:
        parts["test NLL"] = lambda: likelihood_metrics(model, ds.x_test, model.iw_samples)
    figure_rows = FigureRows(ds.x_test, None if ds.y_test is None else ds.y_test.numpy(), model, z_test)
    for what in DRAWN:
        parts[f"figure: {what}"] = lambda what=what: draw(
            run,
            args.run,
            what,
            Path("/tmp") / f"evaluation_parts_{what}.png",
            run.cfg.data.data,
            rows=figure_rows,
        )
    print(f"{args.run}: {type(model).__name__} {model.layers}, {torch.get_num_threads()} threads")
    total = 0.0
    for name, work in parts.items():
        seconds = timed(work, args.repeat)
        total += seconds
        print(f"{name:>40}  {seconds:6.3f} s")
    print(f"{'all of them, one after another':>40}  {total:6.3f} s")


if __name__ == "__main__":
    main()

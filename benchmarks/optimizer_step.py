"""This package's Adam against ``torch.optim.Adam`` (both fused): a small net's training step and the
optimizer's update alone, alternating in one process. Both run torch's fused kernel; what differs
is the Python around it.

Run (repository root, nothing else running; about 30 seconds)::

    python benchmarks/optimizer_step.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from autoencoders.training.optimizers import Adam


def net(widths: list[int]) -> nn.Sequential:
    """A ReLU stack over ``widths``, then back to the first width (a dense autoencoder's shape)."""
    torch.manual_seed(0)
    sizes = widths + widths[-2::-1]
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def microseconds(kind: type, widths: list[int], x: torch.Tensor, steps: int) -> tuple[float, float]:
    """Mean µs of a training step and of the update alone, after 20 steps of warm-up."""
    model = net(widths)
    optimizer = kind(model.parameters(), lr=1e-3, fused=True)

    def step() -> None:
        optimizer.zero_grad()
        F.binary_cross_entropy_with_logits(model(x), x).backward()
        optimizer.step()

    for _ in range(20):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    t1 = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    t2 = time.perf_counter()
    return (t1 - t0) / steps * 1e6, (t2 - t1) / steps * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", default="784,256,64,30")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    widths = [int(w) for w in args.layers.split(",")]
    x = torch.rand(args.batch_size, widths[0])
    kinds = {"torch.optim.Adam": torch.optim.Adam, "autoencoders Adam": Adam}
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    for _ in range(args.repeats):
        for name, kind in kinds.items():
            times[name].append(microseconds(kind, widths, x, args.steps))
    threads = torch.get_num_threads()
    print(f"{args.layers}, batch {args.batch_size}, {threads} threads; median of {args.repeats}")
    print("| optimizer | training step (µs) | update alone (µs) |\n|---|---:|---:|")
    for name, runs in times.items():
        step, update = (statistics.median(r[i] for r in runs) for i in (0, 1))
        print(f"| {name} | {step:.0f} | {update:.0f} |")


if __name__ == "__main__":
    main()

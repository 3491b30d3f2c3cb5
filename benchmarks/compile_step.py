"""Does ``torch.compile`` pay for itself on a training step? Eager vs compiled, side by side.

784-1000-500-250-30 dense autoencoder, batch 256, fused Adam, fp32: the one-time compile
cost against the per-step saving. Run: ``python benchmarks/compile_step.py``.
"""

from __future__ import annotations

import argparse
import time

import torch

from autoencoders import DenseAutoencoder


def measure(compiled: bool, steps: int = 150, batch: int = 256) -> tuple[float, float]:
    """(seconds of the first 3 steps, seconds per later step)."""
    torch.manual_seed(0)
    x = torch.rand(batch * steps, 784)
    model = DenseAutoencoder([784, 1000, 500, 250, 30])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)

    def loss(rows: torch.Tensor) -> torch.Tensor:
        return model.nll(model(rows).logits, rows).mean()

    loss_fn = torch.compile(loss) if compiled else loss

    def step(i: int) -> None:
        loss = loss_fn(x[i * batch : (i + 1) * batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    t = time.perf_counter()
    for i in range(3):
        step(i)
    warm = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(steps):
        step(i)
    return warm, (time.perf_counter() - t) / steps


def main() -> None:
    """Print both and the break-even number of steps."""
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # --help: what it does
    (eager_warm, eager), (comp_warm, comp) = measure(False), measure(True)
    print(f"eager:    first 3 steps {eager_warm:5.1f} s, {eager * 1e3:.1f} ms/step")
    print(f"compiled: first 3 steps {comp_warm:5.1f} s, {comp * 1e3:.1f} ms/step ({eager / comp:.2f}x)")
    if comp < eager:
        print(f"compiling pays off after {(comp_warm - eager_warm) / (eager - comp):,.0f} steps")
    else:
        print("compiling never pays off here")


if __name__ == "__main__":
    main()

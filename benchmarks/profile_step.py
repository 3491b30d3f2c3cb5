"""Where a fine-tuning step's time goes: matmul vs elementwise vs optimizer vs Python.

The project's own training step (``autoencoder_step``: BCE of a 784-1000-500-250-30 ReLU
stack, fused Adam) on in-memory batches of 256 rows, fp32, measured two ways in one process:

1. wall time of many steps → GFLOP/s (6 × batch × Σ in·out over the 8 layers, the matmul
   work of forward and backward) against the fp32 matmul peak measured in the same process;
2. ``torch.profiler`` over a few steps: self CPU time per operator, grouped into matmuls,
   the optimizer update, elementwise work (activations, loss, their gradients) and the rest,
   and the part of the step spent outside operators (Python, autograd bookkeeping).

Run (from the repository root; about a minute)::

    python benchmarks/profile_step.py [--batch-size 256] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from stacked_vs_tutorial import matmul_peak, sum_in_out
from torch.profiler import ProfilerActivity, profile

from autoencoders import DenseAutoencoder, TrainConfig
from autoencoders.runtime.threads import choose_threads
from autoencoders.training.precision import autocast
from autoencoders.training.steps import Step, autoencoder_step

LAYERS = [784, 1000, 500, 250, 30]
RESULTS = Path(__file__).resolve().parent / "results"
GROUPS = {
    "matmul": ("addmm", "aten::mm", "aten::bmm", "matmul", "linear"),
    "optimizer": ("adam", "optimizer", "zero_grad", "aten::zero_"),
}


def group(name: str) -> str:
    """The group of an operator by its name: matmul, optimizer or elementwise/other."""
    low = name.lower()
    for g, keys in GROUPS.items():
        if any(k in low for k in keys):
            return g
    return "elementwise and other ops"


def warm_step(
    batch: int, precision: str, device: torch.device, n_batches: int = 16
) -> tuple[Step, list[tuple[torch.Tensor]]]:
    """The fine-tuning step of a fresh stack (seed 0) on ``device``, with ``n_batches`` random
    in-memory batches it has already run once (kernels picked, memory allocated, the fused
    Adam imported)."""
    torch.manual_seed(0)
    model = DenseAutoencoder(LAYERS).to(device)
    cfg = TrainConfig(batch_size=batch, precision=precision, device=device.type)
    step = autoencoder_step(model, cfg, steps=10**6)
    step.amp = lambda: autocast(precision, device)  # as the training loop sets it
    model.train()
    x = torch.rand(batch * n_batches, LAYERS[0], device=device)
    batches = [(x[i : i + batch],) for i in range(0, len(x), batch)]
    for b in batches:
        step.train_batch(b)
    return step, batches


def main() -> None:
    """Print and write the throughput and the profile."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=200, help="timed steps")
    p.add_argument("--threads", default="auto", help="auto or a number, as --threads")
    args = p.parse_args()
    batch = args.batch_size
    threads = choose_threads(args.threads, DenseAutoencoder(LAYERS), batch)
    torch.set_num_threads(threads)
    step, batches = warm_step(batch, "fp32", torch.device("cpu"))
    peak = matmul_peak(torch.float32, torch.device("cpu"), 2048)["gflops"]

    t0 = time.perf_counter()
    for i in range(args.steps):
        step.train_batch(batches[i % len(batches)])
    seconds = (time.perf_counter() - t0) / args.steps
    gflops = 6 * batch * sum_in_out(LAYERS) / seconds / 1e9

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for i in range(20):
            step.train_batch(batches[i % len(batches)])
        profiled = (time.perf_counter() - t0) / 20
    share: dict[str, float] = {}
    for event in prof.key_averages():
        share[group(event.key)] = share.get(group(event.key), 0.0) + event.self_cpu_time_total / 1e6 / 20
    inside = sum(share.values())
    # the profiler's own overhead inflates the profiled step; the shares are of the profiled step
    share["outside operators (Python, autograd)"] = max(profiled - inside, 0.0)
    result = {
        "command": "python benchmarks/profile_step.py " + f"--batch-size {batch} --threads {args.threads}",
        "threads": threads,
        "batch_size": batch,
        "ms_per_step": 1e3 * seconds,
        "gflops": gflops,
        "fp32_peak_gflops": peak,
        "pct_of_peak": 100 * gflops / peak,
        "matmul_only_ms": 1e3 * 6 * batch * sum_in_out(LAYERS) / (peak * 1e9),
        "profile_ms_per_step": 1e3 * profiled,
        "profile_pct": {k: 100 * v / profiled for k, v in sorted(share.items(), key=lambda kv: -kv[1])},
    }
    print(
        f"batch {batch}, {threads} threads: {result['ms_per_step']:.1f} ms/step, {gflops:.1f} GFLOP/s = "
        f"{result['pct_of_peak']:.1f} % of the fp32 matmul peak ({peak:.1f} GFLOP/s; its matmuls alone at "
        f"peak: {result['matmul_only_ms']:.1f} ms)"
    )
    print(f"profiled step {result['profile_ms_per_step']:.1f} ms:")
    for k, v in result["profile_pct"].items():
        print(f"  {k:40s} {v:5.1f} %")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"profile_step_b{batch}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

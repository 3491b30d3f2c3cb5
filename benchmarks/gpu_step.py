"""A fine-tuning step on a CUDA GPU: wall time against the time its kernels take, fp32 and bf16.

The project's own training step (``autoencoder_step``: BCE of a 784-1000-500-250-30 ReLU
stack, fused Adam) on batches already on the GPU, at batch 64, 256 and 1024. Wall time per
step (300 steps after a warm-up, synchronised) is set beside the summed time of the step's
GPU kernels (``torch.profiler`` over 20 steps): where the wall time is much larger, the step
waits on the CPU that launches the kernels, not on the GPU.

Run (from the repository root, on a machine with a CUDA GPU; about 30 s)::

    python benchmarks/gpu_step.py
"""

from __future__ import annotations

import argparse
import time

import torch
from profile_step import warm_step
from torch.profiler import ProfilerActivity, profile


def main() -> None:
    """Print one line per precision and batch size."""
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # --help: what it does
    if not torch.cuda.is_available():
        raise SystemExit("gpu_step.py needs a CUDA GPU; none is visible to PyTorch")
    device = torch.device("cuda")
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
    for precision in ("fp32", "bf16"):
        for batch in (64, 256, 1024):
            step, batches = warm_step(batch, precision, device)
            torch.cuda.synchronize()
            n = 300
            t0 = time.perf_counter()
            for i in range(n):
                step.train_batch(batches[i % len(batches)])
            torch.cuda.synchronize()
            wall = (time.perf_counter() - t0) / n
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for i in range(20):
                    step.train_batch(batches[i % len(batches)])
                torch.cuda.synchronize()
            kernels = sum(e.self_device_time_total for e in prof.key_averages()) / 20 / 1e6
            print(
                f"{precision} batch {batch}: {wall * 1e3:.2f} ms/step wall, {kernels * 1e3:.2f} ms/step "
                f"of GPU kernels, {batch / wall:,.0f} rows/s",
                flush=True,
            )


if __name__ == "__main__":
    main()

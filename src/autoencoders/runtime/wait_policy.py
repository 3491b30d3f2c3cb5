"""How idle OpenMP threads wait: a short spin (``SPIN``), then sleep. The spin keeps a team awake
between the many small parallel regions of a training step; sleeping at once (``PASSIVE`` alone)
made two threads slower than one for every small network. Spinning longer lets runs that share
cores slow each other down many times over; ``threads.CpuShare`` keeps a run off the CPUs other
processes use. The runtime reads this when torch loads it, so it is set before the package imports
torch, and only takes effect if nothing imported torch before the package."""

import os
import sys

# the environment names through which a user (or a parent process) chose how idle threads wait
CHOSEN = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")

# torch was imported first, with no choice made: its OpenMP runtime started with threads that spin
MISSED = "torch" in sys.modules and not any(name in os.environ for name in CHOSEN)

# spin-wait iterations of an idle GNU OpenMP thread before it sleeps, about 0.1-0.5 ms (its default,
# 300,000, is milliseconds). On 2 cores 784-256-64-30 at batch 64 trained 1.4x faster on two threads
# than on one with 3,000-30,000, and 100,000 was slower again (benchmarks/README.md, "Short spins").
SPIN = 10_000

if not any(name in os.environ for name in CHOSEN):
    os.environ["GOMP_SPINCOUNT"] = str(SPIN)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # runtimes without a spin count sleep at once

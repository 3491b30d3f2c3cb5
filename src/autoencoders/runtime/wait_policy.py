"""How idle OpenMP threads wait: they sleep instead of spinning, so runs sharing cores do not slow
each other down many times over. The runtime reads this when torch loads it, so it is set before
the package imports torch, and only takes effect if nothing imported torch before the package."""

import os
import sys

# the environment names through which a user (or a parent process) chose how idle threads wait
CHOSEN = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")

# torch was imported first, with no choice made: its OpenMP runtime started with threads that spin
MISSED = "torch" in sys.modules and not any(name in os.environ for name in CHOSEN)

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

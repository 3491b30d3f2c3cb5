"""What the command line costs before it does anything: ``--help``, a command's help, a usage error,
a value the config refuses, ``--print-config``, and ``import autoencoders`` with and without its
first name used, each in a fresh process.

With ``--before SRC`` (another checkout's ``src`` folder, e.g. from ``git worktree add``), the
same calls run on that code too, alternating with this checkout's, so that both see the same load.

Run (repository root, nothing else running; about a minute)::

    git worktree add /tmp/before 0ab5413  # the last commit before the change
    python benchmarks/startup.py --before /tmp/before/src
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
CALLS = {
    "autoencoders --help": ["-m", "autoencoders", "--help"],
    "autoencoders train --help": ["-m", "autoencoders", "train", "--help"],
    "autoencoders train --epochs x (a usage error)": ["-m", "autoencoders", "train", "--epochs", "x"],
    "autoencoders train --threads 0 (refused by the config)": "-m autoencoders train --threads 0".split(),
    "autoencoders train --print-config": "-m autoencoders train --print-config".split(),
    "autoencoders sample RUN -n 999999 --out s.png (refused after --out's check)": (
        "-m autoencoders sample runs/x -n 999999 --out /tmp/s.png".split()
    ),
    "import autoencoders": ["-c", "import autoencoders"],
    "import autoencoders; autoencoders.train": ["-c", "import autoencoders; autoencoders.train"],
}


def seconds(args: list[str], src: Path) -> float:
    """Wall seconds of ``python ARGS`` importing the package from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, capture_output=True, check=False)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", type=Path, help="another checkout's src folder, timed alongside")
    p.add_argument("--repeats", type=int, default=7, help="calls of each, the median reported")
    args = p.parse_args()
    trees = {"before": args.before, "now": SRC} if args.before else {"now": SRC}
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; median of {args.repeats} calls (s)")
    print(f"| call | {' | '.join(trees)} |\n|---|{'---:|' * len(trees)}")
    for name, call in CALLS.items():
        times: dict[str, list[float]] = {tree: [] for tree in trees}
        for _ in range(args.repeats):
            for tree, src in trees.items():
                times[tree].append(seconds(call, src))
        print(f"| `{name}` | {' | '.join(f'{statistics.median(t):.2f}' for t in times.values())} |")


if __name__ == "__main__":
    main()

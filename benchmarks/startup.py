"""What the command line costs before it does anything: ``--help``, a command's help, a usage error,
a value the config refuses, ``--print-config``, and ``import autoencoders`` with and without its
first name used, each in a fresh process. With ``--working``, what commands that work cost on the
embedded digits, where training itself takes a fraction of a second: ``train`` for one epoch, the
quick start's ``train``, ``classify`` and ``cluster`` on a run, and an estimator's ``fit`` in a fresh
interpreter (as a ``GridSearchCV`` worker starts); the dataset's baselines are cached first.

With ``--before SRC`` (another checkout's ``src`` folder, e.g. from ``git worktree add``), the
same calls run on that code too, alternating with this checkout's, so that both see the same load.

Run (repository root, nothing else running; about a minute, with ``--working`` about five)::

    git worktree add /tmp/before 0ab5413  # the last commit before the change
    python benchmarks/startup.py --before /tmp/before/src
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
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
# {out}: a fresh folder per call; {run}: a run trained once beforehand
WORKING = {
    "autoencoders train --epochs 1": "-m autoencoders train --epochs 1 -q --out {out}".split(),
    "autoencoders train (the quick start)": "-m autoencoders train -q --out {out}".split(),
    "autoencoders classify RUN --n-labels 100": (
        "-m autoencoders classify {run} --n-labels 100 -q --out {out}".split()
    ),
    "autoencoders cluster RUN": "-m autoencoders cluster {run} -q --out {out}".split(),
    "AutoencoderTransformer(epochs=5).fit(digits)": [
        "-c",
        "from sklearn.datasets import load_digits; from autoencoders.sklearn import AutoencoderTransformer; "
        "AutoencoderTransformer(epochs=5).fit(load_digits().data)",
    ],
}


def seconds(args: list[str], src: Path, check: bool = False) -> float:
    """Wall seconds of ``python ARGS`` importing the package from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, capture_output=True, check=check)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", type=Path, help="another checkout's src folder, timed alongside")
    p.add_argument("--repeats", type=int, default=7, help="calls of each, the median reported")
    p.add_argument("--working", action="store_true", help="time commands that work instead (see above)")
    args = p.parse_args()
    trees = {"before": args.before, "now": SRC} if args.before else {"now": SRC}
    calls = CALLS
    if args.working:
        scratch = Path(tempfile.mkdtemp(prefix="startup-"))
        os.environ["AUTOENCODERS_CACHE"] = str(scratch / "cache")
        run = scratch / "run"
        seconds(f"-m autoencoders train -q --epochs 3 --out {run}".split(), SRC, check=True)  # caches too
        outs = iter(range(1 << 30))
        calls = {
            name: lambda call=call: [a.format(out=scratch / f"out{next(outs)}", run=run) for a in call]
            for name, call in WORKING.items()
        }
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; median of {args.repeats} calls (s)")
    print(f"| call | {' | '.join(trees)} |\n|---|{'---:|' * len(trees)}")
    for name, call in calls.items():
        times: dict[str, list[float]] = {tree: [] for tree in trees}
        for _ in range(args.repeats):
            for tree, src in trees.items():
                times[tree].append(seconds(call() if callable(call) else call, src, check=args.working))
        print(f"| `{name}` | {' | '.join(f'{statistics.median(t):.2f}' for t in times.values())} |")


if __name__ == "__main__":
    main()

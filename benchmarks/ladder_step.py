"""The ladder network's training step (``Ladder.costs``, backward, fused Adam) on the CPU, for the
Hinton stack 784-1000-500-250-30 and 10 classes: an unlabelled and a labelled batch of the same
size per step, as ``classify --method ladder`` takes them.

With ``--before SRC`` (another checkout's ``src`` folder, e.g. from ``git worktree add``), that
checkout's ``ladder.py`` is timed in the same process, in alternating rounds with this one's.

Run (repository root, nothing else running; about a minute)::

    git worktree add /tmp/before 0bd7ccf  # the last commit before the change
    python benchmarks/ladder_step.py --before /tmp/before/src
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

SRC = Path(__file__).resolve().parents[1] / "src"
LADDER = Path("autoencoders/classify/ladder.py")
WIDTHS = [784, 1000, 500, 250, 30, 10]


def ladder_module(src: Path, name: str):
    """``src``'s ladder module, loaded under ``name`` (it imports only torch)."""
    spec = importlib.util.spec_from_file_location(name, src / LADDER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def training_step(module, batch: int) -> Callable[[], None]:
    """One update of a fresh ladder from ``module`` on fixed random rows."""
    torch.manual_seed(0)
    ladder = module.Ladder(WIDTHS).train()
    optimizer = torch.optim.Adam(ladder.parameters(), lr=2e-3, fused=True)
    x_unlabelled, x_labelled = torch.rand(batch, WIDTHS[0]), torch.rand(batch, WIDTHS[0])
    y = torch.randint(WIDTHS[-1], (batch,))

    def step() -> None:
        loss = ladder.costs(x_unlabelled, x_labelled, y)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(5):  # warm-up
        step()
    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", type=Path, help="another checkout's src folder, timed alongside")
    p.add_argument("--batches", type=int, nargs="+", default=[64, 100, 256])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=12, help="rounds of 5 steps each, the median kept")
    args = p.parse_args()
    trees = {"before": args.before, "now": SRC} if args.before else {"now": SRC}
    modules = {tree: ladder_module(src, f"ladder_{tree}") for tree, src in trees.items()}
    print(f"torch {torch.__version__}; ms per step, median of {args.rounds} rounds of 5 steps")
    print(f"| threads | batch | {' | '.join(trees)} |{' before / now |' * bool(args.before)}")
    print(f"|---:|---:|{'---:|' * (len(trees) + bool(args.before))}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for batch in args.batches:
            steps = {tree: training_step(module, batch) for tree, module in modules.items()}
            times: dict[str, list[float]] = {tree: [] for tree in steps}
            for r in range(args.rounds):
                for tree in list(steps)[:: 1 if r % 2 else -1]:  # each first in turn
                    t0 = time.perf_counter()
                    for _ in range(5):
                        steps[tree]()
                    times[tree].append((time.perf_counter() - t0) / 5 * 1e3)
            ms = {tree: statistics.median(t) for tree, t in times.items()}
            ratio = f" {ms['before'] / ms['now']:.2f}× |" if args.before else ""
            print(f"| {threads} | {batch} | {' | '.join(f'{v:.1f}' for v in ms.values())} |{ratio}")


if __name__ == "__main__":
    main()

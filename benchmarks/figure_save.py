"""Saving a run's report figures: the crop found in one draw (``figures.canvas.save``) against
matplotlib's ``bbox_inches="tight"``, which draws each figure twice.

Run (repository root, nothing else running), on a trained run::

    autoencoders train --out /tmp/d --quiet
    python benchmarks/figure_save.py /tmp/d

Each of the report's drawn figures is drawn ``--repeat`` times both ways, alternating which goes
first; only the save is timed (the median, the first draw of each left out). Both give the same
pixels (``tests/test_visualize.py``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

# isort: off
import autoencoders  # noqa: F401  (before torch: the package's thread policy)

# isort: on
from matplotlib.figure import Figure

from autoencoders.figures import canvas
from autoencoders.figures.report import DRAWN
from autoencoders.figures.run_figures import draw, test_rows
from autoencoders.io.checkpoint import atomic_write
from autoencoders.trained import open_run


def tight(fig: Figure, path: Path) -> None:
    """The save as matplotlib crops it: a draw to find the crop, then the drawn one."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=canvas.DPI, bbox_inches="tight"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="a trained run's directory")
    p.add_argument("--repeat", type=int, default=6, help="draws of each figure each way")
    args = p.parse_args()
    run = open_run(args.run)
    rows = test_rows(run, run.cfg.data.data)  # as the report draws its figures from them
    saves = {"tight": tight, "one draw": canvas.save}
    seconds: dict[tuple[str, str], list[float]] = {}
    now: dict[str, str] = {}  # the figure being drawn, and which way it is saved

    def timed(fig: Figure, path: Path) -> None:
        t0 = time.perf_counter()
        saves[now["way"]](fig, path)
        seconds.setdefault((now["what"], now["way"]), []).append(time.perf_counter() - t0)

    canvas.save = timed
    for repeat in range(args.repeat):
        for what in DRAWN:
            for way in list(saves)[:: 1 if repeat % 2 else -1]:
                now |= {"what": what, "way": way}
                draw(
                    run,
                    args.run,
                    what,
                    Path("/tmp") / f"figure_save_{what}.png",
                    run.cfg.data.data,
                    rows=rows,
                )
    total = dict.fromkeys(saves, 0.0)
    print(f"{args.run}: the save alone, median ms")
    for what in DRAWN:
        for w in saves:
            total[w] += statistics.median(seconds[(what, w)][1:])
        print(
            f"{what:>10}"
            + "".join(f"  {w} {statistics.median(seconds[(what, w)][1:]) * 1e3:6.1f}" for w in saves)
        )
    print(f"{'all':>10}" + "".join(f"  {w} {total[w] * 1e3:6.1f}" for w in saves))


if __name__ == "__main__":
    main()

"""Curves: a run's losses over its epochs, and greedy pretraining against none and PCA."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..eval.metrics import pca_name
from . import canvas

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def loss_floor(metrics: dict) -> tuple[float, str] | None:
    """The floor line of a run's loss curve and the split it is of: the validation rows' BCE floor,
    under the curve it bounds (on small data each split's differs), else the test rows'; None
    for losses without one."""
    for split, key in (("validation", "val_bce_floor"), ("test", "test_bce_floor")):
        if metrics.get(key) is not None:
            return metrics[key], split
    return None


def loss_curve(
    history: list[dict],
    path: str | Path,
    loss_name: str = "loss per example",
    floor: float | None = None,
    corrupted: bool = False,
    title: str = "",
    term: str = "loss",
    floor_rows: str = "validation",
) -> None:
    """Training and validation loss per epoch, one panel per stage; ``corrupted``: training
    batches were corrupted (a denoising run), its validation rows not, so the training loss runs
    above the validation loss, and its legend says why; ``title``: over the panels; ``term``: the
    history's column that ``loss_name`` names (``loss``, the total, where a stage has no such column).

    Other named terms (a KL, a penalty, an adversarial loss) are dashed on their own axis on
    the right: their scale has nothing to do with the reconstruction's. ``floor``: the loss of a
    perfect reconstruction of the ``floor_rows`` (BCE's, above 0 for grey values; each split's
    own, which differ on small data), a line on the panels of stages that reconstruct the data (not
    a greedy stage's features).
    """
    from matplotlib.ticker import MaxNLocator

    stages = list(dict.fromkeys(h["stage"] for h in history))
    cols = min(len(stages), 3)  # a greedy stack's stages in rows of three, readable in the report
    rows_of_panels = -(-len(stages) // cols)
    # a title wrapped to the panels' width (wider, it would widen the picture beside them), with room
    title = textwrap.fill(title, int(11 * 4.6 * cols))
    height = 3.2 * rows_of_panels + (0.2 * (title.count("\n") + 1) if title else 0)
    fig, axes = canvas.subplots(rows_of_panels, cols, figsize=(4.6 * cols, height), squeeze=False)
    for ax in axes.flat[len(stages) :]:
        ax.remove()
    for ax, stage in zip(axes.flat, stages):
        rows = [h for h in history if h["stage"] == stage]
        epochs = [h["epoch"] for h in rows]
        train = "train (corrupted inputs)" if corrupted else "train"
        left = term if f"train_{term}" in rows[0] else "loss"
        lines = ax.plot(epochs, [h[f"train_{left}"] for h in rows], marker=".", label=train)
        if _drawn(validation := [h.get(f"val_{left}", math.nan) for h in rows]):  # none without a val split
            lines += ax.plot(epochs, validation, marker=".", label="validation")
        own = ("loss", "recon")
        terms = [k.split("_", 1)[1] for k in rows[0] if k.startswith(("train_", "val_"))]
        terms = [t for t in dict.fromkeys(terms) if t not in own]
        if terms:
            right = ax.twinx()
            least = math.inf
            for name, color in zip(terms, ("tab:green", "tab:red", "tab:purple", "tab:brown")):
                for split, key, style in (("train", "train_", ":"), ("validation", "val_", "--")):
                    values = [h.get(key + name, math.nan) for h in rows]
                    if _drawn(values):
                        lines += right.plot(
                            epochs, values, ls=style, marker=".", color=color, label=f"{split} {name}"
                        )
                        least = min(least, np.nanmin(values))
            if least >= 0:  # from 0: a term's lowest value would sit on the loss's floor, which it is not
                right.set_ylim(bottom=0)
            # as the history records them: before the weights the loss multiplies them by
            right.set_ylabel(textwrap.fill(f"{', '.join(terms)}, unweighted (right axis)", 36), fontsize=8)
        ax.set_title(f"stage: {stage}", fontsize=9)
        ax.set_xlabel("epoch")
        # a greedy stage reconstructs its own input: the data for layer 1, features above it
        pretrain = stage.startswith("pretrain")
        label = "stage's reconstruction loss per example" if pretrain else loss_name
        if floor is not None and not pretrain:
            lines.append(
                ax.axhline(
                    floor, ls="--", lw=1, color="gray", label=f"a perfect reconstruction ({floor_rows} rows)"
                )
            )
        ax.set_ylabel(textwrap.fill(label, 36), fontsize=9)  # a panel is 3.2 inches tall
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        _legend_below(ax, lines, fig.get_figwidth() / cols)
    above = fig.suptitle(title, fontsize=9) if title else None
    fig.tight_layout(w_pad=2.0)  # a panel's two-line axis label clear of the panel to its left
    if above is not None:  # centred over the panels, not over the figure with their axis labels
        boxes = [ax.get_position() for ax in fig.axes]
        above.set_x((min(b.x0 for b in boxes) + max(b.x1 for b in boxes)) / 2)
    canvas.save(fig, path)


def _legend_below(ax: Axes, lines: list, slot: float) -> None:
    """A legend of ``lines`` under ``ax`` (over it, it would hide the right axis's curves), in as
    many columns (at most 3) as fit its panel's ``slot`` (inches wide): a wider one would run into
    the legend of the panel beside it."""
    labels = [line.get_label() for line in lines]
    below = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.2)}
    for ncol in range(min(len(lines), 3), 0, -1):
        legend = ax.legend(lines, labels, fontsize=7, ncol=ncol, frameon=False, **below)
        if legend.get_window_extent().width <= 0.95 * slot * ax.figure.dpi:
            return


def _drawn(values: list[float]) -> bool:
    """Whether a curve has a point to draw (a missing number is NaN)."""
    return any(math.isfinite(v) for v in values)


def pretraining_comparison(history: list[dict], metrics: dict, path: str | Path, item: str = "image") -> None:
    """Fine-tuning after greedy pretraining vs the same stack from random init, and PCA; ``item``:
    what a sample is (an image, a table's row)."""
    from matplotlib.ticker import MaxNLocator

    fig, (trend, bars) = canvas.subplots(1, 2, figsize=(9, 3.4))
    for stage, label in (("fine-tune", "greedy pretrained"), ("no pretraining", "random init")):
        rows = [h for h in history if h["stage"] == stage]
        trend.plot([h["epoch"] for h in rows], [h["val_loss"] for h in rows], marker=".", label=label)
    trend.set_xlabel("epoch")
    trend.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    trend.set_ylabel("validation loss per example")
    trend.set_title("end-to-end training", fontsize=9)
    trend.grid(alpha=0.3)
    trend.legend(fontsize=8)
    names = ["greedy pretrained", "random init", pca_name(metrics)]
    values = [metrics[k] for k in ("test_sse_per_image", "no_pretraining_sse_per_image", "pca_sse_per_image")]
    drawn = bars.bar(names, values, color=["tab:blue", "tab:orange", "tab:gray"])
    bars.bar_label(drawn, fmt="%.2f", fontsize=8)
    bars.set_ylabel(f"test SSE per {item} (lower is better)")
    bars.set_title("reconstruction error at the same code size", fontsize=9)
    fig.tight_layout(w_pad=2.5)  # the bars' axis label clear of the curves' frame
    canvas.save(fig, path)

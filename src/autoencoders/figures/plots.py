"""Figures (matplotlib PNGs): image grids, labelled rows of images and scatter plots."""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..data.classes import has_class
from ..eval.agreement import best_matching, contingency
from . import canvas

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def class_label(c: object, names: tuple[str, ...] | None) -> str:
    """A class as figures show it: a number with its name where the data names its class numbers
    (Fashion-MNIST's ``6 Shirt``), else as it is."""
    named = names is not None and isinstance(c, int | np.integer) and 0 <= c < len(names)
    return f"{c} {names[c]}" if named else str(c)


def _as_image(row: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    """A row as the image of ``shape`` (H, W, or 3, H, W: a colour image, drawn H, W, 3)."""
    if shape is not None and int(np.prod(shape)) == row.size:
        if len(shape) == 3:
            return row.reshape(shape).transpose(1, 2, 0).clip(0, 1)
        return row.reshape(shape)
    return row.reshape(1, -1)  # non-image data: one strip per example


def table_rows(rows: np.ndarray, shape: tuple[int, ...] | None) -> bool:
    """Whether ``rows`` are a table's, drawn as a heatmap: not images of ``shape``."""
    return _as_image(rows[0], shape).shape[0] == 1


def reconstruction_grid(
    originals: np.ndarray,
    reconstructions: np.ndarray,
    path: str | Path,
    image_shape: tuple[int, ...] | None,
    title: str = "",
    features: list[str] | None = None,
) -> None:
    """Originals (top row of each pair) over their reconstructions (bottom row), ten per row;
    ``features``: a table's column names. A table's rows get a third block, each value's error
    |reconstruction − original| on the same scale: where a row is reconstructed worst."""
    cols = min(len(originals), 10)
    table = table_rows(originals, image_shape)
    groups = []
    for i in range(0, len(originals), cols):
        shown, rebuilt = originals[i : i + cols], reconstructions[i : i + cols]
        groups += [("original", shown), ("reconstruction", rebuilt)]
        groups += [("|error|", np.abs(np.asarray(rebuilt) - np.asarray(shown)))] if table else []
    labelled_rows(groups, path, image_shape, title, features, f"{DATA_SCALE}; |error| on the same scale")


GAP = (0.84, 0.89, 0.96)  # between image tiles: a pale blue, where white ran into a tile's white pixels


def _mosaic(grid: list[list[np.ndarray]], image_shape: tuple[int, ...] | None) -> np.ndarray:
    """Rows of images tiled into one array, 1-pixel gaps between them (one imshow draws it: a
    subplot per image costs seconds for a 10 × 10 grid): NaN between gray images, which their
    colour map draws in ``GAP``, and ``GAP`` itself between colour images."""
    tiles = [[_as_image(row, image_shape) for row in line] for line in grid]
    (h, w), colour = tiles[0][0].shape[:2], tiles[0][0].shape[2:]
    cols = max(len(line) for line in tiles)
    gap = GAP if colour else np.nan
    sheet = np.full((len(tiles) * (h + 1) - 1, cols * (w + 1) - 1, *colour), gap, np.float32)
    for r, line in enumerate(tiles):
        for c, tile in enumerate(line):
            sheet[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = tile
    return sheet


DATA_SCALE = "scaled value (0–1: training range)"  # what a table row's colours mean, as the data's
SIGNED = "weight: 0 = −its unit's largest |w|, 0.5 = 0, 1 = +largest"  # signed values, 0.5 their zero


def _show_mosaic(
    sheet: np.ndarray, rows: int, cols: int, image_shape, title: str, left: float = 0.0, label_lines: int = 0
):
    """A figure holding ``sheet`` of images sized for ``rows`` × ``cols`` tiles, each row tall
    enough for a label of ``label_lines`` lines at its left; returns (figure, axes). Images are gray
    (1 white) with square pixels (a one-row strip would stretch them), gaps in ``GAP``."""
    height = max(1.0 * image_shape[-2] / image_shape[-1], 0.14 * label_lines + 0.04)  # 8-point labels
    fig, ax = canvas.subplots(figsize=(1.0 * cols + left, max(height * rows, 0.4) + (0.4 if title else 0.1)))
    cmap = canvas.cmap("gray").with_extremes(bad=GAP)
    ax.imshow(sheet, cmap=cmap, vmin=0, vmax=1, interpolation="nearest", aspect="equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)
    return fig, ax


def _rows_not_images(text: str) -> str:
    """``text`` with "image(s)" said as "row(s)"."""
    return re.sub(r"\bimage(s?)\b", r"row\1", text)


def image_grid(
    images: np.ndarray,
    path: str | Path,
    image_shape: tuple[int, ...] | None,
    title: str = "",
    cols: int | None = None,
    scale: str = DATA_SCALE,
    features: list[str] | None = None,
    names: list[str] | None = None,
) -> None:
    """Rows of ``images`` in a grid (``cols`` per row; None: about 10, see ``_columns``), e.g.
    samples from a prior or an interpolation; ``scale``: what a table row's colours mean;
    ``features``: its column names; ``names``: one per row, at the left of a table's rows (each a
    block of its own; images keep the title's order)."""
    if table_rows(images, image_shape):  # one block of them, or one per named row
        images = np.asarray(images)
        blocks = (
            [("", images)] if names is None else [(name, images[i : i + 1]) for i, name in enumerate(names)]
        )
        _table_blocks(blocks, path, title, scale, features)
        return
    cols = min(len(images), cols or _columns(len(images)))
    grid = [list(images[i : i + cols]) for i in range(0, len(images), cols)]
    fig, _ = _show_mosaic(_mosaic(grid, image_shape), len(grid), cols, image_shape, title)
    canvas.save(fig, path)


def _columns(n: int, near: int = 10) -> int:
    """Columns for a grid of ``n`` images: ``n`` up to ``near``, else the count within a few of
    ``near`` that leaves the least of the last row empty (64 samples in 8 rows of 8, not in 6 rows
    of 10 above a row of 4), the nearer of equals."""
    if n <= near:
        return n
    return min(range(near - 3, near + 3), key=lambda c: (-n % c, abs(c - near)))


def labelled_rows(
    groups: list[tuple[str, np.ndarray]],
    path: str | Path,
    image_shape: tuple[int, ...] | None,
    title: str = "",
    features: list[str] | None = None,
    scale: str = DATA_SCALE,
) -> None:
    """One row of images per (label, images) group, the label at the row's left (a table's rows: a
    block of them per group, ``features`` naming its columns, ``scale`` saying what its colours mean)."""
    if table_rows(groups[0][1], image_shape):
        _table_blocks(groups, path, title, scale, features)
        return
    sheet = _mosaic([list(images) for _, images in groups], image_shape)
    cols = max(len(images) for _, images in groups)
    lines = max(label.count("\n") + 1 for label, _ in groups)
    fig, ax = _show_mosaic(sheet, len(groups), cols, image_shape, title, left=0.9, label_lines=lines)
    step = (sheet.shape[0] + 1) / len(groups)  # a row's height and its gap; pixel i is centred on i
    ax.set_yticks(
        [step * (r + 0.5) - 1 for r in range(len(groups))], [label for label, _ in groups], fontsize=8
    )
    ax.tick_params(left=False)
    canvas.save(fig, path)


def _table_blocks(
    groups: list[tuple[str, np.ndarray]],
    path: str | Path,
    title: str,
    scale: str,
    features: list[str] | None = None,
) -> None:
    """A table's rows as a heatmap, one row per example and one column per feature (named on top by
    ``features``, else numbered): each (label, rows) group a block, labelled at its left, a blank
    row between blocks; the colour scale (``scale`` says what its values are) below."""
    blocks = [np.asarray(rows, np.float32).reshape(len(rows), -1) for _, rows in groups]
    width = blocks[0].shape[1]
    sheet = np.concatenate([part for b in blocks for part in (b, np.full((1, width), np.nan))][:-1])
    starts = np.cumsum([0] + [len(b) + 1 for b in blocks[:-1]])
    size = (min(max(4.5, 0.22 * width + 1.5), 12.0), min(0.13 * len(sheet), 14.0) + 1.4)
    fig, ax = canvas.subplots(figsize=size)
    cmap = canvas.cmap("RdBu_r" if scale == SIGNED else "viridis").with_extremes(bad="white")
    shown = ax.imshow(sheet, cmap=cmap, vmin=0, vmax=1, interpolation="nearest", aspect="auto")
    labelled = [
        (start + (len(b) - 1) / 2, label) for start, b, (label, _) in zip(starts, blocks, groups) if label
    ]
    ax.set_yticks([c for c, _ in labelled], [label for _, label in labelled], fontsize=8)
    ax.tick_params(left=False, top=True, labeltop=True, bottom=False, labelbottom=False)
    every = max(1, math.ceil(width / 30))  # at most 30 names or numbers over the features
    named = features is not None and len(features) == width
    names = [features[j] if named else str(j) for j in range(0, width, every)]
    ax.set_xticks(range(0, width, every), names, fontsize=7, rotation=90 if named else 0)
    ax.set_xlabel("feature" if named else "feature (column of the table)", fontsize=8)
    ax.xaxis.set_label_position("top")
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar = fig.colorbar(shown, ax=ax, location="bottom", fraction=0.05, pad=0.03, aspect=40, shrink=0.6)
    bar.set_label(scale, fontsize=7)
    bar.ax.tick_params(labelsize=7)
    if title:  # the figures' titles speak of images; a table's are rows
        # above the feature numbers; wrapped to the figure, whose width follows the features
        ax.set_title(textwrap.fill(_rows_not_images(title), int(12 * size[0])), fontsize=9)
    canvas.save(fig, path)


# groups named in a scatter's legend; the rest are drawn, and counted below them
LEGEND_GROUPS = 20
GOLDEN = (5**0.5 - 1) / 2  # steps of it around a circle never land near one another


def _scatter_on(
    ax: Axes,
    points: np.ndarray,
    groups: np.ndarray | None,
    legend: str,
    order: list | None,
    axes: tuple[str, str],
    title: str,
    palette: str | None = None,
    names: tuple[str, ...] | None = None,
    matched: dict | None = None,
) -> None:
    """``points`` on ``ax`` under ``axes``' names and ``title``, one colour per group (every group
    drawn, the first ``LEGEND_GROUPS`` in the legend; ``palette`` "clusters": other colours than the
    labels' tab10 or tab20, or a dict of colours by group), the groups in ``order`` (class names in
    the order of their numbers) or sorted; class numbers in the legend followed by their ``names``
    where given; ``matched``: the class each group is matched to, shown beside it."""
    from matplotlib.colors import to_rgba

    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title, fontsize=9)
    if groups is None:
        ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.6)
    else:
        without = ~has_class(groups)  # rows without a class: light grey, beneath the classes
        if without.any():
            ax.scatter(points[without, 0], points[without, 1], s=5, alpha=0.5, color="0.8", label="no class")
            points, groups = points[~without], groups[~without]
            groups = groups.astype(type(groups[0])) if len(groups) else groups  # numbers sort as numbers
        present = np.unique(groups)
        classes = present if order is None else [c for c in order if c in set(present.tolist())]
        colours = palette if isinstance(palette, dict) else _colours(list(classes), palette)
        # every point in one seeded random order: drawn group after group, the last groups would
        # hide the first wherever they overlap, and a group could vanish under the others
        shuffled = np.random.default_rng(0).permutation(len(points))
        drawn = shuffled[np.isin(groups[shuffled], classes)]
        rgba = {c: to_rgba(colours[c]) for c in classes}
        # more clusters than classes leave some matched to none: crosses, as no colour is far from
        # all of ten classes' (on top: they are the few)
        unmatched = [] if matched is None else [c for c in classes if c not in matched]
        crossed = np.isin(groups[drawn], unmatched)
        for part, marker, size in ((drawn[~crossed], "o", 6), (drawn[crossed], "x", 14)):
            if len(part):
                ax.scatter(points[part, 0], points[part, 1], s=size, alpha=0.7, marker=marker,
                           linewidths=0.8, c=[rgba[g] for g in groups[part]])  # fmt: skip
        for c in classes[:LEGEND_GROUPS]:
            label = class_label(c, names)
            if matched is not None:
                label += f" → {matched[c]}" if c in matched else " → no class"
            marker, size = ("x", 14) if c in unmatched else ("o", 6)  # the legend's entry
            ax.scatter([], [], s=size, alpha=0.7, marker=marker, color=colours[c], label=label)
        if len(classes) > LEGEND_GROUPS:
            ax.scatter([], [], s=0, label=f"and {len(classes) - LEGEND_GROUPS} more")
        ax.legend(  # beside the points, never over them
            title=legend,
            fontsize=7,
            markerscale=2,
            loc="center left",
            bbox_to_anchor=(1.01, 0.5),
            ncol=2 if len(classes) > 10 else 1,
        )
    ax.grid(alpha=0.3)


def _lab(colours: list) -> np.ndarray:
    """``colours`` (any matplotlib colour) in CIELAB, where distance follows how different they look."""
    from matplotlib.colors import to_rgb

    rgb = np.array([to_rgb(c) for c in colours])
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    to_xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = linear @ to_xyz.T / np.array([0.9505, 1.0, 1.089])  # relative to D65 white
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def _farthest(n: int, used: list) -> list[str]:
    """``n`` of Kelly's colours, each in turn the one that looks most unlike the ``used`` colours
    and those picked before it: an orange beside tab10's orange would read as the same group."""
    taken, left, picked = list(_lab(used)) if used else [], list(canvas.KELLY), []
    for _ in range(n):
        lab = _lab(left)
        gap = [min((float(np.sum((c - t) ** 2)) for t in taken), default=0.0) for c in lab]
        best = int(np.argmax(gap))
        picked.append(left.pop(best))
        taken.append(lab[best])
    return picked


def _colours(groups: list, palette: str | None = None) -> dict:
    """A colour for each of ``groups``, in their order: tab10 or tab20, or with ``palette``
    "clusters" others (Set1's clearly distinct hues, its yellow left out; beyond 8, Kelly's colours
    of maximum contrast, the most distinct first); more groups than those hold take colours spread
    along a rainbow, groups next in order far apart on it (distinct up to about 150 groups)."""
    if palette == "clusters" and len(groups) <= 8:
        cmap = canvas.cmap("Set1")
        colours = [cmap(j) for j in (0, 1, 2, 3, 4, 6, 7, 8)]
    elif palette == "clusters" and len(groups) <= len(canvas.KELLY):
        colours = list(canvas.KELLY)
    elif len(groups) <= 20:
        cmap = canvas.cmap("tab10" if len(groups) <= 10 else "tab20")
        colours = [cmap(j) for j in range(cmap.N)]
    else:  # golden-ratio steps along the rainbow: groups next in order get far-apart hues
        colours = list(canvas.cmap("turbo")(np.arange(len(groups)) * GOLDEN % 1))
    return {g: colours[i % len(colours)] for i, g in enumerate(groups)}


def matched_classes(clusters: np.ndarray, labels: np.ndarray) -> dict:
    """The class each cluster is matched to by the best one-to-one matching (the one clustering
    accuracy counts), for the clusters that have one."""
    found, classes = np.unique(clusters), np.unique(labels)
    pairs = zip(*best_matching(contingency(labels, clusters)))
    return {found[r].item(): classes[c].item() for r, c in pairs}


def scatter(
    points: np.ndarray,
    labels: np.ndarray | None,
    path: str | Path,
    axes: tuple[str, str],
    title: str,
    order: list | None = None,
    names: tuple[str, ...] | None = None,
    legend: str = "label",
) -> None:
    """A 2-D scatter of ``points``, coloured by class when ``labels`` are given (in ``order``; class
    numbers named by ``names``; ``legend``: what the labels are, e.g. a label column's name)."""
    fig, ax = canvas.subplots(figsize=(6.2, 5.2))
    _scatter_on(ax, points, labels, legend, order, axes, title, names=names)
    canvas.save(fig, path)


def cluster_map(
    points: np.ndarray,
    clusters: np.ndarray,
    labels: np.ndarray | None,
    path: str | Path,
    axes: tuple[str, str],
    title: str,
    order: list | None = None,
    names: tuple[str, ...] | None = None,
    legend: str = "label",
    matched: dict | None = None,
) -> None:
    """The same 2-D ``points`` coloured by cluster and, beside, by label (when known; in ``order``;
    class numbers named by ``names``; ``legend``: what the labels are, e.g. a label column's name).
    A cluster takes the colour of the class it is ``matched`` to (default: as these points match
    them; give the matching of every row the points are a sample of)."""
    fig, grid = canvas.subplots(1, 1 + (labels is not None), figsize=(6.0 * (1 + (labels is not None)), 5.2))
    grid = np.atleast_1d(grid)
    found = np.unique(clusters).tolist()
    if labels is None:  # clusters in other colours than labels would have: cluster 0 is not label 0
        _scatter_on(grid[0], points, clusters, "cluster", None, axes, "coloured by cluster", "clusters")
    else:  # a cluster in the colour of the class it is matched to, as accuracy matches them
        present = np.unique(labels[has_class(labels)].tolist())
        classes = present.tolist() if order is None else [c for c in order if c in set(present.tolist())]
        by_class = _colours(classes)
        if matched is None:
            has = has_class(labels)
            matched = matched_classes(clusters[has], np.asarray(labels[has].tolist()))
        # the clusters no class is matched to (k > classes): Kelly's colours farthest from the classes'
        leftover = [j for j in found if j not in matched]
        spare = (
            dict(zip(leftover, _farthest(len(leftover), list(by_class.values())), strict=True))
            if len(leftover) <= len(canvas.KELLY)
            else _colours(leftover)
        )
        colours = {j: by_class[matched[j]] if j in matched else spare[j] for j in found}
        _scatter_on(grid[0], points, clusters, "cluster → matched class", None, axes,
                    "coloured by cluster, as its matched class", colours, matched=matched)  # fmt: skip
        _scatter_on(grid[1], points, labels, legend, order, axes, f"coloured by {legend}", by_class, names)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()  # each panel's legend, beside it, clear of the next panel
    canvas.save(fig, path)

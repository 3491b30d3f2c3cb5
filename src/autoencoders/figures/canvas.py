"""The canvas every figure is drawn on: a figure pyplot never sees, colour maps and a palette, and
saving as a cropped PNG."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..io.checkpoint import atomic_write

if TYPE_CHECKING:
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure


def subplots(
    *grid: int, figsize: tuple[float, float], layout: str | None = None, **kw: Any
) -> tuple[Figure, Any]:
    """(figure, axes) as ``pyplot.subplots`` gives them, on a figure pyplot never sees: drawing to
    files leaves the caller's backend (a notebook's inline one) and open figures as they were.
    matplotlib is imported when a figure is first drawn: it costs 0.3 s, and most commands draw nothing."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(*grid, **kw)


def cmap(name: str) -> Colormap:
    """matplotlib's colour map called ``name``."""
    import matplotlib

    return matplotlib.colormaps[name]


# K. L. Kelly (1965), "Twenty-two colors for maximum contrast", less white and black, in his order:
# hues spread over a scale (turbo's) left several clusters of ten in one green
KELLY = (
    "#FFB300", "#803E75", "#FF6800", "#A6BDD7", "#C10020", "#CEA262", "#817066", "#007D34", "#F6768E",
    "#00538A", "#FF7A5C", "#53377A", "#FF8E00", "#B32851", "#F4C800", "#7F180D", "#93AA00", "#593315",
    "#F13A13", "#232C16",
)  # fmt: skip


DPI = 120


def save(fig: Figure, path: str | Path) -> None:
    """``fig`` as a PNG cropped to what it draws, as ``bbox_inches="tight"`` crops it.

    matplotlib's "tight" draws the whole figure once to find the crop, then again to save it,
    resampling every image twice; where there are images, each clipped to its axes (whose frame is
    in the crop anyway), the crop is found here with them hidden. A layout engine lays the figure
    out in every draw: there matplotlib's way is kept."""
    import matplotlib

    images = [image for ax in fig.axes for image in ax.images if image.get_visible()]
    crop = "tight"
    if images and all(image.get_clip_on() for image in images) and fig.get_layout_engine() is None:
        fig.set_dpi(DPI)  # text is measured at the resolution it is drawn at
        for image in images:
            image.set_visible(False)
        try:
            fig.draw_without_rendering()
            crop = fig.get_tightbbox().padded(matplotlib.rcParams["savefig.pad_inches"])
        finally:
            for image in images:
                image.set_visible(True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, bbox_inches=crop))

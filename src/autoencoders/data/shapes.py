"""The shape of one sample: an image's (C, H, W) or a table row's (D,), and how messages and
figures show it."""

from __future__ import annotations

import math
import warnings

from ..errors import DataWarning, UserError, user_stacklevel


def sample_shape(shape: tuple[int, ...], override: list[int] | None = None) -> tuple[int, ...]:
    """Shape of one sample of an array of ``shape``: (1, H, W) for N×H×W, (C, H, W) for N×C×H×W, else (D,);
    a warning where C is most likely the images' width, their colour last.

    ``override`` (``--image-shape``, H,W or C,H,W) views flat rows as images; data of an image shape
    of its own must agree with it, except that N×H×W×1 (channels last, one channel) may be read as
    the 1,H,W it holds.
    """
    width = math.prod(shape[1:])
    if override:
        image = tuple(override) if len(override) == 3 else (1, *override)
        own = _own_shape(shape)
        gray_last = len(shape) == 4 and shape[-1] == 1 and image == (1, *shape[1:3])
        if len(shape) in (3, 4) and image != own and not gray_last:
            hint = ""
            if len(shape) == 4 and shape[-1] == 3:  # channels last: not a view, a transpose
                hint = " (for N×H×W×3 colour images save np.moveaxis(x, -1, 1): N×3×H×W)"
            raise UserError(
                f"--image-shape {','.join(map(str, override))} differs from the shape the data's images "
                f"have ({','.join(map(str, own))}, as C,H,W); leave --image-shape out (also from the "
                f"run's config.json): it shapes flat rows (.npy N×D, CSV){hint}"
            )
        if math.prod(image) != width:
            raise UserError(
                f"--image-shape {','.join(map(str, override))} holds {math.prod(image)} values "
                f"but each row has {width}; pick sizes whose product is {width}"
            )
        return image
    if len(shape) == 4 and shape[-1] in (3, 4) and shape[1] not in (1, 3, 4):  # as images load: N×H×W×C
        warnings.warn(
            f"the images of shape {'×'.join(map(str, shape[1:]))} are read as {shape[1]} channels of "
            f"{shape[2]}×{shape[3]} pixels (N×C×H×W); if the colour comes last (N×H×W×C, as images "
            "load), give np.moveaxis(x, -1, 1) instead",
            DataWarning,
            stacklevel=user_stacklevel(),
        )
    return _own_shape(shape)


def _own_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """One sample's shape as an array of ``shape`` stores it: (1, H, W), (C, H, W) or (D,)."""
    if len(shape) == 3:
        return (1, *shape[1:])
    if len(shape) == 4:
        return tuple(shape[1:])
    return (math.prod(shape[1:]),)


def holds_images(sample: tuple[int, ...]) -> bool:
    """Whether samples of shape ``sample`` are images (C, H, W), as messages name them, rather than
    a table's rows (D,), which ``display_shape`` may still draw as squares."""
    return len(sample) == 3


def sample_noun(sample: tuple[int, ...]) -> str:
    """What one sample of shape ``sample`` is called in messages, titles and captions."""
    return "image" if holds_images(sample) else "row"


# flat rows narrower than this side's square are a table's few features (4 sensors), which a
# heatmap shows by name, not pictures of 2×2 pixels; digits' 8×8 are the smallest images drawn
MIN_IMAGE_SIDE = 8


def display_shape(sample: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape of one sample as an image, in the order its row stores it: (H, W) for
    single-channel images and flat rows whose D is a square of a side of ``MIN_IMAGE_SIDE`` or more,
    (3, H, W) for colour images; None for other rows."""
    if len(sample) == 3:
        return {1: tuple(sample[1:]), 3: tuple(sample)}.get(sample[0])
    side = math.isqrt(sample[0])
    return (side, side) if side * side == sample[0] and side >= MIN_IMAGE_SIDE else None

"""Folders of image files as data: ``images:DIR``, one subfolder per class (their names give the
labels) or a flat folder (no labels). Decoded once with Pillow into the cache as an ``.npy`` of
uint8 N×C×H×W images and its labels, then read like any ``.npy``: streamed from disk when larger
than the memory budget."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DataWarning, UserError
from ..io.checkpoint import atomic_write, write_json, write_npy
from .sources import cache_dir

if TYPE_CHECKING:  # Pillow is imported where images are read: only image folders need it
    from PIL import Image

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
GRAY = ("1", "L", "LA", "I;16", "I;16B", "I;16L")  # Pillow's single-channel modes (alpha dropped)
ORIENTATION, TURNED = 0x0112, (5, 6, 7, 8)  # the EXIF tag, and its values that swap width and height


def _mode(image: Image.Image) -> str:
    """``image``'s mode, a palette of grays ("P", "PA") read as "L": its colours are all gray."""
    if image.mode in ("P", "PA"):
        palette = np.asarray(image.getpalette() or [0, 0, 0]).reshape(-1, 3)
        if (palette == palette[:, :1]).all():
            return "L"
    return image.mode


def _upright_size(image: Image.Image) -> tuple[int, int]:
    """(W, H) of ``image`` as viewers show it: a camera's portrait photo is stored turned, with an
    EXIF orientation that every viewer applies."""
    w, h = image.size
    return (h, w) if image.getexif().get(ORIENTATION, 1) in TURNED else (w, h)


def _pixels(image: Image.Image, colour: bool) -> np.ndarray:
    """An opened image as uint8 H×W×3 (``colour``) or H×W; 16-bit gray keeps its top 8 bits (Pillow
    would clip it to 255 on its way to RGB)."""
    if image.mode.startswith("I;16"):
        gray = (np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2) if colour else gray
    return np.asarray(image.convert("RGB" if colour else "L"), dtype=np.uint8)


def image_folder(
    directory: str | Path,
    size: list[int] | None = None,
    grayscale: bool = False,
    skip_bad: bool = False,
    rgb: bool = False,
) -> tuple[Path, Path | None]:
    """The cached ``.npy`` of the images under ``directory`` and of their labels (None for a flat
    folder), decoded now unless the same files were decoded with the same settings before.

    ``size`` (H, W) resizes every image; without it all must share one size. Colour images keep
    3 channels (grayscale ones among them are converted) unless ``grayscale``; a folder of
    grayscale images has 1 unless ``rgb``. ``skip_bad`` leaves out files that are not readable
    images (and says how many) instead of refusing them.
    """
    directory = Path(directory)
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise UserError(f"--image-size takes two sizes of at least 1, H,W (e.g. 28,28); got {size}")
    files, labels, classes = _listing(directory)
    stamp = [(str(p.relative_to(directory)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    # the folder's own path too: two unpacked copies of an archive share names, sizes and times
    where = str(directory.resolve())

    def cached(at: list[int] | None) -> Path:
        key = json.dumps([where, stamp, at, grayscale, skip_bad, rgb, "labels: names", "upright"]).encode()
        return cache_dir() / "images" / hashlib.sha256(key).hexdigest()

    target, native = cached(size), cached(None)
    # decoded before at its own size (a run's training, before the run recorded that size): the same
    # pixels as resizing every image to that size, which leaves each as it is
    if size is not None and (native / "folder.json").is_file():
        if np.load(native / "images.npy", mmap_mode="r").shape[-2:] == tuple(size):
            target = native
    rows, label_file, info = target / "images.npy", target / "labels.npy", target / "folder.json"
    said = _decoded(info, rows)
    if said is not None:
        _say_skipped(said["skipped"])
        _say_shallow(directory, said.get("largest_16_bit"))
        return rows, label_file if classes else None
    kept, skipped, largest = _decode(files, size, grayscale, rgb, skip_bad, rows)
    _say_skipped(skipped)
    _say_shallow(directory, largest)
    if classes:
        write_npy(label_file, np.asarray(classes)[labels][kept])  # names, numbered as they are read
    write_json(
        info,
        {
            "directory": str(directory),
            "classes": classes,
            "images": len(kept),
            "skipped": skipped,
            "largest_16_bit": largest,
        },
    )
    return rows, label_file if classes else None


def _decoded(info: Path, rows: Path) -> dict | None:
    """What a finished decoding of a folder recorded in ``info`` (written last), or None where there
    is none, or the cache entry is damaged (its record or its ``rows`` unreadable): decoded again."""
    try:
        said = json.loads(info.read_text())
        np.load(rows, mmap_mode="r")  # a file cut short cannot be mapped
    except (OSError, ValueError):
        return None
    if not isinstance(said, dict) or not isinstance(said.get("skipped"), list):
        return None
    return said if type(said.get("largest_16_bit")) in (int, type(None)) else None  # earlier ones: none


def _say_skipped(skipped: list[str]) -> None:
    """Tell how many files ``--skip-bad-images`` left out: a warning, so a command that reads the
    folder again says it once."""
    if skipped:
        if len(skipped) == 1:
            message = f"skipped a file that is not a readable image: {skipped[0]}"
        else:
            message = f"skipped {len(skipped)} files that are not readable images, e.g. {skipped[0]}"
        # stacklevel 1: one place, which Python's default filter shows once per process
        warnings.warn(message, DataWarning, stacklevel=1)


def _say_shallow(directory: Path, largest: int | None) -> None:
    """Warn when the 16-bit images of ``directory``, whose ``largest`` value is that (None: it has
    none), use so few of their bits that their top 8, which are read, keep few levels."""
    if largest is not None and largest < 2**12:
        warnings.warn(
            f"the 16-bit images of {directory} hold values up to {largest} (data of 12 bits or fewer), and "
            f"read as 8 bits (their top 8) they keep {(largest >> 8) + 1} levels; convert them to 8 bits "
            "first, scaled by their largest value",
            DataWarning,
            stacklevel=1,
        )


def _listing(directory: Path) -> tuple[list[Path], list[int], list[str]]:
    """The image files under ``directory`` in a fixed order, their class indices and the class
    names (sorted subfolder names; none for a flat folder)."""
    if not directory.is_dir():
        raise UserError(
            f"images:{directory} is not a folder; give a folder of images (or one subfolder per class)"
        )
    entries = sorted(p for p in directory.iterdir() if not p.name.startswith("."))
    folders = [p for p in entries if p.is_dir()]
    loose = [p for p in entries if p.is_file()]
    if folders and loose:
        raise UserError(
            f"{directory} holds both files ({loose[0].name}) and class folders ({folders[0].name}); "
            "put every image in a class folder, or use a flat folder of images"
        )
    if not folders:
        if not loose:
            raise UserError(f"{directory} holds no images; add {', '.join(EXTENSIONS)} files")
        return loose, [], []
    files, labels = [], []
    for index, folder in enumerate(folders):
        inside = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not inside:
            raise UserError(f"class folder {folder} holds no images; add some or remove the folder")
        files += inside
        labels += [index] * len(inside)
    return files, labels, [f.name for f in folders]


def first_image_size(directory: str | Path) -> tuple[int, int] | None:
    """(H, W) of the first image Pillow can read in ``directory`` (in the order it is read), or
    None; reads headers, not pixels."""
    from PIL import Image, UnidentifiedImageError

    for path in _listing(Path(directory))[0]:
        if path.suffix.lower() in EXTENSIONS:
            try:
                with Image.open(path) as image:
                    width, height = _upright_size(image)
                    return height, width
            except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
                continue
    return None


def _decode(
    files: list[Path], size: list[int] | None, grayscale: bool, rgb: bool, skip_bad: bool, out: Path
) -> tuple[np.ndarray, list[str]]:
    """Decode ``files`` into the uint8 N×C×H×W array ``out`` (written as it goes, never all in
    memory); return the indices of the files kept, the names of those skipped and the largest value
    of the 16-bit images (None without any)."""
    from PIL import Image, ImageOps, UnidentifiedImageError  # imported when used: only image folders need it

    opened: list[tuple[int, tuple[int, int], str]] = []  # (file index, (W, H), mode) of readable images
    skipped: list[str] = []
    largest = None  # of the 16-bit images' values
    for i, path in enumerate(files):
        try:
            if path.suffix.lower() not in EXTENSIONS:
                raise UnidentifiedImageError(f"{path.suffix or 'no extension'} is not an image type")
            with Image.open(path) as image:
                image.load()  # decodes it all: a cut-off file fails here, not halfway through writing
                if image.mode in ("I", "F"):
                    raise UnidentifiedImageError(
                        f"32-bit {image.mode} images are not read; save them as 8 or 16 bit"
                    )
                opened.append((i, _upright_size(image), _mode(image)))
                if image.mode.startswith("I;16"):  # how many of its bits it uses: see _say_shallow
                    largest = max(largest or 0, int(np.asarray(image).max()))
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as e:
            if not skip_bad:
                raise UserError(
                    f"{path} is not an image Pillow can read ({e}); remove it from the folder (a run "
                    "trained with --skip-bad-images leaves such files out of every folder it reads)"
                ) from None
            skipped.append(str(path))
    if not opened:
        raise UserError(f"none of the {len(files)} files is a readable image")
    if size is None:
        first = opened[0]
        for i, (w, h), _ in opened:
            if (w, h) != first[1]:
                raise UserError(
                    f"{files[i]} is {h}×{w} but {files[first[0]]} is {first[1][1]}×{first[1][0]}; "
                    "give --image-size H,W to resize them all"
                )
        height, width = first[1][1], first[1][0]
    else:
        height, width = size
    colour = rgb or not grayscale and any(mode not in GRAY for _, _, mode in opened)
    channels = 3 if colour else 1
    shape = (len(opened), channels, height, width)
    room = out.parent
    while not room.exists():  # the cache's first use
        room = room.parent
    size_bytes, free = math.prod(shape), shutil.disk_usage(room).free
    if size_bytes > free:  # before writing any of them: a full disk fails everything else too
        raise UserError(
            f"the {len(opened)} images decoded at {height}×{width} take {size_bytes / 2**30:.1f} GiB, and "
            f"the disk of {out.parent.parent} has {free / 2**30:.1f} GiB free; give a smaller --image-size, "
            "or set $AUTOENCODERS_CACHE to a folder on a disk with room"
        )

    def write(tmp: str) -> None:  # only now: every file has been checked
        array = np.lib.format.open_memmap(tmp, "w+", np.uint8, shape)
        for row, (i, _, _) in enumerate(opened):
            with Image.open(files[i]) as image:
                pixels = _pixels(ImageOps.exif_transpose(image), colour)  # upright, as shown
            if pixels.shape[:2] != (height, width):
                pixels = np.asarray(
                    Image.fromarray(pixels).resize((width, height), Image.Resampling.BILINEAR)
                )
            array[row] = pixels.transpose(2, 0, 1) if colour else pixels[None]
        array.flush()

    atomic_write(out, write)  # whole, or not there; a file of its own for each process decoding
    return np.asarray([i for i, _, _ in opened]), skipped, largest

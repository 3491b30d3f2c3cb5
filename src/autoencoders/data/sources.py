"""Readers: IDX directories (MNIST, Fashion-MNIST), verified downloads, .npy files and labels files,
and the checks every reader makes of the numbers it read (CSV files: ``tables``)."""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
import re
import tempfile
import urllib.request
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataWarning, UserError, user_stacklevel
from ..io.checkpoint import file_sha256
from .classes import classes_of

MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
FASHION_FILES = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
MIRRORS = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion-mnist": [
        "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
}
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


GZIP_MOST = 1032  # bytes deflate can pack into one


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzipped or not) into a numpy array."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            dtype, shape = _idx_header(f, path)
            expected = math.prod(shape) * dtype.itemsize  # Python's integers: no wrap at 2**63
            # no more than the header says, and a byte to tell padding: a gzip file's body is
            # decompressed only as far as that, whatever it would grow to; deflate packs at most
            # 1,032 bytes in one, so a header beyond that says more than the file can hold
            if expected > path.stat().st_size * (GZIP_MOST if opener is gzip.open else 1):
                raise UserError(
                    f"{path} is damaged: its header says {expected} data bytes, more than the file can "
                    "hold; re-download it"
                )
            raw = f.read(expected + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise UserError(f"{path} is not a readable IDX file ({e}); re-download or re-extract it") from None
    if len(raw) != expected:
        got = f"{len(raw)}" if len(raw) <= expected else "more"
        raise UserError(
            f"{path} is truncated or padded: header says {expected} data bytes, file has {got}; "
            "re-download it"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _idx_header(f: Any, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    """The element type and shape an open IDX file's header gives (the file read past it)."""
    magic = f.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_DTYPES:
        raise UserError(f"{path} is not an IDX file (wrong magic number {magic.hex()!r})")
    dtype, ndim = np.dtype(IDX_DTYPES[magic[2]]), magic[3]
    sizes = f.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise UserError(f"{path} is truncated: its IDX header is incomplete")
    return dtype, tuple(int.from_bytes(sizes[4 * i : 4 + 4 * i], "big") for i in range(ndim))


def idx_length(directory: str | Path, split: str) -> int:
    """How many images the IDX split ``train`` or ``t10k`` holds, by its images file's header alone."""
    path = _find_idx(Path(directory), f"{split}-images-idx3-ubyte")
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            return _idx_header(f, path)[1][0]
    except (OSError, EOFError, zlib.error, IndexError) as e:
        raise UserError(f"{path} is not a readable IDX file ({e}); re-download or re-extract it") from None


def _find_idx(directory: Path, stem: str) -> Path:
    # Both spellings exist in the wild: train-images-idx3-ubyte and train-images.idx3-ubyte.
    for name in (stem, stem.replace("-idx", ".idx")):
        for suffix in ("", ".gz"):
            p = directory / (name + suffix)
            if p.is_file():
                return p
    raise UserError(f"{directory} has no {stem} or {stem}.gz; it needs the four standard IDX files")


def load_idx_dir(directory: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read train/test images and labels from a directory of the four standard IDX files."""
    return (*load_idx_pair(directory, "train"), *load_idx_pair(directory, "t10k"))


def load_idx_pair(directory: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one of the standard IDX files' splits, ``train`` or ``t10k`` (test)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(
            f"data directory {directory} does not exist; "
            "idx:DIR needs the directory holding the four IDX files"
        )
    x, y = (
        read_idx(_find_idx(directory, f"{split}-{what}"))
        for what in ("images-idx3-ubyte", "labels-idx1-ubyte")
    )
    if len(x) != len(y):
        raise UserError(f"{directory}: image and label counts differ; the files do not belong together")
    return x, y


def cache_dir() -> Path:
    """Where downloads go: $AUTOENCODERS_CACHE or ~/.cache/autoencoders."""
    return Path(os.environ.get("AUTOENCODERS_CACHE", Path.home() / ".cache" / "autoencoders"))


def cache_folder(name: str, what: str) -> Path:
    """The cache's folder ``name``, made where missing; a UserError naming ``what`` was to be kept
    there when it cannot be made."""
    folder = cache_dir() / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(
            f"cannot keep {what} under {folder} ({e.strerror or e}); set $AUTOENCODERS_CACHE to a folder "
            "that can be written"
        ) from None
    return folder


def label_per_row(labels: Any, n_rows: int) -> np.ndarray:
    """``labels`` (an array, list, Series or tensor) as one label per row; a UserError otherwise."""
    if isinstance(labels, str | Path):  # numpy would read a file's name as one label
        raise UserError(
            f"labels={str(labels)!r} is a file name, and the labels of rows given in memory are an array, "
            "one label per row: give numpy.load of that file"
        )
    y = np.asarray(labels.detach().cpu().numpy() if hasattr(labels, "detach") else labels)
    if y.ndim > 1 and y.size != len(y):  # a column of labels (N×1) is one label per row too
        raise UserError(f"labels must hold one label per row (a 1-D array), got shape {y.shape}")
    y = y.reshape(-1)
    if len(y) != n_rows:
        raise UserError(f"labels has {len(y)} entries but there are {n_rows} rows; give one label per row")
    return y


def download_verified(name: str, files: dict[str, str]) -> Path:
    """Download ``files`` of dataset ``name`` into the cache, checking SHA-256; return the dir."""
    target = cache_folder(name, f"the download of {name}")
    for filename, sha in files.items():
        dest = target / filename
        if dest.is_file() and file_sha256(dest) == sha:
            continue
        errors = []
        for mirror in MIRRORS[name]:
            fd, tmp = tempfile.mkstemp(dir=target, suffix=".part")
            os.close(fd)
            try:
                urllib.request.urlretrieve(mirror + filename, tmp)  # noqa: S310 (fixed https URLs)
                if file_sha256(Path(tmp)) != sha:
                    raise OSError("SHA-256 mismatch")
                os.replace(tmp, dest)
                break
            except OSError as e:
                errors.append(f"{mirror}: {e}")
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            where = "install the Debian package dataset-fashion-mnist, or " if name == "fashion-mnist" else ""
            raise UserError(
                f"{name} is not on this machine and could not be downloaded ({'; '.join(errors)}); "
                f"{where}put its four IDX files in $AUTOENCODERS_DATA/{name}, or use --data idx:DIR"
            )
    return target


def locate(name: str) -> Path:
    env = os.environ.get("AUTOENCODERS_DATA")
    candidates = []
    if env:
        candidates += [Path(env) / name, Path(env)]
    if name == "fashion-mnist":
        candidates.append(DEBIAN_FASHION)
    candidates.append(cache_dir() / name)
    for c in candidates:
        if c.is_dir() and any(c.glob("train-images*")):
            return c
    return download_verified(name, MNIST_FILES if name == "mnist" else FASHION_FILES)


def digits_file() -> Path:
    """Where scikit-learn keeps its 8×8 digits (found without importing it)."""
    package = importlib.util.find_spec("sklearn")
    return Path(package.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 8×8 digits (pixels 0–16) and their classes, read from the file it ships:
    importing scikit-learn to load them would cost every run on them about a second."""
    path = digits_file()
    if not path.is_file():  # moved in another version of scikit-learn: its loader knows where
        from sklearn.datasets import load_digits as load

        d = load()
        return d.images, d.target.astype(np.int64)
    table = np.loadtxt(path, delimiter=",")
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)


FLOAT32_MOST = float(np.finfo(np.float32).max)  # a larger number becomes infinite in float32
FLOAT32_EXACT = 2**24  # every whole number up to it is a float32; beyond it, only some are


def check_finite(
    x: np.ndarray, source: str, columns: list[str] | None = None, row: Callable[[int], str] = "row {}".format
) -> None:
    """A UserError naming the missing (NaN) or infinite values of rows ``x``, or the values too
    large for float32, the precision rows are computed in, which would become infinite there: how
    many, in which columns (by ``columns``' names, for a table) and the first ``row`` (its words)
    that holds one. Whole numbers beyond float32's exact ones are warned of, and so are float64
    columns that float32 keeps few distinct values of (see ``_warn_if_fine``)."""
    if x.dtype.kind in "iu" and x.size:
        most = max(abs(int(x.min())), abs(int(x.max())))
        if most > FLOAT32_EXACT:
            warnings.warn(
                f"{source} holds whole numbers up to {most:,}, and float32, the precision rows are computed "
                f"in, holds them exactly only up to {FLOAT32_EXACT:,}: larger ones lose their last digits "
                "(values that differ only there become equal); subtract each column's least value, or "
                "divide by a power of ten, first",
                DataWarning,
                stacklevel=user_stacklevel(),
            )
    if not np.issubdtype(x.dtype, np.floating):
        return
    if not np.isfinite(x).all():
        bad = ~np.isfinite(x)
        n = int(bad.sum())
        what, fix = f"missing (NaN) or infinite value{'s' * (n > 1)}", fill_or_drop(n)
    elif x.dtype.itemsize > 4 and x.size and np.abs(x).max() > FLOAT32_MOST:
        bad = np.abs(x) > FLOAT32_MOST
        n = int(bad.sum())
        what = f"value{'s' * (n > 1)} larger than float32 holds (±{FLOAT32_MOST:.2e})"
        fix = "rows are computed in float32: rescale those columns (divide by a power of ten) "
        fix += "or drop those rows"
    else:
        if x.dtype.itemsize > 4 and len(x) > 1:
            _warn_if_fine(x.reshape(len(x), -1), source, columns if x.ndim == 2 else None)
        return
    bad = bad.reshape(len(x), -1)
    first = row(int(np.flatnonzero(bad.any(1))[0]))
    where = ""
    if x.ndim == 2:  # a table's columns; an image's pixels would name nothing useful
        at = np.flatnonzero(bad.any(0))
        named = [repr(columns[j]) if columns else str(j) for j in at[:3]]
        where = f" in column{'s' * (len(at) > 1)} {', '.join(named)}{', …' * (len(at) > 3)}"
    raise UserError(f"{source} holds {n} {what}{where}, the first in {first}; {fix}")


def _warn_if_fine(x: np.ndarray, source: str, columns: list[str] | None) -> None:
    """Warn of float64 columns of ``x`` whose values differ by less than a 16,384th of their size:
    float32 keeps at most 1,000–2,000 levels between their least and largest (2e8 + 5 × [0, 1]:
    one; a day of Unix times in seconds: 675), and scaling them to [0, 1] after the cast cannot
    bring the others back."""
    lo, hi = x.min(0), x.max(0)
    fine = np.flatnonzero((hi > lo) & (hi - lo < np.maximum(np.abs(lo), np.abs(hi)) * 2.0**-14))
    if len(fine):
        j = fine[0]
        named = [repr(columns[i]) if columns else str(i) for i in fine[:3]]
        warnings.warn(
            f"{source} holds {len(fine)} column{'s' * (len(fine) > 1)} ({', '.join(named)}"
            f"{', …' * (len(fine) > 3)}) whose values differ by little beside their size ({lo[j]:.10g} "
            f"to {hi[j]:.10g}): float32, the precision rows are computed in, keeps few distinct values "
            "of them (values that differ only in their last digits become equal); subtract each "
            "column's least value first",
            DataWarning,
            stacklevel=user_stacklevel(),
        )


def load_npy(
    path: str | Path, labels: str | Path | None = None, classes: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """Read an N×D, N×H×W or N×C×H×W array (and optional labels, numbered as ``load_labels``
    numbers them) from .npy files: (rows, class indices, class names)."""
    x = np.asarray(open_npy(path))
    check_finite(x, str(path))
    return x, *((None, None) if labels is None else load_labels(labels, len(x), classes))


def kept_rows(path: str | Path) -> bool:
    """Whether ``path`` names a file where rows given in memory are kept (see ``save_arrays``)."""
    path = Path(path)
    return path.parent.name == "arrays" and re.fullmatch(r"[0-9a-f]{64}\.npy", path.name) is not None


def open_npy(path: str | Path) -> np.ndarray:
    """Memory-map a numeric N×D, N×H×W or N×C×H×W .npy file (nothing is read yet)."""
    path = Path(path)
    if not path.is_file() and kept_rows(path):
        raise UserError(  # where rows given in memory are kept (see ``save_arrays``)
            f"the rows given in memory were kept in {path}, which is gone (a cache cleared, or "
            "$AUTOENCODERS_CACHE set elsewhere): give the data again where a command takes it (--data, "
            "or data= in Python); training on the same rows again keeps them there again"
        )
    if not path.is_file():
        raise UserError(f"npy file {path} does not exist; check the path after npy:")
    if path.stat().st_size == 0:
        raise UserError(f"npy file {path} is empty (0 bytes); write it with numpy.save")
    _check_npy_header(path, "write it with numpy.save")
    try:
        x = np.load(path, allow_pickle=False, mmap_mode="r")
    except Exception as e:  # numpy's header parser raises many kinds on a damaged file
        raise UserError(
            f"{path} is not a readable numeric .npy array ({e}); write its rows as numbers with "
            "numpy.save(path, x.astype(numpy.float32))"
        ) from None
    if x.ndim not in (2, 3, 4) or not np.issubdtype(x.dtype, np.number):
        raise UserError(
            f"{path} must hold a numeric N×D, N×H×W or N×C×H×W array, got shape {x.shape} {x.dtype}"
        )
    if len(x) == 0 or x[0].size == 0:
        raise UserError(f"{path} holds no data (shape {x.shape}); it needs at least one row and one column")
    if np.iscomplexobj(x):  # float32 would keep the real parts alone, silently
        raise UserError(complex_refused(str(path)))
    return x


def complex_refused(what: str) -> str:
    """Why rows of complex numbers (``what``: where they are) are not read, and what to give."""
    return (
        f"{what} holds complex numbers; give real ones, e.g. the real and imaginary parts as columns "
        "of their own, or the magnitudes"
    )


def _check_npy_header(path: Path, fix: str) -> None:
    """A UserError for a file that is not in NumPy's .npy format at all (a CSV named .npy, say):
    numpy's own message would speak of pickled data and unsafe loading."""
    with open(path, "rb") as f:
        start = f.read(6)
    if start.startswith(b"PK\x03\x04"):  # numpy.savez's zip of named arrays
        raise UserError(
            f"{path} is an .npz archive of several arrays, not a .npy file; save the one to read with "
            f"numpy.save('rows.npy', numpy.load('{path}')['NAME']) and give that file"
        )
    if start != b"\x93NUMPY":
        text = " (it reads as text: for a CSV give csv:FILE)" if _reads_as_text(path) else ""
        raise UserError(f"{path} is not a .npy file{text}; {fix}")


def _reads_as_text(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            return "," in f.read(4096)
    except UnicodeDecodeError:
        return False


def load_labels(
    labels: str | Path, n: int, classes: list[str] | None = None
) -> tuple[np.ndarray, list[str] | None]:
    """A length-``n`` .npy file of class numbers or names (text) as (class indices, class names),
    numbered by ``classes`` as ``data.classes`` says; a missing label (NaN, an empty or blank name)
    marks a row without a class."""
    if not Path(labels).is_file():
        raise UserError(f"labels file {labels} does not exist")
    _check_npy_header(Path(labels), "save labels with numpy.save(path, labels)")
    try:
        y = np.load(labels, allow_pickle=False)
    except Exception as e:  # as for the data file
        raise UserError(
            f"{labels} is not a .npy array of class numbers or names ({e}); save class names as text, "
            "numpy.save(path, labels.astype(str)), or class numbers as numbers, labels.astype(float) with "
            "NaN for rows without a class"
        ) from None
    if y.shape != (n,):
        raise UserError(
            f"labels {labels} have shape {y.shape}; expected ({n},): one class per row of the data, in "
            "its order"
        )
    source = "the labels given in memory" if kept_rows(labels) else f"labels file {labels}"
    if y.dtype.kind in "US":
        try:
            names = y.astype(str) if y.dtype.kind == "U" else np.char.decode(y, "utf-8")
        except UnicodeDecodeError:
            raise UserError(
                f"labels {labels} hold bytes that are not UTF-8 text; save them with "
                "numpy.save(path, labels.astype(str))"
            ) from None
        return classes_of(names, classes, source)
    if y.dtype.kind not in "biuf":
        raise UserError(f"labels {labels} hold {y.dtype} values; give class numbers or names")
    return classes_of(y, None, source)


def fill_or_drop(n: int) -> str:
    """What to do about ``n`` missing values, said of one or of several."""
    them, rows = ("them", "those rows") if n > 1 else ("it", "that row")
    return f"fill {them} in (impute {them}) or drop {rows}"

"""Readers: IDX directories (MNIST, Fashion-MNIST), verified downloads, .npy and .csv files."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import itertools
import math
import os
import re
import shlex
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
from ..options import closest
from .classes import classes_of, name_classes, number_classes, with_unlabelled

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
        what, fix = f"missing (NaN) or infinite value{'s' * (n > 1)}", _fill_or_drop(n)
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


def csv_columns(
    path: str | Path, label_column: str | int | None = None, id_column: str | int | None = None
) -> tuple[list[str] | None, int]:
    """A CSV file's header (None when its first row is numbers, ``label_column`` and ``id_column``
    judged as ``load_csv`` judges them) and its number of columns."""
    cells, second = _first_rows(path)
    return (cells if _is_header(cells, second, label_column, id_column) else None), len(cells)


def _first_rows(path: str | Path) -> tuple[list[str], str | None]:
    """A CSV file's first row, as cells, and its second, as text (None when there is none)."""
    with open(path, encoding="utf-8-sig", errors="replace") as f:  # not the whole file
        lines = list(itertools.islice(((i, line) for i, line in enumerate(f, 1) if line.strip()), 2))
    lines = [_unquoted(line, path, i) for i, line in lines]
    return [_text(c) for c in (lines[0] if lines else "").split(",")], lines[1] if len(lines) > 1 else None


# a comma within a quoted cell (a name, "Smith, John") while the lines are split at commas: put back
# in the text read from a header, a label or an id column (``_text``)
# (a character of Unicode's private use area: no whitespace, which stripping a cell would take off)
COMMA = "\ue000"


def _text(cell: str) -> str:
    """A cell of a line ``_unquoted`` gave, as the file wrote it (less its quotes and spaces)."""
    return cell.replace(COMMA, ",").strip()


def _unquoted(line: str, path: str | Path, number: int) -> str:
    """A CSV ``line`` with its cells' quotes taken off, as spreadsheets, R's ``write.csv`` and
    Python's ``csv.QUOTE_*`` write them (``number``: its line in ``path``, for the message); a
    comma within a quoted cell becomes ``COMMA``."""
    if '"' not in line:
        return line
    try:
        cells = next(csv.reader([line.rstrip("\r\n")], skipinitialspace=True), [])
    except csv.Error as e:  # a cell longer than the csv module reads (131,072 characters)
        raise UserError(
            f"{path} line {number} cannot be read as CSV ({e}); is it a CSV file of numbers?"
        ) from None
    return ",".join(cell.replace(",", COMMA) for cell in cells)


def load_csv(
    path: str | Path,
    label_column: str | int | None = None,
    classes: list[str] | None = None,
    columns: list[str] | None = None,
    run_width: int | None = None,
    id_column: str | int | None = None,
) -> tuple[np.ndarray, np.ndarray | None, list[str] | None, np.ndarray | None]:
    """Read a numeric CSV (header optional) with an optional label column (name or index) of class
    numbers or names and an optional ``id_column`` naming each row: (rows, class indices, class
    names, ids as text), numbered by ``classes`` as ``data.classes`` says. With ``columns`` (a run's
    feature names) and a header, the features are those columns, found by name in any order;
    without a header, every column but the label's and the id's. ``run_width``: the features of the
    trained run the rows are read for (messages say what to change in the file); None for training."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"csv file {path} does not exist; check the path after csv:")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark is no part of a name
        lines = [(i, _unquoted(line, path, i)) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    except UnicodeDecodeError:
        raise UserError(
            f"{path} is not a text CSV file in UTF-8: save a CSV as UTF-8 text; a .npy file is given as "
            "npy:FILE, images as the folder that holds them, images:DIR"
        ) from None
    if not lines:
        raise UserError(
            f"csv file {path} is empty; give a file with one row per line, its values separated by commas"
        )
    first = [_text(c) for c in lines[0][1].split(",")]
    # ";" (with decimal commas: "1,5;2,25"), tabs or "|" in a cell: another program's separator
    other = next((sep for sep in (";", "\t", "|") if any(sep in cell for cell in first)), None)
    if other is not None:
        shown = {"\t": "tabs"}.get(other, repr(other))
        raise UserError(
            f"{path} separates its columns by {shown}; only commas separate columns here: save it with "
            "commas between columns (and points in numbers)"
        )
    second = lines[1][1] if len(lines) > 1 else None
    header = first if _is_header(first, second, label_column, id_column) else None
    body = lines[1:] if header is not None else lines
    if not body:
        raise UserError(
            f"csv file {path} has a header but no data rows; give a file with rows below its header"
        )
    width = len(first)
    col = None if label_column is None else _column_index(path, label_column, header, width)
    named = None if id_column is None else _column_index(path, id_column, header, width, "--id-column")
    if named is not None and named == col:
        raise UserError(
            f"--id-column and --label-column both name column {col} of {path}; the id column names the "
            "rows and the label column their classes: give each its own"
        )
    features = [j for j in range(width) if j not in (col, named)]
    if columns is not None and header is not None:
        missing = [c for c in columns if c not in header]
        if missing:
            text = [j for j, c in enumerate(header) if not _is_number(c) and j != col]
            hint = ""
            if len(text) == 1 and width > 2 and id_column is None:  # a row of data, one cell of it a name
                hint = f"; if its first line is a row of data, column {text[0]} names the rows: "
                hint += f"--id-column {text[0]}"  # a number
            raise UserError(
                f"{path} lacks {len(missing)} of the run's columns ({', '.join(map(repr, missing[:5]))}"
                f"{', ...' * (len(missing) > 5)}), which it reads by name; rename its header, or save it "
                f"without a header to read columns in order{hint}"
            )
        features = [header.index(c) for c in columns]
        if col in features:  # the labels would be a feature: a probe on them would score 1.0
            raise UserError(
                f"the feature columns (--columns, or those a trained run recorded) include the label column "
                f"{header[col]!r} of {path}; give another --label-column, or leave it out of --columns"
            )
        if named in features:
            raise UserError(
                f"the feature columns (--columns, or those a trained run recorded) include the id column "
                f"{header[named]!r} of {path}; give another --id-column, or leave it out of --columns"
            )
    if not features:
        besides = " and ".join(
            what for what, j in (("the label column", col), ("the id column", named)) if j is not None
        )
        raise UserError(f"{path} has no feature columns besides {besides}")
    text = [line for _, line in body]
    if any(line.count(",") != width - 1 for line in text):  # numpy would cut a long row to fit
        _explain_bad_csv(path, body, width, header, col, features, run_width)
    try:
        table = _numbers(text, features)
        labels, ids = (
            None
            if j is None
            else np.loadtxt(text, delimiter=",", dtype=str, ndmin=1, usecols=j, comments=None)
            for j in (col, named)
        )
    except (ValueError, IndexError) as e:
        _explain_bad_csv(path, body, width, header, col, features, run_width)
        raise UserError(f"{path} could not be read as a table of numbers ({e})") from None
    names = None if header is None else [header[j] for j in features]
    check_finite(table, str(path), names, lambda i: f"line {body[i][0]}")
    if header is None and col is None:
        _warn_if_numbered_columns(path, first, table)
        # an id given by index that reads as a name in the first row: the header's name of that column?
        named_id = None if named is None or _is_number(first[named]) else first[named]
        _warn_if_a_header_of_numbers(path, first, table, named_id)
    ids = None if ids is None else np.char.strip(np.char.replace(ids, COMMA, ","))
    if labels is None:
        return table.astype(np.float32, copy=False), None, None, ids
    labels = np.char.strip(np.char.replace(labels, COMMA, ","))
    return table.astype(np.float32, copy=False), *_classes(labels, classes, path), ids


def _numbers(lines: list[str], columns: list[int]) -> np.ndarray:
    """The cells of ``columns`` of CSV ``lines`` as floats: float64, or float32 where that is the
    same number. Whole numbers (pixel values, counts) are read as integers first: numpy reads
    those about 7 times faster than decimals (Fashion-MNIST as 60,000 lines of 785 pixel values:
    0.9 s against 7.0 s), and an integer is the same float either way ("-0" aside: 0, not -0.0).
    A cell that is not a whole number reads all as decimals."""
    try:
        # no comments: a "#" in a cell (an id, a name) is text, not the end of the line
        whole = np.loadtxt(lines, delimiter=",", dtype=np.int64, ndmin=2, usecols=columns, comments=None)
    except (ValueError, OverflowError):
        return np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2, usecols=columns, comments=None)
    # below 2**53 an integer is exact in float64, so float32 rounds it once either way: straight
    # there (0.04 s for those pixels against 0.9 s through float64)
    exact = whole.min() > -(2**53) and whole.max() < 2**53
    return whole.astype(np.float32 if exact else np.float64)


def _warn_if_a_header_of_numbers(
    path: Path, first: list[str], table: np.ndarray, id_name: str | None = None
) -> None:
    """Warn when a CSV's ``first`` row, read as data, lies beyond every column's values below it by
    more than their range, as a header of numbers does (wavelengths, years) above the values it
    names: read as a row, it would squeeze the real rows into a sliver of each column's scale.
    ``id_name``: the text of the first row in an id column given by index, which may be its name."""
    if table.shape[1] < 2 or len(table) < 10 or first == [str(j) for j in range(len(first))]:
        return  # too little to tell, or told by ``_warn_if_numbered_columns``
    row, below = table[0], table[1:]
    lo, hi = below.min(0), below.max(0)
    span = np.maximum(hi - lo, np.finfo(np.float32).tiny)
    if not ((row < lo - span) | (row > hi + span)).all():
        return
    shown = ",".join(first[:4]) + (",..." if len(first) > 4 else "")
    fix = "give at least one column a name that is not a number (or remove the row)"
    if id_name is not None:  # read as an id, "sample" above ids may be the column's name
        fix = f"give the id column by its name, --id-column {shlex.quote(id_name)}"
    warnings.warn(
        f"the first row of {path} ({shown}) lies far outside every column's values below it and is read "
        f"as a row of data; if it is a header of numbers, {fix}",
        DataWarning,
        stacklevel=user_stacklevel(),
    )


def _warn_if_numbered_columns(path: Path, first: list[str], table: np.ndarray) -> None:
    """Warn when a CSV's ``first`` row, read as data, numbers its columns 0, 1, ... as pandas names a
    frame's columns (taken for a header from four columns on) while the rows below hold fractions."""
    if len(first) < 2 or first != [str(j) for j in range(len(first))]:
        return
    if (table[1:] == np.round(table[1:])).all():  # whole numbers below: 0,1,... may well be a row
        return
    warnings.warn(
        f"the first row of {path} reads {','.join(first)}, as pandas names a frame's columns, and is "
        "read as a row of data; if it is a header, give the columns names (or save the frame with "
        "header=False)",
        DataWarning,
        stacklevel=user_stacklevel(),
    )


def csv_column_name(
    path: str | Path,
    column: str | int,
    label_column: str | int | None = None,
    id_column: str | int | None = None,
    option: str = "--label-column",
) -> str | int:
    """The header's name for a CSV's ``column`` (its label or id column, given as ``option``) given by
    index, where it names that column alone (later files are found by name: those columns too);
    else ``column`` as given. A UserError where the file has no such column."""
    header, width = csv_columns(path, label_column, id_column)
    if header is None:
        return column
    name = header[_column_index(Path(path), column, header, width, option)]
    return name if name and header.count(name) == 1 else column


def csv_feature_names(
    path: str | Path, label_column: str | int | None = None, id_column: str | int | None = None
) -> list[str] | None:
    """The names a CSV's header gives its feature columns (every column but the label's and the
    id's), in order; None without a header. A run finds its columns in later files by these names:
    each column needs one, and its own."""
    header, width = csv_columns(path, label_column, id_column)
    if header is None:
        return None
    own = [
        _column_index(Path(path), c, header, width, option)
        for c, option in ((label_column, "--label-column"), (id_column, "--id-column"))
        if c is not None
    ]
    features = [j for j in range(width) if j not in own]
    unnamed = next((j for j in features if not header[j]), None)
    if unnamed is not None:
        second = _first_rows(path)[1] or ""
        if unnamed == 0 and second.split(",")[0].strip() == "0":  # a frame's index: 0, 1, 2, ... unnamed
            why = (
                " and numbers the rows from 0: a data frame's index, which DataFrame.to_csv writes unless "
                "index=False; save the frame with index=False, or name the feature columns with --columns"
            )
        elif unnamed == 0 and second.split(",")[0].strip() == "1":  # R's row names: 1, 2, 3, ... unnamed
            why = (
                " and numbers the rows from 1: R's row names, which write.csv writes unless row.names = "
                "FALSE; save it with row.names = FALSE, or name the feature columns with --columns"
            )
        else:
            why = "; name every column in the header, drop the column, or name the feature columns with "
            why += "--columns"
        raise UserError(f"column {unnamed} of {path} has no name in its header{why}")
    names = [header[j] for j in features]  # found by name later, among every column's
    twice = next((name for name in names if header.count(name) > 1), None)
    if twice is not None:
        at = [j for j in range(width) if header[j] == twice]
        raise UserError(
            f"the header of {path} names columns {at[0]} and {at[1]} both {twice!r}; a run finds its "
            "columns by name: give each column its own"
        )
    return names


def _is_header(
    first: list[str], second: str | None, label_column: str | int | None, id_column: str | int | None = None
) -> bool:
    """Whether a CSV's ``first`` row (cells) names its columns: a cell of it is text, not a number
    (an empty cell is a missing value, of a first row of data, but for a data frame's index), where
    a class name in a label column given by its index counts only if the ``second`` row holds a
    number there (a header then names the class numbers below it), and text in an id column given
    by its index not at all (ids may be names); or it numbers them 0, 1, ..., as pandas writes a
    frame's default column names (from four columns on: a row of data could read 0,1,2)."""
    width, cells = len(first), [c.strip() for c in first]
    if width >= 4 and cells == [str(j) for j in range(width)]:
        return True
    # a data frame saved with its index: an empty first cell above row numbers from 0, the column
    # names after it (numbered 0, 1, ... or not)
    below = [] if second is None else [c.strip() for c in second.split(",")]
    if cells[0] == "" and (cells[1:] == [str(j) for j in range(width - 1)] or below[:1] == ["0"]):
        return True
    at, ids = (
        int(column) % width if _index(column) is not None and -width <= int(column) < width else None
        for column in (label_column, id_column)
    )
    if any(c and not _is_number(c) for j, c in enumerate(cells) if j not in (at, ids)):
        return True
    # numbers beside a label cell that is a number or blank (a row without a class): a row of data
    if at is None or _is_number(first[at]) or cells[at].lower() in MISSING or second is None:
        return False
    return len(below) == width and _is_number(below[at])


def _classes(
    labels: np.ndarray, classes: list[str] | None, path: Path
) -> tuple[np.ndarray, list[str] | None]:
    """(class indices, class names) of a label column of numbers or of names; a row whose cell is
    blank (or NA, ...) has none (``UNLABELLED``), as long as some row has one."""
    without = np.array([v.lower() in MISSING for v in labels.tolist()], bool)  # text: numbers are too
    if without.all():
        raise UserError(
            f"the label column of {path} holds no class in any row; give rows their classes there, or "
            "leave --label-column out to read the file without labels"
        )
    known = labels[~without]
    numbers = [_is_number(v) for v in known]
    if not any(numbers):
        y, names = name_classes(known, classes, f"the label column of {path}")
    elif not all(numbers):
        mixed = str(known[numbers.index(False)])
        raise UserError(
            f"{path}'s label column holds both class numbers and {mixed!r}; give every row a class "
            "number, or every row a class name"
        )
    else:
        y, names = number_classes(known.astype(np.float64), f"the label column of {path}"), None
    return with_unlabelled(without, y), names


def _explain_bad_csv(
    path: Path,
    body: list[tuple[int, str]],
    width: int,
    header: list[str] | None,
    label: int | None,
    features: list[int],
    run_width: int | None = None,
) -> None:
    """Raise a UserError naming the first ragged row or non-numeric cell in a ``features`` column of
    a CSV body of (line number, line) pairs (``label``: the label column); columns are counted from
    0, as ``--label-column`` counts them. Read for a trained run of ``run_width`` features, whose
    features are fixed, a column beyond them is to be left out of the file (training's flags
    cannot), and one of them must hold numbers."""
    for number, line in body:
        cells = [_text(c) for c in line.split(",")]
        if len(cells) != width:
            raise UserError(
                f"{path} line {number} has {len(cells)} columns but the first row has {width}; "
                "every row needs the same number of comma-separated values"
            )
        for j in features:
            cell = cells[j]
            if "," in cell and _is_number(cell.replace(",", ".", 1)):  # quoted, as spreadsheets write it
                raise UserError(
                    f"{path} line {number} holds {cell!r}, a number with a decimal comma; commas separate "
                    "columns here: save numbers with decimal points"
                )
            if not _is_number(cell):
                # a column by its name where that names it alone, else by its number as
                # --label-column counts it (a data frame's index column has no name)
                named = header is not None and header[j] and header.count(header[j]) == 1
                column = f"column {header[j]!r}" if named else f"column {j} (counted from 0)"
                if cell.lower() in MISSING:  # a column of classes, some blank, is read with --label-column
                    classes = header[j] if named else j
                    plain = label is None and run_width is None  # no label column, and not a run's file
                    _missing(path, body, header, features, number, column, classes if plain else None)
                if run_width is not None:
                    widths = f"the file has {len(features)} feature columns where the run reads {run_width}"
                    fix = "the run reads that column as a feature, which must hold numbers"
                    if len(features) > run_width:
                        fix = f"{widths}: give it without that column"
                    elif len(features) < run_width:
                        fix = f"{widths}: give it rows of the {run_width} features the run was trained on"
                    raise UserError(f"{path} line {number}, {column} holds {cell!r}, not a number; {fix}")
                name = shlex.quote(header[j]) if named else j
                # a header of numbers but this cell: most likely a first row of data, its id in column j
                data = header is not None and all(_is_number(c) for k, c in enumerate(header) if k != j)
                classes = f"; a column of classes: train with --label-column {name}"
                leave = ", leave it out by naming the feature columns with --columns," if header else ""
                raise UserError(
                    f"{path} line {number}, {column} holds {cell!r}, not a number; only numbers are "
                    f"allowed (a header is allowed on the first line): where it names the rows, give it "
                    f"as --id-column {j if data else name}; else drop the column{leave} or write it as "
                    f"numbers (categories as 0/1 columns, one per category{classes if label is None else ''})"
                )


# how spreadsheets and data frames write a missing value (in a label column: a row without a class)
MISSING = {"", "na", "n/a", "nan", "null", "none", "?", "-", "#n/a"}


def _missing(
    path: Path,
    body: list[tuple[int, str]],
    header: list[str] | None,
    features: list[int],
    line: int,
    column: str,
    classes: str | int | None = None,
) -> None:
    """Raise a UserError counting the empty cells (missing values) of a CSV body in its ``features``
    columns, by column, from the first one: on ``line``, in ``column`` (as a message names it);
    ``classes``: how ``--label-column`` names that column, where it may hold classes."""
    counts: dict[int, int] = {}
    for _, text in body:
        cells = text.split(",")
        for j in features:
            if j < len(cells) and cells[j].strip().lower() in MISSING:  # rows below may be ragged
                counts[j] = counts.get(j, 0) + 1
    if len(counts) == 1:
        where, first = column, f"line {line}"
    else:
        named = [f"{header[j]!r}" if header else str(j) for j in sorted(counts)]
        where, first = f"columns {', '.join(named[:3])}{', …' * (len(named) > 3)}", f"line {line}, {column}"
    n = sum(counts.values())
    fix = _fill_or_drop(n)
    if len(counts) == 1 and classes is not None:  # most of a column blank, or names in it: classes?
        j = next(iter(counts))
        cells = [_text(text.split(",")[j]) for _, text in body]
        named = any(c.lower() not in MISSING and not _is_number(c) for c in cells)
        if named or counts[j] > len(body) / 2:
            named_as = shlex.quote(str(classes))
            fix += f"; or, if it holds classes, train with --label-column {named_as} (a blank one: no class)"
    raise UserError(f"{path} has {n} missing value{'s' * (n > 1)} in {where}, the first at {first}; {fix}")


def _fill_or_drop(n: int) -> str:
    """What to do about ``n`` missing values, said of one or of several."""
    them, rows = ("them", "those rows") if n > 1 else ("it", "that row")
    return f"fill {them} in (impute {them}) or drop {rows}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _index(column: str | int | None) -> int | None:
    """``--label-column`` as a 0-based index, when it can be one: an int, or text of digits (which a
    header may also hold as a name)."""
    if isinstance(column, int):
        return column
    return int(column) if column is not None and column.lstrip("-").isdigit() else None


def _column_index(
    path: Path, column: str | int, header: list[str] | None, width: int, option: str = "--label-column"
) -> int:
    """The index of ``option``'s column (``--label-column``, ``--id-column``): a header name, or a
    0-based index (negative from the end); text of digits is a header name first, an int always an
    index."""
    if header is not None and column in header:
        return header.index(column)
    if _index(column) is not None:
        if not -width <= int(column) < width:
            raise UserError(
                f"{option} {column} is out of range: {path} has {width} columns (0 to {width - 1})"
            )
        return int(column) % width
    if header is None:
        raise UserError(
            f"{option} '{column}' names a column but {path} has no header row; "
            f"give the column's index instead (0 to {width - 1})"
        )
    raise UserError(
        f"{option} '{column}' is not in {path}'s header{closest(column, header)}; its columns are "
        f"{_shown(header)}"
    )


def _shown(header: list[str]) -> str:
    """A header's names for a message: all of a dozen, the first and last of more."""
    return ", ".join(header) if len(header) <= 12 else f"{', '.join(header[:5])}, …, {', '.join(header[-3:])}"


def check_columns(
    path: str | Path, columns: list[str], label_column: str | int | None, id_column: str | int | None = None
) -> None:
    """A UserError naming the first of ``--columns`` that a CSV's header lacks, with the nearest name
    (a file without a header is read in order, as a later file may be)."""
    header = csv_columns(path, label_column, id_column)[0]
    missing = [c for c in columns if header is not None and c not in header]
    if missing:
        near = closest(missing[0], header)
        raise UserError(
            f"--columns '{missing[0]}' is not in {path}'s header{near}; its columns are {_shown(header)}"
        )

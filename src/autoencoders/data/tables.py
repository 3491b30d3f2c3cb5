"""CSV files: their header, label and id columns, missing values, and the numbers they hold."""

from __future__ import annotations

import csv
import itertools
import shlex
import warnings
from pathlib import Path

import numpy as np

from ..errors import DataWarning, UserError, user_stacklevel
from ..fields import closest
from .classes import name_classes, number_classes, with_unlabelled
from .sources import check_finite, fill_or_drop


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
    fix = fill_or_drop(n)
    if len(counts) == 1 and classes is not None:  # most of a column blank, or names in it: classes?
        j = next(iter(counts))
        cells = [_text(text.split(",")[j]) for _, text in body]
        named = any(c.lower() not in MISSING and not _is_number(c) for c in cells)
        if named or counts[j] > len(body) / 2:
            named_as = shlex.quote(str(classes))
            fix += f"; or, if it holds classes, train with --label-column {named_as} (a blank one: no class)"
    raise UserError(f"{path} has {n} missing value{'s' * (n > 1)} in {where}, the first at {first}; {fix}")


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

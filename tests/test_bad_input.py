"""The bad-input table: each bad input gets one line naming the problem and the fix, exit status 2,
no traceback, and leaves the files it was given (and the place it would write) as they were.

The same table is docs/bad-input.md; regenerate it after changing a message with
``python tests/test_bad_input.py`` (a test fails while the two disagree). In the expected
messages "…" stands for text that varies (a number computed in training, an OS detail).
"""

# ruff: noqa: E501  (the table below is data: one message per line reads best)
from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from autoencoders.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "bad-input.md"


def _write(name: str, text: str) -> Callable[[Path], None]:
    def write(d: Path) -> None:
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(text)

    return write


def _npy(name: str, array: np.ndarray) -> Callable[[Path], None]:
    return lambda d: np.save(d / name, array)


def _images(files: dict[str, tuple[int, int] | str]) -> Callable[[Path], None]:
    """Image files (name -> (height, width) of a gray PNG) or other files (name -> their text)."""

    def make(d: Path) -> None:
        from PIL import Image

        for name, what in files.items():
            path = d / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(what, str):
                path.write_text(what)
            else:
                Image.fromarray(np.zeros(what, np.uint8)).save(path)

    return make


def _empty(name: str) -> Callable[[Path], None]:
    return lambda d: (d / name).write_bytes(b"")


def _edit_json(name: str, change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        path = d / "run" / name
        obj = json.loads(path.read_text())
        change(obj)
        path.write_text(json.dumps(obj))

    return edit


# a run whose data file is no longer where it trained on it
_DATA_MOVED = _edit_json("config.json", lambda c: c["data"].update(data="npy:gone.npy"))


def _flip_bytes(d: Path) -> None:
    path = d / "run" / "model.safetensors"
    data = bytearray(path.read_bytes())
    for i in range(len(data) - 400, len(data)):  # inside the tensor data, past the header
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _incomplete(d: Path) -> None:
    _edit_json("manifest.json", lambda m: m.update(completed=False))(d)


_diverged = _edit_json(
    "manifest.json",
    lambda m: m.update(
        completed=False,
        stopped="training diverged: the loss became nan in epoch 1 of stage 'train'; train again with a "
        "lower --lr (now 10)",
    ),
)

DIGITS_CSV = "\n".join(",".join(["0.5"] * 64 + ["1"]) for _ in range(30)) + "\n"

# (what is wrong, setup in the working directory (which holds a trained run in run/), command, message)
CASES: list[tuple[str, Callable[[Path], None] | None, str, str]] = [
    ("unknown dataset name", None, "train --data digitz",
     "autoencoders: error: unknown data spec 'digitz' (did you mean 'digits'?); use digits, fashion-mnist, mnist, idx:DIR, npy:FILE, csv:FILE or images:DIR"),
    ("a data kind mistyped", None, "train --data image:photos",
     "autoencoders: error: unknown data spec 'image:photos' (did you mean images:photos?); use digits, fashion-mnist, mnist, idx:DIR, npy:FILE, csv:FILE or images:DIR"),
    ("a data file without its kind", _npy("wide.npy", np.zeros((20, 3))), "train --data wide.npy",
     "autoencoders: error: unknown data spec 'wide.npy' (did you mean npy:wide.npy?); use digits, fashion-mnist, mnist, idx:DIR, npy:FILE, csv:FILE or images:DIR"),
    ("--hold-out a class the data lacks", None, "train --hold-out 12",
     "autoencoders: error: --hold-out 12: no such class in digits (classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)"),
    ("--hold-out on data without labels", _npy("x.npy", np.random.default_rng(0).random((20, 5), np.float32)),
     "train --data npy:x.npy --hold-out 1",
     "autoencoders: error: --hold-out names classes, and npy:x.npy has no labels; give labelled data or leave it out"),
    ("reproduce an experiment scored by classes on data without labels",
     _npy("x.npy", np.random.default_rng(0).random((20, 5), np.float32)), "reproduce sda --data npy:x.npy",
     "autoencoders: error: sda scores what it trains against the data's classes, and npy:x.npy has none: give "
     "labelled data (images: in one folder per class; in Python, labels= or label_column=), or reproduce "
     "hinton2006, which needs none"),
    ("image folder missing", None, "train --data images:nothing",
     "autoencoders: error: images:nothing is not a folder; give a folder of images (or one subfolder per class)"),
    ("image folder empty", lambda d: (d / "imgs").mkdir(), "train --data images:imgs",
     "autoencoders: error: imgs holds no images; add .png, .jpg, .jpeg, .bmp, .tif, .tiff files"),
    ("a file in an image folder is not an image", _images({"imgs/a.png": (8, 8), "imgs/notes.txt": "mine"}), "train --data images:imgs",
     "autoencoders: error: imgs/notes.txt is not an image Pillow can read (.txt is not an image type); remove it from the folder (a run trained with --skip-bad-images leaves such files out of every folder it reads)"),
    ("images of two sizes", _images({"imgs/a.png": (8, 8), "imgs/b.png": (9, 8)}), "train --data images:imgs",
     "autoencoders: error: imgs/b.png is 9×8 but imgs/a.png is 8×8; give --image-size H,W to resize them all"),
    ("images too large for the disk at --image-size", _images({"imgs/a.png": (8, 8), "imgs/b.png": (8, 8)}), "train --data images:imgs --image-size 1000000,1000000",
     "autoencoders: error: the 2 images decoded at 1000000×1000000 take 1862.6 GiB, and the disk of … has … GiB free; give a smaller --image-size, or set $AUTOENCODERS_CACHE to a folder on a disk with room"),
    ("a class folder without images", _images({"imgs/cat/a.png": (8, 8), "imgs/dog/.keep": ""}), "train --data images:imgs",
     "autoencoders: error: class folder imgs/dog holds no images; add some or remove the folder"),
    ("class folders beside loose images", _images({"imgs/cat/a.png": (8, 8), "imgs/b.png": (8, 8)}), "train --data images:imgs",
     "autoencoders: error: imgs holds both files (b.png) and class folders (cat); put every image in a class folder, or use a flat folder of images"),
    ("npy file missing", None, "train --data npy:none.npy",
     "autoencoders: error: npy file none.npy does not exist; check the path after npy:"),
    ("npy file of 0 bytes", _empty("x.npy"), "train --data npy:x.npy",
     "autoencoders: error: npy file x.npy is empty (0 bytes); write it with numpy.save"),
    ("npy file with 0 rows", _npy("x.npy", np.zeros((0, 5), np.float32)), "train --data npy:x.npy",
     "autoencoders: error: x.npy holds no data (shape (0, 5)); it needs at least one row and one column"),
    ("npy file that is 1-D", _npy("x.npy", np.zeros(50, np.float32)), "train --data npy:x.npy",
     "autoencoders: error: x.npy must hold a numeric N×D, N×H×W or N×C×H×W array, got shape (50,) float32"),
    ("npy file holding text", _write("x.npy", "hello"), "train --data npy:x.npy",
     "autoencoders: error: x.npy is not a .npy file; write it with numpy.save"),
    ("an .npz archive given as npy:", lambda d: np.savez(d / "x.npz", x=np.zeros((4, 3))), "train --data npy:x.npz",
     "autoencoders: error: x.npz is an .npz archive of several arrays, not a .npy file; save the one to read with numpy.save('rows.npy', numpy.load('x.npz')['NAME']) and give that file"),
    ("npy file of complex numbers", _npy("x.npy", np.ones((20, 3), np.complex64)), "train --data npy:x.npy",
     "autoencoders: error: x.npy holds complex numbers; give real ones, e.g. the real and imaginary parts as "
     "columns of their own, or the magnitudes"),
    ("npy file of Python objects", lambda d: np.save(d / "x.npy", np.zeros((4, 3), object), allow_pickle=True),
     "train --data npy:x.npy",
     "autoencoders: error: x.npy is not a readable numeric .npy array (Array can't be memory-mapped: Python objects in dtype.); write its rows as numbers with numpy.save(path, x.astype(numpy.float32))"),
    ("a CSV file that does not exist, given without csv:", None, "train --data table.csv",
     "autoencoders: error: unknown data spec 'table.csv' (a .csv file is given as csv:FILE, and there is no file table.csv); use digits, fashion-mnist, mnist, idx:DIR, npy:FILE, csv:FILE or images:DIR"),
    ("an image given as csv:", _images({"a.png": (8, 8)}), "train --data csv:a.png",
     "autoencoders: error: a.png is not a text CSV file in UTF-8: save a CSV as UTF-8 text; a .npy file is given as npy:FILE, images as the folder that holds them, images:DIR"),
    ("a CSV file given as npy:", _write("t.csv", "a,b\n1,2\n"), "encode run --data npy:t.csv --out c.npy",
     "autoencoders: error: t.csv is not a .npy file (it reads as text: for a CSV give csv:FILE); write it with numpy.save"),
    ("a run's config.json given to --config", None, "train --config run/config.json",
     "autoencoders: error: config file run/config.json is JSON, and --config reads TOML; 'autoencoders train [options] --print-config' prints settings as TOML"),
    ("NaN in the data", _npy("x.npy", np.full((30, 4), np.nan, np.float32)), "train --data npy:x.npy",
     "autoencoders: error: x.npy holds 120 missing (NaN) or infinite values in columns 0, 1, 2, …, the first in row 0; fill them in (impute them) or drop those rows"),
    ("a missing value in a CSV", _write("t.csv", "a,b,c\n1,2,3\n4,,6\n7,8,\n"), "train --data csv:t.csv",
     "autoencoders: error: t.csv has 2 missing values in columns 'b', 'c', the first at line 3, column 'b'; fill them in (impute them) or drop those rows"),
    ("a missing value in the first row of a CSV without a header", _write("t.csv", "1,,3\n4,5,6\n"),
     "train --data csv:t.csv",
     "autoencoders: error: t.csv has 1 missing value in column 1 (counted from 0), the first at line 1; fill it in (impute it) or drop that row"),
    ("NaN written in a CSV", _write("t.csv", "a,b\n1,2\n3,NaN\n"), "train --data csv:t.csv",
     "autoencoders: error: t.csv holds 1 missing (NaN) or infinite value in column 'b', the first in line 3; fill it in (impute it) or drop that row"),
    ("a number too large for float32 in a CSV", _write("t.csv", "a,b\n1,2\n3,1e300\n"), "train --data csv:t.csv",
     "autoencoders: error: t.csv holds 1 value larger than float32 holds (±3.40e+38) in column 'b', the first in line 3; rows are computed in float32: rescale those columns (divide by a power of ten) or drop those rows"),
    ("a number too large for float32 in a .npy", _npy("x.npy", np.array([[1.0, 2.0], [-1e39, 0.0]] * 15)),
     "train --data npy:x.npy",
     "autoencoders: error: x.npy holds 15 values larger than float32 holds (±3.40e+38) in column 0, the first in row 1; rows are computed in float32: rescale those columns (divide by a power of ten) or drop those rows"),
    ("a feature whose values span more than float32 holds", _npy("x.npy", np.array([[3e38, 2.0], [-3e38, 0.0]] * 15, np.float32)),
     "train --data npy:x.npy",
     "autoencoders: error: feature 0 (0-based) of the training rows runs from -3e+38 to 3e+38, a span larger than float32 holds (±3.40e+38), so it cannot be scaled to [0, 1]; divide that feature by a power of ten first"),
    ("the label column named among --columns", _write("t.csv", "a,b,y\n" + "0.1,0.2,1\n" * 40),
     "train --data csv:t.csv --label-column y --columns a,y",
     "autoencoders: error: the feature columns (--columns, or those a trained run recorded) include the label column 'y' of t.csv; give another --label-column, or leave it out of --columns"),
    ("labels of the wrong length",
     lambda d: (np.save(d / "x.npy", np.ones((30, 4), np.float32)), np.save(d / "y.npy", np.zeros(7)))[0],
     "train --data npy:x.npy --labels y.npy",
     "autoencoders: error: labels y.npy have shape (7,); expected (30,): one class per row of the data, in its order"),
    ("labels that are not whole class numbers",
     lambda d: (np.save(d / "x.npy", np.ones((30, 4), np.float32)), np.save(d / "y.npy", np.full(30, 0.5)))[0],
     "train --data npy:x.npy --labels y.npy",
     "autoencoders: error: 0.5 in labels file y.npy is not a whole class number; give classes as 0, 1, 2, ..."),
    ("labels of bytes that are not UTF-8 text",
     lambda d: (np.save(d / "x.npy", np.ones((30, 4), np.float32)), np.save(d / "y.npy", np.array([b"\xc3"] * 30)))[0],
     "train --data npy:x.npy --labels y.npy",
     "autoencoders: error: labels y.npy hold bytes that are not UTF-8 text; save them with numpy.save(path, labels.astype(str))"),
    ("a label column without a class in any row", _write("t.csv", "a,kind\n1,\n2,NA\n"),
     "train --data csv:t.csv --label-column kind",
     "autoencoders: error: the label column of t.csv holds no class in any row; give rows their classes there, or leave --label-column out to read the file without labels"),
    ("a class name --classes lacks", _write("t.csv", "a,kind\n" + "1,cat\n2,dog\n" * 6),
     "train --data csv:t.csv --label-column kind --classes cat,emu",
     "autoencoders: error: the labels of csv:t.csv hold classes --classes does not name ('dog'); name every class in --classes"),
    ("class names for class numbers", None, "train --classes zero,one",
     "autoencoders: error: --classes orders class names, and digits has class numbers for labels; leave it out"),
    ("a class named twice", None, "train --classes a,b,a",
     "autoencoders: error: --classes needs distinct, non-empty names, got ['a', 'b', 'a']"),
    ("class names for data without labels", _npy("x.npy", np.ones((30, 4), np.float32)),
     "train --data npy:x.npy --classes a,b",
     "autoencoders: error: --classes orders class names, and npy:x.npy has no labels; leave it out"),
    ("a CSV option for other data", _npy("x.npy", np.ones((30, 4), np.float32)),
     "train --data npy:x.npy --label-column 3",
     "autoencoders: error: --label-column applies to csv: data, not npy:x.npy; leave it out"),
    ("an image-folder option for other data", None, "train --grayscale",
     "autoencoders: error: --grayscale applies to images: data, not digits; leave it out"),
    ("a convolution kernel larger than the images", None, "train --model conv --kernel-size 9",
     "autoencoders: error: --kernel-size 9 is larger than the 8×8 images; give --kernel-size 8 or less"),
    ("a kernel larger than a deeper convolution's maps", None, "train --model conv --channels 4,8 --kernel-size 5",
     "autoencoders: error: --kernel-size 5 is larger than the 4×4 maps convolution 2 sees (each one halves them); give --kernel-size 4 or less, or fewer --channels"),
    ("one channel and three asked for", None, "train --data images:photos --grayscale --rgb",
     "autoencoders: error: --grayscale asks for one channel and --rgb for three; give one of them"),
    ("too few rows to split", _npy("x.npy", np.ones((5, 4), np.float32)), "train --data npy:x.npy",
     "autoencoders: error: npy:x.npy has only 5 rows; at least 10 are needed to split off test rows; give at least 10"),
    ("empty CSV", _empty("t.csv"), "train --data csv:t.csv", "autoencoders: error: csv file t.csv is empty; give a file with one row per line, its values separated by commas"),
    ("CSV with a header and no rows", _write("t.csv", "a,b,c\n"), "train --data csv:t.csv",
     "autoencoders: error: csv file t.csv has a header but no data rows; give a file with rows below its header"),
    ("ragged CSV", _write("t.csv", "1,2,3\n4,5\n"), "train --data csv:t.csv",
     "autoencoders: error: t.csv line 2 has 2 columns but the first row has 3; "
     "every row needs the same number of comma-separated values"),
    ("text in a CSV cell", _write("t.csv", "a,b\n1,2\n3,x\n"), "train --data csv:t.csv",
     "autoencoders: error: t.csv line 3, column 'b' holds 'x', not a number; only numbers are allowed "
     "(a header is allowed on the first line): where it names the rows, give it as --id-column b; else drop the column, leave it out by naming the feature columns with --columns, or write it as numbers (categories as 0/1 columns, one per category; a column of classes: "
     "train with --label-column b)"),
    ("the id column named as the label column too", _write("t.csv", "id,a,y\n" + "u,0.1,1\n" * 40),
     "train --data csv:t.csv --label-column y --id-column y",
     "autoencoders: error: --id-column and --label-column both name column 2 of t.csv; the id column names the rows and the label column their classes: give each its own"),
    ("the id column named among --columns", _write("t.csv", "id,a,b\n" + "u,0.1,1\n" * 40),
     "train --data csv:t.csv --id-column id --columns id,a",
     "autoencoders: error: the feature columns (--columns, or those a trained run recorded) include the id column 'id' of t.csv; give another --id-column, or leave it out of --columns"),
    ("an id column the header lacks", _write("t.csv", "key,a,b\n" + "u,0.1,1\n" * 40),
     "train --data csv:t.csv --id-column kye",
     "autoencoders: error: --id-column 'kye' is not in t.csv's header (did you mean 'key'?); its columns are key, a, b"),
    ("ids in a file without a header, its first row read as one", _write("t.csv", "r0,0.1,0.2\nr1,0.3,0.4\nr2,0.5,0.6\n"),
     "train --data csv:t.csv",
     "autoencoders: error: t.csv line 2, column 'r0' holds 'r1', not a number; only numbers are allowed (a header is allowed on the first line): where it names the rows, give it as --id-column 0; else drop the column, leave it out by naming the feature columns with --columns, or write it as numbers (categories as 0/1 columns, one per category; a column of classes: train with --label-column r0)"),
    ("a CSV of ids and labels only", _write("t.csv", "key,y\na,1\nb,0\n"), "train --data csv:t.csv --id-column key --label-column y",
     "autoencoders: error: t.csv has no feature columns besides the label column and the id column"),
    ("an id column for data other than a CSV", None, "score run --data digits --id-column 0 --out s.csv",
     "autoencoders: error: --id-column names a column of csv: data, and digits has none; leave it out (an output's row counts the rows in their order)"),
    ("a mistyped option that leaves a required one missing", None, "score run --data digits --output s.csv",
     "autoencoders score: error: unrecognized arguments: --output (did you mean '--out'?); see autoencoders score --help"),
    ("a mistyped option beside another required one missing", None, "score run --output s.csv",
     "autoencoders score: error: unrecognized arguments: --output (did you mean '--out'?); the following arguments are required: --data; see autoencoders score --help"),
    ("an option abbreviated", None, "train --los mse",
     "autoencoders train: error: unrecognized arguments: --los mse (did you mean '--loss'?); see autoencoders train --help"),
    ("another tool's name for the code size", None, "train --code-size 8",
     "autoencoders train: error: unrecognized arguments: --code-size 8 (the code size is the last width of --layers, e.g. --layers 64,32,8); see autoencoders train --help"),
    ("a CSV's label column given as --labels", _write("t.csv", "a,b,y\n" + "0.1,0.2,1\n" * 40), "train --data csv:t.csv --labels y",
     "autoencoders: error: --labels applies to npy: data, not csv:t.csv; a CSV's labels are a column of it: give --label-column y"),
    ("an option of another command", None, "train --n-labels 3",
     "autoencoders train: error: unrecognized arguments: --n-labels 3 (an option of 'autoencoders classify', "
     "not of this command); see autoencoders train --help"),
    ("an option with a value, before the command", None, "--epochs 2 train",
     "autoencoders: error: unrecognized arguments: --epochs (an option of 'autoencoders train' and 'autoencoders classify' and "
     "'autoencoders cluster', put it after the command); see autoencoders --help"),
    ("an option of another command, before the command", None, "--overwrite train",
     "autoencoders: error: unrecognized arguments: --overwrite (an option of 'autoencoders train' and "
     "'autoencoders reproduce', put it after the command); see autoencoders --help"),
    ("the top level's option after the command", None, "train --debug",
     "autoencoders train: error: unrecognized arguments: --debug (an option of autoencoders itself: put it "
     "before the command); see autoencoders train --help"),
    ("label column index out of range", _write("t.csv", DIGITS_CSV), "train --data csv:t.csv --label-column 999",
     "autoencoders: error: --label-column 999 is out of range: t.csv has 65 columns (0 to 64)"),
    ("label column name, CSV without a header", _write("t.csv", DIGITS_CSV),
     "train --data csv:t.csv --label-column label",
     "autoencoders: error: --label-column 'label' names a column but t.csv has no header row; "
     "give the column's index instead (0 to 64)"),
    ("label column name not in the header", _write("t.csv", "a,b\n1,2\n"), "train --data csv:t.csv --label-column y",
     "autoencoders: error: --label-column 'y' is not in t.csv's header; its columns are a, b"),
    ("label column name misspelt in a wide CSV",
     _write("t.csv", ",".join([*(f"p{i}" for i in range(20)), "label"]) + "\n" + ",".join(["1"] * 21) + "\n"),
     "train --data csv:t.csv --label-column lable",
     "autoencoders: error: --label-column 'lable' is not in t.csv's header (did you mean 'label'?); "
     "its columns are p0, p1, p2, p3, p4, …, p18, p19, label"),
    ("a column of --columns mistyped", _write("t.csv", "temp,humidity,y\n" + "0.5,0.2,1\n" * 30),
     "train --data csv:t.csv --label-column y --columns temp,humid",
     "autoencoders: error: --columns 'humid' is not in t.csv's header (did you mean 'humidity'?); its columns are temp, humidity, y"),
    ("a data frame's index in a CSV", _write("t.csv", ",a,b,y\n" + "".join(f"{i},0.{i % 10},1,{i % 2}\n" for i in range(40))),
     "train --data csv:t.csv --label-column y",
     "autoencoders: error: column 0 of t.csv has no name in its header and numbers the rows from 0: a data frame's "
     "index, which DataFrame.to_csv writes unless index=False; save the frame with index=False, or name the feature columns with --columns"),
    ("a data frame's index in a CSV, its columns numbered", _write("t.csv", ",0,1,2,3\n" + "".join(f"{i},0.{i % 10},1,0,1\n" for i in range(40))),
     "train --data csv:t.csv",
     "autoencoders: error: column 0 of t.csv has no name in its header and numbers the rows from 0: a data frame's "
     "index, which DataFrame.to_csv writes unless index=False; save the frame with index=False, or name the feature columns with --columns"),
    ("a CSV column without a name", _write("t.csv", "a,,b\n" + "0.1,0.2,0.3\n" * 40), "train --data csv:t.csv",
     "autoencoders: error: column 1 of t.csv has no name in its header; name every column in the header, drop the column, or name the feature columns with --columns"),
    ("a CSV feature named as the label column", _write("t.csv", "a,y,b,y\n" + "0.1,1,0.3,0.4\n" * 40),
     "train --data csv:t.csv --label-column y",
     "autoencoders: error: the header of t.csv names columns 1 and 3 both 'y'; a run finds its columns by name: give each column its own"),
    ("two CSV columns of one name", _write("t.csv", "a,b,a\n" + "0.1,0.2,0.3\n" * 40), "train --data csv:t.csv",
     "autoencoders: error: the header of t.csv names columns 0 and 2 both 'a'; a run finds its columns by name: give each column its own"),
    ("IDX directory missing", None, "train --data idx:nowhere",
     "autoencoders: error: data directory nowhere does not exist; idx:DIR needs the directory holding the four IDX files"),
    ("layer widths that do not fit the data", None, "train --layers 50,8",
     "autoencoders: error: --layers starts with 50 but the data has 64 features; start it with 64"),
    ("mistyped option", None, "train --activaton relu",
     "autoencoders train: error: unrecognized arguments: --activaton relu (did you mean '--activation'?); "
     "see autoencoders train --help"),
    ("mistyped choice", None, "train --activation rel",
     "autoencoders train: error: argument --activation: invalid choice: 'rel' (choose from 'sigmoid', 'relu', "
     "'tanh', 'linear', 'gelu') (did you mean 'relu'?); see autoencoders train --help"),
    ("learning rate 0", None, "train --lr 0", "autoencoders: error: --lr must be > 0, got 0.0"),
    ("validation fraction 1", None, "train --val-fraction 1",
     "autoencoders: error: --val-fraction must be in [0, 1), got 1.0"),
    ("masking noise above 1", None, "train --corruption masking --noise 3",
     "autoencoders: error: --noise must be in [0, 1] for masking corruption (a fraction of the inputs), got 3.0"),
    ("KL sparsity on an unbounded code", None, "train --sparsity kl",
     "autoencoders: error: --sparsity kl compares mean activations in (0, 1) with the target: "
     "use --code-activation sigmoid, or --sparsity l1 for any activation"),
    ("config file that is not TOML", _write("c.toml", "layers = [64,"), "train --config c.toml",
     "autoencoders: error: config file c.toml is not valid TOML: …"),
    ("unknown key in a config file", _write("c.toml", "[model]\nlayerz = [64, 8]\n"), "train --config c.toml",
     "autoencoders: error: unknown key(s) 'layerz' (did you mean 'layers'?) in [model]; valid: …"),
    ("--out holding another run", None, "train --out run",
     "autoencoders: error: --out run is not empty; add --overwrite to replace the run in it, "
     "continue it if it is incomplete (autoencoders train --resume run), or choose another --out"),
    ("--out that is a file", _write("f.txt", "x"), "train --out f.txt",
     "autoencoders: error: --out f.txt is a file; give the path of a new or empty directory"),
    ("--overwrite of a run that also holds the user's own files", lambda d: (d / "run" / "notes.txt").write_text("mine"),
     "train --out run --overwrite",
     "autoencoders: error: --overwrite replaces a run, and run also holds what it did not write (notes.txt); "
     "move that out first, or choose another --out: nothing was deleted"),
    ("--overwrite of a run holding a folder of the user's with a clusters.json in it",
     lambda d: [_write("run/photos/clusters.json", "{}")(d), _write("run/photos/family.jpg", "mine")(d)],
     "train --out run --overwrite",
     "autoencoders: error: --overwrite replaces a run, and run also holds what it did not write (photos); "
     "move that out first, or choose another --out: nothing was deleted"),
    ("--out holding files but no run", _write("notes.txt", "mine"), "train --out .",
     "autoencoders: error: --out . is not empty and holds no run; choose another --out, or empty it yourself"),
    ("--overwrite of a directory that holds no run", _write("notes.txt", "mine"), "train --out . --overwrite",
     "autoencoders: error: --out . is not empty and holds no run, so nothing was deleted; choose another --out, "
     "or empty it yourself"),
    ("--out that is a link to nothing", lambda d: (d / "gone").symlink_to(d / "nowhere"), "train --out gone",
     "autoencoders: error: --out gone is a link to …, which does not exist; make that directory, or give the "
     "path of a new or empty directory"),
    ("a clustering's folder where a run is expected", _write("c/clusters.json", '{"run_dir": "runs/mine"}'),
     "evaluate c",
     "autoencoders: error: c is not a run directory (no manifest.json); it holds a clustering made from the run runs/mine: give that, or use this with predict"),
    ("evaluate when the run's data has moved", _DATA_MOVED,
     "evaluate run",
     "autoencoders: error: run was trained on gone.npy, which is no longer there; put it back there, or give the rows to evaluate with --data"),
    ("report when the run's data has moved", _DATA_MOVED,
     "report run",
     "autoencoders: error: run was trained on gone.npy, which is no longer there; put it back there: the report draws the run's test rows"),
    ("classify when the run's data has moved", _DATA_MOVED,
     "classify run --method knn",
     "autoencoders: error: run was trained on gone.npy, which is no longer there; put it back there, or classify other rows: --data (with --labels for npy: data)"),
    ("cluster when the run's data has moved", _DATA_MOVED,
     "cluster run --k 3",
     "autoencoders: error: run was trained on gone.npy, which is no longer there; put it back there, or cluster other rows: --data"),
    ("a figure of test rows when the run's data has moved", _DATA_MOVED,
     "visualize run --what top",
     "autoencoders: error: run was trained on gone.npy, which is no longer there; put it back there, or draw other rows: --data"),
    ("--anomalous-class when the run's data has moved", _DATA_MOVED,
     "score run --data digits --anomalous-class 3 --out s.csv",
     "autoencoders: error: run was trained on gone.npy, which is no longer there; put it back there, or score without --anomalous-class (its PCA fits those rows)"),
    ("--resume with new settings", _incomplete, "train --resume run --lr 0.1",
     "autoencoders: error: a resumed run continues with its own settings; leave out --lr"),
    ("--resume of a finished run", None, "train --resume run",
     "autoencoders: error: run finished training; there is nothing to resume: its model is ready to use, "
     "and training longer is a new run with more --epochs"),
    ("evaluate a directory that is not a run", _write("notes.txt", "x"), "evaluate .",
     "autoencoders: error: . is not a run directory (no manifest.json); the runs in it are run"),
    ("evaluate a directory that does not exist", None, "evaluate nowhere",
     "autoencoders: error: nowhere does not exist; give the directory a training run wrote (train's --out)"),
    ("evaluate an incomplete run", _incomplete, "evaluate run",
     "autoencoders: error: run stopped before it finished training; continue it with: autoencoders train --resume run"),
    ("the loss of a run that has saved no epoch yet", _incomplete, "visualize run --what loss",
     "autoencoders: error: run has saved no epoch yet: no loss curve to draw; its first state is saved after an "
     "epoch that ends --save-every seconds of training or more after it began"),
    ("the loss of a run that diverged before it saved an epoch", _diverged, "visualize run --what loss",
     "autoencoders: error: run stopped before it saved an epoch (training diverged: the loss became nan in "
     "epoch 1 of stage 'train'; train again with a lower --lr (now 10)): no loss curve to draw"),
    ("weights changed on disk (400 flipped bytes)", _flip_bytes, "evaluate run",
     "autoencoders: error: run/model.safetensors has changed since it was written (its SHA-256 does not match "
     "the one recorded beside it): the file is damaged or was edited; restore it from a copy or train again"),
    ("config.json that is not JSON", lambda d: (d / "run" / "config.json").write_text("{"), "evaluate run",
     "autoencoders: error: run/config.json is not a readable config (…); the run directory is damaged"),
    ("config.json with a value no run writes", _edit_json("config.json", lambda c: c["model"].update(layers="64,8")),
     "evaluate run",
     "autoencoders: error: run/config.json holds a value this toolkit never writes (--layers must be a list of whole "
     "numbers, such as [64, 8], not '64,8'); the run directory is damaged"),
    ("config.json with other layer sizes than the weights",
     _edit_json("config.json", lambda c: c["model"].update(layers=[64, 16, 8])), "evaluate run",
     "autoencoders: error: run: the weights do not fit its config.json (…): the two are from different runs, or "
     "one was edited; put back the run's own, or train it again"),
    ("a manifest whose completion is text", _edit_json("manifest.json", lambda m: m.update(completed="false")),
     "evaluate run",
     "autoencoders: error: run/manifest.json's completed is 'false', which this toolkit never writes: the run "
     "directory is damaged"),
    ("a manifest without its input shape", _edit_json("manifest.json", lambda m: m.pop("input_shape")),
     "encode run --data digits --out c.npy",
     "autoencoders: error: run/manifest.json lacks its input_shape, which this toolkit always writes: the run directory is damaged"),
    ("a manifest whose format is text", _edit_json("manifest.json", lambda m: m.update(format="3")), "evaluate run",
     "autoencoders: error: run has run format '3', not a version number: the file is damaged; train it again"),
    ("run from a newer version", _edit_json("manifest.json", lambda m: m.update(format=99)), "evaluate run",
     "autoencoders: error: run was written by a newer version of this toolkit (run format 99; this version "
     "reads 3); read it with the version that wrote it, or a later one"),
    ("encode --out a directory", lambda d: (d / "outdir").mkdir(), "encode run --data digits --out outdir",
     "autoencoders: error: --out outdir is a directory; give a file name, e.g. outdir/out.npy"),
    ("encode --out under a file", _write("f.txt", "x"), "encode run --data digits --out f.txt/codes.npy",
     "autoencoders: error: cannot write under f.txt: …f.txt is a file, not a directory"),
    ("encode --labels into a .npy", _npy("y.npy", np.zeros(30, np.int64)), "encode run --data digits --labels y.npy --out c.npy",
     "autoencoders: error: --labels goes with a .csv, which writes each row's label beside its codes; a .npy holds codes alone"),
    ("sample more images than a picture holds", None, "sample run -n 5000 --out s.png",
     "autoencoders: error: -n 5000: a .png holds at most 1,000 images; write a .npy for more samples"),
    ("interpolate more points than a picture holds", None, "interpolate run --data digits --pair 0,1 --steps 999 --out i.png",
     "autoencoders: error: --steps 999: a .png holds at most 1,000 images, the 2 rows and the points between; write a .npy for more"),
    ("visualize more interpolated points than a picture holds", None, "visualize run --what interpolate -n 999",
     "autoencoders: error: -n 999: interpolate draws the 2 rows and n points between, and a .png holds at most 1,000 images; give -n 998 or fewer, or write more with autoencoders interpolate RUN --data SPEC --steps N --out FILE.npy"),
    ("visualize more samples than a picture holds", None, "visualize run --what samples -n 251",
     "autoencoders: error: -n 251: samples draws 4 × n images, and a .png holds at most 1,000; give -n 250 or fewer, or write more with autoencoders sample --out FILE.npy"),
    ("train --out where nothing can be made", None, "train --epochs 1 --out /proc/autoencoders-run",
     "autoencoders: error: cannot write under /proc/autoencoders-run: /proc is not writable (…); choose another --out"),
    ("cluster --out where nothing can be made", None, "cluster run --out /proc/autoencoders-clusters",
     "autoencoders: error: cannot write under /proc/autoencoders-clusters: /proc is not writable (…); choose another --out"),
    ("reconstruct --out of another image type", None, "reconstruct run --data digits --out r.jpg",
     "autoencoders: error: --out r.jpg: this command writes .png or .npy files; give a file name ending in .png or .npy"),
    ("reconstruct --n 0", None, "reconstruct run --data digits --out r.png --n 0",
     "autoencoders reconstruct: error: argument -n/--n: must be >= 1, got 0; see autoencoders reconstruct --help"),
    ("encode data of another width", _npy("x.npy", np.ones((30, 5), np.float32)), "encode run --data npy:x.npy --out c.npy",
     "autoencoders: error: npy:x.npy has 5 features but the model expects 64"),
    ("a CSV with a label column given to a run trained without one", _write("t.csv", DIGITS_CSV),
     "encode run --data csv:t.csv --out c.npy",
     "autoencoders: error: csv:t.csv has 65 features but the model expects 64; if one of its columns holds labels, name it with --label-column (its header name or 0-based index), or give the file without it"),
    ("classify --epochs 0", None, "classify run --epochs 0",
     "autoencoders classify: error: argument --epochs: must be >= 1, got 0; see autoencoders classify --help"),
    ("classify --labels-fraction above 1", None, "classify run --labels-fraction 1.5",
     "autoencoders classify: error: argument --labels-fraction: must be in (0, 1], got 1.5; "
     "see autoencoders classify --help"),
    ("classify with fewer labels than classes", None, "classify run --n-labels 5",
     "autoencoders: error: --n-labels 5 is fewer than the 10 classes; give at least one per class"),
    ("classify with more labels than a class has", None, "classify run --n-labels 5000",
     "autoencoders: error: --n-labels 5000 takes up to 500 labelled rows of every class, but class … has … labelled training rows; ask for at most … labels"),
    ("classify with both --n-labels and --labels-fraction", None, "classify run --n-labels 30 --labels-fraction 0.1",
     "autoencoders classify: error: argument --labels-fraction: not allowed with argument --n-labels; "
     "see autoencoders classify --help"),
    ("classify --recon-weight without --method semi", None, "classify run --method knn --recon-weight 2",
     "autoencoders: error: --recon-weight weighs the semi-supervised loss: give --method semi too"),
    ("classify --out a file", _write("notes.txt", "x"), "classify run --method knn --out notes.txt",
     "autoencoders: error: --out notes.txt is a file; give the path of a new or empty directory"),
    ("classify --out a run directory", None, "classify run --method knn --out run",
     "autoencoders: error: --out run holds a run; give the path of a new or empty directory"),
    ("sample from a model without a prior", None, "sample run --out s.png",
     "autoencoders: error: run holds a 'dense' model, which has no prior to sample from; sample from a run trained with --model vae or --model aae"),
    ("interpolate with one row index", None, "interpolate run --data digits --pair 3 --out s.png",
     "autoencoders: error: --pair must hold two row indices, e.g. 0,1; got [3]"),
    ("predict with a run that is not a classifier", None, "predict run --data digits --out p.csv",
     "autoencoders: error: run holds no classifier or clustering that can predict; make one with 'autoencoders classify RUN' or 'autoencoders cluster RUN', then pass its output directory (e.g. RUN/classifier-0.1)"),
    ("predict with a directory that does not exist", None, "predict run/classifier-9 --data digits --out p.csv",
     "autoencoders: error: run/classifier-9 does not exist; pass an output directory of 'autoencoders classify' or 'autoencoders cluster', e.g. RUN/classifier-0.1 or RUN/cluster-kmeans-10"),
    ("predict with a file", _write("notes.txt", "x"), "predict notes.txt --data digits --out p.csv",
     "autoencoders: error: notes.txt is a file; pass an output directory of 'autoencoders classify' or 'autoencoders cluster', e.g. RUN/classifier-0.1 or RUN/cluster-kmeans-10"),
    ("a labels file for data that is not npy:", None, "score run --data digits --labels y.npy --out s.csv",
     "autoencoders: error: --labels applies to npy: data, not digits; leave it out"),
    ("a labels file without the data it labels", None, "evaluate run --labels y.npy",
     "autoencoders: error: --labels goes with --data, the rows it labels"),
    ("score with a class the rows lack", None, "score run --data digits --out s.csv --anomalous-class 12",
     "autoencoders: error: --anomalous-class 12: the rows of digits must hold that class and others (classes there: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)"),
    ("no rows left for testing", None, "train --test-fraction 0 --epochs 1 --out tf0",
     "autoencoders: error: --test-fraction 0 leaves no test rows of digits to measure the model on; use a "
     "larger --test-fraction (default 0.2)"),
    ("no rows left for training", None, "train --val-fraction 0.9999 --epochs 1 --out vf",
     "autoencoders: error: --val-fraction 0.9999 leaves none of the 1438 rows of digits beside its test rows to "
     "train on; use a smaller --val-fraction (default 0.1)"),
    ("one row left for training", None, "train --val-fraction 0.9993 --epochs 1 --out vf1",
     "autoencoders: error: --test-fraction 0.2 and --val-fraction 0.9993 leave one row of digits to train on; "
     "use smaller fractions, so that two or more are left"),
    ("a seed too large", None, "train --seed 99999999999999999999 --epochs 1 --out sd",
     "autoencoders: error: --seed must be in [0, 4294967295], got 99999999999999999999"),
    ("a split the run left empty", _edit_json("config.json", lambda c: c["data"].update(val_fraction=0.0)),
     "encode run --data digits --split val --out c.npy",
     "autoencoders: error: the val split of digits has no rows (--val-fraction 0); use --split all, train, test"),
    ("a folder given as the config file", lambda d: (d / "configs").mkdir(), "train --config configs",
     "autoencoders: error: config file configs is a folder; give a TOML file, e.g. examples/fashion-sae-fast.toml"),
    ("a config file's kind section under another --model", _write("vae.toml", 'model = "vae"\n[vae]\nbeta = 4\n'),
     "train --config vae.toml --model dense",
     "autoencoders: error: --beta (section [vae]): options of --model vae, and this run's model is dense; leave "
     "them out, or add --model vae"),
    ("importance samples for a model that has no likelihood", None, "score run --data digits --out s.csv --iw-samples 5",
     "autoencoders: error: --iw-samples counts a VAE's importance samples; run holds a 'dense' model, scored by its "
     "reconstruction loss: leave it out"),
    ("DEC's options for k-means", None, "cluster run --lr 0.1 --epochs 3",
     "autoencoders: error: --epochs, --lr: options of DEC and IDEC, which train the encoder; --method kmeans trains "
     "nothing: give --method dec or idec, or leave them out"),
    ("training options for kNN", None, "classify run --method knn --epochs 3",
     "autoencoders: error: --epochs: settings of training, and --method knn trains nothing (it picks k on the "
     "validation labels); leave them out, or give a method that trains"),
    ("an unfreezing rate without unfreezing", None, "classify run --method frozen --unfreeze-lr 0.1",
     "autoencoders: error: --unfreeze-lr is the rate of the epochs --unfreeze-epochs adds: give it too"),
    ("a kind's option at a config file's top level", _write("beta.toml", "beta = 4\n"), "train --config beta.toml",
     "autoencoders: error: --beta (section [vae]): options of --model vae, and this run's model is dense; leave "
     "them out, or add --model vae"),
    ("units for a figure", None, "reconstruct run --data digits --out r.png --units data",
     "autoencoders: error: --units applies to a .npy; a .png shows the images as the model sees them"),
    ("a count of images for a .npy", None, "reconstruct run --data digits --out r.npy -n 5",
     "autoencoders: error: -n applies to a .png; a .npy holds every row (--split picks the rows of a split)"),
    ("an image shape other than the data's own", None, "train --model conv --layers 64,16 --image-shape 4,4,4",
     "autoencoders: error: --image-shape 4,4,4 differs from the shape the data's images have (1,8,8, as C,H,W); "
     "leave --image-shape out (also from the run's config.json): it shapes flat rows (.npy N×D, CSV)"),
    ("a CSV of semicolons", _write("t.csv", "a;b\n1;2\n3;4\n"), "train --data csv:t.csv",
     "autoencoders: error: t.csv separates its columns by ';'; only commas separate columns here: save it with "
     "commas between columns (and points in numbers)"),
    ("a latent method for another figure", None, "visualize run --what recon --method tsne",
     "autoencoders: error: --method tsne is how the latent figure maps codes to 2-D; give --what latent"),
    ("a run directory without its config.json", lambda d: (d / "run" / "config.json").unlink(), "evaluate run",
     "autoencoders: error: run/config.json is missing; the run directory is damaged (train it again)"),
    ("training that diverges", None,
     "train --layers 64,32,8 --optimizer sgd --lr 10 --loss mse --output-activation linear --epochs 3 --out div",
     "autoencoders: error: training diverged: the loss became … in epoch … of stage 'train'; train again with a "
     "lower --lr (now 10), and --overwrite to train into div again (its manifest records why it stopped)"),
]  # fmt: skip

# cases whose command writes on purpose before it fails (the record of why training stopped)
WRITES = {"training that diverges"}


def matches(line: str, expected: str) -> bool:
    """Whether ``line`` is ``expected`` with each "…" standing for any text."""
    parts = expected.split("…")
    if len(parts) == 1:
        return line == expected
    if not line.startswith(parts[0]) or not line.endswith(parts[-1]):
        return False
    at = len(parts[0])
    for part in parts[1:-1]:
        at = line.find(part, at)
        if at < 0:
            return False
        at += len(part)
    return at <= len(line) - len(parts[-1])


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


@pytest.mark.parametrize("what, setup, command, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_line(
    what, setup, command, expected, digits_run, tmp_path, monkeypatch, capsys
):
    shutil.copytree(digits_run.dir, tmp_path / "run")
    if setup is not None:
        setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(
            [*command.split(), "--quiet"] if command.split()[0] in ("train", "classify") else command.split()
        )
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert done.value.code == 2
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert matches(lines[0], expected), f"\n{lines[0]}\n{expected}"
    if what not in WRITES:
        assert _snapshot(tmp_path) == before  # nothing written, nothing half-written, nothing deleted


def test_the_table_has_at_least_thirty_distinct_inputs():
    assert len({c[0] for c in CASES}) == len(CASES) >= 30


def doc_table() -> str:
    """docs/bad-input.md as generated from CASES."""
    rows = [
        "# Bad input and what it says",
        "",
        "Every bad input below gets exactly this one line on stderr, exit status 2, no traceback",
        "(`autoencoders --debug COMMAND ...` shows one), and nothing written, half-written or deleted.",
        "`tests/test_bad_input.py` checks each row; `…` stands for text that varies. Commands run in a",
        "directory holding `run/`, a trained run on `digits`.",
        "",
        "| # | bad input | command | message |",
        "|---|---|---|---|",
    ]
    for i, (what, _, command, expected) in enumerate(CASES, 1):
        cell = expected.replace("|", "\\|")
        rows.append(f"| {i} | {what} | `autoencoders {command}` | {cell} |")
    return "\n".join(rows) + "\n"


def test_the_docs_show_this_table():
    assert DOC.read_text() == doc_table(), "regenerate it: python tests/test_bad_input.py"


if __name__ == "__main__":
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(doc_table())
    print(f"wrote {DOC}", file=sys.stderr)

"""The ``autoencoders`` command line's parser: each command and its flags."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from .experiments import EXPERIMENTS
from .fields import AT_LEAST_0, AT_LEAST_1, Range
from .flags import (
    Parser,
    add_config_options,
    add_fields,
    described,
    number,
    parse_ints,
    ranged,
)
from .options import (
    EXPORT_FORMATS,
    EXPORT_PARTS,
    FIGURE_KINDS,
    IW_SAMPLES,
    READING,
    SPLITS,
    ClassifyOptions,
    ClusterOptions,
    DataConfig,
    TrainConfig,
)
from .version import __version__

RUN_DIR = {"type": Path, "help": "a run directory written by 'autoencoders train'"}


DATA = "data spec, as for train: digits | fashion-mnist | mnist | idx:DIR | npy:FILE | csv:FILE | images:DIR"


def _reading_flags(parser: argparse.ArgumentParser, made_from: str | None = "the run") -> None:
    """The flags that say how --data is read (where not as the data ``made_from`` was)."""
    if made_from is None:  # data read afresh
        add_fields(parser.add_argument_group("how --data is read"), DataConfig, only=READING)
        return
    group = parser.add_argument_group(f"how --data is read, where not as {made_from} read its data")
    add_fields(group, DataConfig, only=READING, shown=f"as {made_from} read its data")


def _rows_command(
    sub, name: str, text: str, out: str, split: str = "all", source: str = "run_dir"
) -> argparse.ArgumentParser:
    """A command that reads rows of ``--data`` under a trained directory and writes ``--out``."""
    c = sub.add_parser(name, help=text)
    if source == "run_dir":
        c.add_argument("run_dir", **RUN_DIR)
    else:
        c.add_argument(source, type=Path, help="a directory written by 'autoencoders classify' or 'cluster'")
    c.add_argument("--data", required=True, help=DATA)
    c.add_argument("--out", required=True, type=Path, help=out)
    c.add_argument(
        "--split", default=split, choices=SPLITS, help=described("which rows, split as in training", split)
    )
    _reading_flags(c, "the run" if source == "run_dir" else "the classifier or clustering")
    return c


def _labels_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--labels",
        metavar="FILE.npy",
        help=described(
            "labels (class numbers or names) of the rows of --data, an npy: file; other data holds its own",
            "none",
        ),
    )


def _classify_parser(sub) -> None:
    """``classify``: its flags are the fields of ``ClassifyOptions``."""
    k = sub.add_parser(
        "classify",
        help="a classifier from a run's encoder and (few) labels: fine-tuned, frozen, kNN, "
        "semi-supervised or a ladder network",
    )
    k.add_argument("run_dir", **RUN_DIR)
    k.add_argument("--data", help=described("labelled " + DATA, "the run's own data"))
    _labels_flag(k)
    k.add_argument(
        "--out",
        type=Path,
        help="output directory, a classifier in it replaced; default: "
        "RUN_DIR/classifier-<amount>[-scratch][-<method>][-unfrozen<N>][-seed<S>][-<other data's name>]",
    )
    amount = k.add_mutually_exclusive_group()
    add_fields(k, ClassifyOptions, checked=True, place={"n_labels": amount, "labels_fraction": amount})
    _reading_flags(k)
    _device_flag(k, trains=True)
    _quiet_flag(k)


def _cluster_parser(sub) -> None:
    """``cluster``: its flags are the fields of ``ClusterOptions``."""
    c = sub.add_parser(
        "cluster",
        help="clusters of a run's rows by their codes: k-means, Gaussian mixture, DEC, IDEC, UMAP + mixture",
    )
    c.add_argument("run_dir", **RUN_DIR)
    c.add_argument("--data", help=described(DATA, "the run's own data"))
    _labels_flag(c)
    c.add_argument(
        "--split", default="all", choices=SPLITS, help=described("which rows, split as in training", "all")
    )
    c.add_argument(
        "--out",
        type=Path,
        help="output directory, a clustering in it replaced; default: "
        "RUN_DIR/cluster-<method>-<k>[-seed<S>][-<other data's name>][-<split>]",
    )
    add_fields(c, ClusterOptions, checked=True)
    _reading_flags(c)
    _device_flag(c, trains=True)
    _quiet_flag(c)


def _export_parser(sub) -> None:
    """``export``: a part of a run as an ONNX or TorchScript file."""
    x = sub.add_parser(
        "export",
        help="a run's encoder, decoder or autoencoder as ONNX or TorchScript, input scaling folded in",
    )
    x.add_argument("run_dir", **RUN_DIR)
    x.add_argument(
        "--format", default="onnx", choices=tuple(EXPORT_FORMATS), help=described("file format", "onnx")
    )
    x.add_argument(
        "--part", default="encoder", choices=EXPORT_PARTS, help=described("what the file computes", "encoder")
    )
    x.add_argument(
        "--out", required=True, type=Path, help="output file (.onnx or .pt); FILE.json describes it"
    )


def _train_parser(sub) -> None:
    """``train``: its flags are the fields of every config section."""
    t = sub.add_parser("train", help="train a model into a run directory (or --resume one)")
    t.add_argument("--config", type=Path, help="TOML file with any of the options below; flags override it")
    t.add_argument(
        "--print-config", action="store_true", help="print the full resolved config as TOML and exit"
    )
    t.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue an incomplete run from its last saved epoch, with its own settings",
    )
    t.add_argument("--out", help="run directory; default: runs/<timestamp>-<model>")
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in --out (deleted first); without it a non-empty --out is refused",
    )
    add_config_options(t)


def _quiet_flag(parser: argparse.ArgumentParser, what: str = "no progress bars or notes") -> None:
    # a display's choice, not the run's: a run trained with --quiet leaves later commands' bars on
    parser.add_argument("-q", "--quiet", action="store_true", help=what)


def _device_flag(parser: argparse.ArgumentParser, trains: bool = False) -> None:
    """``--device``, for the commands that compute with a run's model; those that train more on it
    (``trains``) take the run's own device unless told."""
    device = next(f for f in dataclasses.fields(TrainConfig) if f.name == "device")
    parser.add_argument(
        "--device",
        choices=device.metadata["choices"],  # as training's --device
        default=None if trains else "auto",
        help=described(
            "where the model computes: auto is a GPU when there is one",
            "the run's own --device" if trains else "auto",
        ),
    )


def _units_flag(parser: argparse.ArgumentParser) -> None:
    """--units: the units of the rows a command writes to a .npy."""
    parser.add_argument(
        "--units",
        choices=("scaled", "data"),
        default="scaled",
        help=described(
            "a .npy's units: the [0, 1] scaling the model works in, or the data's own units as the "
            "toolkit reads them, as an exported autoencoder gives them",
            "scaled",
        ),
    )


def _rows_parsers(sub) -> None:
    """The commands that read rows under a run: evaluate, encode, reconstruct, score."""
    e = sub.add_parser("evaluate", help="recompute a run's test metrics from its checkpoint (printed)")
    e.add_argument("run_dir", **RUN_DIR)
    e.add_argument("--data", help=described(DATA, "the run's own data"))
    _labels_flag(e)
    _reading_flags(e)
    _device_flag(e)
    _quiet_flag(e)

    en = _rows_command(
        sub,
        "encode",
        "write codes (.npy or .csv) of data under a trained run",
        "output file: codes (.npy), or a .csv: row (data_row with --split, and an id column's ids), "
        "code_0, code_1, ..., and label when known",
    )
    _labels_flag(en)
    _device_flag(en)
    c = _rows_command(
        sub,
        "reconstruct",
        "write reconstructions (.png or .npy) of data under a trained run",
        "output file: reconstructions (.png or .npy)",
    )
    c.add_argument(  # no default here: a .npy holds every row, and -n with one is refused
        "-n", "--n", type=number(int, AT_LEAST_1), help=described("images in a .png", 20, AT_LEAST_1)
    )
    _units_flag(c)
    _device_flag(c)
    a = _rows_command(
        sub,
        "score",
        "per-row anomaly scores (reconstruction loss beyond a perfect reconstruction's; VAE: NLL) as CSV",
        "output .csv: row, score (and label when known: its name where the run's classes have names)",
    )
    _labels_flag(a)
    a.add_argument(
        "--anomalous-class",
        metavar="CLASS",
        help=described(
            "also report ROC-AUC and average precision for telling this class (number or name) from "
            "the rest, beside PCA's reconstruction error",
            "not set",
        ),
    )
    ranged(a, "--iw-samples", int, AT_LEAST_1, IW_SAMPLES, "VAE: importance samples per row of the NLL score")
    _device_flag(a)
    _quiet_flag(a)


def _figure_parsers(sub) -> None:
    """The commands that draw: visualize, report, sample, interpolate."""
    v = sub.add_parser("visualize", help="a figure of what a run learned (PNG): " + ", ".join(FIGURE_KINDS))
    v.add_argument("run_dir", **RUN_DIR)
    v.add_argument(
        "--what",
        required=True,
        choices=tuple(FIGURE_KINDS),
        help="; ".join(f"{k}: {d}" for k, d in FIGURE_KINDS.items()),
    )
    v.add_argument("--out", type=Path, help=described("output .png", "RUN_DIR/<what>.png"))
    v.add_argument("--data", help=described(DATA + " (its test rows are shown)", "the run's own data"))
    _reading_flags(v)
    shown = (
        "how much each figure shows: recon and denoise n images, filters up to n×n, top and maximize n "
        "units, traverse n dimensions, samples 4n images, interpolate n steps; loss shows every "
        "epoch, latent up to 2,000 test codes"
    )
    ranged(v, ("-n", "--n"), int, AT_LEAST_1, 10, shown)
    v.add_argument(
        "--method",
        default="pca",
        choices=("pca", "tsne"),
        help=described("latent: how codes become 2-D", "pca"),
    )
    h = sub.add_parser("report", help="one self-contained HTML page of a run (train writes it too)")
    h.add_argument("run_dir", **RUN_DIR)
    h.add_argument("--out", type=Path, help=described("output .html", "RUN_DIR/report.html"))
    s = sub.add_parser(
        "sample", help="new images from a VAE's or AAE's prior (the decoder's means), as a PNG grid (or .npy)"
    )
    s.add_argument("run_dir", **RUN_DIR)
    ranged(s, ("-n", "--n"), int, AT_LEAST_1, 64, "number of samples")
    s.add_argument("--out", required=True, type=Path, help="output file: .png grid or .npy rows")
    ranged(s, "--seed", int, AT_LEAST_0, 0, "seed of the prior draws")
    _units_flag(s)

    i = _rows_command(
        sub,
        "interpolate",
        "decode along the line between two images' codes (PNG strip)",
        "output file: .png strip or .npy rows",
        split="test",
    )
    i.add_argument(
        "--pair",
        type=parse_ints,
        default=[0, 1],
        metavar="I,J",
        help=described("row indices, counted from 0 in the rows of --split", "0,1"),
    )
    ranged(i, "--steps", int, Range(2), 10, "decoded points on the line")
    _units_flag(i)

    p = _rows_command(
        sub,
        "predict",
        "class (or cluster) predictions of data under a classify (or cluster) output directory (CSV)",
        "output .csv: row, predicted class (a clustering's: cluster), probabilities (and the row's label "
        "when the data has labels)",
        source="clf_dir",
    )
    _labels_flag(p)
    _device_flag(p)


def _reproduce_parser(sub) -> None:
    """``reproduce``: a published experiment, run and compared."""
    q = sub.add_parser("reproduce", help="run a published experiment and compare: " + ", ".join(EXPERIMENTS))
    q.add_argument(
        "name", choices=tuple(EXPERIMENTS), help="; ".join(f"{k}: {e.title}" for k, e in EXPERIMENTS.items())
    )
    q.add_argument(
        "--data", default="mnist", help=described(DATA + " (published values are on MNIST)", "mnist")
    )
    q.add_argument(
        "--budget",
        default="quick",
        choices=("quick", "full"),
        help=described("quick: minutes; full: nearer the paper", "quick"),
    )
    q.add_argument("--out", help=described("run directory", "runs/reproduce-<name>-<budget>"))
    q.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    _reading_flags(q, None)
    _quiet_flag(q, "no progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The ``autoencoders`` argument parser."""
    p = Parser(prog="autoencoders", description="Train, evaluate and use classic autoencoders.")
    p.add_argument("--version", action="version", version=f"autoencoders {__version__}")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error, too")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _train_parser,
        _rows_parsers,
        _figure_parsers,
        _reproduce_parser,
        _classify_parser,
        _cluster_parser,
        _export_parser,
    ):
        add(sub)
    for command in sub.choices.values():
        command.root = p  # its errors name the other commands that take a mistyped option
    return p

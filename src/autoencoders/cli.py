"""Command line: argument parsing only; every command calls the Python API."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import csv
import dataclasses
import os
import re
import signal
import sys
import threading
import traceback
import types
import typing
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

from . import __version__, kinds
from .config import all_sections
from .errors import ToolkitWarning, UserError, out_of_resources
from .experiments import EXPERIMENTS
from .fields import AT_LEAST_0, AT_LEAST_1, Range, closest, option_hint
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

REQUIRED = "the following arguments are required: "  # argparse's words, which its error message starts with


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (not the whole usage), with the nearest name for a mistyped choice.
    Options are taken whole: an abbreviation would let --output mean --output-activation."""

    def __init__(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    def error(self, message: str) -> NoReturn:
        typo = re.search(r"invalid choice: '?([^' ]+?)'? \(choose from (.+)\)", message)
        unknown = re.match(r"unrecognized arguments: (--[\w-]+)", message)
        empty = re.match(r"argument (--[\w-]+).*: expected one argument", message)
        if typo and message.startswith("argument COMMAND") and (stray := self._stray()):
            message = f"unrecognized arguments: {stray}{self._whose(stray)}"  # --epochs 2 train: not "2"
        elif typo:
            message += closest(typo.group(1), [c.strip(" '") for c in typo.group(2).split(",")])
        elif unknown:
            message += self._whose(unknown.group(1))
        elif empty and (value := self._after(empty.group(1))) and re.match(r"-\.?\d", value):
            # argparse reads "-1,2" as an option (only a plain number such as -1 passes as a value)
            message += f" (a value that starts with '-' reads as an option: write {empty.group(1)}={value})"
        elif message.endswith("required: COMMAND"):  # the program alone: name what it does
            commands = next(a.choices for a in self._actions if isinstance(a, argparse._SubParsersAction))
            message = f"give a command: {', '.join(commands)}"
        elif message.startswith(REQUIRED) and (stray := self._stray()):
            # a mistyped option (--output for --out) may be why a required one is missing: name it,
            # and any other missing one, which the next try would otherwise be the first to hear of
            whose = self._whose(stray)
            missing = [m for m in message.removeprefix(REQUIRED).split(", ") if f"'{m}'" not in whose]
            message = f"unrecognized arguments: {stray}{whose}"
            if missing:
                message += f"; {REQUIRED}{', '.join(missing)}"
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")

    def _whose(self, option: str) -> str:
        """Where an unknown ``option`` belongs: the top level, other commands, or a near name."""
        root = getattr(self, "root", None)  # set on each command's parser
        if root is not None and option in _own_options(root):
            return f" (an option of {root.prog} itself: put it before the command)"
        owners = [o for o in _commands_taking(root or self, option) if o != f"'{self.prog}'"]
        if owners:
            where = "not of this command" if root is not None else "put it after the command"
            return f" (an option of {' and '.join(owners)}, {where})"
        return option_hint(option, _option_names(self))

    def _after(self, option: str) -> str | None:
        """The word after ``option`` on the command line (``words``, set by ``run``)."""
        words = getattr(self, "words", [])
        return next((after for word, after in zip(words, words[1:]) if word == option), None)

    def _stray(self) -> str | None:
        """The first option of the command line (``words``, set by ``run``) that neither this
        command's parser nor the top level takes."""
        known = _own_options(self) + _own_options(getattr(self, "root", self))
        for word in getattr(self, "words", []):
            option = word.split("=")[0]
            if option.startswith("--") and option not in known:
                return option
        return None


def _option_names(parser: argparse.ArgumentParser) -> list[str]:
    """Every long option of ``parser`` and its subcommands."""
    names = []
    for action in parser._actions:  # argparse offers no public way to list them
        names += [o for o in action.option_strings if o.startswith("--")]
        if isinstance(action, argparse._SubParsersAction):
            names += [n for sub in action.choices.values() for n in _option_names(sub)]
    return sorted(set(names))


def _own_options(parser: argparse.ArgumentParser) -> list[str]:
    """The options ``parser`` takes itself, not through a subcommand."""
    return [
        o for a in parser._actions if not isinstance(a, argparse._SubParsersAction) for o in a.option_strings
    ]


def _command(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The subcommand ``name`` of ``parser``."""
    return next(a.choices[name] for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _commands_taking(parser: argparse.ArgumentParser, option: str) -> list[str]:
    """The subcommands of ``parser`` that take ``option``, as 'prog command' names."""
    return [
        f"'{sub.prog}'"
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for sub in action.choices.values()
        if option in _option_names(sub)
    ]


def _number(kind: type, bounds: Range) -> Callable[[str], float]:
    """An argparse type: a ``kind`` number within ``bounds``."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"'{text}' is not a{'' if kind is int else ' '}{'n integer' if kind is int else 'number'}"
            ) from None
        if value not in bounds:
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


def _help(text: str, default: object, bounds: Range | None = None) -> str:
    """Help text ending in the default and the accepted range, the same way for every option."""
    return f"{text}; default: {default}" + (f", must be {bounds}" if bounds is not None else "")


def _parse_ints(text: str) -> list[int]:
    try:
        return [int(w) for w in text.replace(" ", "").split(",") if w]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of integers") from None


def _parse_names(text: str) -> list[str]:
    """Names separated by commas; a name holding a comma in double quotes, as in a CSV line."""
    names = next(csv.reader([text], skipinitialspace=True)) or [""]
    return [w.strip() for w in names]  # empty or repeated names are refused with the config


# how help spells the values of options whose name alone does not say it
METAVARS = {"image_shape": "C,H,W", "image_size": "H,W", "channels": "C,C,...", "labels": "FILE.npy"}


def _add_fields(
    parser,
    klass: type,
    checked: bool = False,
    place: dict | None = None,
    only: tuple[str, ...] = (),
    shown: str | None = None,
) -> None:
    """One flag per option field of ``klass`` (``only`` those named, where given), default None (only
    given flags override). ``checked``: numbers are checked against their range as they are parsed;
    ``place``: field name -> the group (e.g. mutually exclusive) its flag goes in; ``shown``: the
    default their help names, where not the field's own."""
    hints = typing.get_type_hints(klass)
    for f in dataclasses.fields(klass):
        if "help" not in f.metadata or (only and f.name not in only):
            continue
        target = (place or {}).get(f.name, parser)
        flag, bounds = "--" + f.name.replace("_", "-"), f.metadata["range"]
        short = ("-q",) if f.name == "quiet" else ()
        kind = hints[f.name]
        if isinstance(kind, types.UnionType):  # X | None
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        help_text = _help(f.metadata["help"], _show(f) if shown is None else shown, bounds)
        if kind is bool:
            target.add_argument(
                flag, *short, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        elif kind == list[str]:
            target.add_argument(flag, type=_parse_names, default=None, metavar="NAME,...", help=help_text)
        elif typing.get_origin(kind) is list:
            metavar = METAVARS.get(f.name, "W,W,...")
            target.add_argument(flag, type=_parse_ints, default=None, metavar=metavar, help=help_text)
        else:
            choices = tuple(kinds.KINDS) if f.name == "model" else f.metadata["choices"]
            parse = _number(kind, bounds) if checked and bounds is not None else kind
            target.add_argument(
                flag, type=parse, default=None, choices=choices, metavar=METAVARS.get(f.name), help=help_text
            )


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """A flag per config field, grouped by section."""
    for section, klass in all_sections().items():
        title = section if section in ("data", "model", "pretrain", "train") else f"--model {section}"
        _add_fields(parser.add_argument_group(title), klass)


def _show(f: dataclasses.Field) -> object:
    """A field's default as a user would type it."""
    if f.metadata["shown_default"] is not None:
        return f.metadata["shown_default"]
    if f.default_factory is not dataclasses.MISSING:
        return ",".join(map(str, f.default_factory()))
    return "not set" if f.default is None else f.default


RUN_DIR = {"type": Path, "help": "a run directory written by 'autoencoders train'"}
DATA = "data spec, as for train: digits | fashion-mnist | mnist | idx:DIR | npy:FILE | csv:FILE | images:DIR"


def _ranged(
    parser: argparse.ArgumentParser,
    flag: str | tuple[str, ...],
    kind: type,
    bounds: Range,
    default: object,
    text: str,
) -> None:
    """A numeric option (one or more spellings) checked against ``bounds``, its default and range in
    its help."""
    flags = (flag,) if isinstance(flag, str) else flag
    parser.add_argument(
        *flags, type=_number(kind, bounds), default=default, help=_help(text, default, bounds)
    )


def _reading_flags(parser: argparse.ArgumentParser, made_from: str | None = "the run") -> None:
    """The flags that say how --data is read (where not as the data ``made_from`` was)."""
    if made_from is None:  # data read afresh
        _add_fields(parser.add_argument_group("how --data is read"), DataConfig, only=READING)
        return
    group = parser.add_argument_group(f"how --data is read, where not as {made_from} read its data")
    _add_fields(group, DataConfig, only=READING, shown=f"as {made_from} read its data")


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
        "--split", default=split, choices=SPLITS, help=_help("which rows, split as in training", split)
    )
    _reading_flags(c, "the run" if source == "run_dir" else "the classifier or clustering")
    return c


def _labels_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--labels",
        metavar="FILE.npy",
        help=_help(
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
    k.add_argument("--data", help=_help("labelled " + DATA, "the run's own data"))
    _labels_flag(k)
    k.add_argument(
        "--out",
        type=Path,
        help="output directory, a classifier in it replaced; default: "
        "RUN_DIR/classifier-<amount>[-scratch][-<method>][-unfrozen<N>][-seed<S>][-<other data's name>]",
    )
    amount = k.add_mutually_exclusive_group()
    _add_fields(k, ClassifyOptions, checked=True, place={"n_labels": amount, "labels_fraction": amount})
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
    c.add_argument("--data", help=_help(DATA, "the run's own data"))
    _labels_flag(c)
    c.add_argument(
        "--split", default="all", choices=SPLITS, help=_help("which rows, split as in training", "all")
    )
    c.add_argument(
        "--out",
        type=Path,
        help="output directory, a clustering in it replaced; default: "
        "RUN_DIR/cluster-<method>-<k>[-seed<S>][-<other data's name>][-<split>]",
    )
    _add_fields(c, ClusterOptions, checked=True)
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
        "--format", default="onnx", choices=tuple(EXPORT_FORMATS), help=_help("file format", "onnx")
    )
    x.add_argument(
        "--part", default="encoder", choices=EXPORT_PARTS, help=_help("what the file computes", "encoder")
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
    _add_config_options(t)


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
        help=_help(
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
        help=_help(
            "a .npy's units: the [0, 1] scaling the model works in, or the data's own units as the "
            "toolkit reads them, as an exported autoencoder gives them",
            "scaled",
        ),
    )


def _rows_parsers(sub) -> None:
    """The commands that read rows under a run: evaluate, encode, reconstruct, score."""
    e = sub.add_parser("evaluate", help="recompute a run's test metrics from its checkpoint (printed)")
    e.add_argument("run_dir", **RUN_DIR)
    e.add_argument("--data", help=_help(DATA, "the run's own data"))
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
        "-n", "--n", type=_number(int, AT_LEAST_1), help=_help("images in a .png", 20, AT_LEAST_1)
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
        help=_help(
            "also report ROC-AUC and average precision for telling this class (number or name) from "
            "the rest, beside PCA's reconstruction error",
            "not set",
        ),
    )
    _ranged(
        a, "--iw-samples", int, AT_LEAST_1, IW_SAMPLES, "VAE: importance samples per row of the NLL score"
    )
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
    v.add_argument("--out", type=Path, help=_help("output .png", "RUN_DIR/<what>.png"))
    v.add_argument("--data", help=_help(DATA + " (its test rows are shown)", "the run's own data"))
    _reading_flags(v)
    shown = (
        "how much each figure shows: recon and denoise n images, filters up to n×n, top and maximize n "
        "units, traverse n dimensions, samples 4n images, interpolate n steps; loss shows every "
        "epoch, latent up to 2,000 test codes"
    )
    _ranged(v, ("-n", "--n"), int, AT_LEAST_1, 10, shown)
    v.add_argument(
        "--method", default="pca", choices=("pca", "tsne"), help=_help("latent: how codes become 2-D", "pca")
    )
    h = sub.add_parser("report", help="one self-contained HTML page of a run (train writes it too)")
    h.add_argument("run_dir", **RUN_DIR)
    h.add_argument("--out", type=Path, help=_help("output .html", "RUN_DIR/report.html"))
    s = sub.add_parser(
        "sample", help="new images from a VAE's or AAE's prior (the decoder's means), as a PNG grid (or .npy)"
    )
    s.add_argument("run_dir", **RUN_DIR)
    _ranged(s, ("-n", "--n"), int, AT_LEAST_1, 64, "number of samples")
    s.add_argument("--out", required=True, type=Path, help="output file: .png grid or .npy rows")
    _ranged(s, "--seed", int, AT_LEAST_0, 0, "seed of the prior draws")
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
        type=_parse_ints,
        default=[0, 1],
        metavar="I,J",
        help=_help("row indices, counted from 0 in the rows of --split", "0,1"),
    )
    _ranged(i, "--steps", int, Range(2), 10, "decoded points on the line")
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
    q.add_argument("--data", default="mnist", help=_help(DATA + " (published values are on MNIST)", "mnist"))
    q.add_argument(
        "--budget",
        default="quick",
        choices=("quick", "full"),
        help=_help("quick: minutes; full: nearer the paper", "quick"),
    )
    q.add_argument("--out", help=_help("run directory", "runs/reproduce-<name>-<budget>"))
    q.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    _reading_flags(q, None)
    _quiet_flag(q, "no progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The ``autoencoders`` argument parser."""
    p = _Parser(prog="autoencoders", description="Train, evaluate and use classic autoencoders.")
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


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    words = sys.argv[1:] if argv is None else argv
    for command in next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    ).choices.values():
        command.words = words  # a required option missing: a mistyped one may be why
    parser.words = words  # a command's option before the command: its value read as the command
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # refused where it was given: before the command, or by the command's own parser
        before = words[: words.index(args.command)] if args.command in words else []
        where = parser if any(w in before for w in unknown) else _command(parser, args.command)
        where.error(f"unrecognized arguments: {' '.join(unknown)}")
    # the commands load torch and the rest (1.2 s on 2 CPU cores): only once the arguments are
    # good, so that --help, --version and usage errors answer at once
    from .commands import handle

    handle(args)
    return 0


def _one_line(show: Callable[..., None]) -> Callable[..., None]:
    """``warnings.showwarning`` that shows this toolkit's warnings as one line, each once (a part that
    reads the same data again would warn again: Python forgets what it has shown whenever a block
    changes its filters), others by ``show``."""
    said: set[str] = set()

    def shown(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
        if issubclass(category, ToolkitWarning):
            if str(message) not in said:
                said.add(str(message))
                print(f"autoencoders: warning: {message}", file=sys.stderr)
        else:  # another library's: as Python shows it, where it was raised
            show(message, category, *args, **kwargs)

    return shown


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line on stderr and exit status 2; memory or disk
    space running out, one line and status 1."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    status = 1  # an unexpected error, whose traceback follows
    with _sigterm_as_interrupt() as terminated:
        try:
            with warnings.catch_warnings():
                if not debug:  # this toolkit's warnings are one line, as its errors are
                    warnings.showwarning = _one_line(warnings.showwarning)
                status = run(argv)
        except UserError as e:
            if debug:
                traceback.print_exc()
            print(f"autoencoders: error: {e}", file=sys.stderr)
            status = 2
        except KeyboardInterrupt as e:
            word = "terminated (SIGTERM)" if terminated else "interrupted"
            print(f"autoencoders: {word}" + (f"; {e}" if str(e) else ""), file=sys.stderr)
            status = 143 if terminated else 130
        except BrokenPipeError:  # what reads the output stopped early (``| head``): end as Unix tools do
            status = 141
        except (MemoryError, RuntimeError, OSError) as e:  # after BrokenPipeError, an OSError
            if (message := out_of_resources(e)) is None:
                raise
            if debug:
                traceback.print_exc()
            print(f"autoencoders: error: {message}", file=sys.stderr)
            status = 1
        finally:
            # only training joins a process group, once its modules are loaded: none to leave (and
            # nothing to load) otherwise
            if (distributed := sys.modules.get(f"{__package__}.runtime.distributed")) is not None:
                distributed.teardown(finished=status == 0)
    sys.exit(status)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[list[bool]]:
    """Within the block, SIGTERM (``kill``, ``timeout``, a batch scheduler's time limit) stops a
    command as Ctrl-C does, saying how to continue; the list yielded holds True once it came. Only
    the main thread can take signals: elsewhere SIGTERM keeps its own way."""
    came: list[bool] = []

    def stop(signum: int, frame: types.FrameType | None) -> None:
        came.append(True)
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield came
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield came
    finally:
        signal.signal(signal.SIGTERM, previous)


def console() -> None:
    """The ``autoencoders`` and ``ae`` commands: ``main`` in a process of its own, which ends as soon as
    its work is done, its output flushed and its exit handlers run. Python's own teardown would then
    free torch, scikit-learn and matplotlib module by module: 0.4–0.9 s of every command on a 2-core
    CPU, for nothing a finished process needs (every file is closed by then)."""
    try:
        main()
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        if not isinstance(e.code, int | None):  # a message, which Python would print
            print(e.code, file=sys.stderr)
    # what Python's own exit does before its teardown: stop thread pools and join the threads
    # still working, then run the exit handlers (both functions are the interpreter's own)
    threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: the process started with it closed
                stream.flush()
        except BrokenPipeError:  # as in ``main``: what reads the output stopped early
            status = status or 141
        except OSError:  # output that could not be written (a full disk) fails the command
            status = status or 1
    os._exit(status)

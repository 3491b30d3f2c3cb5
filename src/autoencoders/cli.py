"""Command line: argument parsing only; every command calls the Python API."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import traceback
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import numpy as np

from .config import Config, all_sections, closest, load_toml
from .errors import UserError
from .io.checkpoint import check_writable
from .options import AT_LEAST_0, AT_LEAST_1, CLASSIFY_METHODS, POSITIVE, Range


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (not the whole usage), with the nearest name for a mistyped choice."""

    def error(self, message: str) -> NoReturn:
        typo = re.search(r"invalid choice: '?([^' ]+?)'? \(choose from (.+)\)", message)
        unknown = re.match(r"unrecognized arguments: (--[\w-]+)", message)
        if typo:
            message += closest(typo.group(1), [c.strip(" '") for c in typo.group(2).split(",")])
        elif unknown and (owners := _commands_taking(self, unknown.group(1))):
            message += f" (an option of {' and '.join(owners)}, not of this command)"
        elif unknown:
            message += closest(unknown.group(1), _option_names(self))
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _option_names(parser: argparse.ArgumentParser) -> list[str]:
    """Every long option of ``parser`` and its subcommands."""
    names = []
    for action in parser._actions:  # argparse offers no public way to list them
        names += [o for o in action.option_strings if o.startswith("--")]
        if isinstance(action, argparse._SubParsersAction):
            names += [n for sub in action.choices.values() for n in _option_names(sub)]
    return sorted(set(names))


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


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One flag per config field; defaults are None so only given flags override."""
    from . import kinds

    for section, klass in all_sections().items():
        title = section if section in ("data", "model", "pretrain", "train") else f"--model {section}"
        group = parser.add_argument_group(title)
        hints = typing.get_type_hints(klass)
        for f in dataclasses.fields(klass):
            flag = "--" + f.name.replace("_", "-")
            kind = hints[f.name]
            if isinstance(kind, types.UnionType):  # X | None
                kind = next(a for a in typing.get_args(kind) if a is not type(None))
            help_text = _help(f.metadata["help"], _show(f), f.metadata["range"])
            if kind is bool:
                group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            elif typing.get_origin(kind) is list:
                group.add_argument(flag, type=_parse_ints, default=None, metavar="W,W,...", help=help_text)
            else:
                choices = tuple(kinds.KINDS) if f.name == "model" else f.metadata["choices"]
                group.add_argument(flag, type=kind, default=None, choices=choices, help=help_text)


def _show(f: dataclasses.Field) -> object:
    """A field's default as a user would type it."""
    if f.metadata["shown_default"] is not None:
        return f.metadata["shown_default"]
    if f.default_factory is not dataclasses.MISSING:
        return ",".join(map(str, f.default_factory()))
    return "not set" if f.default is None else f.default


RUN_DIR = {"type": Path, "help": "a run directory written by 'autoencoders train'"}
DATA = "data spec, as for train: digits | fashion-mnist | mnist | idx:DIR | npy:FILE | csv:FILE"
SPLITS = ("all", "train", "val", "test")
LABELS_FRACTION = Range(0, 1, low_open=True)


def _ranged(
    parser: argparse.ArgumentParser, flag: str, kind: type, bounds: Range, default, text: str
) -> None:
    """A numeric option checked against ``bounds``, its default and range in its help."""
    parser.add_argument(flag, type=_number(kind, bounds), default=default, help=_help(text, default, bounds))


def _rows_command(
    sub, name: str, text: str, out: str, split: str = "all", source: str = "run_dir"
) -> argparse.ArgumentParser:
    """A command that reads rows of ``--data`` under a trained directory and writes ``--out``."""
    c = sub.add_parser(name, help=text)
    if source == "run_dir":
        c.add_argument("run_dir", **RUN_DIR)
    else:
        c.add_argument(source, type=Path, help="a directory written by 'autoencoders classify'")
    c.add_argument("--data", required=True, help=DATA)
    c.add_argument("--out", required=True, type=Path, help=out)
    c.add_argument(
        "--split", default=split, choices=SPLITS, help=_help("which rows, split as in training", split)
    )
    return c


def build_parser() -> argparse.ArgumentParser:
    """The ``autoencoders`` argument parser."""
    p = _Parser(prog="autoencoders", description="Train, evaluate and use classic autoencoders.")
    from . import __version__

    p.add_argument("--version", action="version", version=f"autoencoders {__version__}")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error, too")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a model into a run directory (or --resume one)")
    t.add_argument("--config", type=Path, help="TOML file with any of the options below; flags override it")
    t.add_argument(
        "--print-config", action="store_true", help="print the full resolved config as TOML and exit"
    )
    t.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue an incomplete run from its last complete epoch, with its own settings",
    )
    t.add_argument("--out", help="run directory; default: runs/<timestamp>-<model>")
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in --out (deleted first); without it a non-empty --out is refused",
    )
    _add_config_options(t)

    e = sub.add_parser("evaluate", help="recompute a run's test metrics from its checkpoint (printed)")
    e.add_argument("run_dir", **RUN_DIR)
    e.add_argument("--data", help=_help(DATA, "the run's own data"))

    _rows_command(
        sub, "encode", "write codes (.npy) of data under a trained run", "output file: codes (.npy)"
    )
    c = _rows_command(
        sub,
        "reconstruct",
        "write reconstructions (.png or .npy) of data under a trained run",
        "output file: reconstructions (.png or .npy)",
    )
    _ranged(c, "--n", int, AT_LEAST_1, 20, "images in a .png")
    a = _rows_command(
        sub,
        "score",
        "per-row anomaly scores (reconstruction loss; VAE: NLL) as CSV",
        "output .csv: row, score (and label when known)",
    )
    a.add_argument(
        "--anomalous-class",
        type=int,
        help=_help(
            "also report ROC-AUC and average precision for telling this class from the rest, "
            "beside PCA's reconstruction error",
            "not set",
        ),
    )
    _ranged(a, "--iw-samples", int, AT_LEAST_1, 100, "VAE: importance samples per row of the NLL score")
    from .figures.run_figures import KINDS

    v = sub.add_parser("visualize", help="a figure of what a run learned (PNG): " + ", ".join(KINDS))
    v.add_argument("run_dir", **RUN_DIR)
    v.add_argument(
        "--what", required=True, choices=tuple(KINDS), help="; ".join(f"{k}: {d}" for k, d in KINDS.items())
    )
    v.add_argument("--out", type=Path, help=_help("output .png", "RUN_DIR/<what>.png"))
    v.add_argument("--data", help=_help(DATA + " (its test rows are shown)", "the run's own data"))
    _ranged(v, "--n", int, AT_LEAST_1, 10, "images, units or dimensions shown (filters: an n×n grid)")
    v.add_argument(
        "--method", default="pca", choices=("pca", "tsne"), help=_help("latent: how codes become 2-D", "pca")
    )
    from .reproduce import EXPERIMENTS

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
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    h = sub.add_parser("report", help="one self-contained HTML page of a run (train writes it too)")
    h.add_argument("run_dir", **RUN_DIR)
    h.add_argument("--out", type=Path, help=_help("output .html", "RUN_DIR/report.html"))
    s = sub.add_parser("sample", help="new images from a VAE's or AAE's prior, as a PNG grid (or .npy)")
    s.add_argument("run_dir", **RUN_DIR)
    _ranged(s, "-n", int, AT_LEAST_1, 64, "number of samples")
    s.add_argument("--out", required=True, type=Path, help="output file: .png grid or .npy rows")
    _ranged(s, "--seed", int, AT_LEAST_0, 0, "seed of the prior draws")

    i = _rows_command(
        sub,
        "interpolate",
        "decode along the line between two images' codes (PNG strip)",
        "output file: .png strip or .npy rows",
        split="test",
    )
    i.add_argument(
        "--pair", type=_parse_ints, default=[0, 1], metavar="I,J", help=_help("row indices", "0,1")
    )
    _ranged(i, "--steps", int, Range(2), 10, "decoded points on the line")

    _rows_command(
        sub,
        "predict",
        "class predictions of data under a classify output directory (CSV)",
        "output .csv: row, predicted class, probabilities",
        source="clf_dir",
    )

    k = sub.add_parser(
        "classify",
        help="a classifier from a run's encoder and (few) labels: fine-tuned, frozen, kNN, "
        "semi-supervised or a ladder network",
    )
    k.add_argument("run_dir", **RUN_DIR)
    k.add_argument(
        "--method",
        choices=CLASSIFY_METHODS,
        default="finetune",
        help="finetune: softmax head, whole encoder trained on the labels; frozen: head alone on the "
        "codes; knn: k nearest labelled codes; semi: labels' cross-entropy + reconstruction of every "
        "training row; ladder: a ladder network over the encoder's widths (default: finetune)",
    )
    amount = k.add_mutually_exclusive_group()
    amount.add_argument(
        "--n-labels",
        type=_number(int, AT_LEAST_1),
        help=_help("labelled training rows, the same number from every class", "all", AT_LEAST_1),
    )
    amount.add_argument(
        "--labels-fraction",
        type=_number(float, LABELS_FRACTION),
        help=_help(
            "fraction of the training labels (stratified, at least one per class)", "1", LABELS_FRACTION
        ),
    )
    k.add_argument("--data", help=_help("labelled " + DATA, "the run's own data"))
    k.add_argument(
        "--out",
        type=Path,
        help="output directory, a classifier in it replaced; default: RUN_DIR/classifier-<amount>[-<method>]",
    )
    k.add_argument("--from-scratch", action="store_true", help="re-initialise the encoder (baseline)")
    _ranged(
        k,
        "--unfreeze-epochs",
        int,
        AT_LEAST_0,
        0,
        "with --method frozen: then fine-tune encoder and head together this many epochs",
    )
    k.add_argument(
        "--unfreeze-lr",
        type=_number(float, POSITIVE),
        help=_help("learning rate of the unfrozen phase", "--lr / 10", POSITIVE),
    )
    _ranged(
        k,
        "--recon-weight",
        float,
        AT_LEAST_0,
        1.0,
        "--method semi: weight of the reconstruction loss per input feature",
    )
    _ranged(k, "--ladder-noise", float, AT_LEAST_0, 0.3, "--method ladder: std of the Gaussian noise")
    k.add_argument(
        "--epochs",
        type=_number(int, AT_LEAST_1),
        help=_help(
            "training epochs (semi, ladder: passes over every training row)", "1,000 updates", AT_LEAST_1
        ),
    )
    _ranged(k, "--lr", float, POSITIVE, 1e-3, "learning rate")
    k.add_argument(
        "--batch-size",
        type=_number(int, AT_LEAST_1),
        help=_help("mini-batch size", "the run's own", AT_LEAST_1),
    )
    k.add_argument(
        "--patience",
        type=_number(int, AT_LEAST_0),
        help=_help(
            "epochs without a better validation loss before stopping; 0 = never",
            "10 epochs or 100 updates",
            AT_LEAST_0,
        ),
    )
    _ranged(k, "--seed", int, AT_LEAST_0, 0, "seed of the label subset and the head")
    k.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _train_config(args: argparse.Namespace) -> Config:
    nested = load_toml(args.config) if args.config else {}
    cfg = Config.from_dict(nested)
    return cfg.replace(**_given_options(args))


def _given_options(args: argparse.Namespace) -> dict:
    skip = ("command", "config", "resume", "print_config", "overwrite", "debug")
    return {k: v for k, v in vars(args).items() if v is not None and k not in skip}


# the files each command writes, by --out suffix
OUTPUTS = {
    "encode": (".npy",),
    "reconstruct": (".png", ".npy"),
    "sample": (".png", ".npy"),
    "interpolate": (".png", ".npy"),
    "predict": (".csv",),
    "score": (".csv",),
}


def check_output_file(path: Path, suffixes: tuple[str, ...]) -> None:
    """Refuse an --out that cannot be written, before any work is done."""
    if path.is_dir():
        raise UserError(f"--out {path} is a directory; give a file name, e.g. {path / ('out' + suffixes[0])}")
    if path.suffix.lower() not in suffixes:
        kinds = " or ".join(suffixes)
        raise UserError(
            f"--out {path}: this command writes {kinds} files; give a file name ending in {kinds}"
        )
    check_writable(path.parent)


def _save_npy(path: Path, array: np.ndarray) -> None:
    from .io.checkpoint import write_npy

    write_npy(path, array)


def _save_csv(path: Path, predicted: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> None:
    """Row index, predicted class and one probability column per class, written atomically."""
    import csv
    import io

    from .io.checkpoint import write_text

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["row", "predicted", *(f"p_{c}" for c in classes)])
    for i, (label, p) in enumerate(zip(predicted, proba)):
        writer.writerow([i, label, *(f"{v:.6g}" for v in p)])
    write_text(path, buf.getvalue())


def _save_scores(path: Path, scores: np.ndarray, labels: np.ndarray | None) -> None:
    """Row index, anomaly score (and label), written atomically."""
    from .io.checkpoint import write_text

    lines = ["row,score" + (",label" if labels is not None else "")]
    for i, v in enumerate(scores):
        lines.append(f"{i},{v:.6g}" + (f",{labels[i]}" if labels is not None else ""))
    write_text(path, "\n".join(lines) + "\n")


def _save_rows(path: Path, rows: np.ndarray, shape: tuple | None, title: str, cols: int = 10) -> None:
    """A .png grid of ``rows`` or the rows themselves as .npy."""
    if path.suffix.lower() == ".png":
        from .figures.plots import image_grid

        image_grid(rows, path, shape, title, cols)
    else:
        _save_npy(path, rows)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    import autoencoders as api

    if args.command in OUTPUTS:
        check_output_file(args.out, OUTPUTS[args.command])

    if args.command == "train":
        if args.print_config:
            print(_train_config(args).to_toml(), end="")
            return 0
        if args.resume is not None:
            extra = set(_given_options(args)) - {"quiet"} | ({"overwrite"} if args.overwrite else set())
            if args.config or extra:
                raise UserError(
                    "--resume continues a run with its own settings; leave out "
                    + ", ".join(sorted(f"--{k.replace('_', '-')}" for k in extra) or ["--config"])
                )
            result = api.resume(args.resume, args.quiet)
        else:
            result = api.train(_train_config(args), overwrite=args.overwrite)
        m = result.metrics
        if not m:  # a torchrun rank other than 0: rank 0 reports
            return 0
        print(f"run directory: {result.dir}")
        print(
            f"test SSE/image {m['test_sse_per_image']:.3f} (PCA-{m['code_size']}: "
            f"{m['pca_sse_per_image']:.3f}), test MSE {m['test_mse']:.5f}, "
            f"{m['train_seconds']:.1f} s, {m['samples_per_second']:.0f} samples/s"
            + (f", linear probe {m['linear_probe_accuracy']:.3f}" if "linear_probe_accuracy" in m else "")
            + (
                f", test NLL {m['test_nll']:.2f} nats (−ELBO {m['test_neg_elbo']:.2f})"
                if "test_nll" in m
                else ""
            )
        )
    elif args.command == "evaluate":
        print(json.dumps(api.evaluate_run(args.run_dir, args.data), indent=2))
    elif args.command == "encode":
        codes = api.encode(args.run_dir, args.data, args.split)
        _save_npy(args.out, codes)
        print(f"wrote {codes.shape[0]} codes of size {codes.shape[1]} to {args.out}")
    elif args.command == "reconstruct":
        x, recon, shape = api.reconstruct(args.run_dir, args.data, args.split)
        if args.out.suffix.lower() == ".png":
            from .figures.plots import reconstruction_grid

            reconstruction_grid(x[: args.n], recon[: args.n], args.out, shape)
        else:
            _save_npy(args.out, recon)
        shown = (
            f"the first {min(args.n, len(x))} of {len(x)} rows"
            if args.out.suffix.lower() == ".png"
            else f"{len(x)} rows"
        )
        print(f"wrote reconstructions of {shown} to {args.out}")
    elif args.command == "sample":
        rows, shape = api.sample(args.run_dir, args.n, args.seed)
        _save_rows(args.out, rows, shape, f"{args.n} samples from the prior")
        print(f"wrote {args.n} samples to {args.out}")
    elif args.command == "interpolate":
        if len(args.pair) != 2:
            raise UserError(f"--pair needs two row indices, e.g. 0,1; got {args.pair}")
        rows, shape = api.interpolate(args.run_dir, args.data, tuple(args.pair), args.steps, args.split)
        title = f"rows {args.pair[0]} → {args.pair[1]}: inputs at the ends, decoded codes between"
        _save_rows(args.out, rows, shape, title, cols=len(rows))
        print(f"wrote an interpolation of {args.steps} steps to {args.out}")
    elif args.command == "score":
        scores, labels = scored = api.score(args.run_dir, args.data, args.split, args.iw_samples)
        _save_scores(args.out, scores, labels)
        print(f"wrote anomaly scores of {len(scores)} rows to {args.out}")
        if args.anomalous_class is not None:
            m = api.anomaly_scores_against_pca(
                args.run_dir, args.data, args.anomalous_class, args.split, args.iw_samples, scored
            )
            print(
                f"class {args.anomalous_class} as anomalies ({m['anomalies']} of {m['rows']} rows): "
                f"ROC-AUC {m['roc_auc']:.4f} (PCA: {m['pca_roc_auc']:.4f}), "
                f"average precision {m['average_precision']:.4f} (PCA: {m['pca_average_precision']:.4f})"
            )
    elif args.command == "visualize":
        from .figures.run_figures import visualize

        if args.out is not None:
            check_output_file(args.out, (".png",))
        path = visualize(args.run_dir, args.what, args.out, args.data, args.n, args.method)
        print(f"wrote {path}")
    elif args.command == "reproduce":
        from .reproduce import reproduce

        print(
            reproduce(args.name, args.data, args.budget, args.out, args.overwrite, quiet=args.quiet)[1],
            end="",
        )
    elif args.command == "report":
        from .figures.report import write_report

        if args.out is not None:
            check_output_file(args.out, (".html",))
        print(f"wrote {write_report(args.run_dir, args.out)}")
    elif args.command == "predict":
        predicted, proba, classes = api.predict(args.clf_dir, args.data, args.split)
        _save_csv(args.out, predicted, proba, classes)
        print(f"wrote predictions of {len(predicted)} rows to {args.out}")
    elif args.command == "classify":
        given = {k: getattr(args, k) for k in ("epochs", "lr", "batch_size", "patience", "seed", "quiet")}
        result = api.classify(
            args.run_dir,
            args.labels_fraction,
            args.out,
            args.from_scratch,
            args.data,
            args.method,
            args.n_labels,
            args.unfreeze_epochs,
            args.unfreeze_lr,
            args.recon_weight,
            args.ladder_noise,
            **{k: v for k, v in given.items() if v is not None},
        )
        m = result.metrics
        print(
            f"test accuracy {m['test_accuracy']:.4f} ({m['method']}) with {m['labelled_examples']} labelled "
            f"examples ({100 * m['labels_used_fraction']:.2f} % of the training labels) and "
            f"{m['validation_labels']} for validation, {m['train_seconds']:.1f} s"
        )
    return 0


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line on stderr and exit status 2."""
    from .runtime.distributed import teardown

    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        status = run(argv)
    except UserError as e:
        if debug:
            traceback.print_exc()
        print(f"autoencoders: error: {e}", file=sys.stderr)
        status = 2
    except KeyboardInterrupt as e:
        print("autoencoders: interrupted" + (f"; {e}" if str(e) else ""), file=sys.stderr)
        status = 130
    finally:
        teardown()
    sys.exit(status)

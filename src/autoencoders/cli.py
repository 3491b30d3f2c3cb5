"""Command line: argument parsing only; every command calls the Python API."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from pathlib import Path

import numpy as np

from .config import Config, all_sections, load_toml
from .errors import UserError


def _parse_ints(text: str) -> list[int]:
    try:
        return [int(w) for w in text.replace(" ", "").split(",") if w]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of integers") from None


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One flag per config field; defaults are None so only given flags override."""
    from . import registry

    for section, klass in all_sections().items():
        title = section if section in ("data", "model", "pretrain", "train") else f"--model {section}"
        group = parser.add_argument_group(title)
        hints = typing.get_type_hints(klass)
        for f in dataclasses.fields(klass):
            flag = "--" + f.name.replace("_", "-")
            kind = hints[f.name]
            if isinstance(kind, types.UnionType):  # X | None
                kind = next(a for a in typing.get_args(kind) if a is not type(None))
            help_text = f"{f.metadata['help']} (default: {_show(f.default, f)})"
            if kind is bool:
                group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            elif typing.get_origin(kind) is list:
                group.add_argument(flag, type=_parse_ints, default=None, metavar="W,W,...", help=help_text)
            else:
                choices = tuple(registry.kinds()) if f.name == "model" else f.metadata["choices"]
                group.add_argument(flag, type=kind, default=None, choices=choices, help=help_text)


def _show(default: object, f: dataclasses.Field) -> object:
    if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return default


def build_parser() -> argparse.ArgumentParser:
    """The ``autoencoders`` argument parser."""
    p = argparse.ArgumentParser(
        prog="autoencoders", description="Train, evaluate and use classic autoencoders."
    )
    from . import __version__

    p.add_argument("--version", action="version", version=f"autoencoders {__version__}")
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
    t.add_argument("--out", help="run directory (default: runs/<timestamp>-<model>)")
    _add_config_options(t)

    e = sub.add_parser("evaluate", help="recompute a run's test metrics from its checkpoint")
    e.add_argument("run_dir", type=Path)
    e.add_argument("--data", help="evaluate on this data instead of the run's own")

    for name, what in (("encode", "codes (.npy)"), ("reconstruct", "reconstructions (.png or .npy)")):
        c = sub.add_parser(name, help=f"write {what} of data under a trained run")
        c.add_argument("run_dir", type=Path)
        c.add_argument("--data", required=True, help="data spec, as for train")
        c.add_argument("--out", required=True, type=Path, help=f"output file: {what}")
        c.add_argument(
            "--split",
            default="all",
            choices=("all", "train", "val", "test"),
            help="which rows: all (default) or one split as in training",
        )
        if name == "reconstruct":
            c.add_argument("--n", type=int, default=20, help="images shown in a .png (default 20)")
    s = sub.add_parser("sample", help="new images from a VAE's prior, as a PNG grid (or .npy)")
    s.add_argument("run_dir", type=Path)
    s.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    s.add_argument("--out", required=True, type=Path, help="output file: .png grid or .npy rows")
    s.add_argument("--seed", type=int, default=0, help="seed of the prior draws (default 0)")

    i = sub.add_parser("interpolate", help="decode along the line between two images' codes (PNG strip)")
    i.add_argument("run_dir", type=Path)
    i.add_argument("--data", required=True, help="data spec, as for train")
    i.add_argument("--out", required=True, type=Path, help="output file: .png strip or .npy rows")
    i.add_argument(
        "--pair", type=_parse_ints, default=[0, 1], metavar="I,J", help="row indices (default 0,1)"
    )
    i.add_argument("--steps", type=int, default=10, help="decoded points on the line (default 10)")
    i.add_argument(
        "--split",
        default="test",
        choices=("all", "train", "val", "test"),
        help="rows to pick from (default test)",
    )

    r = sub.add_parser("predict", help="class predictions of data under a classify output directory (CSV)")
    r.add_argument("clf_dir", type=Path, help="a directory written by 'autoencoders classify'")
    r.add_argument("--data", required=True, help="data spec, as for train")
    r.add_argument("--out", required=True, type=Path, help="output .csv: row, predicted class, probabilities")
    r.add_argument(
        "--split", default="all", choices=("all", "train", "val", "test"), help="which rows (default all)"
    )

    k = sub.add_parser("classify", help="fine-tune a run's encoder with a softmax head on labels")
    k.add_argument("run_dir", type=Path)
    k.add_argument("--labels-fraction", type=float, default=1.0, help="fraction of training labels used")
    k.add_argument("--data", help="labelled data spec (default: the run's own)")
    k.add_argument("--out", type=Path, help="output directory (default: RUN_DIR/classifier-<fraction>)")
    k.add_argument("--from-scratch", action="store_true", help="re-initialise the encoder (baseline)")
    k.add_argument(
        "--freeze-encoder", action="store_true", help="train the head alone on the pretrained codes"
    )
    for flag, kind, default in (("--epochs", int, 50), ("--lr", float, 1e-3), ("--batch-size", int, None)):
        k.add_argument(flag, type=kind, default=default, help=f"(default: {default or 'as in the run'})")
    k.add_argument("--seed", type=int, default=0, help="seed of the label subset and the head (default: 0)")
    k.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _train_config(args: argparse.Namespace) -> Config:
    nested = load_toml(args.config) if args.config else {}
    cfg = Config.from_dict(nested)
    return cfg.replace(**_given_options(args))


def _given_options(args: argparse.Namespace) -> dict:
    skip = ("command", "config", "resume", "print_config")
    return {k: v for k, v in vars(args).items() if v is not None and k not in skip}


def _save_npy(path: Path, array: np.ndarray, png_too: bool = False) -> None:
    from .checkpoint import write_npy

    if path.suffix != ".npy":
        raise UserError(f"--out {path} must end in {'.png or ' if png_too else ''}.npy")
    write_npy(path, array)


def _save_csv(path: Path, predicted: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> None:
    """Row index, predicted class and one probability column per class, written atomically."""
    import csv
    import io

    from .checkpoint import write_text

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["row", "predicted", *(f"p_{c}" for c in classes)])
    for i, (label, p) in enumerate(zip(predicted, proba)):
        writer.writerow([i, label, *(f"{v:.6g}" for v in p)])
    write_text(path, buf.getvalue())


def _save_rows(path: Path, rows: np.ndarray, shape: tuple | None, title: str, cols: int = 10) -> None:
    """A .png grid of ``rows`` or the rows themselves as .npy."""
    if path.suffix == ".png":
        from .viz import image_grid

        image_grid(rows, path, shape, title, cols)
    else:
        _save_npy(path, rows, png_too=True)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    import autoencoders as api

    if args.command == "train":
        if args.print_config:
            print(_train_config(args).to_toml(), end="")
            return 0
        if args.resume is not None:
            extra = set(_given_options(args)) - {"quiet"}
            if args.config or extra:
                raise UserError(
                    "--resume continues a run with its own settings; leave out "
                    + ", ".join(sorted(f"--{k.replace('_', '-')}" for k in extra) or ["--config"])
                )
            result = api.resume(args.resume, args.quiet)
        else:
            result = api.train(_train_config(args))
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
        if args.out.suffix == ".png":
            from .viz import reconstruction_grid

            reconstruction_grid(x[: args.n], recon[: args.n], args.out, shape)
        else:
            _save_npy(args.out, recon)
        print(f"wrote reconstructions of {len(x)} rows to {args.out}")
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
    elif args.command == "predict":
        if args.out.suffix != ".csv":
            raise UserError(f"--out {args.out} must end in .csv")
        predicted, proba, classes = api.predict(args.clf_dir, args.data, args.split)
        _save_csv(args.out, predicted, proba, classes)
        print(f"wrote predictions of {len(predicted)} rows to {args.out}")
    elif args.command == "classify":
        given = {k: getattr(args, k) for k in ("epochs", "lr", "batch_size", "seed", "quiet")}
        result = api.classify(
            args.run_dir,
            args.labels_fraction,
            args.out,
            args.from_scratch,
            args.data,
            args.freeze_encoder,
            **{k: v for k, v in given.items() if v is not None},
        )
        m = result.metrics
        print(
            f"test accuracy {m['test_accuracy']:.4f} with {m['labelled_examples']} labelled examples "
            f"({100 * m['labels_used_fraction']:.2f} % of the training labels), {m['train_seconds']:.1f} s"
        )
    return 0


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line on stderr and exit status 2."""
    from .distributed import teardown

    try:
        status = run(argv)
    except UserError as e:
        print(f"autoencoders: error: {e}", file=sys.stderr)
        status = 2
    except KeyboardInterrupt:
        print("autoencoders: interrupted", file=sys.stderr)
        status = 130
    finally:
        teardown()
    sys.exit(status)

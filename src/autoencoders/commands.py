"""What each command does once its flags are parsed: a table of handlers over the Python API, and
the files they write (each atomically, its --out checked before any work).

Each handler imports what it computes with when it runs: torch and the rest take over a second to
load, and a flag's value refused by the config or by the command's own first checks (``--threads
0``, a bad ``--config`` file, ``--resume`` with training flags, an ``--out`` of the wrong kind), or
``train --print-config``, need none of it."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Config, load_toml
from .errors import UserError
from .fields import new_settings_refused
from .options import MOST_IN_A_PNG, READING, ClassifyOptions, ClusterOptions

if TYPE_CHECKING:
    import numpy as np

# the files each command writes, by --out suffix
OUTPUTS = {
    "encode": (".npy", ".csv"),
    "reconstruct": (".png", ".npy"),
    "sample": (".png", ".npy"),
    "interpolate": (".png", ".npy"),
    "predict": (".csv",),
    "score": (".csv",),
}


def _seconds(seconds: float) -> str:
    """A time in a summary line: tenths of a second, and two digits below a tenth (not "0.0 s")."""
    return f"{seconds:.1f} s" if seconds >= 0.1 else f"{seconds:.2g} s"


def check_output_file(path: Path, suffixes: tuple[str, ...]) -> None:
    """Refuse an --out that cannot be written, before any work is done."""
    if path.is_dir():
        raise UserError(f"--out {path} is a directory; give a file name, e.g. {path / ('out' + suffixes[0])}")
    if path.suffix.lower() not in suffixes:
        kinds = " or ".join(suffixes)
        raise UserError(
            f"--out {path}: this command writes {kinds} files; give a file name ending in {kinds}"
        )
    from .io.checkpoint import check_writable

    check_writable(path.parent)


def _save_npy(path: Path, array: np.ndarray) -> None:
    from .io.checkpoint import write_npy

    write_npy(path, array)


def _save_csv(
    path: Path,
    predicted: np.ndarray,
    proba: np.ndarray,
    classes: np.ndarray,
    labels: np.ndarray | None,
    column: str,
    said: dict[str, np.ndarray],
) -> None:
    """Row index, what ``said`` says of each row (its place in the data, its id), predicted class (in
    ``column``), one probability column per class (and the row's own label), written atomically."""
    from .io import rundir

    head = [column, *(f"p_{c}" for c in classes)] + (["label"] if labels is not None else [])
    cells = (
        [label, *(f"{v:.6g}" for v in p)] + ([] if labels is None else [labels[i]])
        for i, (label, p) in enumerate(zip(predicted, proba))
    )
    rundir.write_rows(path, head, cells, said)


def _save_scores(
    path: Path, scores: np.ndarray, labels: np.ndarray | None, said: dict[str, np.ndarray]
) -> None:
    """Row index, what ``said`` says of each row (its place in the data, its id), anomaly score (and
    label), written atomically."""
    from .io import rundir

    head = ["score"] + (["label"] if labels is not None else [])
    cells = ([f"{v:.6g}", *([] if labels is None else [labels[i]])] for i, v in enumerate(scores))
    rundir.write_rows(path, head, cells, said)


def _save_rows(
    path: Path, run_dir: Path, rows: np.ndarray, shape: tuple | None, title: str, cols: int | None = None
) -> None:
    """A .png grid of ``rows`` (a table's named by the columns of the run in ``run_dir``) or the
    rows themselves as .npy."""
    if path.suffix.lower() == ".png":
        from .figures.plots import image_grid
        from .io import rundir

        columns = rundir.read_config(Path(run_dir) / rundir.CONFIG).get("data", {}).get("columns")
        image_grid(rows, path, shape, title, cols, features=columns)
    else:
        _save_npy(path, rows)


def train_config(args: argparse.Namespace) -> Config:
    """The run's config: the --config file, then the flags given."""
    nested = load_toml(args.config) if args.config else {}
    given = given_options(args)
    if "model" in given:  # the file's sections of another kind are refused, not dropped
        nested.setdefault("model", {})["model"] = given["model"]
    return Config.from_dict(nested).replace(**given)


def given_options(args: argparse.Namespace) -> dict:
    """The config options among the flags given (not the command's own)."""
    skip = ("command", "config", "resume", "print_config", "overwrite", "debug")
    return {k: v for k, v in vars(args).items() if v is not None and k not in skip}


def reading(args: argparse.Namespace) -> dict:
    """How --data is read, among the flags given (where not as the run's own data was)."""
    return {k: getattr(args, k) for k in READING if getattr(args, k, None) is not None}


def _train(args: argparse.Namespace) -> None:
    if args.resume is not None:
        extra = set(given_options(args)) - {"quiet", "save_every"} | (
            {"overwrite"} if args.overwrite else set()
        )
        if args.config or extra:
            raise new_settings_refused(sorted(extra) or ["config"])
        from .run import resume, resumed_config

        if args.print_config:
            print(resumed_config(args.resume, args.quiet, args.save_every).to_toml(), end="")
            return
        result = resume(args.resume, args.quiet, args.save_every)
    else:
        cfg = train_config(args)
        if args.print_config:
            print(cfg.to_toml(), end="")
            return
        from .run import train

        result = train(cfg, overwrite=args.overwrite)
    m = result.metrics
    if not m:  # a torchrun rank other than 0: rank 0 reports
        return
    from .data.shapes import sample_noun
    from .eval.metrics import pca_name

    print(f"run directory: {result.dir}")
    row = sample_noun(result.model.input_shape)
    print(
        f"test SSE/{row} {m['test_sse_per_image']:.3f} ({pca_name(m)}: "
        f"{m['pca_sse_per_image']:.3f}), test MSE {m['test_mse']:.5f}, "
        f"{_seconds(m['train_seconds'])}"
        + (f", {m['samples_per_second']:.0f} samples/s" if m.get("epochs_run") else "")  # none: no epochs
        + _probe(m, row)
        + (
            f", test NLL {m['test_nll']:.2f}{_standard_error(m)} nats on {_nll_rows(m, row)} "
            f"({m['iw_samples']} importance samples each; its bound, −ELBO, "
            + (
                f"{m['nll_rows_neg_elbo']:.2f} on them, {m['test_neg_elbo']:.2f} on the whole test split)"
                if "nll_rows_neg_elbo" in m
                else f"{m['test_neg_elbo']:.2f})"
            )
            if "test_nll" in m
            else ""
        )
        + (f", {m['active_units']} of {m['code_size']} code units active" if "active_units" in m else "")
        + (
            f", {m['replayed_batches']} of {m['train_batches']} batches replayed as CUDA graphs"
            if "replayed_batches" in m
            else ""
        )
        + (
            f"; without pretraining (the same stack from random init): test SSE/{row} "
            f"{m['no_pretraining_sse_per_image']:.3f}"
            + (
                f", linear probe {m['no_pretraining_linear_probe_accuracy']:.3f}"
                if "no_pretraining_linear_probe_accuracy" in m
                else ""
            )
            if "no_pretraining_sse_per_image" in m
            else ""
        )
    )


def _standard_error(m: dict) -> str:
    """`` ± `` the test NLL's standard error, where it has one (of two rows or more)."""
    return f" ± {m['test_nll_se']:.2f}" if "test_nll_se" in m else ""


def _nll_rows(m: dict, row: str) -> str:
    """How many test rows the NLL was measured on, in words."""
    return f"{m['nll_rows']} test {row}{'s' * (m['nll_rows'] != 1)}"


def _probe(m: dict, row: str) -> str:
    """The summary's linear probe accuracy, beside PCA's and the raw rows' (an image's pixels) where
    they were measured, and that of always guessing the commonest class where it is high."""
    if "linear_probe_accuracy" not in m:
        return ""
    from .eval.metrics import pca_name

    text = f", linear probe {m['linear_probe_accuracy']:.3f}"
    if "pca_linear_probe_accuracy" in m and "pixels_linear_probe_accuracy" in m:
        text += (
            f" ({pca_name(m)}: {m['pca_linear_probe_accuracy']:.3f}, "
            f"{'pixels' if row == 'image' else 'raw features'}: {m['pixels_linear_probe_accuracy']:.3f})"
        )
    if m.get("majority_class_accuracy", 0) >= 0.5:  # imbalanced classes: an accuracy to beat, said
        text += f", always the commonest class: {m['majority_class_accuracy']:.3f}"
    return text


def _evaluate(args: argparse.Namespace) -> None:
    from . import api

    metrics = api.evaluate_run(args.run_dir, args.data, args.labels, args.device, args.quiet, **reading(args))
    print(json.dumps(metrics, indent=2))


def _encode(args: argparse.Namespace) -> None:
    from . import api

    if args.out.suffix.lower() == ".csv":
        from .io import rundir

        codes, labels, said = api.encoded_rows(
            args.run_dir, args.data, args.split, args.device, args.labels, **reading(args)
        )
        head = [f"code_{j}" for j in range(codes.shape[1])] + (["label"] if labels is not None else [])
        cells = (  # 9 digits: a float32 code read back is the same number
            [f"{v:.9g}" for v in code] + ([] if labels is None else [labels[i]])
            for i, code in enumerate(codes)
        )
        rundir.write_rows(args.out, head, cells, said)
    elif args.labels is not None:
        raise UserError(
            "--labels goes with a .csv, which writes each row's label beside its codes; a .npy holds "
            "codes alone"
        )
    else:
        codes = api.encode(args.run_dir, args.data, args.split, args.device, **reading(args))
        _save_npy(args.out, codes)
    print(f"wrote {codes.shape[0]} codes of size {codes.shape[1]} to {args.out}")


def _check_units(args: argparse.Namespace) -> bool:
    """Whether the command writes a .png, whose images are as the model sees them (--units refused)."""
    png = args.out.suffix.lower() == ".png"
    if png and args.units != "scaled":
        raise UserError("--units applies to a .npy; a .png shows the images as the model sees them")
    return png


def _reconstruct(args: argparse.Namespace) -> None:
    png = _check_units(args)
    if not png and args.n is not None:
        raise UserError("-n applies to a .png; a .npy holds every row (--split picks the rows of a split)")
    n = args.n or 20
    from . import api
    from .io import rundir

    rows, parts, shape = api.reconstructed_parts(
        args.run_dir, args.data, args.split, args.units, args.device, **reading(args)
    )
    if png:  # a table's columns named as the run recorded them
        x, recon = next(parts)  # the first part holds the first rows, as many as a .png shows
        cfg = Config.load_json(Path(args.run_dir) / rundir.CONFIG)
        split = "" if args.split == "all" else f"{args.split} "
        # a table's figure says rows for images, as every figure's title does
        title = f"the first {min(n, len(x))} {split}images of {args.data} and their reconstructions"
        from .figures.plots import reconstruction_grid

        reconstruction_grid(x[:n], recon[:n], args.out, shape, title, cfg.data.columns)
    else:
        from .io.checkpoint import write_npy_parts

        write_npy_parts(args.out, rows, (recon for _, recon in parts))
    shown = f"the first {min(n, rows)} of {rows} rows" if png else f"{rows} rows"
    print(f"wrote reconstructions of {shown} to {args.out}")


def _sample(args: argparse.Namespace) -> None:
    if _check_units(args) and args.n > MOST_IN_A_PNG:
        raise UserError(
            f"-n {args.n}: a .png holds at most {MOST_IN_A_PNG:,} images; write a .npy for more samples"
        )
    from . import api

    rows, shape = api.sample(args.run_dir, args.n, args.seed, args.units)
    _save_rows(args.out, args.run_dir, rows, shape, f"{args.n} samples from the prior (decoded means)")
    print(f"wrote {args.n} samples to {args.out}")


def _interpolate(args: argparse.Namespace) -> None:
    if len(args.pair) != 2:
        raise UserError(f"--pair must hold two row indices, e.g. 0,1; got {args.pair}")
    if _check_units(args) and args.steps + 2 > MOST_IN_A_PNG:
        raise UserError(
            f"--steps {args.steps}: a .png holds at most {MOST_IN_A_PNG:,} images, the 2 rows and the "
            "points between; write a .npy for more"
        )
    from . import api

    rows, shape = api.interpolate(
        args.run_dir, args.data, tuple(args.pair), args.steps, args.split, args.units, **reading(args)
    )
    which = "" if args.split == "all" else f"{args.split} "  # as visualize names them
    title = f"{which}rows {args.pair[0]} → {args.pair[1]}: inputs at the ends, decoded codes between"
    _save_rows(args.out, args.run_dir, rows, shape, title, cols=len(rows))
    print(f"wrote the 2 rows and {args.steps} decoded points between them ({len(rows)} rows) to {args.out}")


def _score(args: argparse.Namespace) -> None:
    from . import scoring

    scores, labels, said = scoring.scored_rows(
        args.run_dir,
        args.data,
        args.split,
        args.iw_samples,
        args.labels,
        args.device,
        args.quiet,
        **reading(args),
    )
    m = None
    if args.anomalous_class is not None:  # checked before the scores are written
        m = scoring.anomaly_scores_against_pca(
            args.run_dir,
            args.data,
            args.anomalous_class,
            args.split,
            args.iw_samples,
            (scores, labels),
            args.labels,
            device=args.device,
            **reading(args),
        )
    _save_scores(args.out, scores, labels, said)
    print(f"wrote anomaly scores of {len(scores)} rows to {args.out}")
    if m is not None:
        print(
            f"class {args.anomalous_class} as anomalies ({m['anomalies']} of {m['rows']} rows): "
            f"ROC-AUC {m['roc_auc']:.4f} (PCA: {m['pca_roc_auc']:.4f}), "
            f"average precision {m['average_precision']:.4f} (PCA: {m['pca_average_precision']:.4f})"
            + (
                "; the rows include those the model trained on (--split test: only rows it never saw)"
                if m["training_rows"]
                else ""
            )
        )


def _visualize(args: argparse.Namespace) -> None:
    if args.out is not None:
        check_output_file(args.out, (".png",))
    from .figures.run_figures import visualize

    path = visualize(args.run_dir, args.what, args.out, args.data, args.n, args.method, **reading(args))
    print(f"wrote {path}")


def _reproduce(args: argparse.Namespace) -> None:
    from .reproduce import reproduce

    done = reproduce(
        args.name, args.data, args.budget, args.out, args.overwrite, quiet=args.quiet, **reading(args)
    )
    print(done[1], end="")


def _report(args: argparse.Namespace) -> None:
    if args.out is not None:
        check_output_file(args.out, (".html",))
    from .figures.report import write_report

    print(f"wrote {write_report(args.run_dir, args.out)}")


def _predict(args: argparse.Namespace) -> None:
    from . import api
    from .io import rundir

    predicted, proba, classes, labels, said = api.predictions(
        args.clf_dir, args.data, args.split, args.device, args.labels, **reading(args)
    )
    column = "cluster" if rundir.is_clustering(args.clf_dir) else "predicted"  # as clusters.csv names it
    _save_csv(args.out, predicted, proba, classes, labels, column, said)
    print(f"wrote predictions of {len(predicted)} rows to {args.out}")


def _classify(args: argparse.Namespace) -> None:
    names = [f.name for f in dataclasses.fields(ClassifyOptions)] + ["quiet", "device", *READING]
    options = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    labels_fraction = options.pop("labels_fraction", None)
    from .classifiers import classify
    from .data.shapes import holds_images
    from .eval.metrics import PROBE_ROWS
    from .io import rundir

    result = classify(args.run_dir, labels_fraction, args.out, args.data, args.labels, **options)
    m = result.metrics
    print(
        f"test accuracy {m['test_accuracy']:.4f} ({m['method']}"
        + (", from scratch" if m.get("from_scratch") else "")
        + (
            f", k = {m['knn_k']}"
            + (" picked on the validation labels" if m["validation_labels"] else ", none to pick it on")
            if "knn_k" in m
            else ""
        )
        + f") with {m['labelled_examples']} labelled "
        f"examples ({100 * m['labels_used_fraction']:.2f} % of the training labels) and "
        f"{m['validation_labels']} for validation"
        + (
            " (of the training rows: the run has no validation split)"
            if m["validation_from"] == "train"
            else ""
        )
        + f", {_seconds(m['train_seconds'])}"
    )
    images = holds_images(tuple(rundir.read_manifest(args.run_dir)["input_shape"]))
    what = "pixels" if images else "raw features"
    baseline = m["pixels_linear_probe_accuracy"]
    line = (
        f"logistic regression on the same {min(m['labelled_examples'], PROBE_ROWS)} labelled rows' {what}, "
        f"without the encoder: {baseline:.4f}"
    )
    if m["test_accuracy"] < baseline and not m.get("from_scratch"):  # the number pretraining must beat
        line += ", above the classifier"
        # why, where the run's own numbers say it of these rows: not of a classifier at chance (its
        # warning says why), nor of other data than the run's
        learned = m["test_accuracy"] > m["majority_class_accuracy"]
        run = rundir.read_metrics(args.run_dir) if learned and args.data is None else {}
        codes, raw = run.get("linear_probe_accuracy"), run.get("pixels_linear_probe_accuracy")
        if codes is not None and m["test_accuracy"] < (codes + m["majority_class_accuracy"]) / 2:
            # not half way from chance to what the codes hold: the classifier, or its few labels
            fixes = [] if m["method"] == "knn" else ["train it longer (more --epochs)"]
            fixes += ["give it more labels"] if m["labels_used_fraction"] < 1 else []
            fixes = fixes or ["try --method frozen or finetune"]  # kNN on every label
            line += (
                f": it is far below the run's own linear probe of its codes ({codes:.3f}, with its "
                f"training labels); {', or '.join(fixes)}"
            )
        elif codes is not None and raw is not None and codes < raw:
            line += (
                f": the run's codes keep less of what tells these classes apart than its {what} (its own "
                f"linear probes, with its training labels: codes {codes:.3f}, {what} {raw:.3f})"
            )
    print(line)
    print(f"wrote {result.out}")


def _cluster(args: argparse.Namespace) -> None:
    names = [f.name for f in dataclasses.fields(ClusterOptions)] + ["quiet", "device", *READING]
    options = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    from .clustering.methods import how_training_ended
    from .clusters import cluster

    result = cluster(args.run_dir, args.data, split=args.split, out=args.out, labels=args.labels, **options)
    m = result.summary
    ended = how_training_ended(m)  # DEC and IDEC's, as the report says it
    trained = "" if ended is None else f", {ended}"
    if "gmm_bic" in m:  # a mixture's: compare it across --k to choose k
        trained = f", BIC {m['gmm_bic']:.1f}"
    line = f"{m['k']} clusters of {m['rows']} rows ({m['method']}, {_seconds(m['seconds'])}{trained})"
    if "accuracy" in m:
        counted = f" (over the {m['labelled_rows']} with a class)" if "labelled_rows" in m else ""
        line += (
            f"{counted}: accuracy {m['accuracy']:.4f}, NMI {m['nmi']:.4f}, ARI {m['ari']:.4f}; k-means on "
            f"the raw rows {m['pixels_kmeans_accuracy']:.4f}, on PCA codes {m['pca_kmeans_accuracy']:.4f}"
            + (
                f", the k-means it started from {m['kmeans_start_accuracy']:.4f}"
                if "kmeans_start_accuracy" in m
                else ""
            )
        )
    print(line)
    print(f"wrote {result.out}")


def _export(args: argparse.Namespace) -> None:
    from .deploy import export

    sidecar, info = export(args.run_dir, args.out, args.format, args.part)
    widths = f"{info['input']['shape'][1]} → {info['output']['shape'][1]} values per row"
    print(f"wrote the {info['part']} ({widths}) to {args.out} and its description to {sidecar}")


HANDLERS: dict[str, Callable[[argparse.Namespace], None]] = {
    "train": _train,
    "evaluate": _evaluate,
    "encode": _encode,
    "reconstruct": _reconstruct,
    "score": _score,
    "visualize": _visualize,
    "reproduce": _reproduce,
    "report": _report,
    "sample": _sample,
    "interpolate": _interpolate,
    "predict": _predict,
    "classify": _classify,
    "cluster": _cluster,
    "export": _export,
}


def handle(args: argparse.Namespace) -> None:
    """Check the command's --out, then run its handler."""
    if args.command in OUTPUTS:
        check_output_file(args.out, OUTPUTS[args.command])
    HANDLERS[args.command](args)

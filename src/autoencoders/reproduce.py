"""Published autoencoder experiments, run end to end: ``autoencoders reproduce NAME``.

Each prints and saves (``RUN/reproduction.md``) a table of the published value next to this
run's, with PCA and raw-pixel baselines from the same data; ``dec`` also clusters every row
(``RUN/cluster-<method>-<k>``). The published numbers are on
MNIST; on other data (``--data fashion-mnist``, ``idx:DIR``, ``digits``) the stack keeps its hidden
widths on the data's own input width, and the baselines are the yardstick.
``--budget quick`` takes minutes on 2 CPU cores, ``full`` is closer to the papers' schedules; with
either, every stage trains for at least ``STAGE_UPDATES`` updates (more epochs on data smaller
than MNIST).
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import Any

from .classifiers import classify
from .classify.few_labels import MIN_UPDATES
from .clusters import cluster
from .config import Config, field_section
from .data.batches import batches_per_epoch
from .data.datasets import load_dataset
from .data.specs import parse_spec, same_data
from .data.tables import csv_column_name
from .errors import UserError
from .experiments import EXPERIMENTS
from .fields import flag
from .io import rundir
from .io.checkpoint import write_text
from .options import READING, DataConfig, TrainConfig
from .run import Run, resume, train
from .trained import open_run

# the fewest updates a training stage makes: under one epoch of MNIST's 54,000 training rows at
# batch 64 (844), so the papers' data keeps the budgets below
STAGE_UPDATES = 800


# (quantity, published value on MNIST, how to read this run's value from its metrics)
PUBLISHED = {
    "hinton2006": [
        ("test SSE per image, autoencoder", "3.00", lambda m: m["test_sse_per_image"]),
        ("test SSE per image, PCA-30", "13.87", lambda m: m["pca_sse_per_image"]),
    ],
    "sda": [
        ("test error, stacked denoising AE + fine-tuning", "1.28 %", lambda m: _error(m.get("clf"))),
        (
            "test error, logistic regression on pixels",
            "–",
            lambda m: _error(m.get("pixels_linear_probe_accuracy")),
        ),
        (
            "test error, logistic regression on PCA codes of the same size",
            "–",
            lambda m: _error(m.get("pca_linear_probe_accuracy")),
        ),
    ],
    "dec-init": [
        # the paper's k-means ran on all 70,000 rows; the run's metrics, on its test rows
        (
            "k-means accuracy on the codes (published: all rows; this run: test rows)",
            "0.818",
            lambda m: m.get("kmeans_accuracy"),
        ),
        (
            "k-means accuracy on pixels (published: all rows; this run: test rows)",
            "0.535",
            lambda m: m.get("pixels_kmeans_accuracy"),
        ),
        (
            "k-means accuracy on PCA codes of the same size (test rows)",
            "–",
            lambda m: m.get("pca_kmeans_accuracy"),
        ),
        ("k-means NMI on the codes (test rows)", "–", lambda m: m.get("kmeans_nmi")),
        ("k-means NMI on pixels (test rows)", "–", lambda m: m.get("pixels_kmeans_nmi")),
    ],
    "dec": [
        ("accuracy, DEC (all rows)", "0.843", lambda m: m.get("dec", {}).get("accuracy")),
        ("accuracy, AE + k-means (all rows)", "0.818", lambda m: m.get("kmeans", {}).get("accuracy")),
        (
            "accuracy, k-means on pixels (all rows; over 20,000, centres from a sample)",
            "0.535",
            lambda m: m.get("kmeans", {}).get("pixels_kmeans_accuracy"),
        ),
        (
            "accuracy, k-means on PCA codes of the same size (all rows)",
            "–",
            lambda m: m.get("kmeans", {}).get("pca_kmeans_accuracy"),
        ),
        ("NMI, DEC (all rows)", "–", lambda m: m.get("dec", {}).get("nmi")),
        ("seconds, DEC", "–", lambda m: m.get("dec", {}).get("seconds")),
    ],
}

# each paper's finding, as a test of this run's metrics (None: no labels to test it)
FINDINGS = {
    "hinton2006": (
        "the autoencoder's test SSE below PCA's at the same code size",
        lambda m: m["test_sse_per_image"] < m["pca_sse_per_image"],
    ),
    "sda": (
        "fine-tuning's test error below logistic regression's on the pixels",
        lambda m: None if m.get("clf") is None else m["clf"] > m["pixels_linear_probe_accuracy"],
    ),
    "dec-init": (
        "k-means on the codes more accurate than on the pixels",
        lambda m: (
            None if m.get("kmeans_accuracy") is None else m["kmeans_accuracy"] > m["pixels_kmeans_accuracy"]
        ),
    ),
    "dec": (
        "DEC more accurate than k-means on the codes",
        lambda m: None if "dec" not in m else m["dec"]["accuracy"] > m["kmeans"]["accuracy"],
    ),
}


def reproduce(
    name: str,
    data: str = "mnist",
    budget: str = "quick",
    out: str | Path | None = None,
    overwrite: bool = False,
    **options: Any,
) -> tuple[Any, str]:
    """Run experiment ``name``; return (its run, the table as Markdown). "–": not published."""
    if name not in EXPERIMENTS:
        raise UserError(f"unknown experiment '{name}'; choose from {', '.join(EXPERIMENTS)}")
    if budget not in ("quick", "full"):
        raise UserError(f"--budget must be quick or full, not '{budget}'")
    exp = EXPERIMENTS[name]
    command = f"autoencoders reproduce {name} --data {shlex.quote(str(data))} --budget {budget}"
    if out:  # the write-up names the command that made it, its directory too when one was given
        command += f" --out {shlex.quote(str(out))}"
    for key in (key for key in READING if key in options):  # and how it read the data (its label column)
        value = options[key]
        if isinstance(value, bool):
            command += f" --{'' if value else 'no-'}{flag(key)}"
        else:
            shown = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
            command += f" --{flag(key)} {shlex.quote(shown)}"
    out = out or f"runs/reproduce-{name}-{budget}"
    settings = {**exp.settings, **exp.budgets[budget], **options}
    ds = load_dataset(
        DataConfig(data=data, **{k: v for k, v in options.items() if field_section(k) == "data"})
    )
    if exp.scored_by_labels and ds.y_train is None:  # refused before hours of training score nothing
        unlabelled = [n for n, e in EXPERIMENTS.items() if not e.scored_by_labels]
        raise UserError(
            f"{name} scores what it trains against the data's classes, and {data} has none: give labelled "
            f"data (images: in one folder per class; in Python, labels= or label_column=), or reproduce "
            f"{' or '.join(unlabelled)}, which needs none"
        )
    if "layers" not in options:  # the paper's stack on this data's width (784 on MNIST)
        settings["layers"] = [ds.n_features, *exp.settings["layers"][1:]]
    # enough epochs for STAGE_UPDATES: on data smaller than MNIST (digits: 1,294 training rows) the
    # budgets' epochs would leave the stack untrained
    steps = batches_per_epoch(len(ds.x_train), settings.get("batch_size", TrainConfig().batch_size))
    for key in ("pretrain_epochs", "epochs"):
        if key not in options and settings[key] > 0:
            settings[key] = max(settings[key], math.ceil(STAGE_UPDATES / steps))
    try:
        run = _its_run(Path(out), data, settings, overwrite)
        table = _reproduction(name, data, budget, run, command)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            f"{out} is kept without its write-up; run the same reproduce command again to continue: its "
            "run goes on from its last saved epoch"
        ) from None
    return run, table


def _its_run(out: Path, data: str, settings: dict[str, Any], overwrite: bool) -> Run:
    """The experiment's run in ``out``: trained there, or (unless ``overwrite``) the run an
    interrupted reproduction left there with the same data and settings, continued if incomplete."""
    if not overwrite and (out / rundir.MANIFEST).is_file() and (out / rundir.CONFIG).is_file():
        cfg = Config.load_json(out / rundir.CONFIG)
        same = {k: v for k, v in _as_recorded(data, settings).items() if k != "quiet"}  # not how it trains
        if same_data(data, cfg.data.data) and cfg.replace(**same) == cfg:
            if not rundir.read_manifest(out)["completed"]:
                return resume(out, quiet=settings.get("quiet"))
            trained = open_run(out)
            return Run(out, trained.cfg, trained.model, rundir.read_metrics(out), rundir.read_history(out))
    return train(data=data, out=str(out), overwrite=overwrite, **settings)


def _as_recorded(data: str, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with a CSV's label and id columns named as a run records them: by the header's
    name, where they were given by index."""
    kind, path = parse_spec(data)
    label, ids = settings.get("label_column"), settings.get("id_column")
    if kind != "csv" or not Path(path).is_file():
        return settings
    named = dict(settings)
    if label is not None:
        named["label_column"] = csv_column_name(path, label, label, ids)
    if ids is not None:
        named["id_column"] = csv_column_name(path, ids, label, ids, "--id-column")
    return named


def _reproduction(name: str, data: str, budget: str, run: Run, command: str) -> str:
    """Experiment ``name``'s later stages on its ``run`` and the table of their numbers against the
    published ones, under the ``command`` that made them, written to the run's directory."""
    exp = EXPERIMENTS[name]
    metrics = dict(run.metrics)
    if exp.classify_epochs is not None and "linear_probe_accuracy" in metrics:  # labels exist
        # the budget's epochs, or on smaller data (digits) enough of them for the default's updates
        steps = batches_per_epoch(metrics["n_train"], run.config.train.batch_size)
        epochs = max(exp.classify_epochs[budget], math.ceil(MIN_UPDATES / steps))
        clf = classify(run.dir, 1.0, epochs=epochs, quiet=run.config.train.quiet)
        metrics["clf"] = clf.metrics["test_accuracy"]
    if "linear_probe_accuracy" in metrics:  # labels exist to score clusters against
        for method in exp.clusters:
            found = cluster(run.dir, method=method, quiet=run.config.train.quiet)
            metrics[method] = found.summary
    rows = [(what, published, _fmt(read(metrics))) for what, published, read in PUBLISHED[name]]
    note = "" if data == "mnist" else f" The published values are on MNIST; this run is on {data}."
    finding, held = FINDINGS[name][0], FINDINGS[name][1](metrics)
    if held is not None:  # said in words, so a run that contradicts the paper is not read as one that agrees
        note += f" The paper found {finding}; this run {'did too' if held else 'did not'}."
    note += f" This run's stack: {'-'.join(map(str, run.config.model.layers))}."
    pretraining = run.config.pretrain
    first = (
        f"{pretraining.pretrain_epochs} pretraining epochs per layer"
        if pretraining.greedy
        else "no pretraining"
    )
    note += f" Its schedule: {first} and {run.config.train.epochs} end-to-end epochs" + (
        ", far fewer updates than the paper's (--budget full comes closer)." if budget == "quick" else "."
    )
    if "labelled_test_rows" in run.metrics:
        note += " Its label column is blank in some rows: the accuracies below count the rows with a class."
    table = "\n".join(
        [
            f"# {exp.title}",
            "",
            f"`{command}`.{note}",
            "",
            "| quantity | published (MNIST) | this run |",
            "|---|---|---|",
            *(f"| {a} | {b} | {c} |" for a, b, c in rows),
            "",
        ]
    )
    write_text(Path(run.dir) / rundir.REPRODUCTION, table)
    return table


def _fmt(value: Any) -> str:
    if value is None:
        return "– (needs labels)"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _error(accuracy: float | None) -> str | None:
    return None if accuracy is None else f"{100 * (1 - accuracy):.2f} %"

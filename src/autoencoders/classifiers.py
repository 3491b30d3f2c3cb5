"""A classifier from a trained run's encoder and few labels: ``autoencoders classify``."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from .classify.few_labels import (
    HEAD_OPTIMIZER,
    ClassifierResult,
    FewLabels,
    save_classifier,
    train_classifier,
)
from .config import option_names
from .data.datasets import load_dataset
from .data.memory import check_labels_file
from .data.specs import for_data, other_data_suffix
from .errors import UserError, says_once
from .fields import split_options
from .figures.report import REPORT, write_report
from .io import rundir
from .models.layers import make_corruption
from .options import ClassifyOptions, run_settings_refused
from .runtime.device import resolve_device
from .runtime.threads import training_threads
from .trained import check_own_data, check_width, given_reading, later_precision, open_run, writes_into_run


@says_once
def classify(
    run_dir: str | Path,
    labels_fraction: float | None = None,
    out: str | Path | None = None,
    data: str | None = None,
    labels: str | None = None,
    **options: Any,
) -> ClassifierResult:
    """Train a classifier from a run's encoder on ``n_labels`` (class-balanced) or a
    ``labels_fraction`` (default: all) of the training labels, as ``options`` say: the fields of
    :class:`autoencoders.options.ClassifyOptions` (``method``: ``finetune``, ``frozen``, ``knn``,
    ``semi`` or ``ladder``; ``n_labels``, ``from_scratch``, ``unfreeze_epochs``, ``epochs``,
    ``lr``, ...) and any other training option of the run (``quiet``, ``device``, ...).

    As many labelled rows of the validation split judge early stopping and pick the kept
    weights (a run without a validation split lends them from training rows not labelled).
    Training is by Adam at ``lr``, constant and without weight decay, whatever the run trained with,
    unless ``optimizer``, ``lr_decay`` or ``weight_decay`` are given. Without ``epochs``, training
    runs for at least 1,000 updates and 10 epochs, and stops after 10 epochs (or 100 updates,
    whichever is longer) without a better validation loss; an epoch of ``semi`` and ``ladder``
    passes over every training row (the ladder's in full batches). Writes the classifier's weights,
    settings and ``metrics.json`` to ``out`` (default:
    ``RUN_DIR/classifier-<amount>[-scratch][-<method>][-unfrozen<N>]``, then ``-seed<S>`` for a
    ``seed`` given and ``-<name>`` for ``data`` other than the run's own; a classifier already there
    is replaced, any other files refuse it).
    """
    run = open_run(run_dir)
    own, rest = split_options(options, ClassifyOptions, option_names())
    reading = given_reading(rest, "classify", data)
    run_settings_refused(rest, "classify", data is not None)
    cfg = run.cfg.replace(**reading) if reading else copy.deepcopy(run.cfg)  # before the data's own are set
    if data is not None:
        if isinstance(data, str):
            check_labels_file(labels)
        cfg.data = for_data(cfg.data, data, len(run.scaler[0]), labels, tuple(run.manifest["input_shape"]))
    elif labels is not None:
        raise UserError("--labels goes with --data, the rows it labels")
    else:
        check_own_data(run_dir, cfg.data, ", or classify other rows: --data (with --labels for npy: data)")
    if cfg.data.hold_out is not None:
        raise UserError(
            f"{run_dir} left class(es) {','.join(map(str, cfg.data.hold_out))} out of its training rows "
            "(--hold-out), and a classifier learns every class from them: classify a run trained on all"
        )
    corrupt = make_corruption(run.cfg.model.corruption, run.cfg.model.noise)
    how = FewLabels(labels_fraction=labels_fraction, corrupt=corrupt, **own)
    how.check()
    given = {"lr": how.lr, "batch_size": how.batch_size, "seed": how.seed}
    cfg = cfg.replace(**HEAD_OPTIMIZER | {k: v for k, v in given.items() if v is not None} | rest)
    out = Path(out) if out else Path(run_dir) / (how.name() + other_data_suffix(data, run.cfg.data.data))
    rundir.check_output_dir(out, rundir.is_classifier(out), "classifier", rundir.CLASSIFIER_FILES)
    device = resolve_device(cfg.train.device)
    cfg.train.precision = later_precision(run_dir, cfg.train.precision, device)
    model = run.model.to(device)
    ds = load_dataset(cfg.data, scaler=run.scaler)
    check_width(model, ds.n_features, cfg.data.data)
    with training_threads(cfg.train.threads, model, cfg.train.batch_size):
        result = train_classifier(model, ds, cfg.train, how, int(cfg.data.memory_budget * 2**30))
    settings = {
        "run_dir": str(run_dir),
        "kind": run.manifest["kind"],
        "input_shape": run.manifest["input_shape"],
        "autoencoder": run.cfg.to_dict(),
        "data": cfg.data.data,
        "reading": reading,  # how that data was read where not as the run's: predict reads so too
    }
    inside = writes_into_run(run, run_dir, out, "classifier")
    save_classifier(out, result, settings, run.scaler)
    result.out = out
    if inside and (Path(run_dir) / REPORT).is_file():
        write_report(run_dir, keep_drawn=True)  # with this classifier in its table
    return result

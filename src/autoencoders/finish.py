"""What follows a run's training: its metrics, measured while the report's figures are drawn
beside them, then its weights, metrics, history, figures and report written."""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

from .config import Config
from .data.batches import batches_per_epoch
from .data.classes import UNLABELLED
from .data.datasets import Dataset
from .data.shapes import sample_noun
from .errors import say
from .eval.metrics import bce_floor, encode_all, evaluate
from .figures import curves
from .figures.report import draw_figures, write_report
from .figures.training import figure_rows, figures_beside, run_pictures
from .io import rundir
from .models import Autoencoder
from .outcome import warn_of_outcome
from .runtime import distributed
from .runtime.alongside import Alongside
from .runtime.threads import evaluation_threads, thread_count
from .training.state import Progress


def finish(
    cfg: Config,
    ds: Dataset,
    model: Autoencoder,
    baseline: Autoencoder | None,
    stage: str,
    device: torch.device,
    progress: Progress,
    out: Path,
    setup_seconds: float,
    data_baselines: bool | Callable[[], dict] = True,
) -> dict:
    """The metrics of a trained ``model`` (and of the ``baseline`` trained without pretraining,
    if any), beside ``data_baselines`` (as ``evaluate`` takes them), with the ``setup_seconds``
    the process spent before training and what the final ``stage`` took; written to ``out`` with
    the weights, history, figures and report."""
    world = distributed.rank_and_size()[1]
    history = progress.history
    trained = time.perf_counter()
    with thread_count(evaluation_threads(cfg.train.threads)):
        x_test = ds.x_test.to(device)
        z_test = encode_all(model, x_test)  # for the metrics and the report's figures
        opened, rows = figure_rows(out, cfg, model, ds, z_test.cpu())
        floor = bce_floor(model, x_test)  # for the metrics
        # and the validation rows' for loss.png, which may be drawn before the metrics
        val_floor = bce_floor(model, ds.x_val.to(device)) if floor is not None and len(ds.x_val) else None
        line = curves.loss_floor({"test_bce_floor": floor, "val_bce_floor": val_floor})
        pictures = functools.partial(run_pictures, out, cfg, ds, opened, history, line)
        draw = functools.partial(draw_figures, opened, rows)

        def beside(stop: threading.Event) -> list[tuple[str, bytes]]:
            pictures()  # then the report's: the metrics take about as long as all of them
            return draw(stop)

        # drawn on the host while the metrics are computed (on the training device), each mostly
        # waiting on work the other does not hold Python's lock for, where the metrics are large
        figures = Alongside(beside, "report figures") if figures_beside(model, ds) else None
        try:
            metrics = evaluate(model, ds, data_baselines, model.iw_samples, cfg.train.quiet, z_test, floor)
            no_pretraining = evaluate(baseline, ds, data_baselines=False) if baseline is not None else None
            if figures is not None:
                figures.wait()  # before this thread draws: matplotlib is not thread-safe
        except BaseException:
            if figures is not None:
                figures.close()
            raise
    own = [h for h in history if h["stage"] != "no pretraining"]  # every stage of this model
    updates = len(own) * batches_per_epoch(len(ds.x_train), cfg.train.batch_size, world)
    warn_of_outcome(metrics, own, updates, model.code_size, cfg, sample_noun(ds.sample_shape))
    if ds.y_test is not None and "linear_probe_accuracy" not in metrics:  # labels, and nothing they count
        why = "the training rows' labels hold fewer than two classes"
        if not bool((ds.y_test != UNLABELLED).any()):
            why = "no test row has a class (their label cells are blank)"
        say(f"no accuracy is measured: {why}", cfg.train.quiet)
    if val_floor is not None:
        metrics["val_bce_floor"] = val_floor
    final = [h for h in history if h["stage"] == stage]
    final_seconds = sum(h["seconds"] for h in final)
    metrics.update(
        setup_seconds=setup_seconds,
        train_seconds=progress.marks["train_seconds"],
        pretrain_seconds=sum(h["seconds"] for h in history if h["stage"].startswith("pretrain")),
        # end-to-end training throughput (pretraining epochs are cheaper and reported per stage)
        samples_per_second=len(ds.x_train) * len(final) / final_seconds if final_seconds > 0 else 0.0,
        epochs_run=len(final),
        best_epoch=_best_epoch(final, cfg.train.keep),
        precision=cfg.train.precision,
        device=str(device),
        processes=world,
        threads=progress.marks["threads"],
        n_train=len(ds.x_train),
        n_test=len(ds.x_test),
    )
    if any("replayed_batches" in h for h in history):  # CUDA graphs were tried: how much they ran
        metrics["train_batches"] = sum(h.get("batches", 0) for h in history)
        metrics["replayed_batches"] = sum(h.get("replayed_batches", 0) for h in history)
    if no_pretraining is not None:
        metrics["no_pretraining_sse_per_image"] = no_pretraining["test_sse_per_image"]
        metrics["no_pretraining_train_seconds"] = sum(
            h["seconds"] for h in history if h["stage"] == "no pretraining"
        )
        if "linear_probe_accuracy" in no_pretraining:
            metrics["no_pretraining_linear_probe_accuracy"] = no_pretraining["linear_probe_accuracy"]
    rundir.write_weights(out / rundir.WEIGHTS, model.state_dict(), (ds.offset, ds.span))
    rundir.write_metrics(out, metrics)
    rundir.write_history(out, history)
    if figures is None:
        pictures()
    if "no_pretraining_sse_per_image" in metrics:
        curves.pretraining_comparison(
            history, metrics, out / rundir.PRETRAINING, sample_noun(ds.sample_shape)
        )
    rundir.write_manifest(out, model.kind, ds.sample_shape, model.code_size, completed=True)
    (out / rundir.STATE).unlink(missing_ok=True)  # optimizer state is only needed to resume
    # a figure that could not be drawn fails the report here, once the run is complete
    drawn = figures.result() if figures is not None else draw()
    write_report(out, run=opened, metrics=metrics, drawn=drawn)
    # what the run took after training (the metrics, baselines not ready yet, figures and report),
    # added once the report is written: a run whose report fails is still complete, without it
    metrics["evaluation_seconds"] = time.perf_counter() - trained
    rundir.write_metrics(out, metrics)
    return metrics


def _best_epoch(rows: list[dict], keep: str) -> int | None:
    """The epoch whose weights the final stage kept: its best validation epoch, or its last one."""
    scored = [r for r in rows if math.isfinite(r["val_loss"])]
    if keep == "last" or not scored:
        return rows[-1]["epoch"] if rows else None
    return min(scored, key=lambda r: r["val_loss"])["epoch"]  # the first of equal minima, as the loop

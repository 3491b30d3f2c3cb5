"""Training runs: train a configured model into a run directory, or resume one that stopped."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import kinds
from .config import Config, all_sections, load_toml, nested_config, option_names
from .data.datasets import Dataset, load_dataset
from .data.memory import data_name, given_rows
from .data.specs import check_data_options, is_table, parse_spec, with_absolute_paths
from .data.stream import RowStream
from .data.tables import csv_column_name, csv_feature_names
from .errors import SettingWarning, UserError, say, says_once, user_stacklevel
from .eval.metrics import baselines
from .fields import check_fields, new_settings_refused, option_hint, options_doc
from .figures.report import REPORT
from .figures.training import snapshot
from .finish import finish
from .io import rundir
from .io.checkpoint import check_writable
from .io.state import read_state
from .models import Autoencoder
from .options import FIGURE_KINDS
from .runtime import distributed, events
from .runtime.alongside import Alongside
from .runtime.device import resolve_device
from .runtime.threads import (
    available_cpus,
    say_if_threads_spin,
    thread_count,
)
from .stages import build_model, measure_setting, stage_threads, train_stage, train_stages
from .trained import check_own_data
from .training.layerwise import pretrainable_pairs
from .training.loop import Diverged
from .training.state import Progress


@dataclass
class Run:
    """A finished training run: where it lives and what it produced."""

    dir: Path
    config: Config
    model: Autoencoder
    metrics: dict[str, Any]
    history: list[dict[str, Any]]

    def __repr__(self) -> str:
        """Where, what and how well, in one line (the config, weights and history are its fields)."""
        m = self.metrics
        keys = ("epochs_run", "test_sse_per_image", "pca_sse_per_image", "linear_probe_accuracy")
        shown = {k: m[k] for k in keys if k in m}
        numbers = "".join(f", {k}={v:.4g}" for k, v in shown.items())
        layers = "-".join(map(str, self.model.layers))
        return f"Run(dir={str(self.dir)!r}, model={self.model.kind} {layers}{numbers})"

    def __fspath__(self) -> str:
        """Its directory: a Run goes wherever a run directory does (``autoencoders.encode(run, ...)``)."""
        return str(self.dir)


def as_config(config: Config | dict | str | Path | None = None, **overrides: Any) -> Config:
    """A validated Config from a Config, a dict (sections, flat keys or both, as a TOML file), TOML
    path or nothing, plus flat overrides."""
    if config is None:
        cfg = Config()
    elif isinstance(config, Config):
        cfg = config
    elif isinstance(config, dict):
        cfg = Config.from_dict(nested_config(config, "the config dict"))
    else:
        cfg = Config.from_dict(load_toml(config))
    return cfg.replace(**overrides) if overrides else Config.from_dict(cfg.to_dict())


def _new_run_dir(cfg: Config) -> Path:
    """``--out``, or a new directory named by the time and kind, made now: runs started in the same
    second by other processes (a sweep) each take the next name, not the same one."""
    if cfg.out:
        return Path(cfg.out)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-{cfg.model.model}"
    path, k = base, 1
    check_writable(path)  # runs/ a file, a read-only directory: said in one line
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            k += 1
            path = base.with_name(f"{base.name}-{k}")
        except OSError as e:
            raise UserError(f"cannot make {path} ({e.strerror or e}); give another --out") from None


def train(config: Config | dict | str | Path | None = None, overwrite: bool = False, **overrides: Any) -> Run:
    """Train the configured model; write config, manifest, weights, metrics, history and figures.

    ``data`` may be rows in memory (a NumPy array, tensor or pandas DataFrame) with ``labels`` (an
    array or Series): they are saved once under the cache (``$AUTOENCODERS_CACHE/arrays``, by
    content) and the run records them as an ``npy:`` file, so it resumes and evaluates as any run.
    The run directory holds a resumable state (saved every ``save_every`` seconds of training and
    after each stage) until training completes.
    An ``out`` directory that is not empty is refused unless ``overwrite`` (it must hold a run,
    which is deleted first). Under ``torchrun`` every rank trains its slice of each batch and
    returns the same model; rank 0 alone writes the run directory and computes the metrics.

    Options, by flat name (a kind's own section applies to that ``model`` only):
    """
    cfg = as_config(config, **given_rows(overrides))
    named = not cfg.out
    try:
        return _execute(cfg, None, overwrite)
    except BaseException:
        if named and cfg.out:  # the directory made for it, where nothing was written
            with contextlib.suppress(OSError):
                Path(cfg.out).rmdir()
        raise


def resumed_config(run_dir: str | Path, quiet: bool | None = None, save_every: float | None = None) -> Config:
    """The settings ``resume`` continues an incomplete run with: its own, in its directory as it is
    now, with ``quiet`` and ``save_every`` when given."""
    run_dir = Path(run_dir)
    if rundir.read_manifest(run_dir)["completed"]:
        raise UserError(
            f"{run_dir} finished training; there is nothing to resume: its model is ready to use, and "
            "training longer is a new run with more --epochs"
        )
    cfg = Config.load_json(run_dir / rundir.CONFIG)
    cfg.out = str(run_dir)
    if quiet is not None:
        cfg.train.quiet = quiet
    if save_every is not None:
        cfg.train.save_every = save_every
    check_fields(cfg.train)  # as given, each checked as train checks it
    return cfg


def resume(
    run_dir: str | Path, quiet: bool | None = None, save_every: float | None = None, **settings: Any
) -> Run:
    """Continue an incomplete run from its last saved epoch, as if it had never stopped; ``quiet``
    and ``save_every`` change how, not what, it trains. Other ``settings`` are refused in words."""
    unknown = [k for k in settings if k not in option_names()]
    if unknown:  # most likely a mistyped name of its own
        hint = option_hint(unknown[0], ["quiet", "save_every", *option_names()])
        raise UserError(f"unknown option '{unknown[0]}'{hint}")
    if settings:
        raise new_settings_refused(sorted(settings))
    run_dir = Path(run_dir)
    cfg = resumed_config(run_dir, quiet, save_every)
    with rundir.held(run_dir, rundir.still_training(run_dir, ", so there is nothing to resume")):
        for stale in run_dir.iterdir():
            if rundir.cut_short(stale.name) and stale.is_file():
                stale.unlink()
        state = run_dir / rundir.STATE
        return _execute(cfg, read_state(state) if state.is_file() else ({}, {}))


def _check_out(out: Path, overwrite: bool, held: bool = False) -> None:
    """Refuse an ``out`` that would mix two runs' files or cannot be written (nothing is deleted
    here); ``held``: checked again once this process holds it, as another may have trained there
    between the first check and the hold."""
    if out.is_symlink() and not out.exists():
        raise UserError(
            f"--out {out} is a link to {os.readlink(out)}, which does not exist; make that directory, "
            "or give the path of a new or empty directory"
        )
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give the path of a new or empty directory")
    if out.is_dir() and any(out.iterdir()):
        is_run = _is_run_dir(out)
        if is_run and not held and rundir.training_elsewhere(out):
            raise UserError(_busy(out))
        if not is_run:  # --overwrite deletes runs only: it would not help
            raise UserError(
                f"--out {out} is not empty and holds no run{', so nothing was deleted' * overwrite}; "
                "choose another --out, or empty it yourself"
            )
        if not overwrite:
            raise UserError(
                f"--out {out} is not empty; add --overwrite to replace the run in it, continue it if it "
                f"is incomplete (autoencoders train --resume {out}), or choose another --out"
            )
        theirs = rundir.not_written_by_the_run(out, {REPORT} | {f"{what}.png" for what in FIGURE_KINDS})
        if theirs:
            shown = ", ".join(theirs[:5]) + (", ..." if len(theirs) > 5 else "")
            raise UserError(
                f"--overwrite replaces a run, and {out} also holds what it did not write ({shown}); move "
                "that out first, or choose another --out: nothing was deleted"
            )
    check_writable(out)


def _empty(out: Path) -> None:
    """Delete what ``out`` holds, keeping the directory (and so this process's hold on it)."""
    for entry in out.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _busy(out: Path) -> str:
    """Why a new run cannot train into ``out`` while another process does."""
    return f"--out {rundir.still_training(out)}, or choose another --out: nothing was deleted"


def _is_run_dir(path: Path) -> bool:
    """Whether ``path`` holds a run of this toolkit: a manifest it can read, or a run's first file
    alone (its config, written before the manifest by a process killed between the two, or that
    write's temporary file)."""
    try:
        rundir.read_manifest(path)
    except UserError:
        begun = [e.name for e in path.iterdir() if not rundir.cut_short(e.name)]
        if begun == [rundir.CONFIG]:  # a run's config, not any file of that name
            try:
                Config.from_dict(rundir.read_config(path / rundir.CONFIG))
            except UserError:
                return False
        return begun in ([], [rundir.CONFIG])
    return True


@says_once
def _execute(cfg: Config, saved: tuple[dict, dict] | None, overwrite: bool = False) -> Run:
    """Train ``cfg`` from the start, or from ``saved`` state when resuming."""
    started = time.perf_counter()
    device = distributed.setup(cfg.train.device) or resolve_device(cfg.train.device)
    rank, world = distributed.rank_and_size()
    if saved is not None and world > 1:
        raise UserError("--resume runs in one process; start it without torchrun")
    main = rank == 0
    if cfg.train.tensorboard:
        events.require()  # before anything is written
    if saved is None:
        check_data_options(cfg.data)
        if main:
            for sentence in cfg.inert_settings():
                warnings.warn(sentence, SettingWarning, stacklevel=user_stacklevel())
            cfg.out = str(_new_run_dir(cfg))  # fixed now: every check and write below uses the same directory
            _check_out(Path(cfg.out), overwrite)
        cfg.out = distributed.from_first(cfg.out or "")  # and every rank's Run names it
    else:
        check_own_data(
            cfg.out,
            cfg.data,
            " to resume the run: its state goes with that data",
            "; a run resumes only on the rows it began with: train it anew on them "
            "(autoencoders.train(data=rows, ..., overwrite=True))",
        )
    ds, digest = _run_data(cfg, saved)
    if saved is None:
        kinds.check_shape(cfg.kind_options, ds.sample_shape)
    model = build_model(cfg, ds.sample_shape, device)
    if cfg.pretrain.greedy:
        pretrainable_pairs(model, cfg.pretrain.schedule)  # refused before anything is written
    cfg.model.layers = model.layers  # config.json records the widths actually used
    # the precision and threads ``auto`` picks are measured, and sums over threads round
    # differently: keep the first process's choice across resumes
    marks = saved[1].get("marks", {}) if saved else {}
    if "precision" in marks:  # states from before threads were measured have the precision alone
        precision = marks["precision"]
        threads = marks.get("threads") or stage_threads(cfg, model, precision, device)
    else:
        precision, threads = measure_setting(cfg, ds.x_train, model, device)
    out = Path(cfg.out)
    with contextlib.ExitStack() as hold:
        if main and saved is None:
            out.mkdir(parents=True, exist_ok=True)
            hold.enter_context(rundir.held(out, _busy(out)))  # as long as this process trains there
            _check_out(out, overwrite, held=True)
            if overwrite:
                _empty(out)  # only now: every check has passed, the data has loaded, the directory is held
            rundir.write_config(out, cfg.to_dict())
            rundir.write_manifest(out, model.kind, ds.sample_shape, model.code_size, completed=False)
        log = alongside = None
        try:  # from here a Ctrl-C says how to continue: the run directory exists
            if main:  # where to look while it trains (snapshots, TensorBoard), and what --resume takes
                say(f"{'training' if saved is None else 'resuming training'} in {out}", cfg.train.quiet)
                if isinstance(ds.x_train, RowStream):
                    budget = cfg.data.memory_budget
                    say(
                        f"{data_name(cfg.data.data)} takes more than --memory-budget {budget:g} GiB as "
                        "float32 rows: its training rows stream from disk",
                        cfg.train.quiet,
                    )
            progress = Progress(out / rundir.STATE if main else None, saved)  # the training clock starts
            setup_seconds = time.perf_counter() - started
            progress.attach("model", model)
            cfg.train.precision = progress.marks.setdefault("precision", precision)
            threads = progress.marks.setdefault("threads", threads)
            if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
                raise UserError(
                    f"{out / rundir.STATE} is damaged (threads {threads!r}); train again with --overwrite"
                )
            if saved is not None and threads > (cpus := available_cpus()):  # begun where more were allowed
                say(
                    f"resuming on {cpus} thread{'s' * (cpus > 1)}, not the {threads} it began with (this "
                    "process may use no more): its sums round otherwise from here",
                    cfg.train.quiet,
                )
                threads = progress.marks["threads"] = cpus
            say_if_threads_spin(threads, model)  # the count it trains with, timed, remembered or resumed
            progress.marks.setdefault("data_sha256", digest)  # states from before it was kept are not checked
            log = events.EventLog(out / rundir.TENSORBOARD) if main and cfg.train.tensorboard else None
            if log is not None:
                progress.loggers.append(log)
            if main:  # history.csv grows with each saved state: the loss curve while it trains
                progress.loggers.append(rundir.history_log(out, progress.history))
            if main and cfg.train.snapshots:
                progress.listeners.append(
                    functools.partial(snapshot, out, model, ds, cfg.data.columns, cfg.train.snapshots)
                )
            with thread_count(threads):
                if _baselines_beside(ds, device, threads):
                    alongside = Alongside(
                        functools.partial(baselines, ds, model.code_size, device), "baselines"
                    )
                return _train_and_report(
                    cfg,
                    ds,
                    model,
                    device,
                    progress,
                    out,
                    setup_seconds,
                    alongside.result if alongside else True,
                )
        except Diverged as e:
            if not main:
                raise
            rundir.write_manifest(out, model.kind, ds.sample_shape, model.code_size, False, stopped=str(e))
            raise Diverged(
                f"{e}, and --overwrite to train into {out} again (its manifest records why it stopped)"
            ) from None
        except KeyboardInterrupt:
            if not main:
                raise
            if rundir.read_manifest(out)["completed"]:  # stopped while the figures or report were written
                kept = f"{out} finished training; write its report with: autoencoders report {out}"
            elif (out / rundir.STATE).is_file():
                at = rundir.saved_at(out)
                where = f"as saved in {at}" if at else "up to its last saved epoch"
                kept = f"{out} is kept {where}; continue with: autoencoders train --resume {out}"
            else:  # stopped before its first save
                kept = f"{out} has no saved epoch yet; start it again with: autoencoders train --resume {out}"
            raise KeyboardInterrupt(kept) from None
        finally:
            if log is not None:
                log.close()
            if alongside is not None:
                alongside.close()


def _run_data(cfg: Config, saved: tuple[dict, dict] | None) -> tuple[Dataset, str]:
    """The run's dataset and its digest, checked against ``cfg`` and, when resuming, the ``saved``
    state's data; ``cfg.data`` then records what later reads of other data need (a CSV's column
    names, an image folder's size, the class names) and absolute paths."""
    ds = load_dataset(cfg.data)  # errors name the files as they were given
    digest = ds.digest()
    kept = digest if saved is None else saved[1].get("marks", {}).get("data_sha256", digest)
    if kept != digest and is_table(cfg.data):
        # a table within [0, 1], which versions before tables were scaled column by column left
        # as it was: it resumes as it began
        ones = np.ones(ds.n_features, np.float32)
        as_begun = load_dataset(cfg.data, scaler=(0 * ones, ones))
        ds, digest = (as_begun, kept) if as_begun.digest() == kept else (ds, digest)
    if kept != digest:
        raise UserError(
            f"{data_name(cfg.data.data)} has changed since {cfg.out} started training (its rows or their "
            "split differ from those it trained on), so it cannot continue as it began; restore the data "
            f"to resume, or train again with --overwrite"
        )
    if saved is None and cfg.data.columns is not None and len(cfg.data.columns) != ds.n_features:
        raise UserError(
            f"--columns names {len(cfg.data.columns)} columns and {data_name(cfg.data.data)} has "
            f"{ds.n_features} features; give one name per feature, in order"
        )
    if len(ds.x_test) == 0:  # the run's metrics are measured on its test rows
        raise UserError(
            f"--test-fraction {cfg.data.test_fraction:g} leaves no test rows of {data_name(cfg.data.data)} "
            "to measure the model on; use a larger --test-fraction (default 0.2)"
        )
    if cfg.data.classes is not None and ds.classes is None:
        what = "has no labels" if ds.y_train is None else "has class numbers for labels"
        raise UserError(f"--classes orders class names, and {cfg.data.data} {what}; leave it out")
    if cfg.data.classes is not None and len(ds.classes) > len(cfg.data.classes):
        extra = ", ".join(repr(c) for c in ds.classes[len(cfg.data.classes) :][:5])
        raise UserError(
            f"the labels of {cfg.data.data} hold classes --classes does not name ({extra}); name every "
            "class in --classes"
        )
    kind, path = parse_spec(cfg.data.data)
    label, ids = cfg.data.label_column, cfg.data.id_column
    if saved is None and kind == "csv" and cfg.data.columns is None:  # later tables: read by these names
        cfg.data.columns = csv_feature_names(path, label, ids)
    if saved is None and kind == "csv" and label is not None:  # and their labels, and ids
        cfg.data.label_column = csv_column_name(path, label, label, ids)
    if saved is None and kind == "csv" and ids is not None:
        cfg.data.id_column = csv_column_name(path, ids, label, ids, "--id-column")
    if saved is None and kind == "images" and cfg.data.image_size is None:  # later folders: at this size
        cfg.data.image_size = list(ds.sample_shape[1:])
    cfg.data = with_absolute_paths(cfg.data)  # config.json: readable from any directory
    cfg.data.classes = ds.classes  # and other data is numbered by this run's class names
    return ds, digest


def _baselines_beside(ds: Dataset, device: torch.device, threads: int) -> bool:
    """Whether the data's baselines are computed in a thread beside training: where training leaves
    idle as many CPUs as it uses (a new thread takes the process's intra-op thread count,
    training's), on one process, with the training rows in memory (a stream's sample would be read
    from disk while training reads it too)."""
    return (
        device.type == "cpu"
        and 2 * threads <= available_cpus()
        and distributed.rank_and_size()[1] == 1
        and not isinstance(ds.x_train, RowStream)
    )


def _train_and_report(
    cfg: Config,
    ds: Dataset,
    model: Autoencoder,
    device: torch.device,
    progress: Progress,
    out: Path,
    setup_seconds: float,
    data_baselines: bool | Callable[[], dict] = True,
) -> Run:
    """The stages of a run, then (on rank 0) its metrics (with the ``setup_seconds`` this process
    spent before training), beside ``data_baselines`` (as ``evaluate`` takes them), weights,
    history and figures."""
    rank, world = distributed.rank_and_size()
    stage = train_stages(model, cfg, ds, device, progress)
    progress.marks.setdefault("train_seconds", progress.elapsed)
    baseline = None
    if stage == "fine-tune" and cfg.pretrain.compare:
        baseline = build_model(cfg, ds.sample_shape, device)
        progress.attach("baseline", baseline)
        train_stage(progress, "no pretraining", baseline, cfg, ds.x_train.to(device), ds.x_val.to(device))
    progress.check_resumed()  # every stage of the run met
    model.eval()  # as a loaded model is: in training mode a winner-take-all code depends on the batch
    if rank > 0:
        return Run(out, cfg, model, {}, progress.history)
    metrics = finish(cfg, ds, model, baseline, stage, device, progress, out, setup_seconds, data_baselines)
    return Run(out, cfg, model, metrics, progress.history)


if train.__doc__:  # none under python -OO
    train.__doc__ = train.__doc__.rstrip() + "\n" + options_doc(all_sections())  # help(train): every option

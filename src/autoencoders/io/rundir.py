"""The run directory: the one owner of its file names and of how each file is written and read.

``manifest.json`` says what the directory holds (format version, model kind, input shape,
code size) and whether training **completed**; commands that need a trained model refuse
an incomplete run and say how to continue it. Weight files carry the input scaling their model
expects (``SCALING``); ``history.csv`` and ``metrics.json`` are written and read here too, for
runs, classifier directories and saved estimators alike.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserError
from .checkpoint import (
    check_writable,
    file_sha256,
    load_weights,
    replace_dir,
    save_weights,
    write_json,
    write_text,
)
from .state import state_info

try:
    import fcntl
except ImportError:  # Windows: a run is not held against a second process there
    fcntl = None

RUN_FORMAT = 3  # 3: the manifest records the SHA-256 of every weight file
CONFIG, MANIFEST, WEIGHTS = "config.json", "manifest.json", "model.safetensors"
METRICS, HISTORY, STATE = "metrics.json", "history.csv", "state.safetensors"
RECONSTRUCTIONS, LOSS, PRETRAINING, SAMPLES = (
    "reconstructions.png",
    "loss.png",
    "pretraining.png",
    "samples.png",
)
CLASSIFIER_WEIGHTS, CLASSIFIER_CONFIG = "classifier.safetensors", "classifier.json"
CLASSIFIER_FILES = {CLASSIFIER_WEIGHTS, CLASSIFIER_CONFIG, METRICS}
CLUSTERS_CSV, CLUSTERS_JSON, CLUSTERER_WEIGHTS = "clusters.csv", "clusters.json", "clusterer.safetensors"
CLUSTER_MEMBERS, CLUSTER_MAP = "clusters.png", "cluster-map.png"
CLUSTERING_FILES = {CLUSTERS_CSV, CLUSTERS_JSON, CLUSTERER_WEIGHTS, CLUSTER_MEMBERS, CLUSTER_MAP}
ESTIMATOR = "estimator.json"  # a saved scikit-learn estimator's class, parameters and fitted numbers
REPRODUCTION = "reproduction.md"  # ``reproduce``'s table of published values beside the run's
TENSORBOARD, SNAPSHOTS = "tensorboard", "snapshots"
SCALING = ("input_offset", "input_span")  # a weight file's input scaling: rows = (raw - offset) / span

Scaler = tuple[np.ndarray, np.ndarray]  # (offset, span) per input feature, fitted on the training split

# what a run writes in its directory, beside its figures and report (their names are the figures')
RUN_FILES = {
    *(CONFIG, MANIFEST, WEIGHTS, METRICS, HISTORY, STATE, REPRODUCTION),
    *(RECONSTRUCTIONS, LOSS, PRETRAINING, SAMPLES),
}
RUN_FOLDERS = {TENSORBOARD, SNAPSHOTS}


def cut_short(name: str) -> bool:
    """Whether ``name`` is a temporary file that a write stopped midway left in a run directory:
    ``atomic_write``'s (.NAME.XXXX.tmp), or safetensors' own (.tmpXXXX, which its ``save_file``
    made beside each state file that earlier versions wrote). The file it was for is intact."""
    return name.startswith(".") and (name.endswith(".tmp") or name.startswith(".tmp"))


def not_written_by_the_run(run_dir: Path, also: set[str]) -> list[str]:
    """The entries of ``run_dir`` that neither the run wrote (its files, those named in ``also``:
    its figures and report, or a saved estimator's files; its folders) nor a command made from it
    (a classifier's or clustering's folder): the user's own."""

    def ours(entry: Path) -> bool:
        if entry.is_dir() and not entry.is_symlink():
            outputs = ((CLASSIFIER_CONFIG, CLASSIFIER_FILES), (CLUSTERS_JSON, CLUSTERING_FILES))
            return (
                entry.name in RUN_FOLDERS
                or _set_aside(entry)
                or any((entry / marker).is_file() and _holds_only(entry, own) for marker, own in outputs)
            )
        return entry.name in RUN_FILES | also or cut_short(entry.name)

    return sorted(entry.name for entry in Path(run_dir).iterdir() if not ours(entry))


def _set_aside(folder: Path) -> bool:
    """Whether ``folder`` is what ``replace_dir`` left when a process writing a classifier or a
    clustering was killed: ``.NAME.XXXX.new`` (its files, some written) or ``.NAME.XXXX.old`` (what
    was there before, in ``old/``)."""
    if not folder.name.startswith(".") or folder.suffix not in (".new", ".old"):
        return False
    inner = [folder]
    if folder.suffix == ".old":
        entries = list(folder.iterdir())
        if any(e.name != "old" or not e.is_dir() or e.is_symlink() for e in entries):
            return False
        inner = entries
    return all(_holds_only(f, CLASSIFIER_FILES | CLUSTERING_FILES) for f in inner)


def _holds_only(folder: Path, own: set[str]) -> bool:
    """Whether ``folder`` holds files named in ``own`` (or left by a cut-off write) and nothing else:
    a classifier's or clustering's, not a folder of the user's that holds a file of that name."""
    return all(e.is_file() and (e.name in own or cut_short(e.name)) for e in folder.iterdir())


def write_weights(path: Path, state: dict[str, torch.Tensor], scaler: Scaler | None = None) -> None:
    """A weight file: ``state`` and, given, the input ``scaler`` its model expects rows in."""
    tensors = dict(state)
    if scaler is not None:
        tensors |= {key: torch.as_tensor(np.asarray(part)) for key, part in zip(SCALING, scaler)}
    save_weights(path, tensors)


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    """``config.json``: every setting of the run (a ``Config.to_dict()``)."""
    write_json(Path(run_dir) / CONFIG, config)


def read_config(path: Path) -> dict[str, Any]:
    """The settings in a run's ``config.json`` at ``path``; a UserError calling the run directory
    damaged when the file is missing or holds no JSON object."""
    if not Path(path).is_file():
        raise UserError(f"{path} is missing; the run directory is damaged (train it again)")
    try:
        return read_json(path, "config")
    except UserError as e:
        raise UserError(f"{e}; the run directory is damaged") from None


def read_json(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in ``path``; a UserError naming ``what`` it should be when it is not one."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError) as e:  # unreadable, not JSON, not UTF-8, nested too deep
        raise UserError(f"{path} is not a readable {what} ({e})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a {what} (a JSON object)")
    return data


def write_classifier(
    out: Path,
    state: dict[str, torch.Tensor],
    scaler: Scaler,
    settings: dict[str, Any],
    metrics: dict[str, Any],
) -> None:
    """A classifier directory, written whole or not at all (one already there is replaced): weights
    with the input scaling, settings (with the weights' SHA-256 and the format) that rebuild it
    alone, and its metrics."""

    def write(new: Path) -> None:
        write_weights(new / CLASSIFIER_WEIGHTS, state, scaler)
        checksum = {CLASSIFIER_WEIGHTS: file_sha256(new / CLASSIFIER_WEIGHTS)}
        write_json(new / CLASSIFIER_CONFIG, {"format": RUN_FORMAT, **settings, "sha256": checksum})
        write_metrics(new, metrics)

    replace_dir(out.resolve(), write)  # a link's target: the directory it names


def check_output_dir(out: Path, holds_own: bool, what: str, own_files: set[str]) -> None:
    """Refuse, before any work, an ``out`` that is a file, or a non-empty directory unless
    ``holds_own`` (it holds a ``what``, which is replaced whole) and nothing beside the ``own_files``
    that make one: a run or other files would be overwritten or deleted."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give the path of a new or empty directory")
    if out.is_dir() and any(out.iterdir()) and not holds_own:
        held = "a run" if (out / MANIFEST).is_file() else f"files that are not a {what}'s"
        raise UserError(f"--out {out} holds {held}; give the path of a new or empty directory")
    # a write that a kill cut short leaves a temporary file: the command's own, not the user's
    entries = list(out.iterdir()) if out.is_dir() else []
    theirs = sorted(e.name for e in entries if e.name not in own_files and not cut_short(e.name))
    if theirs:
        raise UserError(
            f"--out {out} holds a {what} and what it did not write ({', '.join(theirs[:5])}); move that "
            "out first, or give another --out: nothing was deleted"
        )
    check_writable(out)


def is_classifier(path: Path) -> bool:
    """Whether ``path`` holds a classifier written by ``classify``."""
    return (Path(path) / CLASSIFIER_CONFIG).is_file()


def read_classifier_settings(path: Path) -> dict[str, Any]:
    """The settings of a classifier directory, of this format; a UserError naming the fix otherwise."""
    return _read_output(path, CLASSIFIER_CONFIG, "classifier", "classify", "classifier-0.1")


def _read_output(path: Path, name: str, what: str, command: str, example: str) -> dict[str, Any]:
    """The JSON ``name`` that a ``command`` output directory holds, checked to be of this format."""
    if not (Path(path) / name).is_file():
        raise UserError(
            f"{path} is not a {what} directory (no {name}); pass an output directory of "
            f"'autoencoders {command}', e.g. RUN/{example}"
        )
    settings = read_json(Path(path) / name, f"{what} settings file")
    check_format(settings.get("format"), path, f"{what} format")
    return settings


def write_clusters(
    out: Path,
    clusters: np.ndarray,
    labels: np.ndarray | None,
    summary: dict[str, Any],
    state: dict[str, torch.Tensor] | None,
    scaler: Scaler,
    said: dict[str, np.ndarray] | None = None,
) -> None:
    """A clustering directory: ``clusters.csv`` (row, what ``said`` says of it, cluster and label
    when known: a class number or name), the weights that assign new rows (with the input scaling;
    None when they cannot be saved) and ``clusters.json``, the summary with their SHA-256 and the
    format."""
    out.mkdir(parents=True, exist_ok=True)
    head = ["cluster"] + (["label"] if labels is not None else [])
    cells = ([c] + ([labels[i]] if labels is not None else []) for i, c in enumerate(clusters.tolist()))
    write_rows(out / CLUSTERS_CSV, head, cells, said)
    checksum = {}
    if state is not None:
        write_weights(out / CLUSTERER_WEIGHTS, state, scaler)
        checksum = {CLUSTERER_WEIGHTS: file_sha256(out / CLUSTERER_WEIGHTS)}
    else:
        (out / CLUSTERER_WEIGHTS).unlink(missing_ok=True)  # a clustering replaced keeps no stale weights
    write_json(out / CLUSTERS_JSON, {"format": RUN_FORMAT, **summary, "sha256": checksum})


def write_rows(
    path: Path, head: list[str], cells: Iterable[list], said: dict[str, np.ndarray] | None = None
) -> None:
    """A CSV of one line per row of an output, written atomically: ``row`` (the rows counted from
    0), what ``said`` says of each row (``Rows.columns``: its place in the data, its id), then the
    ``head`` columns of its ``cells``."""
    said = said or {}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["row", *said, *head])
    for i, row in enumerate(cells):
        writer.writerow([i, *(values[i].item() for values in said.values()), *row])
    write_text(path, buf.getvalue())


def is_clustering(path: Path) -> bool:
    """Whether ``path`` holds a clustering written by ``cluster``."""
    return (Path(path) / CLUSTERS_JSON).is_file()


def read_clusters_summary(path: Path) -> dict[str, Any]:
    """The summary of a clustering directory, of this format; a UserError naming the fix otherwise."""
    return _read_output(path, CLUSTERS_JSON, "clustering", "cluster", "cluster-kmeans-10")


def write_history(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """``history.csv``: one row per epoch and stage, a column per number any row has."""
    fields = list(dict.fromkeys(k for row in history for k in row)) or ["stage"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text(Path(run_dir) / HISTORY, buf.getvalue())


def history_log(run_dir: Path, saved: list[dict[str, Any]]) -> Callable[[list[dict[str, Any]]], None]:
    """A logger (``Progress.loggers``) keeping ``history.csv`` to the rows of the last state on disk,
    after the ``saved`` rows of the state a run resumed from: a run's curve while it trains, and
    where it stood when it stopped."""
    rows = list(saved)

    def log(new: list[dict[str, Any]]) -> None:
        rows.extend(new)
        write_history(run_dir, rows)

    return log


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``history.csv`` (numbers as floats); a UserError when there is none."""
    path = Path(run_dir) / HISTORY
    if not path.is_file():
        raise UserError(f"{run_dir} has no {HISTORY} (a saved estimator keeps none): no loss curve to draw")
    try:
        with open(path, newline="") as f:
            return [
                {k: v if k == "stage" else float(v) for k, v in row.items() if v != ""}
                for row in csv.DictReader(f)
            ]
    except (OSError, ValueError, TypeError, csv.Error) as e:  # text where numbers go, not UTF-8, ...
        raise UserError(
            f"{path} is not a loss history this toolkit wrote ({e}); the run directory is damaged"
        ) from None


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    """``metrics.json``."""
    write_json(Path(run_dir) / METRICS, metrics)


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """The numbers of ``metrics.json``; a UserError naming the fix when it cannot be read."""
    try:
        return read_json(Path(run_dir) / METRICS, "metrics file")
    except UserError as e:
        raise UserError(f"{e}; it needs a run made by train") from None


def write_manifest(
    run_dir: Path,
    kind: str,
    input_shape: tuple[int, ...],
    code_size: int,
    completed: bool,
    stopped: str | None = None,
) -> None:
    """Record what the run is, whether it finished (or why it ``stopped``) and, once it has, its
    weight files' SHA-256."""
    run_dir = Path(run_dir)
    weights = sorted(p for p in run_dir.glob("*.safetensors") if p.name != STATE) if completed else []
    write_json(
        run_dir / MANIFEST,
        {
            "format": RUN_FORMAT,
            "kind": kind,
            "input_shape": list(input_shape),
            "code_size": code_size,
            "completed": completed,
            "sha256": {p.name: file_sha256(p) for p in weights},
        }
        | ({"stopped": stopped} if stopped else {}),
    )


def check_format(found: object, where: Path, what: str = "run format") -> None:
    """A UserError naming both versions unless ``found`` is the format this version reads."""
    if found == RUN_FORMAT:
        return
    if isinstance(found, int) and found > RUN_FORMAT:
        raise UserError(
            f"{where} was written by a newer version of this toolkit ({what} {found}; this version "
            f"reads {RUN_FORMAT}); read it with the version that wrote it, or a later one"
        )
    if not isinstance(found, int) or isinstance(found, bool):  # an edited file, not another version's
        raise UserError(
            f"{where} has {what} {found!r}, not a version number: the file is damaged; train it again"
        )
    raise UserError(
        f"{where} has {what} {found}, from an older version (this one reads {RUN_FORMAT}); train it again"
    )


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    """The manifest of ``run_dir``; a UserError when it is not a run directory of this format."""
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST
    if not path.is_file():
        if (run_dir / CONFIG).is_file():
            raise UserError(
                f"{run_dir} has a config.json but no {MANIFEST}: training stopped before its first "
                "step or the directory was made by an older version; train it again"
            )
        try:
            inside = sorted(p for p in run_dir.iterdir() if (p / MANIFEST).is_file())
        except OSError:  # not a folder, or one that cannot be listed: no runs to point to
            inside = []
        fix = "give the directory a training run wrote (train's --out)"
        made = next((n for n in (CLASSIFIER_CONFIG, CLUSTERS_JSON) if (run_dir / n).is_file()), None)
        if made is not None:  # a classifier's or clustering's folder: the run it was made from
            try:
                source = json.loads((run_dir / made).read_text()).get("run_dir") or run_dir.parent
            except (OSError, ValueError, AttributeError):
                source = run_dir.parent
            what = "a classifier" if made == CLASSIFIER_CONFIG else "a clustering"
            fix = f"it holds {what} made from the run {source}: give that, or use this with predict"
        elif inside:  # the folder of runs (runs/) rather than one of them
            fix = f"the runs in it are {', '.join(map(str, inside[:4]))}{', …' * (len(inside) > 4)}"
        what = f"is not a run directory (no {MANIFEST})" if run_dir.exists() else "does not exist"
        raise UserError(f"{run_dir} {what}; {fix}")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, RecursionError) as e:  # not JSON, not UTF-8, a number or nesting beyond reading
        raise UserError(f"{path} is not valid JSON ({e}); the run directory is damaged") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{path} is not a manifest (a JSON object); the run directory is damaged")
    check_format(manifest.get("format"), run_dir)
    kinds = {"completed": bool, "kind": str, "input_shape": list, "code_size": int}
    missing = [k for k in kinds if k not in manifest]
    if missing:
        raise UserError(
            f"{path} lacks its {missing[0]}, which this toolkit always writes: the run directory is damaged"
        )
    wrong = [k for k, kind in kinds.items() if not isinstance(manifest[k], kind)]
    shape = manifest["input_shape"]
    if wrong or not (isinstance(shape, list) and all(type(n) is int and n > 0 for n in shape)):
        name = wrong[0] if wrong else "input_shape"
        raise UserError(
            f"{path}'s {name} is {manifest.get(name)!r}, which this toolkit never writes: the run "
            "directory is damaged"
        )
    return manifest


def read_weights(run_dir: str | Path, name: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """The tensors of weight file ``name``, verified against the SHA-256 the manifest records."""
    checksums = manifest.get("sha256")
    expected = checksums.get(name) if isinstance(checksums, dict) else None
    if not isinstance(expected, str):
        raise UserError(f"{Path(run_dir) / MANIFEST} records no checksum for {name}; train the run again")
    return load_weights(Path(run_dir) / name, expected)


def read_scaled_weights(
    run_dir: str | Path, name: str, manifest: dict[str, Any]
) -> tuple[dict[str, Any], Scaler]:
    """The model tensors of weight file ``name`` (verified like ``read_weights``) and its input scaling."""
    tensors = read_weights(run_dir, name, manifest)
    if not all(key in tensors for key in SCALING):
        raise UserError(f"{Path(run_dir) / name} holds no input scaling; it was not written by this toolkit")
    offset, span = (tensors.pop(key).numpy() for key in SCALING)
    width = math.prod(manifest["input_shape"])
    if not (
        offset.shape == span.shape == (width,)
        and np.isfinite(offset).all()
        and np.isfinite(span).all()
        and (span > 0).all()
    ):
        raise UserError(  # each row is scaled by it: NaN codes, or rows of another width, would follow
            f"{Path(run_dir) / name} holds an input scaling that is not one of {width} features (finite "
            "offsets, positive spans); the directory is damaged: make it again"
        )
    return tensors, (offset, span)


def saved_state(run_dir: str | Path) -> dict[str, Any] | None:
    """The info of an incomplete run's saved state (stage, epoch, history); None without one, or one
    that cannot be read (resuming it says why)."""
    try:
        return state_info(Path(run_dir) / STATE)
    except UserError:
        return None


def saved_at(run_dir: str | Path) -> str | None:
    """Where an incomplete run's saved state stands, as "stage 'NAME' after epoch N"; None
    without one."""
    info = saved_state(run_dir)
    return None if info is None else f"stage '{info['stage']}' after epoch {info['loop']['epoch']}"


def saved_dir(out: Path | None, what: str) -> str:
    """The directory a result was saved in, as ``os.fspath`` gives it; a UserError for a ``what``
    (classifier, clustering) that was never saved."""
    if out is None:
        raise UserError(f"this {what} was never saved, so it has no directory to give")
    return str(out)


@contextlib.contextmanager
def held(run_dir: Path, busy: str) -> Iterator[None]:
    """``run_dir`` held by this process while it trains there: an exclusive lock on the directory
    itself, which the system also lets go when the process ends, however it ends. Another process
    that would train into it, resume it or replace it meanwhile gets ``busy`` as a UserError; the
    lock lasts while the directory's files are replaced, as the directory stays. Where the system
    has no such locks (Windows, some network file systems) the run is not held."""
    fd, taken = _lock(run_dir, exclusive=True)
    if taken:
        raise UserError(busy)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # the lock goes with it


def training_elsewhere(run_dir: str | Path) -> bool | None:
    """Whether another process is training in ``run_dir`` now (holds it); None where that cannot
    be told (no locks on this system)."""
    fd, taken = _lock(Path(run_dir), exclusive=False)
    if fd is not None:
        os.close(fd)
        return False
    return True if taken else None


def _lock(path: Path, exclusive: bool) -> tuple[int | None, bool]:
    """(an open descriptor of ``path`` holding a lock on it, taken without waiting, or None; whether
    another process holds it). (None, False) where no lock can be had."""
    if fcntl is None:
        return None, False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None, False
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except OSError as e:  # BlockingIOError: another holds it; any other: a file system without locks
        os.close(fd)
        return None, isinstance(e, BlockingIOError)
    return fd, False


def still_training(run_dir: str | Path, said: str = "") -> str:
    """That ``run_dir`` is still training in another process (then what ``said`` adds), and what to do."""
    return (
        f"{run_dir} is still training in another process{said}; wait for it to finish (its loss so far: "
        f"autoencoders visualize {run_dir} --what loss)"
    )


def require_complete(run_dir: str | Path) -> dict[str, Any]:
    """The manifest of a run that finished training; a UserError naming the fix otherwise."""
    manifest = read_manifest(run_dir)
    if manifest.get("stopped"):
        raise UserError(f"{run_dir} did not finish: {manifest['stopped']}")
    if not manifest["completed"]:
        at = saved_at(run_dir)
        where = f" (its last saved state: {at})" if at else ""
        elsewhere = training_elsewhere(run_dir)
        if elsewhere:
            raise UserError(still_training(run_dir, where))
        resume = f"continue it with: autoencoders train --resume {run_dir}"
        if elsewhere is False:
            raise UserError(f"{run_dir} stopped before it finished training{where}; {resume}")
        raise UserError(  # no locks here: training, or stopped, nothing tells which
            f"{run_dir} has not finished training{where}. If it is still training, wait for it (its loss "
            f"so far: autoencoders visualize {run_dir} --what loss); if it stopped, {resume}"
        )
    return manifest

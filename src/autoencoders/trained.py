"""A trained run opened from its directory: config, manifest, model and input scaling, and rows of any
data scaled as the run's training data was; and a saved clusterer opened from its own."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from . import kinds
from .clustering.model import Clusterer
from .config import Config
from .data.classes import as_labels, classes_of
from .data.datasets import load_dataset, own_test_rows, read_data, streamed_rows
from .data.memory import check_aligned, check_labels_file, data_name, frame_column, rows_in_memory
from .data.scaling import apply_scaler, check_scaler, to_float, warn_if_other_units
from .data.shapes import display_shape
from .data.sources import kept_rows, label_per_row
from .data.specs import IN_MEMORY, for_data, id_name, is_table, parse_spec, width_mismatch
from .data.stream import RowStream
from .data.tables import csv_column_name
from .errors import UserError
from .fields import flags
from .io import rundir
from .io.checkpoint import state_mismatch
from .models import Autoencoder
from .options import READING, SPLITS, DataConfig


@dataclass
class TrainedRun:
    """What a completed run directory holds, read once."""

    cfg: Config
    manifest: dict[str, Any]
    model: Autoencoder
    scaler: tuple[np.ndarray, np.ndarray]  # (offset, span) fitted on the training split

    @property
    def display_shape(self) -> tuple | None:
        return display_shape(tuple(self.manifest["input_shape"]))

    @property
    def features(self) -> list[str] | None:
        """A table's column names, as its figures show them (None where they have none)."""
        return self.cfg.data.columns

    def reading(self, reading: dict[str, Any], command: str, data: object) -> TrainedRun:
        """This run reading ``data`` given to ``command`` as ``reading`` says (its label column,
        feature columns, image size, ...: ``READING``'s options; see ``checked_reading``)."""
        if not reading:
            return self
        return dataclasses.replace(self, cfg=self.cfg.replace(**checked_reading(reading, command, data)))


def checked_reading(reading: dict[str, Any], command: str, data: object) -> dict[str, Any]:
    """How ``data`` given to ``command`` is read (``READING``'s options), checked: a UserError for any
    other option, for options without ``data`` to read, and for a CSV label column the file does not
    have; one given by its index is named by the file's header where it has one, as ``train``
    records it (a later file in another order gives its labels, not a feature)."""
    other = sorted(set(reading) - set(READING))
    if other:  # only Python's keywords reach here: the command line parses its flags
        raise UserError(
            f"{command} takes no option {', '.join(other)}; besides its own, it takes how the data given "
            f"is read: {', '.join(READING)}"
        )
    if reading and data is None:
        raise UserError(f"how --data is read ({flags(reading)}) needs --data, the rows to read")
    if data is None or isinstance(data, os.PathLike):  # a path: said where it is read
        return reading
    if reading.get("id_column") is not None:
        reading = reading | {"id_column": _id_column(data, reading["id_column"], reading.get("label_column"))}
    column = reading.get("label_column")
    if column is None:
        return reading
    if not isinstance(data, str):  # rows in memory: a data frame's column, its name passed on
        if not hasattr(data, "columns"):
            raise UserError(
                "--label-column names a column of a CSV file or a data frame, and rows in an array have "
                "none; leave it out (where a command takes labels of such rows, give them as labels=)"
            )
        return reading | {"label_column": str(data.columns[frame_column(data, column)]).strip()}
    kind, path = parse_spec(data)
    if kind != "csv":
        raise UserError(
            f"--label-column names a column of csv: data, and {data} has none; leave it out (npy: data "
            "takes --labels FILE.npy)"
        )
    if path is not None and Path(path).is_file():  # a missing file is said where it is read
        named = csv_column_name(path, column, column, reading.get("id_column"))  # refused where it has none
        reading = reading | {"label_column": named}
    return reading


def _id_column(data: object, column: str | int, label_column: str | int | None) -> str | int:
    """``--id-column`` of ``data``, named by the file's header where it has one; a UserError for data
    other than a CSV file and for a column the file does not have."""
    kind, path = parse_spec(data) if isinstance(data, str) else ("", None)
    if kind != "csv":
        what = f"{data} has" if isinstance(data, str) else "rows in memory have"
        raise UserError(
            f"--id-column names a column of csv: data, and {what} none; leave it out (an output's "
            "row counts the rows in their order)"
        )
    if path is None or not Path(path).is_file():  # a missing file is said where it is read
        return column
    return csv_column_name(path, column, label_column, column, "--id-column")


def open_run(run_dir: str | Path, device: str = "cpu") -> TrainedRun:
    """Config, manifest, model (eval mode) and input scaling of a run that completed training."""
    run_dir = Path(run_dir)
    manifest = rundir.require_complete(run_dir)
    cfg = Config.load_json(run_dir / rundir.CONFIG)
    if (run_dir / rundir.ESTIMATOR).is_file():  # fitted on rows in memory (earlier versions named digits)
        cfg.data = dataclasses.replace(cfg.data, data=IN_MEMORY)
    tensors, scaler = rundir.read_scaled_weights(run_dir, rundir.WEIGHTS, manifest)
    shape = tuple(manifest["input_shape"])
    try:
        check_fits(cfg, shape, tensors)
    except RuntimeError as e:
        raise UserError(_not_fitting(run_dir, e)) from None
    model = kinds.build(cfg.model, cfg.kind_options, shape)  # out of memory is said as such
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise UserError(_not_fitting(run_dir, e)) from None
    return TrainedRun(cfg, manifest, model.to(device).eval(), scaler)


def _not_fitting(run_dir: Path, e: RuntimeError) -> str:
    """Why a run's weights (``e``: load_state_dict's complaint) do not fit the model its config builds."""
    return (
        f"{run_dir}: the weights do not fit its config.json ({state_mismatch(e)}): the two are from "
        "different runs, or one was edited; put back the run's own, or train it again"
    )


def given_reading(options: dict[str, Any], command: str, data: object) -> dict[str, Any]:
    """How ``data`` is read, taken out of a command's ``options`` and checked (``checked_reading``)."""
    return checked_reading({key: options.pop(key) for key in READING if key in options}, command, data)


def writes_into_run(run: TrainedRun, run_dir: str | Path, out: Path, what: str) -> bool:
    """Whether ``out`` is a folder of ``run_dir``, whose report then lists it; a UserError when it is
    and ``run_dir`` no longer holds the weights ``run`` was opened with (trained again, with
    --overwrite, while ``what`` was made from it): it belongs to the model it began with, not to
    the run now there."""
    if out.resolve().parent != Path(run_dir).resolve():
        return False
    try:
        now = rundir.read_manifest(run_dir).get("sha256")
    except UserError:  # being written anew, or gone
        now = None
    if now != run.manifest.get("sha256"):
        raise UserError(
            f"{run_dir} was trained again while this {what} was made from it, so it is not written there: "
            "it belongs to the model that was replaced; make it again from the run now there"
        )
    return True


def check_fits(
    cfg: Config, shape: tuple[int, ...], tensors: dict[str, torch.Tensor], prefix: str = ""
) -> None:
    """load_state_dict's RuntimeError where the autoencoder ``cfg`` builds for rows of ``shape`` does
    not fit ``tensors`` (its own under ``prefix``): compared on the meta device, without memory, as an
    edited config may ask for gigabytes before the weights could say they do not fit it."""
    try:
        with torch.device("meta"):
            shell = kinds.build(cfg.model, cfg.kind_options, shape)
    except RuntimeError:  # a kind whose building reads numbers back (an AAE's mixture prior)
        return
    shell.load_state_dict(
        {k.removeprefix(prefix): t for k, t in tensors.items() if k.startswith(prefix)}, assign=True
    )


def later_precision(run_dir: str | Path, precision: str, device: torch.device) -> str:
    """The precision for training more on a run (classifying, clustering) on ``device``: ``precision``,
    or for ``auto`` the one the run measured when it trained on the same kind of device (its
    metrics record it), so later stages do not time their steps again."""
    if precision != "auto":
        return precision
    metrics = rundir.read_metrics(Path(run_dir))
    trained_on = torch.device(metrics.get("device", "meta")).type
    return metrics.get("precision", "auto") if trained_on == device.type else "auto"


def check_width(model: Autoencoder, n_features: int, spec: str) -> None:
    """A UserError unless rows of ``n_features`` fit ``model``'s input."""
    expected = int(np.prod(model.input_shape))
    if n_features != expected:
        raise UserError(width_mismatch(spec, n_features, expected))


Data = str | np.ndarray | torch.Tensor


def check_layout(
    given: tuple[int, ...], shape: tuple[int, ...] | None, what: str = "the images given in memory"
) -> None:
    """A UserError when images (an N×H×W or N×C×H×W array's ``given`` shape, ``what`` they are) have
    a run's width but not its input ``shape`` (C, H, W): flattened, their pixels would reach other
    inputs than the model's, and its codes would be of nothing."""
    if shape is None or len(given) < 3 or len(shape) < 3:
        return
    own = (1, *given[1:]) if len(given) == 3 else tuple(given[1:])
    if own == tuple(shape) or math.prod(own) != math.prod(shape):  # the same, or the width check's
        return
    if len(given) == 4 and given[3] == 1 and (1, *given[1:3]) == tuple(shape):  # gray, one channel last
        return  # in the same order as 1×H×W, as training reads it
    turned = len(given) == 4 and (given[3], given[1], given[2]) == tuple(shape)
    hint = (
        "np.moveaxis(x, -1, 1): their colour comes last" if turned else "them as the run's own data held them"
    )
    raise UserError(
        f"{what} are {'×'.join(map(str, own))} (C×H×W) and the run takes "
        f"{'×'.join(map(str, shape))}; give {hint}, or as flat rows in that order"
    )


def check_split(split: str) -> None:
    """A UserError unless ``split`` names rows a run's data has: all of them, or a split of training's."""
    if split not in SPLITS:
        raise UserError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")


def rows_of(
    run: TrainedRun,
    data: Data,
    split: str,
    labels: str | Path | None = None,
    clip: bool = True,
    stream: bool = False,
) -> np.ndarray | RowStream:
    """Rows of ``data`` (a spec, or rows in memory in the training data's units) scaled as the
    run's training data was (clipped to its range unless not ``clip``), checked against its width;
    ``labels``: a spec's labels file; ``stream``: as ``scaled_data`` takes it."""
    shape = tuple(run.manifest["input_shape"])
    return scaled_input(run.cfg.data, run.scaler, data, split, labels, clip, shape, stream)


def scaled_input(
    data_cfg: DataConfig,
    scaler: tuple[np.ndarray, np.ndarray],
    data: Data,
    split: str,
    labels: str | Path | None = None,
    clip: bool = True,
    shape: tuple[int, ...] | None = None,
    stream: bool = False,
) -> np.ndarray | RowStream:
    """Rows of ``data`` (a spec, or rows in memory in the units of the data ``data_cfg`` reads)
    scaled by a run's fitted ``scaler`` (then clipped to [0, 1] unless not ``clip``), checked
    against its width, and images (in memory or a file) against the run's input ``shape``. ``split`` picks
    rows of a spec (with its ``labels`` file, a held-out class leaves the split as in training);
    rows in memory are taken whole. ``stream``: as ``scaled_data`` takes it."""
    if isinstance(data, str):  # the split checked where it is taken
        x = scaled_data(data_cfg, data, split, scaler, labels, clip, shape, stream)[0]
    else:
        check_split(split)  # a mistyped one is named first
        if split != "all":  # taken whole, the rows would be measured as if they were that split
            raise UserError(
                f"split={split!r} picks rows of a data spec, and rows in memory are taken whole: give "
                f"the {split} rows themselves, or a spec such as the run's own data ({data_cfg.data})"
            )
        if data_cfg.columns is None and hasattr(data, "columns"):  # a frame's label column is no feature
            at = _frame_label(data_cfg, data)
            data = data if at is None else data.drop(columns=data.columns[at])
        rows = rows_in_memory(data, "the data given in memory", data_cfg.columns)
        check_layout(rows.shape, shape)
        rows = rows.reshape(len(rows), -1)
        check_scaler(
            scaler, rows.shape[1], "the data given in memory"
        )  # before scaling, which needs the width
        rows = to_float(rows)
        warn_if_other_units(rows, scaler, "the rows given in memory", is_table(data_cfg))
        x = apply_scaler(rows, *scaler, clip)
    return x


def check_own_data(run_dir: str | Path, data_cfg: DataConfig, fix: str, kept_fix: str | None = None) -> None:
    """A UserError ending in ``fix`` when the files a run was trained on (its data, its labels file)
    are no longer where it read them: moved or deleted since. Rows given in memory and kept in the
    cache that are gone end in ``kept_fix``; without it, reading them says how to give them again."""
    paths = [] if data_cfg.data == IN_MEMORY else [parse_spec(data_cfg.data)[1], data_cfg.labels]
    gone = next((p for p in paths if p is not None and not Path(p).exists()), None)
    if gone is None or (kept_rows(gone) and kept_fix is None):
        return
    if kept_rows(gone):
        raise UserError(
            f"{run_dir} was trained on rows given in memory, kept in {gone}, which is gone (a cache "
            f"cleared, or $AUTOENCODERS_CACHE set elsewhere){kept_fix}"
        )
    raise UserError(f"{run_dir} was trained on {gone}, which is no longer there; put it back there{fix}")


def _frame_label(data_cfg: DataConfig, frame: Any) -> int | None:
    """The place of the label column of ``data_cfg`` in a data frame, by its name; None where the frame
    has none: a run trained on a data frame or a CSV with a named label column reads its labels from
    later frames as from later files."""
    column = data_cfg.label_column
    names = [str(c).strip() for c in frame.columns]
    return None if column is None or str(column) not in names else names.index(str(column))


def frame_labels(data_cfg: DataConfig, data: Any, labels: Any) -> Any:
    """``labels``, or where none are given, the label column of a data frame given in memory that has
    it (``_frame_label``)."""
    if labels is not None or not hasattr(data, "columns"):
        return labels
    at = _frame_label(data_cfg, data)
    return None if at is None else data.iloc[:, at]


def given_labels(
    labels: Any, rows: Any, n: int, classes: list[str] | None
) -> tuple[np.ndarray, list[str] | None]:
    """Labels given in memory for the ``n`` rows ``rows`` (numbers or names) as (class indices,
    class names), names numbered as the run's (``classes``: its ``data.classes``)."""
    y = as_labels(label_per_row(labels, n))  # as train keeps labels in memory (``save_arrays``)
    check_aligned(rows, labels)
    return classes_of(y, classes, "the labels given")


def rows_and_labels(
    run: TrainedRun, data: Data, split: str, labels: Any = None, clip: bool = True, stream: bool = False
) -> Rows:
    """Rows of ``data`` scaled as the run's training rows (clipped to their range unless not
    ``clip``), their class indices (None without labels), the classes' names (None where they have
    none) and a split's places among the data's rows: of a spec, its ``split``, ``labels`` a labels
    file for ``npy:`` data (``stream``: as ``scaled_data`` takes it); of rows in memory, all of
    them, ``labels`` in memory or the run's label column of a data frame."""
    if isinstance(data, str):
        check_labels_file(labels)
        shape = tuple(run.manifest["input_shape"])
        read = scaled_data(run.cfg.data, data, split, run.scaler, labels, clip, shape, stream)
        check_width(run.model, read.x.shape[1], data)
        return read
    x, labels = rows_of(run, data, split, clip=clip), frame_labels(run.cfg.data, data, labels)
    if labels is None:
        return Rows(x, None, None, None)
    return Rows(x, *given_labels(labels, data, len(x), run.cfg.data.classes), None)


class Rows(NamedTuple):
    """Rows read for a trained run, scaled as its training rows were."""

    x: np.ndarray | RowStream  # a stream where ``scaled_data`` was asked to stream and did
    y: np.ndarray | None  # class indices; None without labels
    classes: list[str] | None  # the class numbers' names, where they have names
    places: np.ndarray | None  # a split's rows' places among the data's (``Dataset.places``); None: all
    ids: np.ndarray | None = None  # each row's id (a CSV's id column), as text; None where it has none
    id_name: str = "id"  # the id column's name in the data

    def columns(self) -> dict[str, np.ndarray]:
        """What an output writes beside each row's ``row`` to say which row of the data it is: its
        place (``data_row``, for a split's rows) and its id, named as the data names its column
        (``id`` where an output has a column of that name)."""
        said = {} if self.places is None else {"data_row": self.places}
        if self.ids is not None:
            taken = self.id_name in OUTPUT_COLUMNS or self.id_name.startswith(OUTPUT_PREFIXES)
            said["id" if taken else self.id_name] = self.ids
        return said


# the columns of the CSVs predict, score, cluster and encode write, and the prefixes of their columns
# of class probabilities (p_CLASS) and code units (code_J)
OUTPUT_COLUMNS = ("row", "data_row", "score", "label", "cluster", "predicted")
OUTPUT_PREFIXES = ("p_", "code_")


def scaled_data(
    data_cfg: DataConfig,
    data: str,
    split: str,
    scaler: tuple[np.ndarray, np.ndarray],
    labels: str | None = None,
    clip: bool = True,
    shape: tuple[int, ...] | None = None,
    stream: bool = False,
) -> Rows:
    """``scaled_rows`` (clipped to [0, 1] unless not ``clip``), their class indices (None for
    unlabelled data; ``labels``: a labels file for ``npy:`` data), the classes' names (None where
    they have none), numbered as the run's own data was (``data.classes``), and a split's places
    among the data's rows; images checked against the run's input ``shape`` (see ``check_layout``).
    ``stream``: the rows of an ``npy:`` file over its ``--memory-budget``, all of them or its
    training split, as a ``RowStream`` (read by ``data.stream.in_order``), not read whole."""
    check_split(split)
    cfg = for_data(data_cfg, data, len(scaler[0]), labels, shape or ())
    named = {} if cfg.id_column is None else {"id_name": id_name(cfg)}

    def scaled(x: np.ndarray) -> np.ndarray:
        """Rows as read, checked against the run's scaling (width, units), then scaled by it."""
        check_scaler(scaler, x.shape[1], data)
        warn_if_other_units(x, scaler, data, is_table(data_cfg))
        return apply_scaler(x, *scaler, clip)

    if split == "all":
        if stream and (streamed := streamed_rows(cfg, scaler, clip, is_table(data_cfg))) is not None:
            rows, y, classes, sample = streamed
            check_layout((len(rows), *sample), shape, f"the images of {data_name(data)}")
            return Rows(rows, y, classes, None)
        raw = read_data(cfg, len(scaler[0]))
        check_layout((len(raw.x), *raw.sample_shape), shape, f"the images of {data_name(data)}")
        if raw.x_test is None:
            return Rows(scaled(raw.x), raw.y, raw.classes, None, raw.ids, **named)
        y = None if raw.y is None or raw.y_test is None else np.concatenate([raw.y, raw.y_test])
        return Rows(scaled(np.concatenate([raw.x, raw.x_test])), y, raw.classes, None)
    own = own_test_rows(cfg) if split == "test" else None
    if own is not None:  # read alone: the training files are most of the reading (Fashion-MNIST: 0.3 s)
        return Rows(scaled(own[0]), own[1].astype(np.int64), None, own[2])
    ds = load_dataset(cfg, scaler=scaler, clip=clip, table=is_table(data_cfg))
    check_layout((len(ds.x_test), *ds.sample_shape), shape, f"the images of {data_name(data)}")
    rows, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
    if len(rows) == 0:  # e.g. the validation split of a run trained with --val-fraction 0
        fraction = {"val": cfg.val_fraction, "test": cfg.test_fraction}.get(split)
        why = "" if fraction is None else f" (--{split}-fraction {fraction:g})"
        others = ", ".join(s for s in SPLITS if s != split)
        raise UserError(f"the {split} split of {data_name(data)} has no rows{why}; use --split {others}")
    if not isinstance(rows, RowStream):
        rows = rows.numpy()
    elif not stream:
        rows = rows.materialise().numpy()
    ids = None if ds.ids is None else ds.ids[ds.places[split]]
    return Rows(rows, None if y is None else y.numpy(), ds.classes, ds.places[split], ids, **named)


def open_clusterer(path: str | Path, device: str = "cpu") -> tuple[Clusterer, np.ndarray, dict[str, Any]]:
    """(clusterer in eval mode, input scaling, summary) of a ``cluster`` output directory."""
    path = Path(path)
    summary = rundir.read_clusters_summary(path)
    if not summary.get("sha256"):
        raise UserError(
            f"{path} holds clusters found in a UMAP embedding, which is not saved; to assign new rows, "
            "cluster with --method kmeans, gmm, dec or idec"
        )
    try:
        cfg, shape = Config.from_dict(summary["autoencoder"]), tuple(summary["input_shape"])
        alpha = summary.get("alpha", 1.0)  # the Student's t kernel's degrees of freedom
        if type(alpha) not in (int, float) or not (math.isfinite(alpha) and alpha > 0):
            raise UserError(f"its alpha is {alpha!r}, not a positive number")
        tensors, scaler = rundir.read_scaled_weights(path, rundir.CLUSTERER_WEIGHTS, summary)
        check_fits(cfg, shape, tensors, "autoencoder.")
        clusterer = Clusterer.from_state(
            kinds.build(cfg.model, cfg.kind_options, shape), tensors, alpha
        )  # a mixture's has none: its clusters are its Gaussians
    except UserError as e:  # a check of the summary or weights that names its own cause
        raise UserError(f"{path}: {e}; make it again with 'autoencoders cluster'") from None
    except (KeyError, TypeError, ValueError, RuntimeError):
        raise UserError(
            f"{path}: the clustering's summary does not match its weights; "
            "make it again with 'autoencoders cluster'"
        ) from None
    return clusterer.to(device).eval(), scaler, summary

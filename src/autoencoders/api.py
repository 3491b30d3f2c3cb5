"""Using a trained run: load its model (or a classifier's, a clustering's), predict, evaluate,
encode, reconstruct, sample, interpolate (scoring rows: ``scoring``)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import kinds
from .classify.heads import EncoderClassifier, build_classifier
from .classify.ladder import Ladder
from .clustering.model import Clusterer
from .config import Config, DataConfig
from .data.classes import shown
from .data.datasets import load_dataset
from .data.specs import for_data
from .data.stream import RowStream, in_order, map_rows
from .errors import UserError
from .eval.metrics import encode_all, evaluate, in_batches, reconstruct_all
from .fields import whole_at_least
from .io import rundir
from .models import Autoencoder
from .options import READING
from .runtime.device import resolve_device
from .trained import (
    Data,
    TrainedRun,
    check_fits,
    check_own_data,
    check_width,
    checked_reading,
    open_clusterer,
    open_run,
    rows_and_labels,
    rows_of,
    scaled_data,
    scaled_input,
)


def load(run_dir: str | Path, device: str = "cpu") -> Autoencoder | EncoderClassifier | Ladder | Clusterer:
    """The trained model of a run directory (any kind), the classifier of a ``classify`` output
    directory or the clusterer of a ``cluster`` one, in eval mode. These modules take rows scaled
    as the run's training data was (each feature to [0, 1] over the training split); ``encode``,
    ``reconstruct``, ``score`` and ``predict`` take rows in the data's own units and scale them."""
    if rundir.is_classifier(run_dir):
        return _open_classifier(run_dir, device)[0]
    if rundir.is_clustering(run_dir):
        return open_clusterer(run_dir, device)[0]
    return open_run(run_dir, device).model


def _open_classifier(
    path: str | Path, device: str = "cpu"
) -> tuple[EncoderClassifier | Ladder, np.ndarray, tuple[np.ndarray, np.ndarray], dict[str, Any]]:
    """(classifier in eval mode, its classes, input scaling, settings) of a ``classify`` directory."""
    path = Path(path)
    settings = rundir.read_classifier_settings(path)
    try:
        cfg, shape = Config.from_dict(settings["autoencoder"]), tuple(settings["input_shape"])
        classes = np.asarray(settings["classes"])
    except (KeyError, TypeError, AttributeError) as e:
        raise UserError(
            f"{path} is not a classifier directory made by 'autoencoders classify' ({e})"
        ) from None
    tensors, scaler = rundir.read_scaled_weights(path, rundir.CLASSIFIER_WEIGHTS, settings)
    try:
        if settings.get("method") != "ladder":  # a ladder holds no autoencoder
            check_fits(cfg, shape, tensors, "autoencoder.")
        model = build_classifier(settings, kinds.build(cfg.model, cfg.kind_options, shape), tensors)
        model.load_state_dict(tensors)
    except (KeyError, TypeError, ValueError, RuntimeError):
        raise UserError(
            f"{path}: the classifier's settings do not match its weights; make it again with "
            "'autoencoders classify'"
        ) from None
    return model.to(device).eval(), classes, scaler, settings


def predict(
    clf_dir: str | Path, data: Data, split: str = "all", device: str = "auto", **reading: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(predicted classes, class probabilities, classes) of ``data`` (a spec, or rows in memory in
    the training data's units) under a ``classify`` directory, or (clusters, cluster
    probabilities, cluster numbers) under a ``cluster`` one. ``device``: where the model computes
    (``auto``: a GPU when there is one). Data is read as the classifier's (or clustering's) own
    was; ``reading`` (``label_column``, ``columns``, ...: ``options.READING``) reads it otherwise."""
    return predictions(clf_dir, data, split, device, **reading)[:3]


def predictions(
    clf_dir: str | Path,
    data: Data,
    split: str = "all",
    device: str = "auto",
    labels: str | None = None,
    **reading: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, dict[str, np.ndarray]]:
    """``predict``'s result, the rows' own labels as ``score`` gives them (None for rows in memory
    and unlabelled data; ``labels``: a labels file for ``npy:`` data), read with the rows, and what
    says which row of the data each is (``Rows.columns``: a split's rows' places, a CSV's ids)."""
    where = resolve_device(device)
    if rundir.is_clustering(clf_dir):
        model, scaler, settings = open_clusterer(clf_dir, where)
        classes = np.arange(model.k)
    elif not rundir.is_classifier(clf_dir):
        estimator = _saved_estimator(Path(clf_dir))
        if estimator in ("AutoencoderClassifier", "AutoencoderClusterer"):
            raise UserError(
                f"{clf_dir} holds a saved scikit-learn {estimator}, which predicts in Python: "
                f"autoencoders.sklearn.{estimator}.load({str(clf_dir)!r}).predict(rows)"
            )
        raise UserError(_no_classifier(Path(clf_dir)))
    else:
        model, classes, scaler, settings = _open_classifier(clf_dir, where)
    data_cfg = _read_as_made(clf_dir, settings, checked_reading(reading, "predict", data))
    shape = tuple(settings["input_shape"])  # images of another shape are refused, as for encode
    y, said = None, {}
    if isinstance(data, str):  # widths checked, in either case
        read = scaled_data(data_cfg, data, split, scaler, labels, shape=shape, stream=True)
        x, y, said = read.x, shown(read.y, read.classes), read.columns()
    elif labels is not None:
        raise UserError("--labels names a file's labels; rows in memory have none to read")
    else:
        x = scaled_input(data_cfg, scaler, data, split, shape=shape)
    logits = map_rows(lambda rows: in_batches(model, model, rows), x)  # a clusterer's: log p
    proba = torch.softmax(logits.float(), 1).numpy()
    return classes[proba.argmax(1)], proba, classes, y, said


def _read_as_made(path: str | Path, settings: dict[str, Any], reading: dict[str, Any]) -> DataConfig:
    """How a classifier's or clustering's ``settings`` read data: as its run's, then as the data it
    was made from was read (its ``reading``), then as ``reading`` says."""
    made = settings.get("reading") or {}  # none: made from the run's own data, or by earlier versions
    if not isinstance(made, dict) or set(made) - set(READING):
        raise UserError(f"{path}: how its data was read is damaged ({made!r}); make it again")
    return Config.from_dict(settings["autoencoder"]).replace(**(made | reading)).data


def _no_classifier(path: Path) -> str:
    """Why ``path`` cannot predict, and what can: the classifiers and clusterings a run holds."""
    if not path.is_dir():
        return (
            f"{path} {'is a file' if path.exists() else 'does not exist'}; pass an output directory of "
            "'autoencoders classify' or 'autoencoders cluster', e.g. RUN/classifier-0.1 or "
            "RUN/cluster-kmeans-10"
        )
    # a clustering predicts from its saved clusterer (a manifold one keeps none)
    held = sorted(
        shlex.quote(str(d))  # as a command takes it
        for d in path.iterdir()
        if rundir.is_classifier(d) or (d / rundir.CLUSTERER_WEIGHTS).is_file()
    )
    if held:
        return f"{path} is not a classifier or clustering itself; pass one that it holds: {', '.join(held)}"
    return (
        f"{path} holds no classifier or clustering that can predict; make one with "
        "'autoencoders classify RUN' or 'autoencoders cluster RUN', then pass its output directory "
        "(e.g. RUN/classifier-0.1)"
    )


def _saved_estimator(path: Path) -> str | None:
    """The class of the scikit-learn estimator saved in ``path``, or None when it holds none."""
    try:
        return json.loads((path / rundir.ESTIMATOR).read_text()).get("class")
    except (OSError, ValueError, AttributeError):  # none saved there, or not one this toolkit wrote
        return None


def evaluate_run(
    run_dir: str | Path,
    data: str | None = None,
    labels: str | None = None,
    device: str = "auto",
    quiet: bool | None = None,
    **reading: Any,
) -> dict[str, Any]:
    """Recompute a run's test metrics from its checkpoint (optionally on other data, with a
    ``labels`` file for ``npy:`` data) on ``device`` (``auto``: a GPU when there is one), with
    progress bars unless ``quiet`` (None: as the run trained). ``reading``: how ``data`` is read
    where not as the run's own (``label_column``, ``columns``, ...: ``options.READING``)."""
    run = open_run(run_dir, resolve_device(device)).reading(reading, "evaluate", data)
    if data is not None:
        shape = tuple(run.manifest["input_shape"])
        run.cfg.data = for_data(run.cfg.data, data, len(run.scaler[0]), labels, shape)
    elif labels is not None:
        raise UserError("--labels goes with --data, the rows it labels")
    else:
        check_own_data(run_dir, run.cfg.data, ", or give the rows to evaluate with --data")
    ds = load_dataset(run.cfg.data, scaler=run.scaler)
    check_width(run.model, ds.n_features, run.cfg.data.data)
    quiet = run.cfg.train.quiet if quiet is None else quiet
    return evaluate(run.model, ds, iw_samples=run.model.iw_samples, quiet=quiet)


def encode(
    run_dir: str | Path, data: Data, split: str = "all", device: str = "auto", **reading: Any
) -> np.ndarray:
    """Codes of ``data`` (a data spec, or rows in memory in the data's own units: a NumPy array,
    tensor or DataFrame, whose columns are read by the run's column names) under a trained run's
    encoder (VAE: posterior means). ``split`` picks rows of a spec; rows in memory are taken whole.
    ``device``: where the model computes (``auto``: a GPU when there is one). ``reading``: how ``data``
    is read where not as the run's own (``label_column``, ``columns``, ...: ``options.READING``)."""
    run = open_run(run_dir, resolve_device(device)).reading(reading, "encode", data)
    return map_rows(lambda rows: encode_all(run.model, rows), rows_of(run, data, split, stream=True)).numpy()


def encoded_rows(
    run_dir: str | Path,
    data: str,
    split: str = "all",
    device: str = "auto",
    labels: str | None = None,
    **reading: Any,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, np.ndarray]]:
    """``encode``'s codes of a data spec, the rows' labels as ``score`` gives them (None where they
    have none; ``labels``: a labels file for ``npy:`` data), and what says which row of the data
    each is (``Rows.columns``: a split's rows' places, a CSV's ids): the lines of ``encode --out
    codes.csv``."""
    run = open_run(run_dir, resolve_device(device)).reading(reading, "encode", data)
    read = rows_and_labels(run, data, split, labels, stream=True)
    codes = map_rows(lambda rows: encode_all(run.model, rows), read.x).numpy()
    return codes, shown(read.y, read.classes), read.columns()


def row_ids(run_dir: str | Path, data: str, split: str = "all", **reading: Any) -> dict[str, np.ndarray]:
    """Which row of ``data`` (a spec) each row is that ``encode``, ``score``, ``reconstruct`` and
    ``predict`` give for the same ``data`` and ``split``, in their order, as their CSV outputs name
    it: ``data_row`` (its place among the data's rows, for a ``split`` other than ``all``) and a
    CSV's id column (under its header's name, ``id`` without one); empty where neither applies.
    ``run_dir``: the run, or the run a classifier or clustering was made from. ``reading``: as
    ``encode`` takes it."""
    if not isinstance(data, str):
        raise UserError(
            f"row_ids names the rows of a data spec such as csv:FILE, not rows of type "
            f"{type(data).__name__}: rows given in memory are named by their order"
        )
    run = open_run(run_dir).reading(reading, "row_ids", data)
    return rows_and_labels(run, data, split, stream=True).columns()


def reconstruct(
    run_dir: str | Path,
    data: Data,
    split: str = "all",
    units: str = "scaled",
    device: str = "auto",
    **reading: Any,
) -> tuple[np.ndarray, np.ndarray, tuple | None]:
    """(inputs, reconstructions, display shape) of ``data`` (a spec, or rows in memory in the
    data's own units) under a run. ``units="scaled"``: both in the [0, 1] per-feature scaling
    the model works in, where its losses and reported errors are measured; ``"data"``: in the
    units the toolkit reads the data in, as ``encode`` takes rows and an exported autoencoder
    gives them (uint8 pixels as value / 255, ``digits`` as value / 16, other numbers as they are;
    inputs clipped to the training range). ``device``: where the model computes (``auto``: a GPU
    when there is one). ``reading``: how ``data`` is read where not as the run's own
    (``label_column``, ``columns``, ...: ``options.READING``)."""
    _, parts, shape = reconstructed_parts(run_dir, data, split, units, device, **reading)
    x, recon = zip(*parts, strict=True)
    return (x[0], recon[0], shape) if len(x) == 1 else (np.concatenate(x), np.concatenate(recon), shape)


def reconstructed_parts(
    run_dir: str | Path,
    data: Data,
    split: str = "all",
    units: str = "scaled",
    device: str = "auto",
    **reading: Any,
) -> tuple[int, Iterator[tuple[np.ndarray, np.ndarray]], tuple | None]:
    """``reconstruct``'s inputs and reconstructions part by part, in order: (how many rows in all,
    the parts, display shape). Rows in memory and files read whole come as one part; the rows of an
    ``npy:`` file over ``--memory-budget`` stream from it in parts, never held whole."""
    _check_units(units)
    run = open_run(run_dir, resolve_device(device)).reading(reading, "reconstruct", data)
    x = rows_of(run, data, split, stream=True)

    def parts() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for rows in in_order(x):
            recon = reconstruct_all(run.model, rows).numpy()
            yield _in_units(rows.numpy(), run, units), _in_units(recon, run, units)

    return len(x), parts(), run.display_shape


def _check_units(units: str) -> None:
    if units not in ("data", "scaled"):
        raise UserError(f"units must be 'data' or 'scaled', not {units!r}")


def _in_units(rows: np.ndarray, run: TrainedRun, units: str) -> np.ndarray:
    """``rows`` in the model's [0, 1] scaling, in ``units`` (see ``reconstruct``)."""
    if units == "scaled":
        return rows
    offset, span = run.scaler
    return rows * span + offset


def sample(
    run_dir: str | Path, n: int = 64, seed: int = 0, units: str = "scaled"
) -> tuple[np.ndarray, tuple | None]:
    """``n`` new rows decoded from the prior of a generative run (VAE or AAE), in ``units`` (the
    model's [0, 1] scaling, or the data's own units: see ``reconstruct``), and their display shape.
    The rows are the decoder's means (a Bernoulli decoder's probabilities), not draws from it."""
    n, seed = whole_at_least("-n", n, 1), whole_at_least("--seed", seed, 0)
    _check_units(units)
    run = open_run(run_dir)  # a classifier's or clustering's folder: the message names its run
    if not getattr(run.model, "can_sample", False):
        raise UserError(
            f"{run_dir} holds a '{run.model.kind}' model, which has no prior to sample from; sample from a "
            "run trained with --model vae or --model aae"
        )
    with torch.no_grad():
        rows = run.model.sample(n, torch.Generator().manual_seed(seed))
    return _in_units(rows.numpy(), run, units), run.display_shape


def interpolate(
    run_dir: str | Path,
    data: Data,
    indices: tuple[int, int] = (0, 1),
    steps: int = 10,
    split: str | None = None,
    units: str = "scaled",
    **reading: Any,
) -> tuple[np.ndarray, tuple | None]:
    """Decodings along the straight line between the codes of rows ``indices`` of ``data`` (a spec's
    ``split``, by default its test rows; or rows in memory, all of them), in ``units`` (see
    ``reconstruct``; ``reading``: how ``data`` is read, as for ``encode``).

    The first and last rows returned are the two inputs themselves, so the strip reads
    input, decoded path, input.
    """
    steps = whole_at_least("--steps", steps, 2)
    pair = tuple(indices) if isinstance(indices, Iterable) else ()
    if len(pair) != 2:
        raise UserError(f"--pair must hold two row indices, e.g. 0,1; got {indices!r}")
    indices = tuple(whole_at_least("--pair", i, 0) for i in pair)
    _check_units(units)
    run = open_run(run_dir).reading(reading, "interpolate", data)
    split = split or ("test" if isinstance(data, str) else "all")
    model, x = run.model, rows_of(run, data, split, stream=True)
    for i in indices:
        if not 0 <= i < len(x):
            where = f"{data} ({split} split)" if isinstance(data, str) else "the rows given in memory"
            raise UserError(
                f"row {i} of --pair is outside the {len(x)} rows of {where}; give indices from 0 to "
                f"{len(x) - 1}"
            )
    # of a stream, the two rows alone are read
    ends = x.read(np.array(indices)) if isinstance(x, RowStream) else torch.from_numpy(x[list(indices)])
    with torch.no_grad():
        a, b = model.encode(ends)
        t = torch.linspace(0, 1, steps).unsqueeze(1)
        path = model.decode((1 - t) * a + t * b)
    rows = np.concatenate([ends[:1].numpy(), path.numpy(), ends[1:].numpy()])
    return _in_units(rows, run, units), run.display_shape

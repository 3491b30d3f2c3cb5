"""How unusual rows are under a trained run: each row's anomaly score (its reconstruction loss
beyond a perfect reconstruction's, or a VAE's likelihood), and how well the scores find a class
held out, beside PCA's reconstruction error."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .config import DataConfig
from .data.classes import has_class, shown
from .data.datasets import load_dataset
from .data.memory import rows_in_memory
from .data.sources import cache_dir
from .data.specs import IN_MEMORY, parse_spec, same_data
from .data.stream import BLOCK_ROWS, RowStream, map_rows
from .errors import DataWarning, UserError, user_stacklevel
from .eval.likelihood import importance_sampled_nll, nll_pass_rows
from .eval.metrics import beyond_range, in_batches
from .eval.probes import PCA
from .fields import whole_at_least
from .io.checkpoint import arrays_sha256, file_sha256
from .models import Autoencoder
from .options import IW_SAMPLES, names_flag
from .runtime.device import gpu_math, resolve_device
from .trained import Data, check_own_data, open_run, rows_and_labels, rows_of


def score(
    run_dir: str | Path,
    data: Data,
    split: str = "all",
    iw_samples: int = IW_SAMPLES,
    labels: Any = None,
    device: str = "auto",
    quiet: bool | None = None,
    **reading: Any,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-row anomaly scores of ``data`` (a spec, or rows in memory in the training data's units)
    under a run (higher: less like the training data) and the rows' labels: class names where the
    classes have names (``data.classes``), else class numbers; None when the data has none (rows in
    memory have those given as ``labels``).

    The score is the model's own reconstruction loss of the row beyond that of a perfect
    reconstruction: BCE summed over pixels less the row's own binary entropy (which BCE never goes
    below, and which is lower for dark, sparse rows: left in, it would rank rows by brightness), or
    the squared error; 0 is a perfect reconstruction. For a VAE it is the importance-sampled negative
    log-likelihood (``iw_samples`` samples; 1 gives the negative ELBO of one sample). The model sees
    the rows clipped to the range of its training rows; each value beyond that range adds its
    squared distance to it (in the scaled units, where the range is [0, 1]), so that a value far
    outside it scores as far out as it is. ``labels``: a labels file for ``npy:`` data, or labels
    for rows in memory. ``device``: where the model computes the scores (``auto``: a GPU when there
    is one). ``quiet``: no progress bar (None: as the run trained). ``reading``: how ``data`` is
    read where not as the run's own (``label_column``, ``columns``, ...: ``options.READING``).
    """
    return scored_rows(run_dir, data, split, iw_samples, labels, device, quiet, **reading)[:2]


def scored_rows(
    run_dir: str | Path,
    data: Data,
    split: str = "all",
    iw_samples: int = IW_SAMPLES,
    labels: Any = None,
    device: str = "auto",
    quiet: bool | None = None,
    **reading: Any,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, np.ndarray]]:
    """``score``'s result, and what says which row of the data each is, read with the rows
    (``Rows.columns``: a split's rows' places, a CSV's ids)."""
    iw_samples = whole_at_least("--iw-samples", iw_samples, 1)
    where = resolve_device(device)
    run = open_run(run_dir, where).reading(reading, "score", data)
    if iw_samples != IW_SAMPLES and not run.model.likelihood:
        raise UserError(
            f"--iw-samples counts a VAE's importance samples; {run_dir} holds a '{run.model.kind}' model, "
            "scored by its reconstruction loss: leave it out"
        )
    read = rows_and_labels(run, data, split, labels, clip=False, stream=True)
    beyond = map_rows(lambda rows: torch.from_numpy(beyond_range(rows.numpy())), read.x)
    if run.model.likelihood:
        quiet = run.cfg.train.quiet if quiet is None else quiet
        streamed = isinstance(read.x, RowStream)  # one bar over its parts, not one per part
        bar = tqdm(total=len(read.x), desc=f"NLL (K={iw_samples})", unit="row", leave=False,
                   disable=True if quiet or not streamed else None)  # fmt: skip
        generator = torch.Generator(device=where).manual_seed(0)

        def nll(rows: torch.Tensor) -> torch.Tensor:
            out = importance_sampled_nll(
                run.model, rows.clamp(0.0, 1.0).to(where), iw_samples, generator, quiet or streamed
            )
            bar.update(len(rows))
            return out.cpu()

        # a stream's parts are whole passes of the importance sampler, drawing from one generator:
        # the scores of its rows read whole
        part = nll_pass_rows(iw_samples) * max(1, BLOCK_ROWS // nll_pass_rows(iw_samples))
        with gpu_math("fp32", where), bar:  # convolutions too, as the run's metrics
            scores = map_rows(nll, read.x, part)
    else:
        with torch.no_grad():  # each batch clipped as the model sees it
            scores = map_rows(
                lambda rows: in_batches(run.model, lambda b: excess_loss(run.model, b.clamp(0.0, 1.0)), rows),
                read.x,
            )
    return scores.numpy().astype(np.float64) + beyond.numpy(), shown(read.y, read.classes), read.columns()


def excess_loss(model: Autoencoder, rows: torch.Tensor) -> torch.Tensor:
    """Each row's reconstruction loss beyond a perfect reconstruction's (``score``'s measure)."""
    return model.nll(model(rows).logits, rows) - model.loss_floor(rows)


def anomaly_scores_against_pca(
    run_dir: str | Path,
    data: Data,
    anomalous_class: int | str,
    split: str = "all",
    iw_samples: int = IW_SAMPLES,
    scored: tuple[np.ndarray, np.ndarray | None] | None = None,
    labels: Any = None,
    device: str = "auto",
    quiet: bool | None = None,
    **reading: Any,
) -> dict[str, Any]:
    """ROC-AUC and average precision of the run's anomaly scores for telling rows of
    ``anomalous_class`` (a label as ``score`` gives it: its name where the classes have names)
    from the rest, beside PCA's squared reconstruction error (PCA with the run's code size, fitted
    on the run's own training split; of the rows unclipped, as far out as they are), over the rows
    ``score`` scores, as ``score`` takes them (all
    by default; ``split="test"``: the rows training never saw; ``training_rows`` says whether the
    rows include those the model trained on: all or the train rows of the run's own data, given by
    its spec, as a copy of its file, or as the same rows in memory). ``data``, ``labels``,
    ``device``, ``quiet`` and ``reading`` as for ``score``; ``scored``: ``score``'s result for the
    same rows, when already computed."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    scores, y = (
        scored
        if scored is not None
        else score(run_dir, data, split, iw_samples, labels, device, quiet, **reading)
    )
    run = open_run(run_dir)  # its own rows read as it read them: PCA fits its training split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # ``score`` read these rows and said so
        given = labels if isinstance(labels, str | Path) else None
        x = rows_of(run.reading(reading, "score", data), data, split, given, clip=False, stream=True)
    if len(x) != len(scores):
        raise UserError(
            f"scored holds {len(scores)} scores for {len(x)} rows: give score's result for the same data "
            "and split"
        )
    if y is None:
        what = f"{data} has" if isinstance(data, str) else "rows in memory have"
        column = run.cfg.data.label_column
        column = "the run's label column" if column is None else f"the run's label column ({column})"
        raise UserError(
            f"--anomalous-class needs labels, and {what} none; give the run's own data, idx:DIR, "
            f"images:DIR with class folders, a csv: file with {column}, or --labels "
            "for npy: data (labels= for rows in memory)"
        )
    has = has_class(y)
    if not has.any():
        where = "the rows given in memory"
        if isinstance(data, str):
            where = f"the {'' if split == 'all' else split + ' '}rows of {data}"
        raise UserError(f"--anomalous-class measures over rows with a class, and none of {where} has one")
    if not has.all():  # measured over those
        scores, y = scores[has], y[has]
    positive = y.astype(str) == str(anomalous_class).strip()  # a number or a name, as the labels read
    if positive.all() or not positive.any():
        where = "the rows given in memory"
        if isinstance(data, str):
            where = f"the {'' if split == 'all' else split + ' '}rows of {data}"
        raise UserError(
            f"--anomalous-class {anomalous_class}: {where} must hold that class and others (classes "
            f"there: {', '.join(map(str, np.unique(y)))})"
        )
    if run.cfg.data.data == IN_MEMORY:
        raise UserError(
            "--anomalous-class compares with PCA fitted on the run's training rows, which a run fitted on "
            "rows in memory (a scikit-learn estimator's) does not keep; score without it"
        )
    check_own_data(run_dir, run.cfg.data, ", or score without --anomalous-class (its PCA fits those rows)")
    train = load_dataset(run.cfg.data, scaler=run.scaler)
    if train.y_train is not None and str(anomalous_class).strip() in set(
        map(str, shown(train.y_train.unique().cpu().numpy(), train.classes))
    ):
        unseen = "score --split test" if isinstance(data, str) else "score rows it did not train on"
        warnings.warn(
            f"the model trained on rows of class {anomalous_class}, so it may reconstruct them as well as "
            "the rest: to measure how it finds them as novel, train with --hold-out "
            f"{names_flag([anomalous_class])} and {unseen}",
            DataWarning,
            stacklevel=user_stacklevel(),
        )
    pca = PCA(train.train_sample()[0], run.model.code_size)
    pca_scores = map_rows(pca.squared_errors, x).numpy()[has]
    return {
        "roc_auc": float(roc_auc_score(positive, scores)),
        "average_precision": float(average_precision_score(positive, scores)),
        "pca_roc_auc": float(roc_auc_score(positive, pca_scores)),
        "pca_average_precision": float(average_precision_score(positive, pca_scores)),
        "anomalies": int(positive.sum()),
        "rows": len(positive),
        "training_rows": split in ("all", "train") and _holds_training_data(data, run.cfg.data),
    }


def _holds_training_data(data: Data, trained: DataConfig) -> bool:
    """Whether ``data`` (a spec, or rows in memory) is the data a run read ``trained`` from: the same
    spec, a copy of its file under another name, or the same rows in memory."""
    own = trained.data
    kind, path = parse_spec(own) if own != IN_MEMORY else (None, None)
    if isinstance(data, str):
        if same_data(data, own):
            return True
        other_kind, other = parse_spec(data)
        return (
            path is not None
            and other is not None
            and other_kind == kind
            and Path(path).is_file()
            and Path(other).is_file()
            and Path(path).stat().st_size == Path(other).stat().st_size
            and file_sha256(path) == file_sha256(other)
        )
    if path is None or Path(path).parent != cache_dir() / "arrays":  # not rows given in memory
        return False
    rows = rows_in_memory(data, "the data given in memory", trained.columns)
    return Path(path).stem == arrays_sha256([rows])  # named by content when it was saved

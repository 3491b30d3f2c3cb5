"""The figures a training run writes into its directory: reconstructions, the loss per epoch, a
prior's samples and snapshots while it trains; and the run as its report's figures draw it, from
memory."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from ..config import Config
from ..data.classes import item_names, shown
from ..data.datasets import Dataset
from ..data.shapes import sample_noun
from ..eval.metrics import PROBE_ROWS, reconstruct_all
from ..io import rundir
from ..models import Autoencoder
from ..trained import TrainedRun
from . import curves, plots
from .run_figures import FigureRows

# multiply-adds of encoding the test rows and the probes' sample from which the figures
# (``run_pictures``, then the report's) are drawn beside the metrics: their products leave
# Python's lock to the figures' thread. Below, the thread costs more than it saves: on digits'
# default run (about 60M) the figures took 0.3-0.45 s longer beside the metrics than after them;
# on Fashion-MNIST's fast recipe (42G), 0.6 s less
BESIDE_WORK = 1e9


def figures_beside(model: Autoencoder, ds: Dataset) -> bool:
    """Whether the figures are drawn while the metrics are computed (``BESIDE_WORK``)."""
    rows = len(ds.x_test) + min(PROBE_ROWS, len(ds.x_train))
    return rows * sum(p.numel() for p in model.parameters()) >= BESIDE_WORK


def figure_rows(
    out: Path, cfg: Config, model: Autoencoder, ds: Dataset, test_codes: torch.Tensor
) -> tuple[TrainedRun, FigureRows]:
    """The run as its report's figures draw it, from the model, test rows and their codes in memory
    (a CPU copy of the model: the figures work on the host), not read back from the directory."""
    opened = TrainedRun(
        cfg,
        rundir.read_manifest(out),
        copy.deepcopy(model).cpu().eval(),
        (ds.offset.numpy(), ds.span.numpy()),
    )
    y_test = None if ds.y_test is None else shown(ds.y_test.numpy(), ds.classes)
    return opened, FigureRows(
        ds.x_test, y_test, opened.model, test_codes, ds.classes, item_names(cfg.data.data)
    )


def snapshot(
    out: Path, model: Autoencoder, ds: Dataset, features: list[str] | None, every: int, row: dict
) -> None:
    """Every ``every`` epochs of end-to-end training, the first 10 test images' reconstructions
    (``features``: a table's column names)."""
    if row["stage"] not in ("train", "fine-tune") or row["epoch"] % every:
        return
    x = ds.x_test[:10]
    recon = reconstruct_all(model, x).numpy()
    name = f"{row['stage']}-epoch-{row['epoch']:04d}.png"
    item = sample_noun(ds.sample_shape)
    title = f"{row['stage']}, epoch {row['epoch']}: test {item}s and their reconstructions"
    plots.reconstruction_grid(
        x.numpy(), recon, out / rundir.SNAPSHOTS / name, ds.image_shape, title, features
    )


def run_pictures(
    out: Path,
    cfg: Config,
    ds: Dataset,
    opened: TrainedRun,
    history: list[dict],
    floor: tuple[float, str] | None,
) -> None:
    """The run directory's figures that need no metric, from ``opened``'s copy of the model (the
    trained one may be computing metrics meanwhile): test rows over their reconstructions, the loss
    per epoch (``floor``: BCE's lowest and the split it is of, a line) and a prior's samples."""
    model = opened.model
    x = ds.x_test[:20]
    recon = reconstruct_all(model, x).numpy()
    plots.reconstruction_grid(
        x.numpy(),
        recon,
        out / rundir.RECONSTRUCTIONS,
        ds.image_shape,
        # no "top: originals" in the title: each row says what it holds
        title=f"test {sample_noun(ds.sample_shape)}s and their reconstructions, code size {model.code_size}",
        features=cfg.data.columns,
    )
    if history:
        corrupted = cfg.model.corruption != "none"  # its training batches, not its validation rows
        value, split = floor if floor is not None else (None, "")
        curves.loss_curve(
            history, out / rundir.LOSS, model.loss_label, value, corrupted, "", model.loss_term, split
        )
    if model.can_sample:
        with torch.no_grad():
            images = model.sample(40, torch.Generator().manual_seed(0)).numpy()
        title = "samples from the prior (decoded means)"
        plots.image_grid(images, out / rundir.SAMPLES, ds.image_shape, title, features=cfg.data.columns)

"""A run's training stages (greedy pretraining, end-to-end training) and the precision and
threads they train at."""

from __future__ import annotations

import copy
import functools

import torch

from . import kinds
from .config import Config
from .data.batches import batches_per_epoch, first_batch
from .data.datasets import Dataset
from .data.stream import Rows
from .models import Autoencoder
from .models.layers import make_corruption
from .models.objectives import regularisers
from .runtime import distributed
from .runtime.threads import choose_threads
from .training.layerwise import greedy_pretrain
from .training.precision import (
    GAIN,
    MORE_THREADS_GAIN,
    available,
    bf16_speedup,
    fastest,
    remembered,
    resolve_precision,
    worth_timing,
)
from .training.state import Progress
from .training.steps import Step


def build_model(cfg: Config, sample_shape: tuple[int, ...], device: torch.device) -> Autoencoder:
    """The configured model, initialised from the seed; then each rank gets its own noise seed."""
    torch.manual_seed(cfg.train.seed)
    model = kinds.build(cfg.model, cfg.kind_options, sample_shape).to(device)
    rank, world = distributed.rank_and_size()
    if world > 1:
        torch.manual_seed(cfg.train.seed + rank)  # same initial weights, different corruption noise
    return model


def train_stages(
    model: Autoencoder, cfg: Config, ds: Dataset, device: torch.device, progress: Progress
) -> str:
    """Greedy layer-wise pretraining when configured, then end-to-end training; the last stage's name."""
    x_train, x_val = ds.x_train.to(device), ds.x_val.to(device)
    if cfg.pretrain.greedy:
        greedy_pretrain(model, x_train, x_val, cfg, progress, int(cfg.data.memory_budget * 2**30))
    stage = "fine-tune" if cfg.pretrain.greedy else "train"
    train_stage(progress, stage, model, cfg, x_train, x_val)
    return stage


def train_stage(
    progress: Progress, stage: str, model: Autoencoder, cfg: Config, x_train: Rows, x_val: torch.Tensor
) -> None:
    """End-to-end training of ``model`` (with the configured input corruption) as one stage."""
    make_step = functools.partial(stage_step, model, cfg, len(x_train))
    progress.run_stage(stage, make_step, x_train, x_val, cfg.train, cfg.train.epochs)


def stage_step(model: Autoencoder, cfg: Config, n_rows: int) -> Step:
    """The step of end-to-end training on ``n_rows``: the kind's own, with the configured corruption
    and terms, its schedule as long as the stage."""
    world = distributed.rank_and_size()[1]  # the updates each process makes: its slice of every batch
    steps = cfg.train.epochs * batches_per_epoch(n_rows, cfg.train.batch_size, world)
    corrupt = make_corruption(cfg.model.corruption, cfg.model.noise)
    return kinds.make_step(model, cfg.train, steps, corrupt, model.terms() + regularisers(cfg.model))


def measure_setting(cfg: Config, rows: Rows, model: Autoencoder, device: torch.device) -> tuple[str, int]:
    """The run's precision and intra-op threads. ``--precision auto`` in one process times training
    steps of copies of ``model`` on the first batch of ``rows`` at each precision (``fastest``), on
    a CPU with the threads the product rule gives it (``choose_threads``) and, for ``--threads
    auto``, on half as many too: more threads are kept only when ``MORE_THREADS_GAIN`` faster, as
    they take the cores the data's baselines would run on beside training (at bf16 on a 2-core
    EPYC, one thread trained the fast Fashion-MNIST recipe as fast as two). Half, not one: on many cores
    a one-thread step of a large network would be slow to time and leave more idle than needed.
    The choice is kept per machine (``remembered``), with the candidates and gains it was made by:
    the same command trains the same model, until the rules change."""

    if distributed.rank_and_size()[1] > 1:  # every rank the same rule: nothing timed, nothing kept
        precision = resolve_precision(cfg.train.precision, device)  # auto: fp32
        return precision, stage_threads(cfg, model, precision, device)

    def counts(precision: str) -> list[int]:
        n = stage_threads(cfg, model, precision, device)
        return sorted({max(1, n // 2), n}) if device.type == "cpu" and cfg.train.threads == "auto" else [n]

    def make_step() -> Step:  # the stage's own step (corruption, every term) on a copy
        return stage_step(copy.deepcopy(model), cfg, len(rows))

    if cfg.train.precision != "auto" or not worth_timing(device):
        precision = resolve_precision(cfg.train.precision, device)  # auto: fp32
        candidates = [(precision, stage_threads(cfg, model, precision, device))]
    else:  # fewer threads first, then fp32 before bf16: each later one must be faster than all before
        candidates = sorted(((p, n) for p in available(device) for n in counts(p)), key=lambda c: c[1])

    def measure() -> tuple[str, int]:
        if len(candidates) == 1:
            return candidates[0]
        batch = tuple(t.to(device) for t in first_batch((rows,), cfg.train.batch_size))
        return fastest(candidates, make_step, batch, device, cfg.train.cuda_graph)

    t = cfg.train  # what the choice depends on: the model, its options, the batch, the loop's settings
    timed = {k: v for k, v in cfg.to_dict().items() if k not in ("data", "pretrain", "train", "out")}
    timed |= {"model": repr(model), "options": timed.pop("model"), "batch_size": t.batch_size}
    timed |= {k: getattr(t, k) for k in ("precision", "threads", "optimizer", "cuda_graph")}
    # and the rules it was made by: the choices timed and what each must gain, so that a choice made
    # by other rules (another version's thread rule, say) is made again, not read back
    timed |= {"candidates": candidates, "gains": [GAIN, MORE_THREADS_GAIN]}
    return remembered(timed, device, measure)


def stage_threads(cfg: Config, model: Autoencoder, precision: str, device: torch.device) -> int:
    """Threads for training ``model`` at ``precision`` by the product rule (``choose_threads``)."""
    return choose_threads(cfg.train.threads, model, cfg.train.batch_size, _speedup(precision, device))


def _speedup(precision: str, device: torch.device) -> float:
    """How much faster than fp32 ``precision`` multiplies, as the thread policy counts work: on a
    CPU; a GPU's step is not computed by the host's threads, so every precision gets fp32's."""
    return bf16_speedup() if precision == "bf16" and device.type == "cpu" else 1.0

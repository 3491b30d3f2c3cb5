"""The one training loop: any module with ``loss(batch)`` trained on in-memory tensors."""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import TrainConfig, UserError
from .distributed import all_sum, data_parallel, rank_and_size
from .stream import BLOCK_ROWS, Rows, RowStream, chunk_order


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


@functools.cache
def bf16_speedup(device_type: str) -> float:
    """bf16/fp32 matmul throughput ratio on this device, measured once per process.

    On CUDA, GPUs that support bf16 run it on tensor cores: taken as a win without timing.
    """
    if device_type == "cuda":
        return 2.0 if torch.cuda.is_bf16_supported() else 0.0
    a = torch.randn(256, 256)
    best = {}
    for dtype in (torch.float32, torch.bfloat16):
        x = a.to(dtype)
        x @ x  # warm-up: the first call may pick kernels
        times = []
        for _ in range(3):  # best of three: robust to a busy machine
            t0 = time.perf_counter()
            x @ x
            times.append(time.perf_counter() - t0)
        best[dtype] = min(times)
    return best[torch.float32] / best[torch.bfloat16]


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` → bf16 where it measurably beats fp32 on this device (CPUs without bf16 units lose)."""
    if name != "auto":
        return name
    return "bf16" if bf16_speedup(device.type) >= 1.3 else "fp32"


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast context, or a no-op for fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def batches(n: int, batch_size: int, generator: torch.Generator | None) -> Iterator[torch.Tensor]:
    """Index slices of a permutation of ``range(n)`` (in order when ``generator`` is None)."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


def make_optimizer(params: Iterable[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam (fused kernel where available) or SGD with momentum."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: every parameter is frozen")
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    # one fused kernel for the whole update instead of a handful of ops per tensor
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)


def make_scheduler(
    optimizer: torch.optim.Optimizer, decay: str, steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step learning-rate factor: constant, or a cosine from 1 to 0 over ``steps`` (then 0)."""
    if decay == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step / max(steps, 1), 1.0)))
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


Tensors = Rows | tuple[torch.Tensor, ...]


def _as_tuple(data: Tensors) -> tuple[Rows, ...]:
    return data if isinstance(data, tuple) else (data,)


def epoch_batches(
    data: tuple[Rows, ...],
    batch_size: int,
    generator: torch.Generator | None,
    rank: int = 0,
    world: int = 1,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Row-aligned batches of ``data``: shuffled with a generator, in order without.

    In-memory tensors are sliced by index. When any part is a RowStream, the pass reads
    shuffled chunks (see ``chunk_order``) and every part is sliced by the same positions.
    With ``world`` > 1 every rank draws the same global batches and keeps slice
    ``rank::world`` of each, reading only those rows of a stream.
    """
    if not any(isinstance(t, RowStream) for t in data):
        device = data[0].device
        for idx in batches(len(data[0]), batch_size, generator):
            idx = idx[rank::world].to(device)
            yield tuple(t[idx] for t in data)
        return
    n = len(data[0])
    if generator is None:
        chunks = (np.arange(i, min(i + BLOCK_ROWS, n)) for i in range(0, n, BLOCK_ROWS))
    else:
        chunks = chunk_order(n, generator)
    for pos in chunks:
        local = [idx[rank::world] for idx in batches(len(pos), batch_size, generator)]
        mine = pos[torch.cat(local).numpy()]
        parts = [
            t.read(mine) if isinstance(t, RowStream) else t[torch.from_numpy(mine).to(t.device)] for t in data
        ]
        start = 0
        for idx in local:
            yield tuple(p[start : start + len(idx)] for p in parts)
            start += len(idx)


@torch.no_grad()
def mean_loss(module: nn.Module, data: Tensors, batch_size: int, precision: str) -> float:
    """Average of ``module.loss(*batch)`` over ``data`` in eval mode (per example)."""
    data = _as_tuple(data)
    n = len(data[0])
    if n == 0:
        return math.nan
    was_training = module.training
    module.eval()
    total = 0.0
    for batch in epoch_batches(data, max(batch_size, 1024), None):
        with autocast(precision, batch[0].device):
            total += float(module.loss(*batch)) * len(batch[0])
    module.train(was_training)
    return total / n


def fit(
    module: nn.Module,
    train: Tensors,
    val: Tensors,
    cfg: TrainConfig,
    epochs: int,
    *,
    stage: str = "train",
    on_epoch: Callable[[int], None] | None = None,
) -> list[dict]:
    """Train ``module`` by minimising ``module.loss(*batch)``; return one history row per epoch.

    ``train``/``val`` are a tensor or a tuple of row-aligned tensors (e.g. inputs and labels)
    on the training device. With ``cfg.patience`` the best-validation weights are restored
    at the end.
    """
    train, val = _as_tuple(train), _as_tuple(val)
    n = len(train[0])
    device = train[0].device
    precision = resolve_precision(cfg.precision, device)
    optimizer = make_optimizer(module.parameters(), cfg)
    generator = torch.Generator().manual_seed(cfg.seed)  # the same on every rank: same global batches
    rank, world = rank_and_size()
    step = data_parallel(module)
    scheduler = make_scheduler(optimizer, cfg.lr_decay, epochs * math.ceil(n / cfg.batch_size))
    history: list[dict] = []
    best, best_state, bad_epochs = math.inf, None, 0
    bar = tqdm(
        total=epochs * n,
        desc=stage,
        disable=cfg.quiet or rank > 0,
        unit="sample",
        unit_scale=True,
        leave=False,
    )
    module.train()
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        total = torch.zeros((), device=device)
        for batch in epoch_batches(train, cfg.batch_size, generator, rank, world):
            with autocast(precision, device):
                loss = step(*batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            # accumulate on-device: a .item() per step would stall a GPU pipeline
            total += loss.detach() * len(batch[0])
            bar.update(len(batch[0]) * world)
        train_loss = float(all_sum(total)) / n
        if not math.isfinite(train_loss):
            bar.close()
            raise UserError(f"{stage}: the loss became {train_loss} at epoch {epoch}; lower --lr")
        val_loss = mean_loss(module, val, cfg.batch_size, precision)
        seconds = time.perf_counter() - t0
        history.append(
            {
                "stage": stage,
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "seconds": seconds,
                "samples_per_second": n / seconds,
            }
        )
        bar.set_postfix(epoch=epoch, train=f"{train_loss:.3f}", val=f"{val_loss:.3f}")
        if on_epoch is not None:
            on_epoch(epoch)
        if cfg.patience > 0:
            if val_loss < best:
                best, bad_epochs = val_loss, 0
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
            else:
                bad_epochs += 1
                if bad_epochs >= cfg.patience:
                    break
    bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    return history

"""The one training loop: any step, on in-memory or streamed rows, resumable after every epoch."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..data.batches import Tensors, as_tuple, epoch_batches, first_batch, shuffler
from ..errors import UserError, say
from ..models.layers import eval_mode
from ..options import TrainConfig
from ..runtime.device import current_gpu, gpu_math
from ..runtime.distributed import all_sum, rank_and_size
from ..runtime.threads import CpuShare
from .capture import batch_runner
from .precision import autocast, copies_of, flush_denormals, resolve_precision
from .steps import Step


@dataclass
class LoopState:
    """Where a stage's loop stands after ``epoch`` epochs: enough to continue it exactly."""

    epoch: int = 0
    best: float = math.inf
    bad_epochs: int = 0
    stopped: bool = False  # early stopping has ended the stage
    best_weights: dict[str, torch.Tensor] | None = None
    shuffle: torch.Tensor | None = None  # the shuffling generator's state


@torch.no_grad()
def evaluate_step(step: Step, data: Tensors, batch_size: int) -> dict[str, float]:
    """Per-example averages of ``step.eval_batch`` over ``data`` in eval mode.

    Every rank evaluates all of ``data``; the averages are averaged over ranks, so a
    stochastic evaluation (a VAE's sampled codes) gives every rank the same number.
    """
    data = as_tuple(data)
    n = len(data[0])
    if n == 0:
        return {"loss": math.nan}
    sums: dict[str, torch.Tensor] = {}  # on the device: one transfer at the end, not one per batch
    with eval_mode(step.module):
        for batch in epoch_batches(data, max(batch_size, 1024), None):
            for name, value in step.eval_batch(batch).items():
                sums[name] = sums.get(name, 0) + value.double() * len(batch[0])
    world = rank_and_size()[1]
    totals = all_sum(torch.stack(list(sums.values()))).cpu() / world  # summed where they are (NCCL: a GPU)
    return {name: float(total) / n for name, total in zip(sums, totals)}


# seconds between a line on how far training is, where stderr goes to a log (no bar is drawn there);
# when the last was said, over the stages of a run (a greedy stack's may each be short)
LOG_EVERY, _said_at = 60.0, [time.perf_counter()]


def other_levers(terms: Iterable[str], levers: dict[str, str] = Step.levers) -> str:
    """``, or a lower --beta ...``: the options beside --lr that set how far a step with the named
    ``terms`` moves, by the ``levers`` that weigh each (a step's own, where it has them); empty for
    a step without any."""
    flags = list(dict.fromkeys(levers[t] for t in terms if t in levers))
    return f", or a lower {' or '.join(flags)}" if flags else ""


class Diverged(UserError):
    """The training loss became NaN or infinite."""


def fit(
    step: Step,
    train: Tensors,
    val: Tensors,
    cfg: TrainConfig,
    epochs: int,
    *,
    stage: str = "train",
    start: LoopState | None = None,
    on_epoch: Callable[[LoopState, dict], None] | None = None,
) -> list[dict]:
    """The training loop: ``epochs`` passes of ``step.train_batch``; one history row per epoch.

    ``train``/``val`` are a tensor or a tuple of row-aligned tensors (e.g. inputs and labels)
    on the training device. ``start`` continues a stage saved by ``on_epoch``, which is called
    after every epoch with the loop's state and the epoch's history row. Given a validation
    split, the stage stops after ``cfg.patience`` epochs without improvement of the step's
    ``monitor`` number (0: never) and, with ``cfg.keep == "best"``, ends with the weights of
    its best validation epoch. A step that reports itself ``finished`` ends the stage at once.
    """
    with current_gpu(as_tuple(train)[0].device):  # a state's event and the graphs on the rows' GPU
        return _fit(step, train, val, cfg, epochs, stage, start, on_epoch)


def _fit(
    step: Step,
    train: Tensors,
    val: Tensors,
    cfg: TrainConfig,
    epochs: int,
    stage: str,
    start: LoopState | None,
    on_epoch: Callable[[LoopState, dict], None] | None,
) -> list[dict]:
    """``fit`` on the current device."""
    train, val = as_tuple(train), as_tuple(val)
    n = len(train[0])
    device = train[0].device
    rank, world = rank_and_size()
    precision = cfg.precision
    if precision == "auto" and world == 1:  # timed on copies of this step, at the caller's threads
        first = first_batch(train, cfg.batch_size)
        precision = resolve_precision(precision, device, copies_of(step), first, cfg.cuda_graph)
    precision = resolve_precision(precision, device)
    step.amp = lambda: autocast(precision, device)
    run_batch = batch_runner(step, cfg.cuda_graph, device, cfg.quiet or rank > 0, min(cfg.batch_size, n))
    state = start or LoopState()
    generator = shuffler(train, cfg.seed)  # the same on every rank: same global batches
    if state.shuffle is not None:
        if state.shuffle.numel() != generator.get_state().numel():
            raise UserError(
                f"the saved state shuffled its rows on another device than this run's ({generator.device}); "
                "resume it where it started (the same --device)"
            )
        generator.set_state(state.shuffle)
    module = step.module
    history: list[dict] = []
    bar = tqdm(
        total=epochs * n,
        initial=min(state.epoch, epochs) * n,
        desc=stage,
        disable=True if cfg.quiet or rank > 0 else None,  # None: on a terminal only, not into a log
        unit="sample",
        unit_scale=True,
        leave=False,
    )
    # where no bar is drawn (stderr into a log file: nohup, a batch job), a line now and then
    lines = not (cfg.quiet or rank > 0) and bar.disable
    module.train()
    share = CpuShare(device.type == "cpu")  # a GPU's step is not computed by the host's threads
    # subnormal numbers slow a CPU's arithmetic many times; TF32 applies to backward passes too
    with flush_denormals(), gpu_math(precision, device), contextlib.closing(share):
        while state.epoch < epochs and not state.stopped:
            epoch = state.epoch + 1
            step.set_epoch(epoch)
            run_batch.new_epoch(n // cfg.batch_size)  # full batches: each rank's slice of each is as full
            replayed = run_batch.replayed
            t0 = time.perf_counter()
            # accumulate on-device: a .item() per step would stall a GPU pipeline
            sums: dict[str, torch.Tensor] = {}
            seen = batches = 0
            for batch in epoch_batches(train, cfg.batch_size, generator, rank, world, step.whole_batches):
                for name, value in run_batch(batch).items():
                    if name in sums:  # one kernel per term, beside a replayed step's one launch
                        sums[name].add_(value, alpha=len(batch[0]))
                    else:
                        sums[name] = value * len(batch[0])
                step.end_batch()
                share.tick()
                bar.update(len(batch[0]) * world)
                seen += len(batch[0])
                batches += 1
                if step.finished:  # no more of the epoch is needed (such a step runs in one process)
                    break
            seen = seen if step.finished or step.whole_batches else n
            train_values = {name: float(all_sum(total)) / seen for name, total in sums.items()}
            if not math.isfinite(train_values["loss"]):
                bar.close()
                raise Diverged(
                    f"training diverged: the loss became {train_values['loss']} in epoch {epoch} of stage "
                    f"'{stage}'; train again with a lower --lr (now {cfg.lr:g})"
                    + other_levers(train_values, step.levers)
                )
            val_values = evaluate_step(step, val, cfg.batch_size)
            seconds = time.perf_counter() - t0
            row = {
                "stage": stage,
                "epoch": epoch,
                "train_loss": train_values["loss"],
                "val_loss": val_values.get("loss", math.nan),
            }
            for name in (k for k in train_values if k != "loss"):
                row |= {f"train_{name}": train_values[name], f"val_{name}": val_values.get(name, math.nan)}
            row |= {f"val_{k}": v for k, v in val_values.items() if k != "loss" and k not in train_values}
            row |= {"seconds": seconds, "samples_per_second": seen / seconds}
            if replayed is not None:  # a CUDA graph was tried: how many of the batches it ran
                row |= {"batches": batches, "replayed_batches": run_batch.replayed - replayed}
            history.append(row)
            bar.set_postfix({"epoch": epoch} | {k: f"{v:.3f}" for k, v in train_values.items()})
            if lines and time.perf_counter() - _said_at[0] >= LOG_EVERY:
                say(_epoch_line(stage, epochs, history), False)
                _said_at[0] = time.perf_counter()
            score = val_values.get(step.monitor, math.nan)
            if math.isfinite(score):  # there is a validation split to judge by
                if score < state.best:
                    state.best, state.bad_epochs = score, 0
                    if cfg.keep == "best":
                        state.best_weights = {k: v.detach().clone() for k, v in module.state_dict().items()}
                else:
                    state.bad_epochs += 1
                    state.stopped = 0 < cfg.patience <= state.bad_epochs
            state.stopped = state.stopped or step.finished
            state.epoch, state.shuffle = epoch, generator.get_state()
            if on_epoch is not None:
                on_epoch(state, row)
    bar.close()
    if state.best_weights is not None:
        module.load_state_dict(state.best_weights)
    return history


def _epoch_line(stage: str, epochs: int, history: list[dict]) -> str:
    """Where a stage stands after the last of its ``history`` rows, in one line for a log."""
    row = history[-1]
    said = [f"train loss {row['train_loss']:.4g}"]
    if math.isfinite(row["val_loss"]):
        said.append(f"validation loss {row['val_loss']:.4g}")
    said.append(f"{row['samples_per_second']:,.0f} samples/s")
    left = (epochs - row["epoch"]) * sum(h["seconds"] for h in history) / len(history)
    if left >= 1:  # at the mean of this process's epochs so far
        said.append(f"about {_duration(left)} left")
    return f"{stage}, epoch {row['epoch']} of {epochs}: {', '.join(said)}"


def _duration(seconds: float) -> str:
    """``seconds`` in the unit a person reads it in."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"

"""Compute precision: fp32, TF32 matmuls (CUDA), or bf16 autocast; ``auto`` measures which is fastest.

A matrix product alone is the wrong yardstick: a small autoencoder's step is bound by kernel
launches (GPU) or per-operation overhead (CPU), and bf16 autocast adds casts, so bf16 can lose
although its products win (on a 2-core AMD EPYC with bf16 units, the default digits run trains
1.3× faster in fp32). So ``auto`` times the training step itself, on copies of it, at every precision
the device has, and keeps fp32 unless another is at least ``GAIN`` faster (a run on a CPU also
times half the threads against all: ``stages.measure_setting``). Only on a CPU without bf16 units (its
bf16 products ~100× slower) is the products' timing enough: fp32.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from ..data.sources import cache_dir
from ..errors import UserError
from ..io.checkpoint import write_json
from ..runtime import wait_policy
from ..runtime.device import current_gpu, gpu_math, own_rng
from ..runtime.threads import available_cpus, measured_alone, thread_count
from .capture import batch_runner
from .steps import Batch, Step

# how much faster than the best simpler choice (fp32 over bf16, fewer threads over more) a
# precision or thread count must measure for ``auto`` to take it
GAIN = 1.1
# more threads take the cores a run's baselines, a second run or the user's other work would use:
# kept only when this much faster (the fast Fashion-MNIST recipe timed 1.1x faster on two threads
# of a 2-core EPYC and trained no faster, 38.4 s against 37.4; its baselines then ran after training)
MORE_THREADS_GAIN = 1.25


@functools.cache
def bf16_speedup() -> float:
    """bf16/fp32 matmul throughput ratio per thread of the CPU, measured once per process (a GPU's
    steps are timed instead: ``fastest``).

    Timed on one thread at 512 × 512, the median of five: at 256 × 256 on two threads, waking the
    second thread made the ratio read anywhere from 1.7 to 2.5 on a CPU where it is 2.15 (AMD EPYC
    with bf16 units), and the thread policy reads it against a threshold.
    """
    a = torch.randn(512, 512, generator=torch.Generator().manual_seed(0))  # the global stream untouched
    median, first = {}, {}
    with thread_count(1):
        for dtype in (torch.float32, torch.bfloat16):
            x = a.to(dtype)
            t0 = time.perf_counter()
            x @ x  # warm-up: the first call may pick kernels
            first[dtype] = time.perf_counter() - t0
            # no bf16 units (~100x slower): no more waiting; first calls against first calls, as
            # both may include choosing kernels
            if dtype == torch.bfloat16 and first[dtype] > 20 * first[torch.float32]:
                return median[torch.float32] / first[dtype]
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                x @ x
                times.append(time.perf_counter() - t0)
            median[dtype] = statistics.median(times)
    return median[torch.float32] / median[torch.bfloat16]


def remembered(
    what: dict[str, Any], device: torch.device, measure: Callable[[], tuple[str, int]]
) -> tuple[str, int]:
    """``measure()``'s (precision, threads), measured once per machine, ``device`` and ``what`` the
    choice depends on (the model, its options, the batch size, the settings), then read back from
    ``$AUTOENCODERS_CACHE/measured``: the same command on the same machine trains at the same
    precision and threads, and so trains the same model. Timed afresh each time, a choice near its
    threshold went either way by the machine's noise.

    A CPU's choice timed while other processes kept its CPUs busy (``measured_alone``: beside a
    second run, one thread wins where alone two would) is provisional: later runs time again, the
    first to do so on a quiet machine keeps its choice for good, and until then each trains with the
    provisional one, so that busy runs of the same command still train the same model."""
    machine = [torch.__version__, platform.machine(), _device_name(device), available_cpus(), _waits()]
    key = json.dumps([machine, what], sort_keys=True, default=str)
    path = cache_dir() / "measured" / f"{hashlib.sha256(key.encode()).hexdigest()}.json"
    kept: tuple[str, int] | None = None
    try:
        saved = json.loads(path.read_text())
        kept = str(saved["precision"]), int(saved["threads"])
        if kept[0] not in available(device) or not 1 <= kept[1] <= available_cpus():
            raise ValueError(f"not a choice this machine can make: {kept}")
        if not saved.get("provisional"):
            return kept
    except (OSError, ValueError, KeyError, TypeError):  # not measured yet, or a damaged file: timed again
        kept = None
    (precision, threads), alone = measured_alone(measure) if device.type == "cpu" else (measure(), True)
    if kept is not None and not alone:
        return kept
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        saved = {"precision": precision, "threads": threads, "provisional": not alone}
        write_json(path, saved | {"machine": machine, "what": what})
    except OSError:  # a cache that cannot be written: measured, not kept
        pass
    return precision, threads


def _waits() -> list:
    """How idle OpenMP threads wait in this process (``wait_policy``): it decides what more threads
    gain, so a choice timed under one way is not read back under another."""
    return [wait_policy.MISSED] + [os.environ.get(name) for name in wait_policy.CHOSEN]


def _device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model as the kernel names it."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return next((line.partition(":")[2].strip() for line in lines if line.startswith("model name")), "")


def worth_timing(device: torch.device) -> bool:
    """Whether timing steps at each precision on ``device`` can find one faster than fp32: on a GPU
    (``available`` says which it runs), or on a CPU whose bf16 matrix products are at least 1.3×
    its fp32 ones."""
    return device.type == "cuda" or bf16_speedup() >= 1.3


def has_tensor_cores(device: torch.device) -> bool:
    """Whether ``device`` is a GPU with TF32 and bf16 tensor cores (NVIDIA Ampere or newer). Not
    ``torch.cuda.is_bf16_supported()``: it also says yes where bf16 is only emulated, slowly."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8


def available(device: torch.device) -> list[str]:
    """The precisions ``device`` can run, fp32 first: on a CPU bf16 (``auto`` times it only where
    the CPU has bf16 units), on a GPU with tensor cores TF32 and bf16."""
    if device.type == "cpu":
        return ["fp32", "bf16"]
    return ["fp32", "tf32", "bf16"] if has_tensor_cores(device) else ["fp32"]


def step_timer(
    step: Step, batch: Batch, precision: str, device: torch.device, graphs: str = "auto"
) -> Callable[[int], float]:
    """A clock of ``step`` on ``batch`` at ``precision``, run as training will run it (replayed as a
    CUDA graph unless ``graphs`` is off), warmed up (the capture included; the step trains): called
    with ``n``, the seconds per batch of ``n`` more, their median on a CPU (robust to a moment of
    other work), their mean on a GPU (its steps are asynchronous)."""
    step.amp = lambda: autocast(precision, device)
    run_batch = batch_runner(step, graphs, device, quiet=True)

    def seconds(n: int) -> float:
        with current_gpu(device), flush_denormals(), gpu_math(precision, device):
            if device.type != "cuda":
                times = []
                for _ in range(n):
                    t0 = time.perf_counter()
                    run_batch(batch)
                    times.append(time.perf_counter() - t0)
                return statistics.median(times)
            torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            for _ in range(n):
                run_batch(batch)
            torch.cuda.synchronize(device)
        return (time.perf_counter() - t0) / n

    seconds(5)
    return seconds


def resolve_precision(
    name: str,
    device: torch.device,
    make_step: Callable[[], Step] | None = None,
    batch: Batch | None = None,
    graphs: str = "auto",
) -> str:
    """The precision to train at. ``auto``: the ``fastest`` of ``available`` precisions, each timed
    with CUDA graphs as ``graphs`` says, at the current thread count; fp32 when no step is given, or
    on a CPU whose bf16 products are not at least 1.3× fp32's. A precision the device lacks is
    refused."""
    if name != "auto":
        if name not in available(device):
            what = "TF32 tensor cores" if name == "tf32" else "bf16 tensor cores"
            raise UserError(
                f"--precision {name} needs a GPU with {what} (NVIDIA Ampere or newer); "
                f"this run is on {device}: use --precision fp32 or auto"
            )
        return name
    if make_step is None or batch is None or not worth_timing(device):
        return "fp32"
    n = torch.get_num_threads()
    return fastest([(p, n) for p in available(device)], make_step, batch, device, graphs)[0]


def fastest(
    candidates: Sequence[tuple[str, int]],
    make_step: Callable[[], Step],
    batch: Batch,
    device: torch.device,
    graphs: str = "auto",
) -> tuple[str, int]:
    """Of ``candidates`` ((precision, intra-op threads), the simplest first), the first unless a
    later one is ``GAIN`` faster than the best before it (``MORE_THREADS_GAIN`` where it takes more
    threads), by a ``step_timer`` of a fresh copy from ``make_step`` each. Near-ties go to the
    simpler: fp32 over bf16, fewer threads over more.

    The candidates take turns, three rounds, and each keeps its median round: timed one after
    another, a CPU's drift of 20 % within seconds decided the order, and a GPU's first steps run
    while its clocks rise. A round is five steps on a CPU and 50 on a GPU, whose replayed steps
    take a fraction of a millisecond: fewer would time the launch jitter."""
    rounds, steps = (3, 50) if device.type == "cuda" else (3, 5)

    @contextlib.contextmanager
    def as_candidate(n: int) -> Iterator[None]:
        # the timing steps' noise draws leave no trace
        with own_rng(device), thread_count(n):
            yield

    clocks: dict[int, Callable[[int], float]] = {}
    times: list[list[float]] = [[] for _ in candidates]
    for left in reversed(range(rounds)):
        for i, (precision, n) in enumerate(candidates):
            with as_candidate(n):
                if i not in clocks:
                    clocks[i] = step_timer(make_step(), batch, precision, device, graphs)
                # kept for the next round; in the last, dropped (with a GPU's graph and its memory)
                times[i].append(clocks[i](steps) if left else clocks.pop(i)(steps))
    best, best_seconds = candidates[0], math.inf
    for candidate, seconds in zip(candidates, times, strict=True):
        gain = MORE_THREADS_GAIN if candidate[1] > best[1] else GAIN
        if statistics.median(seconds) * gain <= best_seconds:
            best, best_seconds = candidate, statistics.median(seconds)
    return best


def copies_of(step: Step) -> Callable[[], Step]:
    """Fresh copies of ``step`` (model and optimizer state together), for timing without training it;
    the rows it only reads (``step.data()``: DEC's every training row) are shared, not copied."""
    return lambda: copy.deepcopy(step, {id(t): t for t in step.data()})


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Subnormal floats (below 1.2e-38) read and written as zero while a block runs.

    A CPU computes with subnormals many times slower than with normal numbers, and after the first
    epochs weights, gradients and Adam's second moments hold many: on a 2-core Xeon, 784-256-64-30
    at batch 64 trained at 14,800 samples/s with them and 28,800 without (the same test error).
    Afterwards the flag is off again, PyTorch's default (it offers no way to read the flag).
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context forward passes run in: bf16 autocast, or a no-op (fp32 and TF32 tensors are fp32).

    Autocast keeps no cache of cast weights, which a captured CUDA graph could not replay.
    """
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()

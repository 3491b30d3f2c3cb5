"""Thread policy: how many intra-op threads a run uses, chosen so runs never fight over cores.

``auto`` takes the CPUs this process may use (its affinity mask and any cgroup CPU quota) and
the work of the step's largest matrix product (batch × weights, and how fast the precision
multiplies): below a measured size, splitting costs more than it saves and one thread beats
two. Idle OpenMP threads spin only briefly, then sleep (``wait_policy``), and a run training on
several threads gives up those that other processes' work needs (``CpuShare``), so two runs, a
notebook beside a run, or scikit-learn's parallel workers share the cores instead of burning them;
where torch was imported before the package, too late for the short spin, a run on more than one
thread says so.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple, TypeVar

import torch
from torch import nn

from ..errors import SettingWarning, user_stacklevel
from . import wait_policy

# Below this much work in the largest matrix product of a step (batch × weights, in fp32
# multiply-adds), one thread is as fast as two: the split costs what it saves. Measured on 2 cores
# with idle threads spinning briefly (benchmarks/spin_sizes.py): two threads against one 0.88-1.13x
# at 1.0M (64x256, batch 64), 1.23-1.44x at 4.2M (batch 256), 1.3-1.42x at 12.8M (784x256, batch 64).
SMALL_PRODUCT = 2_000_000

# how often a run training on several threads looks at what other processes use of its CPUs: a
# reading of /proc/stat costs tens of microseconds; a pair of runs whose threads spin on the same
# cores runs many times slower than alone until one of them looks
SHARE_SECONDS = 0.25

# other processes' share of one CPU above which a timing did not have the machine to itself: a
# second run takes a whole one; a browser or an editor, a few percent
OTHERS_BUSY = 0.25

T = TypeVar("T")


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota and by an
    ``OMP_NUM_THREADS`` limit (which parallel workers, e.g. joblib's, are started with)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    caps = [cpus, _cgroup_quota() or cpus, int(limit) if limit.isdigit() and int(limit) > 0 else cpus]
    return max(1, min(caps))


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Whole CPUs allowed by a cgroup v2 ``cpu.max`` or v1 CFS quota; None when unlimited."""
    v2 = root / "cpu.max"
    try:
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else max(1, math.floor(int(quota) / int(period)))
        v1 = root / "cpu" / "cpu.cfs_quota_us"
        if v1.is_file():
            quota = int(v1.read_text())
            period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
            return None if quota <= 0 else max(1, math.floor(quota / period))
    except (OSError, ValueError):
        return None
    return None


def _cgroup_usage(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPU seconds every process of this process's cgroup has used (v2 ``cpu.stat``, v1
    ``cpuacct.usage``); None where neither can be read."""
    try:
        v2 = root / "cpu.stat"
        if v2.is_file():
            fields = dict(line.split()[:2] for line in v2.read_text().splitlines() if line.strip())
            return int(fields["usage_usec"]) / 1e6
        v1 = root / "cpuacct" / "cpuacct.usage"
        if v1.is_file():
            return int(v1.read_text()) / 1e9
    except (OSError, ValueError, KeyError):
        return None
    return None


def _busy_seconds() -> tuple[float, int] | None:
    """Seconds of CPU time what competes with this process for its CPUs has used, and how many
    CPUs that is: under a cgroup CPU quota smaller than the CPUs it may run on, its cgroup's
    processes, which share the quota (other runs in the same container); else every process's
    work on those CPUs since boot (Linux's ``/proc/stat``: all but idle and I/O wait, steal
    included). None where it cannot be read."""
    mine = {f"cpu{i}" for i in os.sched_getaffinity(0)} if hasattr(os, "sched_getaffinity") else None
    quota, allowed = _cgroup_quota(), len(mine) if mine is not None else os.cpu_count() or 1
    if quota is not None and quota < allowed:
        usage = _cgroup_usage()
        if usage is not None:
            return usage, quota
    ticks = cpus = 0
    try:
        for name, *fields in (line.split() for line in Path("/proc/stat").read_text().splitlines()):
            if name.startswith("cpu") and name != "cpu" and (mine is None or name in mine):
                user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in fields[:8])
                ticks, cpus = ticks + user + nice + system + irq + softirq + steal, cpus + 1
    except (OSError, ValueError):  # no such file, or one of another layout
        return None
    return ticks / os.sysconf("SC_CLK_TCK"), cpus


def _own_seconds() -> float:
    """CPU seconds this process has used, every thread of it."""
    return sum(os.times()[:2])


_clock = time.perf_counter  # the readings' clock, apart from the process's


class _Reading(NamedTuple):
    """What tells, between two moments, how much of this process's CPUs other processes used."""

    at: float
    busy: tuple[float, int] | None  # ``_busy_seconds``
    own: float

    @classmethod
    def now(cls) -> _Reading:
        return cls(_clock(), _busy_seconds(), _own_seconds())

    def others_since(self, start: _Reading, cpus: int) -> float | None:
        """How many CPUs' work, on average since ``start``, other processes did on the CPUs this
        process may run on, beyond those a quota of ``cpus`` leaves to them; None where the kernel
        does not say."""
        if start.busy is None or self.busy is None or self.at <= start.at:
            return None
        others = self.busy[0] - start.busy[0] - (self.own - start.own)
        return others / (self.at - start.at) - (self.busy[1] - cpus)


def measured_alone(measure: Callable[[], T]) -> tuple[T, bool]:
    """``measure()``, and whether it ran with the CPUs this process may use to itself: other
    processes used no more of the CPUs it may run on than a cgroup quota leaves beyond
    ``available_cpus``, give or take ``OTHERS_BUSY`` of one, on average (True where the kernel
    does not say)."""
    start = _Reading.now()
    result = measure()
    beyond = _Reading.now().others_since(start, available_cpus())
    return result, beyond is None or beyond < OTHERS_BUSY


def largest_layer(model: nn.Module) -> int:
    """Multiply-adds per example of the model's largest product: a dense weight's size; a
    convolution kernel's size times the positions it is applied at (the smaller of the two maps
    it joins: a stride-2 convolution's output, its transpose's input)."""
    sizes = [0]
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor):
            continue
        positions = 1
        if weight.dim() > 2 and hasattr(module, "in_shape") and hasattr(module, "out_shape"):
            positions = min(math.prod(module.in_shape[1:]), math.prod(module.out_shape[1:]))
        sizes.append(weight.numel() * positions)
    return max(sizes)


def choose_threads(setting: str, model: nn.Module, batch_size: int, speedup: float = 1.0) -> int:
    """The thread count for ``--threads`` (``auto`` or a positive number).

    ``speedup`` is how much faster than fp32 the run's precision multiplies (bf16 on CPUs with
    bf16 units): the same product is less work to split.
    """
    if setting != "auto":
        if int(setting) > (cpus := available_cpus()):
            warnings.warn(
                f"--threads {setting} is more than the {cpus} CPUs this process may use, and "
                f"threads beyond them wait on each other; use --threads auto or at most {cpus}",
                SettingWarning,
                stacklevel=user_stacklevel(),
            )
        return int(setting)
    if batch_size * largest_layer(model) / speedup < SMALL_PRODUCT:
        return 1
    return available_cpus()


class CpuShare:
    """Keeps training on the CPUs other processes leave idle. ``tick`` (after every step) looks,
    every ``SHARE_SECONDS``, at how much of this process's CPUs the others kept busy, and trains on
    the rest: at least one thread, at most the count it started with. Brief spinning makes small
    steps on several threads fast alone, and makes two processes whose threads spin on the same
    cores wait on each other many times over; on one thread each, they take about their time
    alone on one. Dense layers of an autoencoder's widths train to the same weights on any count;
    a convolution's backward pass, and a product whose output is small beside the rows it sums over
    (a 10-class head on 16 code units), sum in an order that depends on it (weight gradients
    differed in the seventh digit), so such a run on a busy machine can end a little apart from one
    on a quiet machine. On
    one thread, or not ``on`` (training on a GPU), there is nothing to give up and ``tick``
    returns at once. ``close`` gives the thread count back."""

    def __init__(self, on: bool = True):
        self.wanted = self.free = torch.get_num_threads() if on else 1
        self.cpus = available_cpus()
        self.last = _Reading.now()

    def tick(self) -> None:
        if self.wanted == 1 or _clock() - self.last.at < SHARE_SECONDS:
            return
        now = _Reading.now()
        beyond = now.others_since(self.last, self.cpus)
        if beyond is not None:
            taken = max(0, math.ceil(beyond - OTHERS_BUSY))
            self.free = max(1, min(self.wanted, self.cpus - taken))
            if torch.get_num_threads() != self.free:
                torch.set_num_threads(self.free)
        self.last = now

    def close(self) -> None:
        if self.free != self.wanted:
            torch.set_num_threads(self.wanted)


def say_if_threads_spin(n: int, model: nn.Module) -> None:
    """Warn, once per process, when ``model`` trains on ``n`` > 1 CPU threads that spin while idle
    because torch was imported before the package (``wait_policy.MISSED``)."""
    if n > 1 and wait_policy.MISSED and all(p.device.type == "cpu" for p in model.parameters()):
        _say_threads_spin()


@functools.cache  # once: the process's OpenMP runtime keeps the policy it started with
def _say_threads_spin() -> None:
    warnings.warn(
        "torch was imported before autoencoders, so idle OpenMP threads spin for milliseconds before "
        "they sleep, and runs sharing these CPUs can take several times as long as alone; import "
        "autoencoders before torch, or set GOMP_SPINCOUNT=10000 before Python starts",
        SettingWarning,
        stacklevel=user_stacklevel(),
    )


@contextlib.contextmanager
def training_threads(setting: str, model: nn.Module, batch_size: int) -> Iterator[None]:
    """Run a block that trains ``model`` on the threads ``choose_threads`` gives it (said once when
    they spin), whatever the caller's count, which it gets back afterwards: sums over threads round
    differently, so the same count trains the same weights."""
    threads = choose_threads(setting, model, batch_size)
    say_if_threads_spin(threads, model)
    with thread_count(threads):
        yield


def evaluation_threads(setting: str) -> int:
    """Threads for the metrics after training: ``--threads N``, or for ``auto`` every available CPU
    (their products, over thousands of rows at once, are never small)."""
    return available_cpus() if setting == "auto" else int(setting)


@contextlib.contextmanager
def thread_count(n: int) -> Iterator[None]:
    """Run a block with ``n`` intra-op threads, then give the caller back its own count."""
    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)

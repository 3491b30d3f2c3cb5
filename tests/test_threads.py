"""Thread policy: CPUs this process may use, one thread for small products, settings that persist."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import FAST

import autoencoders
from autoencoders import Config, DenseAutoencoder, UserError
from autoencoders.runtime import wait_policy
from autoencoders.runtime.threads import SMALL_PRODUCT, _cgroup_quota, available_cpus, choose_threads


def test_available_cpus_respects_affinity():
    assert 1 <= available_cpus() <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "150000 100000\n"}, 1),
        ({"cpu.max": "400000 100000\n"}, 4),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2),
        ({}, None),
    ],
)
def test_cgroup_quota(tmp_path, files, expected):
    _write_files(tmp_path, files)
    assert _cgroup_quota(tmp_path) == expected


def _write_files(root, files: dict[str, str]) -> None:
    """``files`` (path under ``root``: text) written, as a cgroup file system holds them."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n"}, 2.5),
        ({"cpuacct/cpuacct.usage": "3000000000\n"}, 3.0),
        ({}, None),
    ],
)
def test_cgroup_usage(tmp_path, files, expected):
    from autoencoders.runtime.threads import _cgroup_usage

    _write_files(tmp_path, files)
    assert _cgroup_usage(tmp_path) == expected


def test_under_a_cpu_quota_what_competes_is_the_cgroup(monkeypatch):
    """Under a quota of 2 of the host's CPUs, other runs in the same container take from those 2:
    their cgroup's usage counts, not the whole host's."""
    from autoencoders.runtime import threads

    monkeypatch.setattr(threads, "_cgroup_usage", lambda: 12.5)
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 2)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert threads._busy_seconds() == (12.5, 2)
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: None)  # no quota: every CPU it may run on
    assert threads._busy_seconds() != (12.5, 2)


def test_auto_takes_one_thread_for_small_products_and_every_cpu_for_large_ones():
    tiny, small = DenseAutoencoder([64, 256, 64, 16]), DenseAutoencoder([784, 256, 64, 30])
    assert choose_threads("auto", tiny, 64) == 1  # 1M multiply-adds: two threads gained nothing
    assert choose_threads("auto", tiny, 256) == available_cpus()
    assert choose_threads("auto", small, 64) == available_cpus()  # 12.8M in fp32
    assert choose_threads("auto", small, 16, speedup=3.7) == 1  # bf16 units: the same product is small
    assert 64 * 64 * 256 < SMALL_PRODUCT < 256 * 64 * 256
    assert choose_threads(str(available_cpus()), small, 64) == available_cpus()


def test_more_threads_than_cpus_are_taken_with_a_warning(monkeypatch):
    import warnings

    from autoencoders.errors import SettingWarning
    from autoencoders.runtime import threads

    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    with pytest.warns(SettingWarning, match="--threads 64 is more than the 2 CPUs this process may use"):
        assert choose_threads("64", DenseAutoencoder([64, 8]), 64) == 64
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert choose_threads("2", DenseAutoencoder([64, 8]), 64) == 2


def test_a_convolution_counts_every_position_its_kernel_is_applied_at():
    from autoencoders.models.conv import ConvAutoencoder
    from autoencoders.runtime.threads import largest_layer

    for tied in (False, True):
        conv = ConvAutoencoder((1, 28, 28), [32, 64], [784, 30], tied=tied)
        assert largest_layer(conv) == 64 * 32 * 9 * 7 * 7  # the 32 → 64 kernel at 7×7 positions
        assert choose_threads("auto", conv, 64) == available_cpus()  # 58M multiply-adds


def test_thread_settings_are_checked_and_reported(tmp_path):
    assert Config().replace(threads=2).train.threads == "2"
    for bad in ("0", "two", "-1"):
        with pytest.raises(UserError, match="--threads must be 'auto' or a positive whole number"):
            Config().replace(threads=bad)
    run = autoencoders.train(
        data="digits", layers=[64, 8], epochs=1, threads="auto", out=str(tmp_path), **FAST
    )
    assert run.metrics["threads"] == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("given", "expected"),
    [({}, f"PASSIVE {wait_policy.SPIN}"), ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE None")],
)
def test_idle_threads_spin_briefly_unless_the_user_chose_otherwise(given, expected):
    env = {k: v for k, v in os.environ.items() if k not in wait_policy.CHOSEN} | given
    code = "import os, autoencoders; print(os.environ['OMP_WAIT_POLICY'], os.environ.get('GOMP_SPINCOUNT'))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == expected


@pytest.mark.slow
@pytest.mark.parametrize(
    ("code", "env", "warned"),
    [
        ("import torch, autoencoders", {}, True),
        ("import autoencoders, torch", {}, False),
        ("import torch, autoencoders", {"OMP_WAIT_POLICY": "PASSIVE"}, False),  # the user's own choice
    ],
)
def test_a_run_says_when_torch_came_first_and_its_threads_spin(code, env, warned):
    code += (
        "\nfrom autoencoders.runtime.threads import say_if_threads_spin"
        "\nmodel = autoencoders.DenseAutoencoder([64, 8])"
        "\nsay_if_threads_spin(1, model)"  # one thread: no team of threads to spin
        "\nsay_if_threads_spin(2, model); say_if_threads_spin(2, model)"
    )
    env = {k: v for k, v in os.environ.items() if k not in wait_policy.CHOSEN} | env
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    said = done.stderr.count("torch was imported before autoencoders, so idle OpenMP threads spin")
    assert said == (1 if warned else 0), done.stderr


def test_a_measurement_knows_whether_other_processes_kept_the_cpus_busy(monkeypatch):
    from autoencoders.runtime import threads

    def alone_when_others_used(seconds: float | None, counted: int = available_cpus()) -> bool:
        """Whether a measurement is alone when the ``counted`` CPUs of /proc/stat were busy for
        ``seconds`` more than this process's own time (none, asleep) while it ran."""
        busy = iter([(100.0, counted), None if seconds is None else (100.0 + seconds, counted)])
        monkeypatch.setattr(threads, "_busy_seconds", lambda: next(busy))
        return threads.measured_alone(lambda: time.sleep(0.2))[1]

    assert alone_when_others_used(0.01)  # an editor, a browser tab
    assert not alone_when_others_used(10.0)  # another run
    assert alone_when_others_used(None)  # no /proc/stat: as before, kept
    # a cgroup quota of this process's CPUs on a 64-CPU host: the others' 62 are theirs to use
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    assert alone_when_others_used(10.0, counted=64)
    assert not alone_when_others_used(100.0, counted=64)  # the whole host busy, this quota's CPUs too


def test_training_gives_up_the_threads_other_processes_need_and_takes_them_back(monkeypatch):
    """Every ``SHARE_SECONDS`` a run on several threads keeps those the others leave idle."""
    import torch

    from autoencoders.runtime import threads

    clock = {"now": 0.0, "busy": 0.0, "own": 0.0}
    monkeypatch.setattr(threads, "_clock", lambda: clock["now"])
    monkeypatch.setattr(threads, "_busy_seconds", lambda: (clock["busy"], 4))
    monkeypatch.setattr(threads, "_own_seconds", lambda: clock["own"])
    monkeypatch.setattr(threads, "available_cpus", lambda: 4)

    def after(seconds: float, own: float, others: float) -> int:
        """The thread count once ``seconds`` passed, this process and the others busy as given (CPUs)."""
        clock["now"] += seconds
        clock["own"] += own * seconds
        clock["busy"] += (own + others) * seconds
        share.tick()
        return torch.get_num_threads()

    torch.set_num_threads(4)
    try:
        share = threads.CpuShare()
        assert after(0.1, 4, 1) == 4  # too soon to look
        assert after(0.2, 4, 1) == 3  # another run took a CPU
        assert after(0.3, 3, 0.1) == 4  # gone; an editor is not a run
        assert after(0.3, 4, 2.6) == 1  # the others' three, rounded up; never none
        share.close()
        assert torch.get_num_threads() == 4
        torch.set_num_threads(2)
        off = threads.CpuShare(on=False)  # training on a GPU
        share = off
        assert after(1.0, 2, 4) == 2
        off.close()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)  # the suite's own setting (conftest)


def test_every_training_step_on_the_cpu_lets_the_share_look(tmp_path, monkeypatch):
    from autoencoders.runtime import threads
    from autoencoders.training import loop

    seen = []

    class Spy(threads.CpuShare):
        def tick(self):
            seen.append("tick")
            super().tick()

        def close(self):
            seen.append("close")
            super().close()

    monkeypatch.setattr(loop, "CpuShare", Spy)
    run = autoencoders.train(
        data="digits", layers=[64, 8], epochs=2, batch_size=256, out=str(tmp_path), **FAST | {"device": "cpu"}
    )
    assert seen == ["tick"] * 2 * math.ceil(run.metrics["n_train"] / 256) + ["close"]


@pytest.mark.slow
def test_a_measurement_beside_a_busy_process_is_not_alone():
    from autoencoders.runtime.threads import measured_alone

    spinning = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # started
        assert not measured_alone(lambda: time.sleep(1.0))[1]
    finally:
        spinning.kill()
        spinning.wait()


def test_training_gives_the_caller_its_thread_count_back(tmp_path):
    import torch

    from autoencoders.sklearn import AutoencoderTransformer

    torch.set_num_threads(2)
    try:
        autoencoders.train(data="digits", layers=[64, 8], epochs=1, threads=1, out=str(tmp_path), **FAST)
        assert torch.get_num_threads() == 2
        x = np.random.default_rng(0).random((40, 6))
        AutoencoderTransformer(layers=(4,), epochs=1, random_state=0, options={"threads": 1}).fit(x)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)  # the suite's own setting (conftest)

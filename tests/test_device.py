"""Device-resident training: batches drawn where the rows are, a step replayed as a CUDA graph, and
precisions a device has. The graph's control flow is tested on the CPU with a stand-in for the CUDA
calls; the GPU tests run where one is and skip cleanly elsewhere."""

from __future__ import annotations

import contextlib
import json
import math
import traceback
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
from helpers import FAST, ctrl_c_at_batch
from torch.utils._python_dispatch import TorchDispatchMode

import autoencoders
from autoencoders import DenseAutoencoder, UserError
from autoencoders.config import TrainConfig
from autoencoders.data.batches import epoch_batches, shuffler
from autoencoders.errors import SettingWarning
from autoencoders.models.layers import CodeSelect, make_corruption
from autoencoders.models.objectives import Reconstruction, Weighted
from autoencoders.runtime.device import gpu_math
from autoencoders.training.capture import WARMUP, CapturedStep, CudaGraphs, Eager, batch_runner
from autoencoders.training.loop import LoopState, fit
from autoencoders.training.optimizers import Adam
from autoencoders.training.precision import autocast, resolve_precision
from autoencoders.training.steps import SemiSupervisedStep, autoencoder_step, make_optimizer


def GPU(test: Callable) -> Callable:
    """A test that needs a CUDA GPU: marked ``gpu`` (benchmarks/device_check.sh runs those first),
    skipped without one."""
    return pytest.mark.gpu(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")(test))


class Rerun(CudaGraphs):
    """A CPU stand-in for CUDA graphs: a capture runs the step once, a replay runs it again into the
    same output tensors, reading the same static inputs, as a graph's kernels would. Given the
    ``step``, a replay checks that the numbers a real graph would hold fixed are still the
    captured ones (a rerun reads the current ones, so it could not tell otherwise)."""

    def __init__(self, step=None):
        self.step, self.captures = step, 0

    def warmup(self):
        return contextlib.nullcontext()

    def capture(self, fn, generators):
        self.captures += 1
        held = self.step.graph_constants() if self.step is not None else None
        out = fn()

        def replay() -> None:
            if self.step is not None:
                assert self.step.graph_constants() == held, "a graph replayed with constants it does not hold"
            for name, value in fn().items():
                out[name].copy_(value)

        return replay, out


def _losses(step, runner, x: torch.Tensor, epochs: int, batch_size: int) -> torch.Tensor:
    """Every batch's loss over ``epochs`` shuffled passes of the loop's batching, on the rows' device."""
    generator = shuffler((x,), 0)
    out = []
    for epoch in range(1, epochs + 1):
        step.set_epoch(epoch)
        runner.new_epoch(len(x) // batch_size)
        for batch in epoch_batches((x,), batch_size, generator):
            out.append(runner(batch)["loss"].clone())  # a replay overwrites its outputs
            step.end_batch()
    return torch.stack(out)  # no host sync per batch


def _denoising_step(seed: int = 0, warmup: int = 0):
    """A denoising step; with ``warmup``, its reconstruction weight grows over that many epochs."""
    torch.manual_seed(seed)
    model = DenseAutoencoder([16, 8, 3])
    cfg = TrainConfig(lr=1e-2, lr_decay="onecycle")
    return autoencoder_step(
        model, cfg, 30, make_corruption("masking", 0.2), [Weighted(Reconstruction(), 1.0, warmup)]
    )


def _eager_and_captured(x: torch.Tensor, epochs: int, batch_size: int, warmup: int = 0):
    """Every batch's loss trained eagerly and with the CPU stand-in for graphs, from the same start;
    the runner and its graphs."""
    eager_step, step = _denoising_step(warmup=warmup), _denoising_step(warmup=warmup)
    torch.manual_seed(5)
    eager = _losses(eager_step, Eager(eager_step), x, epochs, batch_size)
    graphs = Rerun(step)
    runner = CapturedStep(step, graphs=graphs, batch_rows=min(batch_size, len(x)))
    torch.manual_seed(5)
    captured = _losses(step, runner, x, epochs, batch_size)
    for a, b in zip(eager_step.module.parameters(), step.module.parameters()):
        assert torch.equal(a, b)
    return eager, captured, runner, graphs


def test_captured_step_trains_as_the_eager_step_with_partial_batches_on_one_graph():
    x = torch.rand(70, 16, generator=torch.Generator().manual_seed(1))  # 70 = 4 × 16 + a batch of 6
    eager, captured, runner, graphs = _eager_and_captured(x, 3, 16)
    assert torch.equal(captured, eager)  # same inputs copied in, same updates, same schedule: bit for bit
    assert graphs.captures == 1  # nothing the graph holds fixed changes between epochs
    assert runner.replayed == 3 * 4 - WARMUP  # every full batch after the warm-up; partial ones run eagerly


def test_a_partial_batch_is_never_recorded():
    """Three full batches and a partial one: the fourth batch, the first after the warm-up, is
    the partial one; it runs eagerly and the next epoch's first full batch is recorded."""
    x = torch.rand(54, 16, generator=torch.Generator().manual_seed(1))  # 3 × 16 + 6
    eager, captured, runner, graphs = _eager_and_captured(x, 4, 16)
    assert torch.equal(captured, eager)
    assert graphs.captures == 1 and len(runner.inputs[0]) == 16
    assert runner.replayed == 4 * 3 - WARMUP


def test_a_k_schedule_records_a_graph_for_each_k():
    def step():
        torch.manual_seed(0)
        model = DenseAutoencoder([16, 8, 3], code_select=CodeSelect(k=2, k_start=3, warmup=3))
        return autoencoder_step(model, TrainConfig(lr=1e-2), 30)

    x = torch.rand(16 * 8, 16, generator=torch.Generator().manual_seed(1))  # 8 full batches an epoch
    eager_step, graph_step = step(), step()
    eager = _losses(eager_step, Eager(eager_step), x, 5, 16)
    graphs = Rerun(graph_step)
    captured = _losses(graph_step, CapturedStep(graph_step, graphs=graphs), x, 5, 16)
    assert torch.equal(captured, eager)
    assert graphs.captures == 2  # k 3 in epochs 1 and 2 (rounded from 3 and 2.67), then 2.33 → 2 and on


def test_a_graph_is_recorded_anew_when_its_constants_change():
    x = torch.rand(16 * 8 + 6, 16, generator=torch.Generator().manual_seed(1))  # 8 full batches an epoch
    eager, captured, runner, graphs = _eager_and_captured(x, 5, 16, warmup=3)
    assert torch.equal(captured, eager)
    assert graphs.captures == 3  # one in each of the weight's warm-up epochs; the last lasts
    assert runner.replayed == 5 * 8 - WARMUP


@pytest.mark.parametrize(("warmup", "captures", "replayed"), [(0, 1, 5), (3, 1, 3)])
def test_one_batch_epochs_capture_once_their_constants_hold(warmup, captures, replayed):
    """A graph for one batch an epoch pays only if later epochs replay it: once the weight has
    moved between epochs, epochs run eagerly until it holds (they do not count as the graph's
    warm-up); then one graph lasts."""
    x = torch.rand(16, 16, generator=torch.Generator().manual_seed(1))
    eager, captured, runner, graphs = _eager_and_captured(x, 8, 16, warmup=warmup)
    assert torch.equal(captured, eager)
    assert (graphs.captures, runner.replayed) == (captures, replayed)


def test_a_run_records_how_many_batches_its_graphs_replayed(tmp_path, monkeypatch):
    from autoencoders.training import loop

    monkeypatch.setattr(
        loop,
        "batch_runner",
        lambda step, mode, device, quiet, rows: CapturedStep(step, Rerun(step), rows),
    )
    settings = {**FAST, "data": "digits", "epochs": 2, "layers": [64, 8], "batch_size": 64}
    m = autoencoders.train(out=str(tmp_path / "r"), **settings).metrics
    per_epoch = math.ceil(m["n_train"] / 64)
    assert m["train_batches"] == 2 * per_epoch
    assert m["replayed_batches"] == 2 * (m["n_train"] // 64) - WARMUP
    history = (tmp_path / "r" / "history.csv").read_text().splitlines()
    assert history[0].split(",")[-2:] == ["batches", "replayed_batches"]
    monkeypatch.undo()  # eager, on a CPU: nothing to record
    cpu = settings | {"device": "cpu"}  # not DEVICE: a GPU's run would record real graphs
    assert "replayed_batches" not in autoencoders.train(out=str(tmp_path / "cpu"), **cpu).metrics


def test_a_step_that_fails_to_capture_says_so_once_and_trains_eagerly():
    class Broken(Rerun):
        def capture(self, fn, generators):
            raise RuntimeError("operation not permitted when stream is capturing")

    x = torch.rand(64, 16, generator=torch.Generator().manual_seed(1))
    eager_step, step = _denoising_step(), _denoising_step()
    torch.manual_seed(5)
    eager = _losses(eager_step, Eager(eager_step), x, 2, 16)
    torch.manual_seed(5)
    with pytest.warns(
        SettingWarning, match=r"cannot be captured as a CUDA graph \(operation not .* eagerly"
    ) as said:
        assert torch.equal(_losses(step, CapturedStep(step, graphs=Broken()), x, 2, 16), eager)
    assert len(said) == 1  # shown under --quiet too: the run is slower than asked


def test_a_step_that_fails_eagerly_after_a_failed_capture_ends_in_one_clear_line():
    """A capture that fails midway can leave CUDA's state unusable (its random generators still
    marked as capturing): the eager retry's error then names both and the way out."""

    class Broken(Rerun):
        def capture(self, fn, generators):
            raise RuntimeError("operation not permitted when stream is capturing")

    step = _denoising_step()
    runner = CapturedStep(step, graphs=Broken())
    batch = (torch.rand(16, 16),)
    for _ in range(WARMUP):  # the warm-up batches run eagerly
        runner(batch)

    def poisoned(batch):
        raise RuntimeError("Offset increment outside graph capture encountered unexpectedly")

    step.train_batch = poisoned
    with pytest.raises(UserError, match="--cuda-graph off") as caught, pytest.warns(SettingWarning):
        runner(batch)  # the failed capture is warned of before the eager retry fails
    assert "stream is capturing" in str(caught.value) and "Offset increment" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_runner_on_cpu_is_eager_and_on_says_so(capsys):
    step = _denoising_step()
    cpu = torch.device("cpu")
    assert type(batch_runner(step, "auto", cpu)) is Eager
    assert capsys.readouterr().err == ""
    assert type(batch_runner(step, "on", cpu)) is Eager
    assert "CUDA graphs need a GPU" in capsys.readouterr().err
    assert type(batch_runner(step, "on", cpu, quiet=True)) is Eager
    assert capsys.readouterr().err == ""


def test_a_run_of_many_stages_says_why_it_runs_eagerly_once(tmp_path, capsys):
    settings = {**FAST, "quiet": False, "device": "cpu", "data": "digits", "layers": [64, 16, 8], "epochs": 1}
    settings |= {"pretrain": "greedy", "pretrain_epochs": 1, "cuda_graph": "on", "compare": False}
    for out in ("a", "b"):  # each run says it
        autoencoders.train(out=tmp_path / out, **settings)
        assert capsys.readouterr().err.count("CUDA graphs need a GPU") == 1
    autoencoders.classify(tmp_path / "a", method="frozen", unfreeze_epochs=1, epochs=1)
    assert capsys.readouterr().err.count("CUDA graphs need a GPU") == 1


def test_steps_say_what_keeps_them_from_a_graph():
    model = DenseAutoencoder([16, 8, 3])
    sgd = autoencoder_step(model, TrainConfig(optimizer="sgd"), 1)
    assert "SGD" in sgd.capture_refusal()
    adam = autoencoder_step(model, TrainConfig(), 1)
    assert "on the host" in adam.capture_refusal()  # a CPU's Adam: a float rate a graph would keep
    # as a GPU's is made: the rate a device tensor, which the schedule writes in place
    adam.optimizers = {
        k: Adam(model.parameters(), lr=torch.tensor(1e-3), capturable=True) for k in adam.optimizers
    }
    assert adam.capture_refusal() is None
    labelled = (torch.rand(10, 16), torch.arange(10) % 2)
    semi = SemiSupervisedStep(lambda *a: {}, model, labelled, TrainConfig(), 1)
    assert semi.generators() == [semi.draw]  # a graph must register the labelled draws' generator


def test_cpu_adam_keeps_a_number_for_its_rate():
    optimizer = make_optimizer(DenseAutoencoder([16, 8, 3]).parameters(), TrainConfig(lr=3e-3))
    assert optimizer.param_groups[0]["lr"] == 3e-3 and not optimizer.param_groups[0]["capturable"]


def test_precisions_a_device_lacks_are_refused_in_one_line(tmp_path):
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(UserError, match="--precision tf32 needs a GPU with TF32"):
        resolve_precision("tf32", cpu)
    on_cpu_tf32 = FAST | {"precision": "tf32", "device": "cpu"}  # not DEVICE: a recent GPU has TF32
    with pytest.raises(UserError, match="tf32"):
        autoencoders.train(data="digits", epochs=1, out=str(tmp_path / "r"), **on_cpu_tf32)
    assert not (tmp_path / "r").exists()  # refused before anything was written


@pytest.mark.parametrize(("fp32", "bf16", "expected"), [(1.0, 0.8, "bf16"), (1.0, 0.95, "fp32")])
def test_fastest_times_each_candidate_at_its_threads(monkeypatch, fp32, bf16, expected):
    """bf16 only when its step is GAIN faster than fp32's, each timed at its candidate's threads;
    the products' speed alone no longer decides."""
    from autoencoders.training import precision

    timed = []

    def step_timer(step, batch, p, device, graphs):
        def clock(n):
            timed.append((p, torch.get_num_threads()))
            return {"fp32": fp32, "bf16": bf16}[p]

        return clock

    monkeypatch.setattr(precision, "step_timer", step_timer)
    step = autoencoder_step(DenseAutoencoder([16, 8, 3]), TrainConfig(), steps=10)
    cpu, batch = torch.device("cpu"), (torch.rand(4, 16),)
    before = torch.get_num_threads()
    assert precision.fastest([("fp32", 2), ("bf16", 1)], lambda: step, batch, cpu)[0] == expected
    assert timed == [("fp32", 2), ("bf16", 1)] * 3 and torch.get_num_threads() == before  # in turns


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        # (timed in this order: half the threads, then all) all not GAIN faster at either
        # precision: bf16 on half, leaving cores idle
        ({("fp32", 2): 1.0, ("bf16", 2): 0.6, ("fp32", 4): 0.95, ("bf16", 4): 0.58}, ("bf16", 2)),
        # bf16 on four threads GAIN faster than every two-thread choice
        ({("fp32", 2): 1.0, ("bf16", 2): 0.48, ("fp32", 4): 0.5, ("bf16", 4): 0.3}, ("bf16", 4)),
        # fp32 on four threads is faster than fp32 on two, but not GAIN faster than bf16 on two
        ({("fp32", 2): 1.0, ("bf16", 2): 0.48, ("fp32", 4): 0.5, ("bf16", 4): 0.47}, ("bf16", 2)),
        # bf16 on four threads 1.2 times faster than on two: GAIN, but more threads must be
        # MORE_THREADS_GAIN faster (they take the cores the baselines would use)
        ({("fp32", 2): 1.0, ("bf16", 2): 0.6, ("fp32", 4): 0.95, ("bf16", 4): 0.5}, ("bf16", 2)),
        # nothing GAIN faster than the simplest
        ({("fp32", 2): 1.0, ("bf16", 2): 0.95, ("fp32", 4): 0.95, ("bf16", 4): 0.93}, ("fp32", 2)),
    ],
)
def test_a_cpu_run_times_half_the_threads_against_all_and_keeps_the_simpler_unless_gain_faster(
    monkeypatch, seconds, expected
):
    from autoencoders import run, stages
    from autoencoders.runtime import threads
    from autoencoders.training import precision

    timed, made = [], []

    def step_timer(step, batch, p, device, graphs):
        made.append(p)

        def clock(n):
            timed.append((p, torch.get_num_threads()))
            return seconds[timed[-1]]

        return clock

    monkeypatch.setattr(precision, "step_timer", step_timer)
    monkeypatch.setattr(stages, "remembered", lambda what, device, measure: measure())  # timed each time
    for module in (precision, stages):
        monkeypatch.setattr(module, "bf16_speedup", lambda: 3.0)
    monkeypatch.setattr(threads, "available_cpus", lambda: 4)
    monkeypatch.setattr(threads, "SMALL_PRODUCT", 0)  # the product rule gives every precision 4 threads
    cfg = run.as_config(layers=[16, 8, 3], batch_size=4, precision="auto")
    model, cpu = DenseAutoencoder([16, 8, 3]), torch.device("cpu")
    before = torch.get_num_threads()
    assert stages.measure_setting(cfg, torch.rand(32, 16), model, cpu) == expected
    assert timed == list(seconds) * 3 and torch.get_num_threads() == before
    assert made == ["fp32", "bf16", "fp32", "bf16"]  # one copy of the step per candidate, for every round
    # threads the user gives are the only ones timed; a precision the user gives is not timed
    timed.clear()
    fixed = cfg.replace(threads="4")
    assert stages.measure_setting(fixed, torch.rand(32, 16), model, cpu)[1] == 4
    assert timed == [("fp32", 4), ("bf16", 4)] * 3
    timed.clear()
    fp32 = cfg.replace(precision="fp32")
    assert stages.measure_setting(fp32, torch.rand(32, 16), model, cpu) == ("fp32", 4)
    assert timed == []


def test_a_gpu_run_times_every_precision_with_fp32s_threads_fp32_first(monkeypatch):
    """The host's threads do not compute a GPU's step: bf16 must not come first for having fewer
    (by the CPU's product rule), which would make fp32 the one to beat."""
    from autoencoders import run, stages
    from autoencoders.runtime import threads

    timed = []
    monkeypatch.setattr(stages, "available", lambda device: ["fp32", "tf32", "bf16"])
    monkeypatch.setattr(stages, "worth_timing", lambda device: True)
    monkeypatch.setattr(stages, "bf16_speedup", lambda: 4.0)
    monkeypatch.setattr(stages, "first_batch", lambda rows, batch_size: ())
    monkeypatch.setattr(
        stages, "fastest", lambda candidates, *args: timed.extend(candidates) or candidates[0]
    )
    monkeypatch.setattr(stages, "remembered", lambda what, device, measure: measure())
    monkeypatch.setattr(threads, "available_cpus", lambda: 16)
    cfg = run.as_config(layers=[784, 128], batch_size=32, precision="auto")  # 3.2M multiply-adds
    model = DenseAutoencoder([784, 128])
    assert stages.stage_threads(cfg, model, "bf16", torch.device("cpu")) < stages.stage_threads(
        cfg, model, "fp32", torch.device("cpu")
    )
    assert stages.measure_setting(cfg, torch.rand(300, 784), model, torch.device("cuda"))[0] == "fp32"
    assert [p for p, _ in timed] == ["fp32", "tf32", "bf16"] and len({n for _, n in timed}) == 1


def test_a_choice_is_measured_once_per_machine_and_what_it_depends_on(tmp_path, monkeypatch):
    """The same command on the same machine trains at the same precision and threads: a second
    timing could pick the other one of a near tie."""
    from autoencoders.training.precision import remembered

    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path))
    measured, cpu = [], torch.device("cpu")
    choices = iter([("bf16", 1), ("fp32", 2), ("fp32", 1), ("bf16", 2)])

    def measure():
        measured.append(1)
        return next(choices)

    assert remembered({"layers": [64, 8]}, cpu, measure) == ("bf16", 1)
    assert remembered({"layers": [64, 8]}, cpu, measure) == ("bf16", 1) and len(measured) == 1
    assert remembered({"layers": [64, 16]}, cpu, measure) == ("fp32", 2)  # another model: timed
    kept = next(p for p in (tmp_path / "measured").iterdir() if json.loads(p.read_text())["threads"] == 1)
    kept.write_text("{")  # damaged: measured again, and kept again
    assert remembered({"layers": [64, 8]}, cpu, measure) == ("fp32", 1)
    assert remembered({"layers": [64, 8]}, cpu, measure) == ("fp32", 1) and len(measured) == 3
    monkeypatch.setenv("GOMP_SPINCOUNT", "0")  # threads that wait otherwise: what more of them gain differs
    assert remembered({"layers": [64, 8]}, cpu, measure) == ("bf16", 2) and len(measured) == 4


def test_a_kept_choice_this_machine_cannot_make_is_timed_again(tmp_path, monkeypatch):
    """A damaged file: threads this machine lacks would fail in torch, and a precision it cannot run
    would be refused as if the user had asked for it."""
    from autoencoders.training.precision import remembered

    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path))
    cpu, measured = torch.device("cpu"), []
    assert remembered({"layers": [64, 8]}, cpu, lambda: measured.append(1) or ("fp32", 1)) == ("fp32", 1)
    (kept,) = (tmp_path / "measured").iterdir()
    for damaged in ({"precision": "fp32", "threads": -5}, {"precision": "fp32", "threads": 10**6},
                    {"precision": "fp64", "threads": 1}, {"precision": "tf32", "threads": 1}):  # fmt: skip
        kept.write_text(json.dumps(damaged))
        assert remembered({"layers": [64, 8]}, cpu, lambda: measured.append(1) or ("fp32", 1)) == ("fp32", 1)
    assert len(measured) == 5 and json.loads(kept.read_text())["threads"] == 1


def test_a_choice_made_by_other_rules_is_made_again(tmp_path, monkeypatch):
    """The candidates timed and the gains they must show are part of what a choice is kept for:
    one that another version made (another thread rule, say) is not read back."""
    from autoencoders import run, stages
    from autoencoders.runtime import threads
    from autoencoders.training import precision

    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path))
    timed = []

    def step_timer(step, batch, p, device, graphs):
        return lambda n: timed.append((p, torch.get_num_threads())) or 1.0

    monkeypatch.setattr(precision, "step_timer", step_timer)
    monkeypatch.setattr(precision, "measured_alone", lambda measure: (measure(), True))
    for module in (precision, stages):
        monkeypatch.setattr(module, "bf16_speedup", lambda: 3.0)
    monkeypatch.setattr(threads, "available_cpus", lambda: 4)
    monkeypatch.setattr(threads, "SMALL_PRODUCT", 0)  # every precision on 4 threads, and on 2
    cfg = run.as_config(layers=[16, 8, 3], batch_size=4, precision="auto")
    model, cpu = DenseAutoencoder([16, 8, 3]), torch.device("cpu")
    first = stages.measure_setting(cfg, torch.rand(32, 16), model, cpu)
    assert len(timed) == 12 and stages.measure_setting(cfg, torch.rand(32, 16), model, cpu) == first
    assert len(timed) == 12  # read back
    monkeypatch.setattr(stages, "MORE_THREADS_GAIN", 1.5)
    stages.measure_setting(cfg, torch.rand(32, 16), model, cpu)
    assert len(timed) == 24  # other gains: timed again
    monkeypatch.setattr(threads, "SMALL_PRODUCT", 10**12)  # another thread rule: one thread for this model
    stages.measure_setting(cfg, torch.rand(32, 16), model, cpu)
    assert timed[24:] == [("fp32", 1), ("bf16", 1)] * 3


def test_a_choice_timed_on_a_busy_machine_is_timed_again_until_a_quiet_one(tmp_path, monkeypatch):
    """Two runs at once each time one thread as faster; alone, two may win. Busy runs keep using the
    first choice, so the same command trains the same model while the machine stays busy."""
    from autoencoders.training import precision
    from autoencoders.training.precision import remembered

    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path))
    quiet = iter([False, False, True])
    monkeypatch.setattr(precision, "measured_alone", lambda measure: (measure(), next(quiet)))
    choices, cpu = iter([("bf16", 1), ("fp32", 1), ("bf16", 2)]), torch.device("cpu")
    measure = lambda: next(choices)  # noqa: E731
    assert remembered({"layers": [64, 8]}, cpu, measure) == ("bf16", 1)  # busy: provisional
    assert remembered({"layers": [64, 8]}, cpu, measure) == ("bf16", 1)  # busy again: the first stands
    assert remembered({"layers": [64, 8]}, cpu, measure) == ("bf16", 2)  # quiet: kept for good
    assert remembered({"layers": [64, 8]}, cpu, lambda: pytest.fail("kept: not timed")) == ("bf16", 2)


def test_the_same_command_trains_at_the_precision_it_measured_before(tmp_path, monkeypatch):
    from autoencoders.training import precision

    monkeypatch.setenv("AUTOENCODERS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(precision, "worth_timing", lambda device: True)
    picks = iter(["bf16", "fp32"])
    monkeypatch.setattr(precision, "fastest", lambda candidates, *args: (next(picks), candidates[0][1]))
    from autoencoders import stages

    monkeypatch.setattr(stages, "worth_timing", precision.worth_timing)
    monkeypatch.setattr(stages, "fastest", precision.fastest)
    settings = {**FAST, "precision": "auto", "data": "digits", "epochs": 1, "layers": [64, 8]}
    first, second = (autoencoders.train(out=str(tmp_path / n), **settings) for n in ("a", "b"))
    assert first.metrics["precision"] == second.metrics["precision"] == "bf16"
    timing = ("seconds", "samples_per_second")
    assert [{k: v for k, v in row.items() if k not in timing} for row in first.history] == [
        {k: v for k, v in row.items() if k not in timing} for row in second.history
    ]  # the same model


def test_a_run_trains_with_the_threads_it_measured(tmp_path, monkeypatch):
    from autoencoders import run

    # the product rule would give this small net one thread
    monkeypatch.setattr(run, "measure_setting", lambda cfg, rows, model, device: ("fp32", 2))
    settings = {**FAST, "data": "digits", "epochs": 1, "layers": [64, 8], "threads": "auto"}
    trained = autoencoders.train(out=str(tmp_path / "r"), **settings)
    assert trained.metrics["threads"] == 2 and trained.metrics["precision"] == "fp32"


def test_a_resumed_run_keeps_its_measured_threads_without_timing_again(tmp_path, monkeypatch):
    from autoencoders import run
    from autoencoders.io import rundir
    from autoencoders.io.state import read_state, write_state

    monkeypatch.setattr(run, "measure_setting", lambda cfg, rows, model, device: ("fp32", 2))
    settings = {**FAST, "data": "digits", "epochs": 3, "layers": [64, 8], "threads": "auto"}
    settings["save_every"] = 0  # the first epoch is saved
    for name in ("new", "old", "big"):
        with ctrl_c_at_batch(30), pytest.raises(KeyboardInterrupt):  # in the second epoch: the first is saved
            autoencoders.train(out=str(tmp_path / name), **settings)
    monkeypatch.setattr(run, "measure_setting", lambda *args: pytest.fail("a resumed run keeps its choice"))
    monkeypatch.setattr(run, "available_cpus", lambda: 4)
    state = tmp_path / "big" / rundir.STATE
    tensors, info = read_state(state)
    for damaged in ("2", 0):
        write_state(state, tensors, info | {"marks": info["marks"] | {"threads": damaged}})
        with pytest.raises(autoencoders.UserError, match=rf"is damaged \(threads {damaged!r}\); train again"):
            autoencoders.resume(tmp_path / "big")
    # begun on a machine that allowed more threads: as many as this process may use
    write_state(state, tensors, info | {"marks": info["marks"] | {"threads": 64}})
    assert autoencoders.resume(tmp_path / "big").metrics["threads"] == 4
    assert autoencoders.resume(tmp_path / "new").metrics["threads"] == 2  # its own, where it fits
    # a state from before the threads were measured holds the precision alone: the product rule's
    # count for it, one thread for this small net
    state = tmp_path / "old" / rundir.STATE
    tensors, info = read_state(state)
    del info["marks"]["threads"]
    write_state(state, tensors, info)
    assert autoencoders.resume(tmp_path / "old").metrics["threads"] == 1


def test_copies_made_to_time_a_step_share_the_rows_it_only_reads():
    """DEC holds every training row; three timing copies of them could fill a GPU."""
    from autoencoders.clustering.model import Clusterer, DECLosses, DECStep
    from autoencoders.training.precision import copies_of

    rows = torch.rand(1000, 16)
    clusterer = Clusterer(DenseAutoencoder([16, 4]), torch.rand(3, 4))
    step = DECStep(
        DECLosses(clusterer, len(rows)), rows, TrainConfig(), steps=10, refresh=5, check=5, tol=0.01
    )
    copied = copies_of(step)()
    assert copied.rows is rows
    assert not any(a is b for a, b in zip(copied.module.parameters(), step.module.parameters()))
    assert copied.optimizers["main"].param_groups[0]["params"][0] is next(copied.module.parameters())


def test_cpu_auto_precision_without_bf16_units_times_nothing(monkeypatch):
    from autoencoders.training import precision

    monkeypatch.setattr(precision, "bf16_speedup", lambda: 0.01)  # bf16 ~100x slower
    monkeypatch.setattr(precision, "step_timer", lambda *args: pytest.fail("no step should be timed"))
    step = autoencoder_step(DenseAutoencoder([16, 8, 3]), TrainConfig(), steps=10)
    assert resolve_precision("auto", torch.device("cpu"), lambda: step, (torch.rand(4, 16),)) == "fp32"


def test_measuring_bf16_draws_nothing_from_the_global_generator():
    """Measured once per process: had it drawn from the global stream, a run's noise would depend
    on whether an earlier run in the same process had measured it."""
    from autoencoders.training.precision import bf16_speedup

    bf16_speedup.cache_clear()
    before = torch.random.get_rng_state()
    assert bf16_speedup() > 0
    assert torch.equal(before, torch.random.get_rng_state())


def test_cpu_auto_precision_leaves_training_as_fp32_trains(tmp_path, monkeypatch):
    """Timing copies of the step (both precisions, for real) draws no random numbers training sees
    and trains nothing it keeps: a run that ``auto`` sends to fp32 is bit-identical to one asked
    for fp32."""
    from autoencoders.training import precision

    monkeypatch.setattr(precision, "bf16_speedup", lambda: 3.0)  # time bf16 on any CPU
    monkeypatch.setattr(precision, "GAIN", 1e9)  # and keep fp32 whatever the timing says
    settings = {**FAST, "data": "digits", "epochs": 2, "layers": [64, 32, 8], "corruption": "gaussian"}
    settings["device"] = "cpu"  # the CPU's auto precision, whatever DEVICE
    auto = autoencoders.train(out=str(tmp_path / "auto"), **settings | {"precision": "auto"})
    assert auto.metrics["precision"] == "fp32"
    fixed = autoencoders.train(out=str(tmp_path / "fp32"), **settings)
    for name, value in auto.model.state_dict().items():
        assert torch.equal(value, fixed.model.state_dict()[name]), name


def test_classify_and_cluster_keep_the_precision_their_run_measured(tmp_path):
    from autoencoders.trained import later_precision

    (tmp_path / "metrics.json").write_text('{"precision": "bf16", "device": "cpu"}')
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert later_precision(tmp_path, "auto", cpu) == "bf16"  # measured once, on the same kind of device
    assert later_precision(tmp_path, "auto", gpu) == "auto"  # another device measures for itself
    assert later_precision(tmp_path, "fp32", cpu) == "fp32"  # what the user asks for wins


@contextlib.contextmanager
def _math_flags_kept() -> Iterator[None]:
    """Every TF32 and cuDNN flag of the process as it was before the block (a test sets them): the
    older flags first, then the matrix-product precision, then each backend's ``fp32_precision``,
    the order in which no write leaves torch refusing to read them."""
    backends = torch.backends
    legacy = [
        (backends.cuda.matmul, "allow_tf32"),
        (backends.cudnn, "allow_tf32"),
        (backends.cudnn, "deterministic"),
    ]
    newer = [
        (owner, "fp32_precision")
        for owner in (backends, backends.cuda.matmul, backends.cudnn, backends.cudnn.conv, backends.cudnn.rnn)
        if hasattr(owner, "fp32_precision")
    ]
    before = [getattr(o, name) for o, name in legacy + newer], torch.get_float32_matmul_precision()
    try:
        yield
    finally:
        values, precision = before
        for (o, name), value in zip(legacy, values):
            setattr(o, name, value)
        torch.set_float32_matmul_precision(precision)
        for (o, name), value in zip(newer, values[len(legacy) :]):
            setattr(o, name, value)


def test_gpu_math_sets_tf32_and_deterministic_convolutions_for_a_block_and_puts_them_back():
    """Flags only (a CPU build has them too): TF32 at tf32 alone, cuDNN's deterministic algorithms
    always on a GPU, the caller's own flags afterwards, and nothing changed for a CPU."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    new_api = hasattr(matmul, "fp32_precision")
    owners = [(matmul, "fp32_precision"), (cudnn.conv, "fp32_precision")] if new_api else []
    owners += [(matmul, "allow_tf32"), (cudnn, "allow_tf32")]
    tf32, fp32 = ("tf32", "ieee") if new_api else (True, False)
    read = lambda: (*(getattr(o, n) for o, n in owners[:2]), cudnn.deterministic)  # noqa: E731
    with _math_flags_kept():
        matmul.allow_tf32 = cudnn.allow_tf32 = True
        cudnn.deterministic = False
        for precision, inside in (("fp32", (fp32, fp32, True)), ("tf32", (tf32, tf32, True))):
            with gpu_math(precision, torch.device("cuda")):
                assert read() == inside, precision
            assert read() == (tf32, tf32, False)
        with gpu_math("fp32", torch.device("cpu")):
            assert read() == (tf32, tf32, False)


@pytest.mark.skipif(
    not hasattr(torch.backends.cuda.matmul, "fp32_precision"), reason="torch < 2.9 has one way to set TF32"
)
@pytest.mark.parametrize(
    "set_by",
    [
        lambda: setattr(torch.backends.cuda.matmul, "fp32_precision", "tf32"),
        lambda: setattr(torch.backends, "fp32_precision", "tf32"),
        lambda: setattr(torch.backends.cudnn.conv, "fp32_precision", "ieee"),
        lambda: torch.set_float32_matmul_precision("medium"),
        lambda: setattr(torch.backends.cuda.matmul, "allow_tf32", True),
    ],
    ids=["matmul-tf32", "global-tf32", "conv-ieee", "matmul-precision-medium", "allow-tf32"],
)
def test_gpu_math_keeps_tf32_as_the_caller_set_it_either_way(set_by):
    """Since torch 2.9, TF32 is set by ``fp32_precision`` or by the older flags; torch refuses
    reads that mix the two. After a block, whatever the caller could read is the same, and what
    it could not read it still cannot (a caller's own mix is not ours to mend)."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn

    def reads() -> list:
        out = []
        for read in (
            lambda: matmul.allow_tf32,
            lambda: cudnn.allow_tf32,
            torch.get_float32_matmul_precision,
            lambda: (matmul.fp32_precision, cudnn.conv.fp32_precision),
        ):
            try:
                out.append(read())
            except RuntimeError:
                out.append("refused")
        return out

    with _math_flags_kept():
        set_by()
        seen = reads()
        with gpu_math("fp32", torch.device("cuda")):
            assert (matmul.fp32_precision, cudnn.conv.fp32_precision) == ("ieee", "ieee")
        assert reads() == seen


def test_cuda_graph_option_is_validated():
    with pytest.raises(UserError, match="cuda_graph must be one of auto, on, off"):
        autoencoders.train(data="digits", cuda_graph="always", **FAST)


class _HostReads(TorchDispatchMode):
    """Where tensor values are read by the host (``.item()``, ``float()``, ``bool()``, ``if t:``, a
    tensor as an index or a format argument, ``torch.equal``), where a result's size depends on
    values (``nonzero``, a boolean mask), and where a GPU tensor is copied to the host: on a GPU
    each one waits for every queued kernel."""

    aten = torch.ops.aten
    READS = {
        aten._local_scalar_dense.default,
        aten.is_nonzero.default,
        aten.equal.default,
        aten.nonzero.default,
        aten.masked_select.default,
    }

    def __init__(self):
        super().__init__()
        self.ops, self.reads = 0, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        out = func(*args, **(kwargs or {}))
        to_host = (
            func is self.aten._to_copy.default and args[0].device.type != "cpu" == out.device.type
        ) or (func is self.aten.copy_.default and args[1].device.type != "cpu" == args[0].device.type)
        if func in self.READS or to_host:
            # the innermost line outside torch (and outside this method) that asked for the value
            line = [f for f in traceback.extract_stack()[:-1] if "/torch/" not in f.filename][-1]
            self.reads.append(f"{line.filename}:{line.lineno}: {line.line}")
        return out


@contextlib.contextmanager
def host_reads_in_batches() -> Iterator[_HostReads]:
    """Within the block, every training and validation batch (drawing it, the step, the loop's own
    work on its losses) runs under a ``_HostReads`` that the block receives."""
    from autoencoders.training import loop

    real, mode = loop.epoch_batches, _HostReads()

    def watched(*args, **kw):
        with mode:  # active while the loop's body runs on each batch too
            yield from real(*args, **kw)

    loop.epoch_batches = watched
    try:
        yield mode
    finally:
        loop.epoch_batches = real


SYNC_FREE = {
    "dense": {},
    "denoising, cosine": {"corruption": "masking", "noise": 0.3, "lr_decay": "cosine"},
    "kl-sparse": {"code_activation": "sigmoid", "sparsity": "kl", "sparsity_weight": 0.1},
    "l1-sparse, every layer": {"sparsity": "l1", "sparsity_weight": 0.1, "sparsity_layers": "all"},
    "k-sparse schedule": {"layers": [64, 64, 16], "top_k": 4, "top_k_start": 12, "top_k_warmup": 1},
    "winner-take-all": {"lifetime_sparsity": 0.05},
    "contractive, closed form": {"layers": [64, 16], "code_activation": "sigmoid", "contractive": 0.1},
    "contractive, autograd": {"contractive": 0.1},
    "contractive, projected": {"contractive": 0.1, "contractive_projections": 2},
    "tied, early stopping": {"tied": True, "val_fraction": 0.1, "patience": 1},
    "stacked": {"pretrain": "greedy", "pretrain_epochs": 1, "corruption": "gaussian", "noise": 0.1},
    "conv": {"model": "conv", "channels": [4], "layers": [64, 8]},
    "vae, kl warm-up": {"model": "vae", "loss": "mse", "decoder_std": "learned", "kl_warmup": 2},
    "aae": {"model": "aae", "prior": "mixture"},
    "one-cycle, sgd": {"lr_decay": "onecycle", "optimizer": "sgd"},
}


@pytest.mark.parametrize("options", SYNC_FREE.values(), ids=SYNC_FREE.keys())
def test_no_training_batch_reads_a_tensor_value_on_the_host(tmp_path, options):
    """Losses are summed on the device and read once an epoch; no step branches on a tensor's value."""
    with host_reads_in_batches() as watch:
        autoencoders.train(
            data="digits", epochs=2, out=tmp_path / "run", **FAST | {"layers": [64, 16, 8]} | options
        )
    assert watch.ops > 100  # the batches ran under the watch
    assert watch.reads == []


@pytest.mark.parametrize("method", ["finetune", "semi", "ladder"])
def test_no_classifier_batch_reads_a_tensor_value_on_the_host(tmp_path, method):
    autoencoders.train(data="digits", layers=[64, 16, 8], epochs=1, out=tmp_path / "run", **FAST)
    with host_reads_in_batches() as watch:
        autoencoders.classify(tmp_path / "run", method=method, n_labels=100, epochs=2, quiet=True)
    assert watch.ops > 100
    assert watch.reads == []


def test_a_host_read_in_a_step_is_seen(tmp_path, monkeypatch):
    """The watch above can fail: a step that reads its loss every batch is caught at that line."""
    real = Eager.__call__

    def reads(self, batch):
        out = real(self, batch)
        if out["loss"] > 1e9:  # a branch on a value, as a guard against divergence might be written
            raise AssertionError
        return out

    monkeypatch.setattr(Eager, "__call__", reads)
    with host_reads_in_batches() as watch:
        autoencoders.train(
            data="digits", layers=[64, 8], epochs=1, cuda_graph="off", out=tmp_path / "run", **FAST
        )
    assert watch.reads and all("test_device.py" in r and 'out["loss"] > 1e9' in r for r in watch.reads)


# ---------------------------------------------------------------- on a GPU


@GPU
def test_batches_are_drawn_on_the_rows_device():
    x = torch.rand(100, 4, device="cuda")
    generator = shuffler((x,), 0)
    assert generator.device.type == "cuda"
    for (batch,) in epoch_batches((x,), 32, generator):
        assert batch.device == x.device


class _Classifier(torch.nn.Module):
    """A class head on an autoencoder's codes; with ``semi``, the losses of semi-supervised
    training: the unlabelled rows' reconstruction and the labelled rows' cross-entropy."""

    def __init__(self, model: DenseAutoencoder):
        super().__init__()
        self.model, self.head = model, torch.nn.Linear(model.code_size, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.model.encode(x))

    def semi(self, x: torch.Tensor, x_labelled: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        ce = torch.nn.functional.cross_entropy(self(x_labelled), y)
        rec = torch.nn.functional.binary_cross_entropy_with_logits(self.model(x).logits, x)
        return {"loss": rec + ce, "ce": ce}


def _gpu_step(kind: str, epochs: int, batches: int):
    """A step on the GPU: ``plain`` (fp32, cosine rate), ``denoising`` (masking noise from the
    default CUDA generator), ``bf16`` (under its autocast) or ``semi`` (labelled rows drawn from a
    generator of its own)."""
    torch.manual_seed(0)
    model = DenseAutoencoder([64, 32, 8]).cuda()
    cfg = TrainConfig(lr=1e-3, lr_decay="cosine")
    if kind == "semi":
        classifier = _Classifier(model).cuda()
        g = torch.Generator("cuda").manual_seed(2)
        labelled = (torch.rand(40, 64, device="cuda", generator=g), torch.arange(40, device="cuda") % 4)
        return SemiSupervisedStep(classifier.semi, classifier, labelled, cfg, epochs * batches)
    corrupt = make_corruption("masking", 0.2) if kind == "denoising" else None
    step = autoencoder_step(model, cfg, epochs * batches, corrupt)
    if kind == "bf16":
        step.amp = lambda: autocast("bf16", torch.device("cuda"))
    return step


@GPU
@pytest.mark.parametrize("kind", ["plain", "denoising", "bf16", "semi"])
def test_captured_step_gives_the_eager_losses_on_a_gpu_without_a_host_sync(kind):
    """Replays draw the same random numbers as eager steps (a resumed epoch starts with eager
    warm-up batches where the run it continues replayed), without a host sync anywhere."""
    x = torch.rand(256 * 20 + 17, 64, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    eager_step, graph_step = _gpu_step(kind, 15, 21), _gpu_step(kind, 15, 21)
    torch.manual_seed(1)
    eager = _losses(eager_step, Eager(eager_step), x, 15, 256)
    runner = batch_runner(graph_step, "on", torch.device("cuda"))
    assert isinstance(runner, CapturedStep)
    torch.manual_seed(1)
    torch.cuda.set_sync_debug_mode("error")  # a host sync anywhere in the batches raises
    try:
        captured = _losses(graph_step, runner, x, 15, 256)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert not runner.failed and runner.replayed == 15 * 20 - WARMUP  # one graph, every full batch
    tolerance = {"rel": 1e-2, "abs": 1e-3} if kind == "bf16" else {"rel": 1e-4, "abs": 1e-5}
    assert captured.cpu().tolist() == pytest.approx(eager.cpu().tolist(), **tolerance)


class _Runners(list):
    """Every batch runner the training loop makes, in order. While ``eager`` is set, each runs its
    step eagerly whatever ``--cuda-graph`` asks: the step and its optimizer as a graph would run
    them (Adam's rate a float32 tensor on the device), without the graph."""

    eager = False


def _runners(monkeypatch) -> _Runners:
    """The batch runners the training loop makes from here on."""
    from autoencoders.training import loop

    made, real = _Runners(), loop.batch_runner

    def recording(step, *args, **kw):
        made.append(Eager(step) if made.eager else real(step, *args, **kw))
        return made[-1]

    monkeypatch.setattr(loop, "batch_runner", recording)
    return made


def _epoch_losses(history: list[dict]) -> list[float]:
    """Every loss a history measured (a step's validation may measure only the one it judges by)."""
    return [
        value
        for row in history
        for name, value in row.items()
        if name.startswith(("train_", "val_")) and "accuracy" not in name and math.isfinite(value)
    ]


CAPTURED = {name: options for name, options in SYNC_FREE.items() if options.get("optimizer") != "sgd"}


@GPU
@pytest.mark.parametrize("options", CAPTURED.values(), ids=CAPTURED.keys())
def test_every_kind_and_piece_replays_as_a_cuda_graph_to_the_eager_losses(tmp_path, monkeypatch, options):
    """A schedule the graph held stale (k, the KL weight, the rate) would move the losses far more.
    The eager run's optimizer is the graph's (``--cuda-graph off`` would give Adam a float64 rate)."""
    settings = FAST | {"data": "digits", "epochs": 2, "layers": [64, 16, 8]}
    settings |= {"device": "cuda", "cuda_graph": "on"} | options
    runners = _runners(monkeypatch)
    runners.eager = True
    eager = autoencoders.train(out=tmp_path / "off", **settings)
    runners.clear()
    runners.eager = False
    graphs = autoencoders.train(out=tmp_path / "on", **settings)
    assert runners and all(isinstance(r, CapturedStep) and not r.failed for r in runners)
    assert graphs.metrics["replayed_batches"] > 0
    assert _epoch_losses(graphs.history) == pytest.approx(_epoch_losses(eager.history), rel=1e-3, abs=1e-5)


@GPU
@pytest.mark.parametrize("method", ["finetune", "semi", "ladder"])
def test_classifier_steps_replay_as_cuda_graphs_to_the_eager_losses(tmp_path, monkeypatch, method):
    """500 labels: enough full batches of them for fine-tuning's graph to replay. The eager run's
    optimizer is the graph's, as above."""
    settings = FAST | {"device": "cuda"}
    autoencoders.train(data="digits", layers=[64, 16, 8], epochs=1, out=tmp_path / "run", **settings)
    runners = _runners(monkeypatch)
    results = {}
    for mode in ("off", "on"):
        runners.clear()
        runners.eager = mode == "off"
        results[mode] = autoencoders.classify(
            tmp_path / "run",
            method=method,
            n_labels=500,
            epochs=2,
            cuda_graph="on",
            out=tmp_path / mode,
            **settings,
        )
    assert runners and all(isinstance(r, CapturedStep) and not r.failed and r.replayed for r in runners)
    on, off = (_epoch_losses(results[mode].history) for mode in ("on", "off"))
    assert on == pytest.approx(off, rel=1e-3, abs=1e-5)


def test_a_gpu_run_saves_and_restores_the_random_state_of_its_own_gpu_alone(monkeypatch):
    """Not every visible GPU's: resumed where fewer are visible, there would be more states than
    GPUs. A state saved before this rule, holding each GPU's by number, resumes from its own."""
    from autoencoders.training.state import rng_state, set_rng_state

    restored = []
    monkeypatch.setattr(
        torch.cuda, "get_rng_state", lambda device: torch.full((16,), device.index, dtype=torch.uint8)
    )
    monkeypatch.setattr(
        torch.cuda, "set_rng_state", lambda state, device: restored.append((int(state[0]), device))
    )
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 2)
    saved = rng_state(torch.device("cuda", 3))
    assert sorted(saved) == ["cuda", "torch"] and int(saved["cuda"][0]) == 3
    set_rng_state(saved, torch.device("cuda", 0))  # the same GPU, numbered anew
    older = {
        "torch": saved["torch"],
        **{f"cuda{i}": torch.full((16,), i, dtype=torch.uint8) for i in range(4)},
    }
    set_rng_state(older, torch.device("cuda"))  # the current GPU's
    assert restored == [(3, torch.device("cuda", 0)), (2, torch.device("cuda"))]
    assert sorted(rng_state(torch.device("cpu"))) == ["torch"]


@GPU
def test_probes_compute_in_fp32_where_the_caller_allows_tf32():
    """A process that lets float32 products use TF32 (``set_float32_matmul_precision("high")``)
    gets the same logistic regression, kNN and k-means as one that does not."""
    from autoencoders.eval import probes

    z = torch.randn(3000, 30, generator=torch.Generator().manual_seed(0)).cuda()
    y = (z[:, 0] + z[:, 1] > 0).long()

    def fitted() -> list[torch.Tensor]:
        w, b = probes.logistic_regression(z, y, 2)
        return [w, b, probes.knn_predict(z[:2000], y[:2000], z[2000:]), probes.kmeans(z, 8)[2]]

    with _math_flags_kept():
        torch.set_float32_matmul_precision("highest")
        exact = fitted()
        torch.set_float32_matmul_precision("high")
        allowed = fitted()
    for a, b in zip(exact, allowed, strict=True):
        assert torch.equal(a, b)


@GPU
def test_a_vae_likelihood_computes_in_fp32_where_the_caller_allows_tf32():
    """Its −ELBO and importance-sampled NLL, as every other metric."""
    from autoencoders import VAE
    from autoencoders.eval.metrics import likelihood_metrics

    torch.manual_seed(0)
    model = VAE([64, 32, 4]).cuda()
    x = torch.rand(300, 64, generator=torch.Generator().manual_seed(0)).cuda()

    def measured() -> dict:
        torch.manual_seed(1)  # the same samples each time
        return likelihood_metrics(model, x, iw_samples=16)

    with _math_flags_kept():
        torch.set_float32_matmul_precision("highest")
        exact = measured()
        torch.set_float32_matmul_precision("high")
        assert measured() == exact


@GPU
def test_greedy_pretraining_computes_the_next_stage_inputs_in_fp32():
    """cuDNN's default runs float32 convolutions in TF32; the rows the next stage trains on are
    computed as the metrics are, in fp32."""
    from autoencoders import ConvAutoencoder
    from autoencoders.training.layerwise import cache_features

    pair = ConvAutoencoder((1, 8, 8), [4, 6], [64, 5]).cuda().layer_pairs()[0]
    x = torch.rand(256, 64, generator=torch.Generator().manual_seed(0)).cuda()
    with torch.no_grad(), gpu_math("fp32", x.device):
        expected = pair.encode(x)
    assert torch.equal(cache_features(pair, x, 1 << 30), expected)


def test_a_shuffle_saved_on_another_device_is_refused_in_one_line():
    x = torch.rand(32, 16)
    start = LoopState(shuffle=torch.zeros(16, dtype=torch.uint8))  # the size of a CUDA generator's state
    cfg = TrainConfig(quiet=True, precision="fp32", batch_size=8)
    with pytest.raises(UserError, match="on another device than this run's"):
        fit(_denoising_step(), x, x[:0], cfg, 1, start=start)


@GPU
def test_a_state_saved_on_a_gpu_holds_the_weights_queued_work_left_them(tmp_path):
    """The background writer waits for the copies of a state to the host, not just for the work
    before them: weights a long queue of kernels writes into are saved as that queue leaves them."""
    from autoencoders.io.state import read_state
    from autoencoders.training.state import Progress

    model = torch.nn.Sequential(*(torch.nn.Linear(4096, 4096) for _ in range(8))).cuda()  # 0.5 GB
    step = autoencoder_step(DenseAutoencoder([16, 8]).cuda(), TrainConfig(), steps=1)
    progress = Progress(tmp_path / "state.safetensors")
    progress.attach("model", model)
    a = torch.rand(4096, 4096, device="cuda")
    with torch.no_grad():
        for layer in model:  # about a second of queued products before the save's copies
            for _ in range(20):
                a = torch.tanh(a @ a.T / 64)
            layer.weight.copy_(a)
    progress.save(0, "train", step, LoopState(epoch=1, shuffle=torch.zeros(16, dtype=torch.uint8)))
    progress.written()
    tensors, _ = read_state(tmp_path / "state.safetensors")  # its checksum matches what it holds
    for key, value in model.state_dict().items():
        assert torch.equal(tensors[f"model.{key}"], value.cpu()), key


@GPU
def test_host_rows_go_through_a_gpu_model_batch_by_batch_and_come_back_to_the_host():
    from autoencoders.eval.metrics import encode_all, reconstruct_all

    model = DenseAutoencoder([64, 32, 8]).eval()
    x = torch.rand(5000, 64, generator=torch.Generator().manual_seed(0))  # two batches of 4096
    with torch.no_grad():
        codes, recon = model.encode(x), model.reconstruct(x)
    gpu = model.cuda()
    assert encode_all(gpu, x).device.type == "cpu"
    assert torch.allclose(encode_all(gpu, x), codes, atol=1e-5)
    assert torch.allclose(reconstruct_all(gpu, x), recon, atol=1e-5)
    assert reconstruct_all(gpu, x.cuda()).device.type == "cuda"


@GPU
def test_predict_computes_on_a_gpu_with_rows_from_the_host(tmp_path):
    """A classifier's and a Gaussian mixture's predictions of host rows, computed on the GPU, are
    the CPU's."""
    run = autoencoders.train(data="digits", layers=[64, 32, 8], epochs=2, out=str(tmp_path / "r"), **FAST)
    clf = autoencoders.classify(run.dir, 0.5, out=tmp_path / "clf", epochs=2, **FAST).out
    gmm = autoencoders.cluster(run.dir, method="gmm", out=tmp_path / "gmm", quiet=True).out
    for where in (clf, gmm):
        gpu, cpu = (autoencoders.predict(where, "digits", "test", device=d) for d in ("cuda", "cpu"))
        assert (gpu[0] == cpu[0]).mean() > 0.99  # a row on a boundary may go either way
        # codes that differ in their last bits move a narrow mixture component's probabilities more
        np.testing.assert_allclose(gpu[1], cpu[1], atol=1e-3)

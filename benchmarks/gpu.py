"""Training on a CUDA GPU, side by side in one process on the same GPU.

The job: Fashion-MNIST's 60,000 training rows, the Hinton stack 784-1000-500-250-30 (ReLU, linear
code, BCE), batch 256, Adam at 1e-3, no validation split.

* ``hand loop``: the yardstick, 40 lines as a practitioner writes them for speed: every row on the
  GPU, ``torch.randperm`` there, fused Adam, BCE-with-logits; timed after a warm-up.
* ``ours eager`` / ``ours captured``: ``autoencoders.train`` with ``--cuda-graph off`` / ``on``,
  fp32; ``ours auto``: ``--precision auto`` (timed on the GPU's own steps) and graphs on. Their
  samples/s are over the run's whole training time, the saved states (default ``--save-every``)
  included.
* ``whole command``: the CLI's ``autoencoders train`` as a user runs it, first with an empty
  ``$AUTOENCODERS_CACHE`` (baselines computed), then again (baselines cached): wall time against
  the training time the run records.
* ``vae``: our VAE against pythae's (784-512-16, BCE, 10 epochs, the same batch and rate), with
  the importance-sampled test NLL of both (1,000 test rows, 200 samples).
* ``ladder``, ``semi``: ``classify --method ladder`` and ``--method semi``, ``--n-labels 100 --epochs 3``,
  on the captured run.

Printed: one table; written: ``gpu.json`` in ``--out-dir``. Run (repository root, on a machine
with a CUDA GPU, the four Fashion-MNIST ``.gz`` files in ``$AUTOENCODERS_DATA`` or
``/usr/share/datasets/fashion-mnist``; pythae is optional)::

    python benchmarks/gpu.py --out-dir benchmarks/results
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

# isort: off
import autoencoders  # before torch: the package's thread policy
import torch

# isort: on
import torch.nn.functional as F
from torch import nn

from autoencoders.config import DataConfig
from autoencoders.data.datasets import load_dataset
from autoencoders.eval.likelihood import importance_sampled_nll
from autoencoders.training import capture

LAYERS = [784, 1000, 500, 250, 30]
NLL_ROWS, NLL_K = 1000, 200


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def hand_loop(x_train: torch.Tensor, x_test: torch.Tensor, args: argparse.Namespace) -> dict[str, Any]:
    """The yardstick: the stack trained by a plain loop with everything on the GPU, timed after an
    untimed pass over 50 batches on a model of its own (the GPU's libraries start, its kernels load)."""
    device = torch.device(args.device)
    widths = args.layers + args.layers[-2::-1]

    def train(x: torch.Tensor, epochs: int) -> nn.Module:
        torch.manual_seed(0)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            layers.append(nn.Linear(a, b))
            if i not in (len(args.layers) - 2, len(widths) - 2):  # linear code, logits out
                layers.append(nn.ReLU())
        model = nn.Sequential(*layers).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, fused=True)
        n = len(x)
        for _ in range(epochs):
            order = torch.randperm(n, device=device)
            for i in range(0, n, args.batch_size):
                batch = x[order[i : i + args.batch_size]]
                loss = F.binary_cross_entropy_with_logits(model(batch), batch, reduction="sum") / len(batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        return model

    x = x_train.to(device)
    train(x[: 50 * args.batch_size], 1)
    sync(device)
    t0 = time.perf_counter()
    model = train(x, args.epochs)
    sync(device)
    seconds = time.perf_counter() - t0
    n = len(x)
    with torch.no_grad():
        test = x_test.to(device)
        sse = float((torch.sigmoid(model(test)) - test).pow(2).sum(1).mean())
    return {
        "train_seconds": seconds,
        "samples_per_second": n * args.epochs / seconds,
        "test_sse_per_image": sse,
    }


@contextlib.contextmanager
def eager_messages(name: str) -> Iterator[list[str]]:
    """What the runs inside say about steps that run eagerly, collected and printed: notes (the runs
    are quiet) and warnings (a failed capture's), which would otherwise go unseen or unattributed."""
    said: list[str] = []
    real_say = capture.say
    capture.say = lambda message, quiet: said.append(message)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield said
    finally:
        capture.say = real_say
        for message in said + [str(w.message) for w in caught]:
            print(f"  {name}: {message}", flush=True)


def replays(history: list[dict]) -> dict[str, int]:
    """How many training batches ran, and how many of them as graph replays (none tried: nothing)."""
    if not any("replayed_batches" in h for h in history):
        return {}
    return {
        "train_batches": sum(h.get("batches", 0) for h in history),
        "replayed_batches": sum(h.get("replayed_batches", 0) for h in history),
    }


def ours(work: Path, name: str, args: argparse.Namespace, **options: Any) -> dict[str, Any]:
    """``autoencoders.train`` on the job; its training time, throughput, quality and wall time, and
    why any step ran eagerly. Its samples/s are over the whole training time, as the hand loop's:
    the warm-up batches, the captures and the saved training states included (``auto``'s
    timing of the precisions comes before training: it is in the wall time);
    ``epoch_samples_per_second``, the run's own number, leaves out the saving."""
    settings = dict(
        data="fashion-mnist", layers=args.layers, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        val_fraction=0.0, device=args.device, quiet=True, seed=0, out=str(work / name),
    )  # fmt: skip
    t0 = time.perf_counter()
    with eager_messages(name) as eagerly:
        run = autoencoders.train(**(settings | options))
    m = run.metrics
    return {
        "eagerly": eagerly,
        "train_seconds": m["train_seconds"],
        "samples_per_second": m["n_train"] * m["epochs_run"] / m["train_seconds"],
        "epoch_samples_per_second": m["samples_per_second"],
        "test_sse_per_image": m["test_sse_per_image"],
        "precision": m["precision"],
        "wall_seconds": time.perf_counter() - t0,
        "run_dir": str(run.dir),
        # how many batches ran as graph replays: a "captured" row that replayed few is eager speed
        **replays(run.history),
    }


def start_seconds(device: str) -> float:
    """What a command spends before its own work: Python, torch and this package imported, and
    the device's first tensor (a GPU's context); the least of three fresh processes."""
    # ended as the command ends, without Python's module teardown
    code = f"import autoencoders, os, torch; torch.zeros(1, device={device!r}).sum().item(); os._exit(0)"
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - t0)
    return min(times)


def whole_command(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The CLI's train command as a user runs it, with an empty then a warm baseline cache, its wall
    time split into start-up (``start_seconds``), the run's own setup (data, model, ``auto``'s
    timing), training and evaluation (metrics, baselines, figures, report), and the rest."""
    env = os.environ | {"AUTOENCODERS_CACHE": tempfile.mkdtemp(prefix="ae-cache-", dir=work)}
    start = start_seconds(args.device)
    out: dict[str, Any] = {}
    for label in ("empty cache", "warm cache"):
        run_dir = work / f"command-{label.split()[0]}"
        command = [
            sys.executable, "-m", "autoencoders", "train", "--data", "fashion-mnist",
            "--layers", ",".join(map(str, args.layers)), "--epochs", str(args.epochs),
            "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--val-fraction", "0",
            "--device", args.device, "--quiet", "--out", str(run_dir),
        ]  # fmt: skip
        t0 = time.perf_counter()
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        m = json.loads((run_dir / "metrics.json").read_text())
        out[label] = {
            "wall_seconds": wall,
            "train_seconds": m["train_seconds"],
            "wall_over_train": wall / m["train_seconds"],
            "start_seconds": start,
            "setup_seconds": m["setup_seconds"],  # the data read, the model built, auto's timing
            "evaluation_seconds": m["evaluation_seconds"],  # metrics, baselines, figures, report
            # the rest: the command's own imports, the run directory's first files, the process ending
            "other_seconds": wall - start - m["setup_seconds"] - m["train_seconds"] - m["evaluation_seconds"],
            "precision": m["precision"],
        }
    return out


def vae_ours(work: Path, x_test: torch.Tensor, args: argparse.Namespace) -> dict[str, Any]:
    """Our VAE, captured steps, fp32; its training time (all of it, as pythae's), test NLL and why
    any step ran eagerly."""
    with eager_messages("vae") as eagerly:
        run = autoencoders.train(
            model="vae", data="fashion-mnist", layers=[784, 512, 16], epochs=args.vae_epochs,
            batch_size=args.batch_size, lr=args.lr, val_fraction=0.0, device=args.device, precision="fp32",
            iw_samples=1, quiet=True, seed=0, out=str(work / "vae"),
        )  # fmt: skip
    nll = importance_sampled_nll(run.model, x_test[:NLL_ROWS].to(args.device), NLL_K)
    m = run.metrics
    return {
        "eagerly": eagerly,
        "train_seconds": m["train_seconds"],
        "samples_per_second": m["n_train"] * m["epochs_run"] / m["train_seconds"],
        "test_nll": float(nll.mean()),
        **replays(run.history),
    }


def vae_pythae(work: Path, x_train: torch.Tensor, x_test: torch.Tensor, args: argparse.Namespace) -> dict:
    """pythae's VAE (its default MLP, 784-512-16) trained by its pipeline on the GPU."""
    try:
        from pythae.models import VAE, VAEConfig
        from pythae.pipelines import TrainingPipeline
        from pythae.trainers import BaseTrainerConfig
    except ImportError:
        return {"skipped": "pythae is not installed"}
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_dim=(784,), latent_dim=16, reconstruction_loss="bce"))
    config = BaseTrainerConfig(
        output_dir=str(work / "pythae"), num_epochs=args.vae_epochs, learning_rate=args.lr,
        per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=args.batch_size,
        steps_saving=None, no_cuda=args.device != "cuda",
    )  # fmt: skip
    pipeline = TrainingPipeline(training_config=config, model=model)
    t0 = time.perf_counter()
    try:
        pipeline(train_data=x_train.numpy(), eval_data=x_test[:1000].numpy())
    except Exception as e:  # another library's failure is a row of the report, not the end of it
        return {"failed": f"{type(e).__name__}: {str(e).strip()[:300]}"}
    seconds = time.perf_counter() - t0
    model = pipeline.trainer._best_model if hasattr(pipeline.trainer, "_best_model") else model
    model.eval()
    with torch.no_grad():
        nll = -float(model.get_nll(x_test[:NLL_ROWS].to(args.device), n_samples=NLL_K, batch_size=NLL_K))
    return {
        "train_seconds": seconds,
        "samples_per_second": len(x_train) * args.vae_epochs / seconds,
        "test_nll": nll,
    }


def few_labels(run_dir: str, work: Path, method: str) -> dict[str, Any]:
    """Few-label classification by ``method`` (``ladder`` or ``semi``: the steps that pass over
    every training row) on the run's encoder: samples/s over its epochs (its median epoch, and all
    of them), and why any step ran eagerly: these steps draw labelled rows from a generator of
    their own, which a graph must register."""
    t0 = time.perf_counter()
    with eager_messages(method) as eagerly:
        result = autoencoders.classify(
            run_dir, n_labels=100, method=method, epochs=3, quiet=True, out=str(work / method)
        )
    rows = [h for h in result.history if h.get("samples_per_second")]
    return {
        "eagerly": eagerly,
        "wall_seconds": time.perf_counter() - t0,
        "samples_per_second": float(np.median([h["samples_per_second"] for h in rows])),
        "epochs_samples_per_second": sum(h["samples_per_second"] * h["seconds"] for h in rows)
        / sum(h["seconds"] for h in rows),
        "test_accuracy": result.metrics.get("test_accuracy"),
        **replays(result.history),
    }


def attempt(part: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``part()``, or its failure as its result (the traceback printed): on a GPU lent for minutes,
    one part's error must not cost the parts after it their measurements."""
    try:
        return part()
    except Exception as e:  # any part's failure is a row of the report, not the end of it
        traceback.print_exc()
        return {"failed": f"{type(e).__name__}: {str(e).strip()[:300]}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--layers", type=lambda v: [int(w) for w in v.split(",")], default=LAYERS)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--vae-epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out-dir", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--skip", nargs="*", default=[], help="parts to leave out: command vae ladder semi")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu.py needs a CUDA GPU (or --device cpu); none is visible to PyTorch")
    ds = load_dataset(DataConfig(data="fashion-mnist", val_fraction=0.0))
    x_train, x_test = ds.x_train, ds.x_test
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "job": {"layers": args.layers, "batch_size": args.batch_size, "epochs": args.epochs, "lr": args.lr},
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / ("gpu.json" if args.device == "cuda" else "gpu_job_on_cpu.json")

    def save() -> None:  # after every part: a run stopped at a time limit keeps what it measured
        path.write_text(json.dumps(report, indent=2) + "\n")

    print(f"{report['device']}, torch {report['torch']}")
    print(f"{'':32} {'samples/s':>10} {'x hand':>7} {'train s':>8} {'wall s':>7} {'SSE':>7}  precision")
    rows: dict[str, dict[str, Any]] = {}
    report["training"] = rows
    with tempfile.TemporaryDirectory(prefix="ae-gpu-") as tmp:
        work = Path(tmp)

        def show(name: str, part: Callable[[], dict[str, Any]]) -> None:
            r = rows[name] = attempt(part)
            save()
            if "failed" in r:
                print(f"{name:32} failed: {r['failed']}", flush=True)
                return
            hand = rows["hand loop"].get("samples_per_second", math.nan)
            print(
                f"{name:32} {r['samples_per_second']:10,.0f} {r['samples_per_second'] / hand:7.2f} "
                f"{r['train_seconds']:8.1f} {r.get('wall_seconds', r['train_seconds']):7.1f} "
                f"{r['test_sse_per_image']:7.2f}  {r.get('precision', 'fp32')}",
                flush=True,
            )

        show("hand loop", lambda: hand_loop(x_train, x_test, args))
        if args.device == "cuda":  # nothing to capture on a CPU
            show(
                "ours captured fp32", lambda: ours(work, "captured", args, precision="fp32", cuda_graph="on")
            )
        show("ours, precision auto", lambda: ours(work, "auto", args, precision="auto", cuda_graph="on"))
        # the other targets next; few labels first, the GPU runs of steps drawing from their own generator
        for method in ("ladder", "semi"):
            if method not in args.skip:
                run_dir = rows["ours, precision auto"].get("run_dir")
                report[method] = attempt(lambda m=method, d=run_dir: few_labels(d, work, m))
                save()
                print(f"{method}, 100 labels: {report[method]}", flush=True)
        if "command" not in args.skip:
            report["whole_command"] = attempt(lambda: whole_command(work, args))
            save()
            for label, r in report["whole_command"].items():
                if not isinstance(r, dict):  # the part failed: its message
                    print(f"autoencoders train {label}: {r}", flush=True)
                    continue
                print(
                    f"autoencoders train, {label}: {r['wall_seconds']:.1f} s wall, "
                    f"{r['train_seconds']:.1f} s training ({r['wall_over_train']:.2f}x), "
                    f"{r['start_seconds']:.1f} s start-up, {r['setup_seconds']:.1f} s setup, "
                    f"{r['evaluation_seconds']:.1f} s evaluation, {r['other_seconds']:.1f} s the rest",
                    flush=True,
                )
        if "vae" not in args.skip:
            report["vae"] = {"ours": attempt(lambda: vae_ours(work, x_test, args))}
            report["vae"]["pythae"] = attempt(lambda: vae_pythae(work, x_train, x_test, args))
            save()
            for name, r in report["vae"].items():
                print(f"VAE {name}: {r}", flush=True)
        # the reference, not a target: last, so that a time limit cuts it first
        show("ours eager fp32", lambda: ours(work, "eager", args, precision="fp32", cuda_graph="off"))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Stacked sigmoid autoencoder on Fashion-MNIST: the typical tutorial code vs. this project.

Both run in ONE process, on the same training rows and test rows, the same job:
784-1000-500-250-30, sigmoid everywhere (hidden layers, code, output), greedy layer-wise
pretraining (3 epochs per layer) then 10 epochs of end-to-end fine-tuning with Adam.

* ``reference``: how tutorials write it. A ``DataLoader(TensorDataset(x), batch_size=100,
  shuffle=True)``; per layer a shallow ``nn.Linear`` autoencoder trained with ``nn.BCELoss``
  (mean) on the outputs of the frozen, already-trained layers below, which are re-run on
  every batch; the weights copied into the full stack (decoders mirrored) and fine-tuned
  with ``nn.MSELoss``, Adam lr 1e-3, fp32, a ``.item()`` per batch.
* ``ours``: ``autoencoders``' own pipeline, driven exactly as ``autoencoders.run.train``
  drives it (``kinds.build`` → ``greedy_pretrain`` →
  ``train.fit``), so that ``fit``'s ``on_epoch`` hook can record the test error after each
  fine-tuning epoch. ``val_fraction=0``: no validation hold-out, both train on the same rows.

Timings exclude the per-epoch test evaluations (for both). Printed: wall time per phase,
samples/s, fine-tuning GFLOP/s and % of the measured matmul peak (fp32 and bf16), final test
SSE/image next to PCA-30, and the time each needs to reach the reference's final test SSE.
Written: ``benchmarks/results/stacked_vs_tutorial.json`` and ``time_to_quality.png``.

Run (full job, from the repository root)::

    python benchmarks/stacked_vs_tutorial.py

Quick check on a small subsample::

    python benchmarks/stacked_vs_tutorial.py --n-train 3000 --n-test 1000 --pretrain-epochs 1 \
        --epochs 1 --out-dir /tmp/ae-bench
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autoencoders import kinds
from autoencoders.config import DataConfig
from autoencoders.data.datasets import load_dataset
from autoencoders.eval.metrics import reconstruction_errors
from autoencoders.eval.probes import PCA
from autoencoders.models.layers import make_corruption
from autoencoders.run import as_config
from autoencoders.runtime.device import resolve_device
from autoencoders.stages import measure_setting
from autoencoders.training import state as state_module
from autoencoders.training.layerwise import greedy_pretrain
from autoencoders.training.loop import fit
from autoencoders.training.state import Progress
from autoencoders.training.steps import autoencoder_step

LAYERS = [784, 1000, 500, 250, 30]
RESULTS = Path(__file__).resolve().parent / "results"


# ---------------------------------------------------------------- timing helpers


def sync(device: torch.device) -> None:
    """Wait for queued GPU work so wall-clock readings mean something."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Clock:
    """Wall clock that can be paused (for evaluations that must not count)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.t0 = 0.0
        self.paused = 0.0

    def start(self) -> None:
        """Reset to zero."""
        sync(self.device)
        self.t0, self.paused = time.perf_counter(), 0.0

    def now(self) -> float:
        """Seconds since ``start``, paused sections excluded."""
        sync(self.device)
        return time.perf_counter() - self.t0 - self.paused

    @contextlib.contextmanager
    def pause(self) -> Iterator[None]:
        """Time spent inside this block does not count."""
        sync(self.device)
        t = time.perf_counter()
        try:
            yield
        finally:
            sync(self.device)
            self.paused += time.perf_counter() - t


def busy_cpu_seconds() -> tuple[float, float]:
    """(CPU-seconds all processes have used, CPU-seconds this process has used) so far.

    Their difference over an interval is what *other* processes took from the machine;
    (nan, nan) where /proc/stat is not available.
    """
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return math.nan, math.nan
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    total = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    own = resource.getrusage(resource.RUSAGE_SELF)
    return total, own.ru_utime + own.ru_stime


def others_cores(before: tuple[float, float], after: tuple[float, float], seconds: float) -> float:
    """Average number of cores other processes kept busy between two ``busy_cpu_seconds``."""
    return max(0.0, (after[0] - before[0]) - (after[1] - before[1])) / seconds if seconds > 0 else math.nan


def matmul_peak(dtype: torch.dtype, device: torch.device, size: int, budget_s: float = 1.0) -> dict:
    """Best GFLOP/s of a plain square matmul of ``dtype``, at most ``size``×``size``.

    Sizes double from 256 up to ``size``; the climb stops before a size whose single matmul
    would take longer than ``budget_s`` (bf16 on CPUs without bf16 units runs at ~1 GFLOP/s).
    Each size is repeated for about ``budget_s`` seconds.
    """
    n, used, best, once, prev = 256, 0, 0.0, 0.0, 0
    sizes = []
    while n <= size:
        sizes.append(n)
        n *= 2
    if not sizes or sizes[-1] != size:
        sizes.append(size)
    for n in sizes:
        if prev and once * (n / prev) ** 3 > budget_s:
            break
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        a @ b  # warm-up: kernel selection, allocations
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        once, prev = time.perf_counter() - t, n
        reps = max(1, min(10_000, int(budget_s / max(once, 1e-6))))
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync(device)
        elapsed = time.perf_counter() - t
        gflops = 2 * n**3 * reps / elapsed / 1e9
        if gflops > best:
            best, used = gflops, n
    return {"gflops": best, "size": used}


def warm_up(device: torch.device, steps: int = 3) -> None:
    """A few training steps of throwaway models, so neither pipeline pays one-time setup.

    First calls initialise the BLAS/oneDNN kernels, the thread pool and autograd; whichever
    pipeline ran first would otherwise be charged for them.
    """
    x = torch.rand(100, LAYERS[0], device=device)
    for fused in (False, True):
        model = StackedAutoencoder(LAYERS).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
        for _ in range(steps):
            out = model(x)
            loss = nn.functional.mse_loss(out, x) + nn.functional.binary_cross_entropy(out, x)
            loss = loss + nn.functional.binary_cross_entropy_with_logits(out, x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    sync(device)


def sum_in_out(layers: list[int]) -> int:
    """Sum of in×out over the 8 linear layers of the symmetric stack."""
    return 2 * sum(a * b for a, b in zip(layers[:-1], layers[1:]))


# ---------------------------------------------------------------- shared evaluation


@torch.no_grad()
def test_sse(model: nn.Module, x_test: torch.Tensor, device: torch.device, batch_size: int = 4096) -> float:
    """Test SSE/image (sum over pixels of squared error, mean over images), fp32, eval mode."""
    was_training = model.training
    model.eval()
    forward = getattr(model, "reconstruct", model)  # ours returns an Output record from forward()
    parts = [forward(x_test[i : i + batch_size].to(device)) for i in range(0, len(x_test), batch_size)]
    recon = torch.cat([r.float().cpu() for r in parts])
    model.train(was_training)
    return reconstruction_errors(x_test, recon)["sse_per_image"]


# ---------------------------------------------------------------- (a) the tutorial reference


class ShallowAutoencoder(nn.Module):
    """One layer of the stack as a shallow autoencoder: sigmoid(Linear) → sigmoid(Linear)."""

    def __init__(self, n_in: int, n_hidden: int):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(n_in, n_hidden), nn.Sigmoid())
        self.decoder = nn.Sequential(nn.Linear(n_hidden, n_in), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class StackedAutoencoder(nn.Module):
    """The full sigmoid stack, e.g. 784-1000-500-250-30-250-500-1000-784."""

    def __init__(self, sizes: list[int]):
        super().__init__()
        enc: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            enc += [nn.Linear(a, b), nn.Sigmoid()]
        rev = sizes[::-1]
        dec: list[nn.Module] = []
        for a, b in zip(rev[:-1], rev[1:]):
            dec += [nn.Linear(a, b), nn.Sigmoid()]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def run_reference(
    x_train: torch.Tensor, x_test: torch.Tensor, args: argparse.Namespace, device: torch.device
) -> dict[str, Any]:
    """The tutorial pipeline; returns timings and the test-SSE-vs-time curve."""
    torch.manual_seed(args.seed)
    clock = Clock(device)
    train_loader = DataLoader(TensorDataset(x_train), batch_size=args.ref_batch_size, shuffle=True)
    depth = len(LAYERS) - 1
    stage_seconds: list[float] = []
    clock.start()

    # --- greedy layer-wise pretraining
    trained_encoders: list[nn.Module] = []
    trained_decoders: list[nn.Module] = []
    criterion = nn.BCELoss()
    for k in range(depth):
        t_stage = clock.now()
        ae = ShallowAutoencoder(LAYERS[k], LAYERS[k + 1]).to(device)
        optimizer = torch.optim.Adam(ae.parameters(), lr=args.lr)
        for epoch in range(args.pretrain_epochs):
            running_loss = 0.0
            for (batch,) in train_loader:
                batch = batch.to(device)
                # the input of layer k: the frozen layers below, re-run on every batch
                with torch.no_grad():
                    h = batch
                    for encoder in trained_encoders:
                        h = encoder(h)
                output = ae(h)
                loss = criterion(output, h)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                running_loss += loss.item()
            print(
                f"  [reference] pretrain layer {k + 1} epoch {epoch + 1}/{args.pretrain_epochs} "
                f"loss {running_loss / len(train_loader):.4f}",
                flush=True,
            )
        for p in ae.parameters():
            p.requires_grad = False
        trained_encoders.append(ae.encoder)
        trained_decoders.append(ae.decoder)
        stage_seconds.append(clock.now() - t_stage)

    # --- copy into the full stack: encoders in order, decoders mirrored
    t_fine = clock.now()
    model = StackedAutoencoder(LAYERS).to(device)
    for k in range(depth):
        model.encoder[2 * k].load_state_dict(trained_encoders[k][0].state_dict())
        model.decoder[2 * k].load_state_dict(trained_decoders[depth - 1 - k][0].state_dict())

    curve: list[dict[str, float]] = []
    with clock.pause():
        curve.append({"epoch": 0, "seconds": t_fine, "test_sse": test_sse(model, x_test, device)})

    # --- end-to-end fine-tuning
    criterion = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    model.train()
    for epoch in range(args.epochs):
        running_loss = 0.0
        for (batch,) in train_loader:
            batch = batch.to(device)
            output = model(batch)
            loss = criterion(output, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        t = clock.now()
        with clock.pause():
            sse = test_sse(model, x_test, device)
            curve.append({"epoch": epoch + 1, "seconds": t, "test_sse": sse})
            print(
                f"  [reference] fine-tune epoch {epoch + 1}/{args.epochs} "
                f"loss {running_loss / len(train_loader):.5f} test SSE/image {sse:.3f}",
                flush=True,
            )
    total = clock.now()
    return {
        "pretrain_epochs": args.pretrain_epochs,
        "epochs": args.epochs,
        "precision": "fp32",
        "batch_size": args.ref_batch_size,
        "lr": args.lr,
        "stage_seconds": stage_seconds,
        "fine_tune_seconds": total - t_fine,
        "total_seconds": total,
        "final_test_sse": curve[-1]["test_sse"],
        "curve": curve,
    }


# ---------------------------------------------------------------- (b) this project


def recipes(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """This project's runs: the reference's own recipe, and the project's fast recipe."""
    same = {
        "activation": "sigmoid",
        "code_activation": "sigmoid",
        "loss": args.our_loss,
        "pretrain": "greedy",
        "pretrain_epochs": args.pretrain_epochs,
        "epochs": args.epochs,
        "lr": args.our_lr,
        "batch_size": args.batch_size,
    }
    fast = {
        "activation": args.fast_activation,
        "code_activation": "linear" if args.fast_activation == "relu" else args.fast_activation,
        "loss": args.fast_loss,
        "pretrain": "greedy" if args.fast_pretrain_epochs else "none",
        "pretrain_epochs": args.fast_pretrain_epochs,
        "epochs": args.fast_epochs,
        "lr": args.fast_lr,
        "lr_decay": args.fast_lr_decay,
        "batch_size": args.fast_batch_size,
        "init": args.fast_init,
    }
    return {"ours (same recipe)": same, "ours (fast recipe)": fast}


def run_ours(
    x_train: torch.Tensor,
    x_test: torch.Tensor,
    args: argparse.Namespace,
    device: torch.device,
    recipe: dict[str, Any],
) -> dict[str, Any]:
    """This project's pipeline, step by step as ``autoencoders.run.train`` runs it."""
    cfg = as_config(
        data="fashion-mnist",
        val_fraction=0.0,
        layers=LAYERS,
        output_activation="sigmoid",
        precision=args.precision,
        threads=str(torch.get_num_threads()),
        device=str(device),
        seed=args.seed,
        quiet=True,
        **recipe,
    )
    x_tr = x_train.to(device)
    # resolved (for ``auto`` timed on a throwaway model's steps as ``train`` times them, at the
    # threads this pipeline trains with) before the clock starts and before the seed: the run's
    # own model and noise are as without it
    throwaway = kinds.build(cfg.model, cfg.kind_options, (x_tr.shape[1],)).to(device)
    precision = cfg.train.precision = measure_setting(cfg, x_tr, throwaway, device)[0]
    torch.manual_seed(cfg.train.seed)
    clock = Clock(device)
    x_val = x_train[:0].to(device)  # val_fraction=0: an empty validation split
    clock.start()

    # --- greedy pretraining; stage k's time = its fit + caching the features it trains on
    model = kinds.build(cfg.model, cfg.kind_options, (x_tr.shape[1],)).to(device)
    stage_ends: list[float] = []
    original_fit = state_module.fit

    def timed_fit(*a: Any, **kw: Any) -> list[dict]:
        out = original_fit(*a, **kw)
        stage_ends.append(clock.now())
        return out

    state_module.fit = timed_fit
    try:
        pretrain = cfg.pretrain.pretrain_epochs > 0
        history = greedy_pretrain(model, x_tr, x_val, cfg, Progress(None)) if pretrain else []
    finally:
        state_module.fit = original_fit
    t_fine = clock.now()
    starts = [0.0, *stage_ends[:-1]]
    stage_seconds = [end - start for start, end in zip(starts, stage_ends)]
    for row in history:
        print(f"  [ours] {row['stage']} epoch {row['epoch']} loss {row['train_loss']:.3f}", flush=True)

    curve: list[dict[str, float]] = []
    with clock.pause():
        curve.append({"epoch": 0, "seconds": t_fine, "test_sse": test_sse(model, x_test, device)})

    def on_epoch(state: Any, _row: dict) -> None:
        epoch = state.epoch
        t = clock.now()
        with clock.pause():
            sse = test_sse(model, x_test, device)
            curve.append({"epoch": epoch, "seconds": t, "test_sse": sse})
            print(f"  [ours] epoch {epoch}/{cfg.train.epochs} test SSE/image {sse:.3f}", flush=True)

    steps = cfg.train.epochs * -(-len(x_tr) // cfg.train.batch_size)
    step = autoencoder_step(model, cfg.train, steps, make_corruption(cfg.model.corruption, cfg.model.noise))
    fine = fit(step, x_tr, x_val, cfg.train, cfg.train.epochs, stage="fine-tune", on_epoch=on_epoch)
    total = clock.now()
    history += fine
    return {
        "recipe": recipe,
        "pretrain_epochs": cfg.pretrain.pretrain_epochs,
        "epochs": cfg.train.epochs,
        "precision": precision,
        "batch_size": cfg.train.batch_size,
        "lr": cfg.train.lr,
        "loss": cfg.model.loss,
        "stage_seconds": stage_seconds,
        "fine_tune_seconds": total - t_fine,
        "total_seconds": total,
        "final_test_sse": curve[-1]["test_sse"],
        "curve": curve,
        "history": history,
    }


# ---------------------------------------------------------------- report


def time_to_reach(curve: list[dict[str, float]], target: float) -> float | None:
    """Seconds at the first recorded point with test SSE ≤ ``target`` (None if never)."""
    for point in curve:
        if point["test_sse"] <= target:
            return point["seconds"]
    return None


def add_throughput(result: dict[str, Any], n: int, peaks: dict) -> None:
    """Samples/s, fine-tuning GFLOP/s and % of the measured peaks, in place."""
    depth = len(LAYERS) - 1
    flops = 3 * 2 * sum_in_out(LAYERS)  # forward = 2 × Σ in·out; forward + backward ≈ 3 × forward
    epochs = result["epochs"]
    seen = n * (depth * result["pretrain_epochs"] + epochs)
    fine = result["fine_tune_seconds"]
    gflops = flops * n * epochs / fine / 1e9 if fine > 0 else math.nan
    # a stage's own work: its encoder/decoder pair, forward + backward, over every epoch
    own = [3 * 2 * 2 * a * b * n * result["pretrain_epochs"] for a, b in zip(LAYERS[:-1], LAYERS[1:])]
    result["stage_own_gflops"] = [f / t / 1e9 for f, t in zip(own, result["stage_seconds"]) if t > 0]
    result.update(
        samples_per_second=seen / result["total_seconds"],
        fine_tune_samples_per_second=n * epochs / fine if fine > 0 else math.nan,
        fine_tune_gflops=gflops,
        pct_fp32_peak=100 * gflops / peaks["fp32"]["gflops"],
        pct_bf16_peak=100 * gflops / peaks["bf16"]["gflops"],
    )


def fmt(value: float | None, spec: str = ".2f") -> str:
    """A number for the table, or '-'."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def print_table(results: dict[str, dict], pca_sse: float, peaks: dict) -> None:
    """Side by side: the reference, then each of ours with its reference/ours time ratio."""
    ref = results["reference"]
    depth = len(LAYERS) - 1
    rows: list[tuple[str, str, str, bool]] = [("total wall time [s]", "total_seconds", ".1f", True)]
    rows += [(f"  pretrain layer {k + 1} [s]", f"stage{k}", ".1f", True) for k in range(depth)]
    rows += [(f"  layer {k + 1}: own GFLOP/s", f"own{k}", ".1f", False) for k in range(depth)]
    rows += [
        ("  fine-tune [s]", "fine_tune_seconds", ".1f", True),
        ("samples/s (all epochs)", "samples_per_second", ",.0f", False),
        ("fine-tune samples/s", "fine_tune_samples_per_second", ",.0f", False),
        ("fine-tune GFLOP/s", "fine_tune_gflops", ".1f", False),
        ("  % of fp32 matmul peak", "pct_fp32_peak", ".1f", False),
        ("  % of bf16 matmul peak", "pct_bf16_peak", ".1f", False),
        ("final test SSE/image", "final_test_sse", ".3f", False),
        ("time to ref final SSE [s]", "time_to_ref_sse", ".1f", True),
    ]

    def value(r: dict, key: str) -> float | None:
        for prefix, field in (("stage", "stage_seconds"), ("own", "stage_own_gflops")):
            if key.startswith(prefix):
                values, k = r.get(field, []), int(key[len(prefix) :])
                return values[k] if k < len(values) else None
        return r.get(key)

    names = list(results)
    print("\n" + f"{'':28s}" + "".join(f"{name:>24s}" for name in names))
    print("-" * (28 + 24 * len(names)))
    for label, key, spec, ratio in rows:
        cells = [fmt(value(ref, key), spec)]
        for name in names[1:]:
            b, a = value(results[name], key), value(ref, key)
            r = f" ({fmt(a / b, '.1f')}x)" if ratio and a is not None and b else ""
            cells.append(fmt(b, spec) + r)
        print(f"{label:28s}" + "".join(f"{c:>24s}" for c in cells))
    print("-" * (28 + 24 * len(names)))
    print(f"PCA-30 test SSE/image: {pca_sse:.3f}; (Nx) = reference time / this time")
    for name in names:
        r = results[name]
        print(
            f"{name}: {r['precision']}, batch {r['batch_size']}, lr {r['lr']}, "
            f"{r['pretrain_epochs']} pretraining epochs/layer, {r['epochs']} fine-tuning epochs"
            + (f", {r['recipe']['activation']} hidden units" if "recipe" in r else ", sigmoid hidden units")
        )
    print(
        "ours: pretrain layer k includes caching the features it trains on; 'own GFLOP/s' counts only\n"
        "the stage's own layer pair (forward + backward): flat across stages = cost linear in depth"
    )
    if peaks["bf16"]["gflops"] < peaks["fp32"]["gflops"]:
        print("bf16 matmuls are slower than fp32 here (no native bf16 units): % of bf16 peak means little")


def plot(results: dict[str, dict], pca_sse: float, path: Path) -> None:
    """Test SSE/image against wall-clock seconds for every pipeline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for (name, r), style in zip(results.items(), ("o-", "s-", "^-", "d-")):
        ax.plot([p["seconds"] for p in r["curve"]], [p["test_sse"] for p in r["curve"]], style, label=name)
    ax.axhline(
        results["reference"]["final_test_sse"], color="grey", ls="--", lw=1, label="reference final SSE"
    )
    ax.axhline(pca_sse, color="black", ls=":", lw=1, label="PCA-30")
    ax.set_xlabel("wall-clock seconds since start (evaluation excluded)")
    ax.set_ylabel("test SSE / image")
    ax.set_ylim(0, max(3 * results["reference"]["final_test_sse"], 1.2 * pca_sse))
    ax.set_title("784-1000-500-250-30 autoencoder on Fashion-MNIST: time to quality", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags (``argv``: these instead of the command line's)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-train", type=int, default=0, help="subsample this many training rows (0: all 60k)")
    p.add_argument("--n-test", type=int, default=0, help="subsample this many test rows (0: all 10k)")
    p.add_argument("--pretrain-epochs", type=int, default=3, help="pretraining epochs per layer (both)")
    p.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs (both)")
    p.add_argument("--lr", type=float, default=1e-3, help="reference Adam learning rate")
    p.add_argument("--ref-batch-size", type=int, default=100, help="reference DataLoader batch size")
    p.add_argument("--our-lr", type=float, default=1e-3, help="ours: Adam learning rate")
    p.add_argument("--batch-size", type=int, default=100, help="ours: mini-batch size")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"), help="ours: precision")
    p.add_argument("--our-loss", default="bce", choices=("bce", "mse"), help="ours: reconstruction loss")
    p.add_argument("--fast-pretrain-epochs", type=int, default=1, help="fast recipe: pretraining epochs")
    p.add_argument("--fast-epochs", type=int, default=10, help="fast recipe: training epochs")
    p.add_argument("--fast-lr", type=float, default=2e-3, help="fast recipe: learning rate")
    p.add_argument("--fast-batch-size", type=int, default=256, help="fast recipe: batch size")
    p.add_argument("--fast-activation", default="relu", choices=("relu", "sigmoid"), help="fast recipe")
    p.add_argument(
        "--fast-lr-decay", default="none", choices=("none", "cosine", "onecycle"), help="fast recipe: lr"
    )
    p.add_argument("--fast-init", default="torch", choices=("torch", "scaled"), help="fast recipe: init")
    p.add_argument("--fast-loss", default="bce", choices=("bce", "mse"), help="fast recipe: loss")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="device (both)")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--peak-size", type=int, default=2048, help="largest square matmul for the peak")
    p.add_argument("--ours-first", action="store_true", help="run ours before the reference")
    p.add_argument("--seed", type=int, default=0, help="seed for subsampling, init and shuffling")
    p.add_argument("--out-dir", type=Path, default=RESULTS, help="where the JSON and the figure go")
    return p.parse_args(argv)


def setup(args: argparse.Namespace) -> tuple[torch.device, torch.Tensor, torch.Tensor]:
    """Threads and device as ``args`` say; Fashion-MNIST's training and test rows (subsampled)."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    ds = load_dataset(DataConfig(data="fashion-mnist", val_fraction=0.0))
    x_train, x_test = ds.x_train, ds.x_test
    gen = torch.Generator().manual_seed(args.seed)
    if 0 < args.n_train < len(x_train):
        x_train = x_train[torch.randperm(len(x_train), generator=gen)[: args.n_train]].contiguous()
    if 0 < args.n_test < len(x_test):
        x_test = x_test[torch.randperm(len(x_test), generator=gen)[: args.n_test]].contiguous()
    return device, x_train, x_test


def main() -> None:
    """Load data, measure peaks, run both pipelines, print and save the comparison."""
    args = parse_args()
    device, x_train, x_test = setup(args)
    n = len(x_train)
    print(
        f"Fashion-MNIST: {n} training rows, {len(x_test)} test rows; device {device}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}",
        flush=True,
    )

    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    peaks = {name: matmul_peak(dtype, device, args.peak_size) for name, dtype in dtypes.items()}
    for name, pk in peaks.items():
        print(f"matmul peak {name}: {pk['gflops']:.1f} GFLOP/s ({pk['size']}x{pk['size']})", flush=True)
    warm_up(device)

    pca = PCA(x_train, LAYERS[-1])
    pca_sse = float(pca.squared_errors(x_test).mean())
    print(f"PCA-{LAYERS[-1]} test SSE/image: {pca_sse:.3f}", flush=True)

    runs = {"reference": None, **recipes(args)}
    order = list(runs)[1:] + ["reference"] if args.ours_first else list(runs)
    results: dict[str, dict[str, Any]] = {}
    for name in order:
        print(f"{name} ...", flush=True)
        t, busy = time.perf_counter(), busy_cpu_seconds()
        if runs[name] is None:
            results[name] = run_reference(x_train, x_test, args, device)
        else:
            results[name] = run_ours(x_train, x_test, args, device, runs[name])
        results[name]["other_processes_cores"] = others_cores(
            busy, busy_cpu_seconds(), time.perf_counter() - t
        )
    results = {name: results[name] for name in runs}  # the reference first in every table
    ref = results["reference"]

    # a peak is the best seen: measure again after the runs (other load on the machine)
    for name, dtype in dtypes.items():
        again = matmul_peak(dtype, device, args.peak_size)
        if again["gflops"] > peaks[name]["gflops"]:
            peaks[name] = again
    busiest = max(r["other_processes_cores"] for r in results.values())
    print(
        f"matmul peak (best of before/after): fp32 {peaks['fp32']['gflops']:.1f}, "
        f"bf16 {peaks['bf16']['gflops']:.1f} GFLOP/s; other processes kept up to "
        f"{busiest:.2f} cores busy during a run",
        flush=True,
    )
    if busiest > 0.2:
        print("WARNING: other processes competed for the CPU; these timings are unreliable", flush=True)

    target = ref["final_test_sse"]
    for r in results.values():
        add_throughput(r, n, peaks)
        r["time_to_ref_sse"] = time_to_reach(r["curve"], target)
    print_table(results, pca_sse, peaks)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    figure = args.out_dir / "time_to_quality.png"
    plot(results, pca_sse, figure)
    ratios = {
        name: {
            "total": ref["total_seconds"] / r["total_seconds"],
            "fine_tune": ref["fine_tune_seconds"] / r["fine_tune_seconds"],
            "time_to_ref_sse": (
                ref["time_to_ref_sse"] / r["time_to_ref_sse"]
                if ref["time_to_ref_sse"] and r["time_to_ref_sse"]
                else None
            ),
        }
        for name, r in results.items()
        if name != "reference"
    }
    report = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "environment": {
            "device": str(device),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "processor": platform.processor(),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "cpu_count": os.cpu_count(),
        },
        "layers": LAYERS,
        "n_train": n,
        "n_test": len(x_test),
        "flops_per_example_train": 3 * 2 * sum_in_out(LAYERS),
        "matmul_peak": peaks,
        "pca_test_sse": pca_sse,
        "results": results,
        "ratio_reference_over_ours": ratios,
    }
    out = args.out_dir / "stacked_vs_tutorial.json"
    out.write_text(json.dumps(_finite(report), indent=2, default=str) + "\n")
    print(f"wrote {out} and {figure}")


def _finite(o: Any) -> Any:
    """JSON-safe copy: numpy scalars as Python numbers, NaN/inf as null."""
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite(v) for v in o]
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


if __name__ == "__main__":
    main()

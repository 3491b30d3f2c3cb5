"""The family on Fashion-MNIST at code size 30: conv vs dense at equal training time; VAE test NLL vs K.

Run: ``python benchmarks/family.py conv-vs-dense`` and ``python benchmarks/family.py vae-nll``.
Every model is trained through ``autoencoders.train`` (the same path as the CLI), into
``benchmarks/results/runs/``; results go to ``benchmarks/results/family_<what>_e<epochs>.json``.

* **conv-vs-dense**: the dense stack 784-1000-500-250-30 trains for ``--epochs``; its
  training time sets the budget. The conv model (stride-2 convolutions 32, 64, then the
  30-unit code) is timed for one epoch, then trained for as many epochs as fit the same
  budget. Both report test SSE/image and the linear-probe accuracy of their codes (logistic
  regression on the training codes), next to PCA-30; the table shows both actual times.
* **vae-nll**: a VAE 784-512-256-30 with a Bernoulli decoder trains for ``--epochs``; its
  test NLL is estimated by importance sampling with K = 1, 10, 100 and 1000 samples per
  image (K = 1 is the one-sample ELBO's expectation), beside the analytic-KL −ELBO.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import autoencoders
from autoencoders.eval.likelihood import importance_sampled_nll
from autoencoders.training.precision import bf16_speedup

RESULTS = Path(__file__).parent / "results"
COMMON = {"data": "fashion-mnist", "quiet": True, "seed": 0}


def _machine() -> dict:
    return {
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        # bf16 over fp32 matrix products; each run's metrics say which precision ``auto`` chose
        "bf16_speedup": bf16_speedup(),
    }


def _train(name: str, **settings) -> autoencoders.Run:
    print(f"training {name}: {settings}", flush=True)
    run = autoencoders.train(**COMMON, **settings, out=str(RESULTS / "runs" / name))
    m = run.metrics
    print(
        f"  {name}: {m['train_seconds']:.1f} s, test SSE/image {m['test_sse_per_image']:.3f}, "
        f"probe {m.get('linear_probe_accuracy', float('nan')):.4f}",
        flush=True,
    )
    return run


def conv_vs_dense(args: argparse.Namespace) -> dict:
    """Dense and conv autoencoders with the same training time, side by side."""
    dense = _train("dense", layers=[784, 1000, 500, 250, 30], epochs=args.epochs, batch_size=256)
    conv_settings = {"model": "conv", "channels": [32, 64], "layers": [784, 30], "batch_size": 256}
    probe = _train("conv-1-epoch", **conv_settings, epochs=1)
    per_epoch = probe.history[0]["seconds"]
    epochs = max(1, round(dense.metrics["train_seconds"] / per_epoch))
    conv = _train("conv", **conv_settings, epochs=epochs)
    rows = {}
    for name, run in (("dense", dense), ("conv", conv)):
        m = run.metrics
        rows[name] = {
            "settings": run.config.to_dict(),
            "epochs": m["epochs_run"],
            "train_seconds": m["train_seconds"],
            "test_sse_per_image": m["test_sse_per_image"],
            "linear_probe_accuracy": m["linear_probe_accuracy"],
            "parameters": sum(p.numel() for p in run.model.parameters()),
        }
    rows["pca"] = {
        "test_sse_per_image": dense.metrics["pca_sse_per_image"],
        "linear_probe_accuracy": dense.metrics["pca_linear_probe_accuracy"],
    }
    return rows


def vae_nll(args: argparse.Namespace) -> dict:
    """Train a VAE, then its test NLL for growing K."""
    layers = [784, 512, 256, 30]
    run = _train("vae", model="vae", layers=layers, epochs=args.epochs, batch_size=128, iw_samples=0)
    ds = autoencoders.load_dataset(run.config.data)
    x = ds.x_test
    out = {
        "settings": run.config.to_dict(),
        "train_seconds": run.metrics["train_seconds"],
        "test_neg_elbo": run.metrics["test_neg_elbo"],
        "test_kl": run.metrics["test_kl"],
        "nll": {},
    }
    for k in (1, 10, 100, 1000):
        t0 = time.perf_counter()
        nll = float(importance_sampled_nll(run.model, x, k, quiet=False).mean())
        seconds = time.perf_counter() - t0
        out["nll"][k] = {"test_nll": nll, "seconds": seconds}
        print(f"  K={k}: test NLL {nll:.2f} nats ({seconds:.1f} s)", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("conv-vs-dense", "vae-nll"))
    p.add_argument("--epochs", type=int, default=None, help="dense / VAE epochs (default 10 / 30)")
    args = p.parse_args()
    t0 = time.perf_counter()
    if args.what == "conv-vs-dense":
        args.epochs = args.epochs or 10
        result = conv_vs_dense(args)
    else:
        args.epochs = args.epochs or 30
        result = vae_nll(args)
    result = {"machine": _machine(), "wall_seconds": time.perf_counter() - t0, **result}
    path = RESULTS / f"family_{args.what.replace('-', '_')}_e{args.epochs}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Against public libraries on the same Fashion-MNIST rows: pythae's VAE and AE, PyOD's AutoEncoder.

Both sides get the same scaled rows (54,000 training, 6,000 validation, 10,000 test), the same
architecture, batch size, learning rate (Adam) and epochs, in one process, one after the other:

* **VAE**: pythae's default MLP (784-512 → 16, Bernoulli/BCE decoder 16-512-784) against
  ``--model vae --layers 784,512,16``; wall time of training (each evaluates the validation
  rows every epoch), and the test NLL of the first 1,000 test images by importance sampling
  with K = 200 samples (each library's own estimator; both are the same IWAE bound).
* **AE**: pythae's default MLP autoencoder (784-512 → 30, sigmoid output, MSE) against
  ``--layers 784,512,30 --loss mse``; wall time and test SSE/image.
* **Conv AE**: the same convolutional autoencoder on both sides (stride-2 3×3 convolutions
  1 → 32 → 64, a linear 30-unit code, the mirror back with transposed convolutions, ReLU,
  sigmoid output, MSE), given to pythae's ``AE`` as its encoder and decoder, against
  ``--model conv --channels 32,64 --layers 784,30 --loss mse``; wall time and test SSE/image.
* **Outlier detection**: PyOD's ``AutoEncoder`` with its defaults (10 epochs) against
  ``AutoencoderOutlierDetector(epochs=10)``, both trained on the training rows of classes 1–9
  and scoring every test row; ROC-AUC of telling class 0 (T-shirt/top) from the rest. PyOD
  standardises every feature; ours is also scored with each pixel's squared error divided by
  its mean on the training rows, to measure what that weighting is worth.

Ours runs twice, in fp32 and with ``--precision auto`` (bf16 where the CPU has bf16 units).
Written: ``benchmarks/results/libraries.json`` and ``libraries.png`` (test error against wall
time, every contender). Needs ``pip install pythae pyod`` (benchmark only, not a dependency).

Run (from the repository root; about 20 minutes on 2 CPU cores)::

    python benchmarks/libraries.py [--epochs 10] [--kinds vae,ae,conv,outliers]

With a subset of ``--kinds`` the JSON and the figure hold that subset only.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.metrics import roc_auc_score

import autoencoders
from autoencoders.config import DataConfig
from autoencoders.data.datasets import load_dataset
from autoencoders.eval.likelihood import importance_sampled_nll
from autoencoders.eval.metrics import reconstruct_all
from autoencoders.sklearn import AutoencoderOutlierDetector

RESULTS = Path(__file__).resolve().parent / "results"
KINDS = ("vae", "ae", "conv", "outliers")
NLL_ROWS, NLL_K = 1000, 200


def ours(
    kind: str, args: argparse.Namespace, precision: str, x_test: np.ndarray, work: Path
) -> dict[str, Any]:
    """Train our VAE or AE through ``autoencoders.train``; wall time of training, test quality."""
    common = dict(
        data="fashion-mnist", epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, precision=precision,
        seed=0, compare=False, quiet=True, patience=0, out=str(work / f"ours-{kind}-{precision}"),
    )  # fmt: skip
    if kind == "vae":
        run = autoencoders.train(model="vae", layers=[784, 512, 16], iw_samples=1, **common)
    elif kind == "conv":
        run = autoencoders.train(model="conv", channels=[32, 64], layers=[784, 30], loss="mse", **common)
    else:
        run = autoencoders.train(layers=[784, 512, 30], loss="mse", output_activation="sigmoid", **common)
    result = {
        "train_seconds": run.metrics["train_seconds"],
        "test_sse_per_image": run.metrics["test_sse_per_image"],
    }
    result["curve"] = _curve(run.history, "val_loss" if kind == "vae" else "val_recon")
    if kind == "vae":
        t = time.perf_counter()
        nll = importance_sampled_nll(run.model, torch.from_numpy(x_test[:NLL_ROWS]), NLL_K)
        result |= {"test_nll": float(nll.mean()), "nll_seconds": time.perf_counter() - t}
    return result


def _curve(history: list[dict], key: str) -> list[tuple[float, float]]:
    """(cumulative training seconds, validation ``key``) after every epoch."""
    seconds = np.cumsum([h["seconds"] for h in history])
    return [(float(s), float(h[key])) for s, h in zip(seconds, history)]


def _pythae_conv() -> tuple[torch.nn.Module, torch.nn.Module]:
    """Our conv autoencoder's encoder and decoder (``--channels 32,64 --layers 784,30``) as pythae's."""
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from torch import nn

    class Encoder(BaseEncoder):
        def __init__(self):
            BaseEncoder.__init__(self)
            self.net = nn.Sequential(
                nn.Conv2d(1, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
                nn.Flatten(), nn.Linear(64 * 7 * 7, 30),
            )  # fmt: skip

        def forward(self, x: torch.Tensor) -> ModelOutput:
            return ModelOutput(embedding=self.net(x))

    class Decoder(BaseDecoder):
        def __init__(self):
            BaseDecoder.__init__(self)
            self.net = nn.Sequential(
                nn.Linear(30, 64 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
                nn.ConvTranspose2d(64, 32, 3, 2, 1, output_padding=1), nn.ReLU(),
                nn.ConvTranspose2d(32, 1, 3, 2, 1, output_padding=1), nn.Sigmoid(),
            )  # fmt: skip

        def forward(self, z: torch.Tensor) -> ModelOutput:
            return ModelOutput(reconstruction=self.net(z))

    return Encoder(), Decoder()


def theirs(kind: str, args: argparse.Namespace, x: dict[str, np.ndarray], work: Path) -> dict[str, Any]:
    """pythae's VAE or AE with its default MLP, or its AE with our conv network, trained by its
    TrainingPipeline."""
    from pythae.models import AE, VAE, AEConfig, VAEConfig
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    torch.manual_seed(0)
    if kind == "vae":
        model = VAE(VAEConfig(input_dim=(784,), latent_dim=16, reconstruction_loss="bce"))
    elif kind == "conv":
        encoder, decoder = _pythae_conv()
        config = AEConfig(input_dim=(1, 28, 28), latent_dim=30, reconstruction_loss="mse")
        model = AE(config, encoder=encoder, decoder=decoder)
        x = {split: rows.reshape(-1, 1, 28, 28) for split, rows in x.items()}
    else:
        model = AE(AEConfig(input_dim=(784,), latent_dim=30, reconstruction_loss="mse"))
    config = BaseTrainerConfig(
        output_dir=str(work / f"pythae-{kind}"), num_epochs=args.epochs, learning_rate=args.lr,
        per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=args.batch_size,
        steps_saving=None, no_cuda=True,
    )  # fmt: skip
    pipeline = TrainingPipeline(training_config=config, model=model)
    t = time.perf_counter()
    pipeline(train_data=x["train"], eval_data=x["val"])
    result: dict[str, Any] = {"train_seconds": time.perf_counter() - t}
    model = pipeline.trainer._best_model if hasattr(pipeline.trainer, "_best_model") else model
    model.eval()
    test = torch.from_numpy(x["test"])
    with torch.no_grad():
        recon = torch.cat([model.reconstruct(c) for c in test.split(4096)])
    result["test_sse_per_image"] = float((recon - test).pow(2).flatten(1).sum(1).mean())
    if kind == "vae":
        t = time.perf_counter()
        with torch.no_grad():
            result["test_nll"] = -float(model.get_nll(test[:NLL_ROWS], n_samples=NLL_K, batch_size=NLL_K))
        result["nll_seconds"] = time.perf_counter() - t
    return result


def outliers(args: argparse.Namespace, x: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> dict[str, Any]:
    """PyOD's AutoEncoder (defaults) vs ours, trained on classes 1–9; ROC-AUC for class 0."""
    from pyod.models.auto_encoder import AutoEncoder

    normal = x["train"][y["train"] != 0]
    is_anomaly = (y["test"] == 0).astype(int)
    out = {}
    t = time.perf_counter()
    pyod = AutoEncoder(verbose=0, random_state=0).fit(normal)
    seconds = time.perf_counter() - t
    out["pyod"] = {
        "fit_seconds": seconds,
        "roc_auc": roc_auc_score(is_anomaly, pyod.decision_function(x["test"])),
    }
    for precision in ("fp32", "auto"):
        detector = AutoencoderOutlierDetector(epochs=10, random_state=0, options={"precision": precision})
        t = time.perf_counter()
        detector.fit(normal)
        seconds = time.perf_counter() - t
        # score_samples is higher for more normal rows: its negative is the anomaly score
        auc = roc_auc_score(is_anomaly, -detector.score_samples(x["test"]))
        out[f"ours ({precision})"] = {"fit_seconds": seconds, "roc_auc": auc}
    # PyOD standardises every feature first; the same idea on our residuals: each pixel's squared
    # error over its mean on the training rows (the last detector's reconstructions)
    train_err, test_err = (_squared_errors(detector, rows) for rows in (normal, x["test"]))
    weighted = (test_err / (train_err.mean(0) + 1e-6)).sum(1)
    out["ours (auto), standardised residuals"] = {"roc_auc": roc_auc_score(is_anomaly, weighted)}
    return out


def _squared_errors(detector: AutoencoderOutlierDetector, rows: np.ndarray) -> np.ndarray:
    """Per-feature squared reconstruction errors of ``rows`` in the detector's scaled units."""
    x = detector._rows(rows)
    return (reconstruct_all(detector.autoencoder_, x) - x).pow(2).double().numpy()


def plot(report: dict[str, Any], path: Path) -> None:
    """Test error against wall time: our per-epoch validation curves and every final point."""
    panels = [
        (kind, key, unit, curve_name, final_name, title)
        for kind, key, unit, curve_name, final_name, title in (
            ("ae", "test_sse_per_image", "SSE/image", "validation SSE", "test SSE", "MSE autoencoder"),
            ("conv", "test_sse_per_image", "SSE/image", "validation SSE", "test SSE", "conv autoencoder"),
            ("vae", "test_nll", "nats/image", "validation −ELBO", "test NLL (K = 200)", "VAE"),
        )
        if kind in report
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, (kind, key, unit, curve_name, final_name, title) in zip(axes[0], panels):
        for color, (name, r) in zip(("tab:blue", "tab:orange", "tab:green"), report[kind].items()):
            if "curve" in r:
                t, v = zip(*r["curve"])
                ax.plot(t, v, marker=".", color=color, label=f"{name}: {curve_name} per epoch")
            ax.scatter([r["train_seconds"]], [r[key]], marker="*", s=140, color=color, zorder=3,
                       label=f"{name}: {final_name}")  # fmt: skip
        ax.set_xlabel("training wall time (s)")
        ax.set_ylabel(unit)
        ax.set_title(f"{title}, Fashion-MNIST, {report['args']['epochs']} epochs")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    """Run the comparisons asked for; print them and write the results."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--kinds", default=",".join(KINDS), help="comparisons to run, comma-separated")
    p.add_argument("--out-dir", type=Path, default=RESULTS, help="where libraries.json and the figure go")
    args = p.parse_args()
    kinds = args.kinds.split(",")
    if unknown := set(kinds) - set(KINDS):
        p.error(f"unknown kinds {sorted(unknown)}; choose from {', '.join(KINDS)}")
    ds = load_dataset(DataConfig(data="fashion-mnist"))
    x = {s: getattr(ds, f"x_{s}").numpy() for s in ("train", "val", "test")}
    y = {s: getattr(ds, f"y_{s}").numpy() for s in ("train", "test")}
    settings = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}
    report: dict[str, Any] = {"args": settings, "torch_threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for kind in (k for k in kinds if k != "outliers"):
            report[kind] = {"pythae": theirs(kind, args, x, work)}
            for precision in ("fp32", "auto"):
                report[kind][f"ours ({precision})"] = ours(kind, args, precision, x["test"], work)
            print(
                kind,
                json.dumps(
                    {k: {m: v for m, v in r.items() if m != "curve"} for k, r in report[kind].items()}
                ),
            )
    if "outliers" in kinds:
        report["outliers"] = outliers(args, x, y)
        print("outliers", json.dumps(report["outliers"]))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "libraries.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, args.out_dir / "libraries.png")


if __name__ == "__main__":
    main()

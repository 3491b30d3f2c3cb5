"""Few labels: what unsupervised SDAE pretraining is worth when only 1% or 10% of the labels are known.

One stacked denoising autoencoder (784-1000-500-250-30, ReLU, masking noise 0.2, greedy
layer-wise pretraining 3 epochs per layer, then 10 epochs end to end) is trained with
``autoencoders.train`` on *all* training rows of Fashion-MNIST, without their labels. Then,
for each labels fraction (1%, 10%) and each seed (0, 1, 2), on the same class-stratified
labelled rows (``autoencoders.classify.labelled_subset``, drawn with that seed from the run's
own training split):

* **SDAE-pretrained MLP**: ``autoencoders.classify(run_dir, fraction)``, a softmax head on
  the pretrained encoder, the whole encoder fine-tuned with the labels;
* **random-init MLP**: ``autoencoders.classify(..., from_scratch=True)``, the same network
  re-initialised at random, with the same epochs, learning rate and batch size;
* **logistic regression on pixels**: scikit-learn ``LogisticRegression(max_iter=1000)``
  (L2, C=1) on the raw pixels in [0, 1], exactly the rows the MLPs receive. Not standardised:
  with a few hundred rows, per-pixel standardisation blows up near-constant border pixels.

Reported: mean ± std (over seeds) of test accuracy on the dataset's full test split, the
SDAE's own training time, and the total wall time. Written: ``benchmarks/results/few_labels.md``
(the table) and ``benchmarks/results/few_labels.json`` (every number); the SDAE run directory
and the 12 fine-tuned classifiers (about 80 MB of weights) go to ``benchmarks/results/sdae/``
(``--run-dir`` elsewhere, e.g. under the git-ignored ``runs/``).

Fine-tuning budget (same for both MLPs): ``max(--clf-min-epochs, ceil(--clf-steps / steps
per epoch))`` epochs, i.e. at least 400 optimisation steps and at least 10 passes over the
labelled rows (Fashion-MNIST: 45 epochs at 1%, 10 epochs at 10%); ``--clf-epochs`` fixes it.

Run (full experiment, from the repository root; about 10 minutes on 2 CPU cores)::

    python benchmarks/few_labels.py

Quick check (seconds)::

    python benchmarks/few_labels.py --data digits --epochs 3 --seeds 1 --out-dir /tmp/few-labels
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

import autoencoders
from autoencoders.checkpoint import load_weights
from autoencoders.classify import labelled_subset
from autoencoders.config import ACTIVATIONS, CORRUPTIONS, Config, DataConfig
from autoencoders.data import Dataset, load_dataset, read_data
from autoencoders.training.loop import resolve_device, resolve_precision

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = {"pretrained": "SDAE-pretrained MLP", "scratch": "random-init MLP", "logreg": "logreg on pixels"}


def default_layers(n_features: int) -> list[int]:
    """784-1000-500-250-30 for 28×28 images, else D-256-128-32."""
    return [784, 1000, 500, 250, 30] if n_features == 784 else [n_features, 256, 128, 32]


def run_dataset(run_dir: Path) -> tuple[Config, Dataset]:
    """The run's config and its splits, scaled with the run's own scaler (as ``classify`` loads them)."""
    cfg = Config.load_json(run_dir / "config.json")
    tensors = load_weights(run_dir / "model.safetensors")
    scaler = (tensors["input_offset"].numpy(), tensors["input_span"].numpy())
    return cfg, load_dataset(cfg.data, scaler=scaler)


def clf_epochs(n_labelled: int, args: argparse.Namespace) -> int:
    """Fine-tuning epochs for ``n_labelled`` rows: ``--clf-epochs``, or the step/epoch minimum rule."""
    if args.clf_epochs is not None:
        return args.clf_epochs
    steps_per_epoch = math.ceil(n_labelled / args.batch_size)
    return max(args.clf_min_epochs, math.ceil(args.clf_steps / steps_per_epoch))


def logreg_accuracy(ds: Dataset, rows: np.ndarray) -> dict[str, Any]:
    """Test accuracy of a logistic regression on the raw pixels of the labelled ``rows``."""
    x, y = ds.x_train.numpy()[rows], ds.y_train.numpy()[rows]
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf = LogisticRegression(max_iter=1000).fit(x, y)
    seconds = time.perf_counter() - t0
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    acc = float(clf.score(ds.x_test.numpy(), ds.y_test.numpy()))
    return {
        "test_accuracy": acc,
        "train_seconds": seconds,
        "iterations": int(clf.n_iter_.max()),
        "converged": converged,
    }


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN/inf floats replaced by None (strict JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (nan for a single value)."""
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else math.nan


def cell(values: list[float]) -> str:
    """``mean ± std`` of accuracies, in percent."""
    m, s = mean_std(values)
    return f"{100 * m:.2f}" if math.isnan(s) else f"{100 * m:.2f} ± {100 * s:.2f}"


def sdae_seconds(history: list[dict]) -> dict[str, float]:
    """Seconds spent in greedy pretraining and in end-to-end fine-tuning."""
    pre = sum(h["seconds"] for h in history if h["stage"].startswith("pretrain"))
    fine = sum(h["seconds"] for h in history if not h["stage"].startswith("pretrain"))
    return {"pretrain_seconds": pre, "finetune_seconds": fine}


def markdown(report: dict[str, Any]) -> str:
    """The results table and timings as markdown."""
    a, sd = report["args"], report["sdae"]
    seeds = report["seeds"]
    lines = [
        f"# Few labels: SDAE pretraining vs random init vs logistic regression ({a['data']})",
        "",
        f"Command: `{report['command']}`",
        "",
        f"SDAE {'-'.join(map(str, sd['layers']))}, {a['activation']}, {a['corruption']} noise {a['noise']}, "
        f"greedy pretraining {a['pretrain_epochs']} epochs/layer + {a['epochs']} epochs end to end, "
        f"trained without labels on all {sd['n_train']} training rows. Test accuracy (%) on "
        f"{report['n_test']} test rows, mean ± std over {len(seeds)} seed(s) {seeds} (the seed picks the "
        f"labelled rows, the head's init and the batch order).",
        "",
        "| labels | " + " | ".join(METHODS.values()) + " |",
        "|---|" + "---:|" * len(METHODS),
    ]
    for r in report["fractions"]:
        accs = [cell([s[m]["test_accuracy"] for s in r["seeds"]]) for m in METHODS]
        lines.append(f"| {100 * r['fraction']:g}% ({r['labelled_examples']}) | " + " | ".join(accs) + " |")
    lines += [
        "",
        "Fine-tuning budget (both MLPs alike, Adam, "
        f"lr {a['clf_lr']:g}, batch {a['batch_size']}): "
        + "; ".join(
            f"{100 * r['fraction']:g}%: {r['epochs']} epochs = {r['steps']} steps"
            for r in report["fractions"]
        )
        + ". Logistic regression: scikit-learn, L2 (C=1), lbfgs, max_iter 1000, raw [0, 1] pixels.",
        "",
        f"SDAE train time: {sd['train_seconds']:.1f} s (pretraining {sd['pretrain_seconds']:.1f} s, "
        f"fine-tuning {sd['finetune_seconds']:.1f} s; with its evaluation and figures "
        f"{sd['wall_seconds']:.1f} s). Linear probe on its codes with all labels: "
        f"{100 * sd['linear_probe_accuracy']:.2f}%.",
        f"Total wall time: {report['total_seconds']:.1f} s on {report['env']['device']} "
        f"({report['env']['precision']}, {report['env']['torch_threads']} torch threads).",
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--data", default="fashion-mnist", help="dataset spec (default fashion-mnist)")
    p.add_argument(
        "--layers", default=None, help="SDAE widths, e.g. 784,1000,500,250,30 (default: from data)"
    )
    p.add_argument("--activation", default="relu", choices=ACTIVATIONS)
    p.add_argument("--corruption", default="masking", choices=CORRUPTIONS)
    p.add_argument("--noise", type=float, default=0.2)
    p.add_argument("--pretrain-epochs", type=int, default=3, help="greedy pretraining epochs per layer")
    p.add_argument("--epochs", type=int, default=10, help="SDAE end-to-end epochs")
    p.add_argument("--lr", type=float, default=2e-3, help="SDAE learning rate")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (SDAE and classifiers)")
    p.add_argument("--sdae-seed", type=int, default=0)
    p.add_argument("--fractions", default="0.01,0.1", help="labels fractions, comma-separated")
    p.add_argument("--seeds", type=int, default=3, help="fine-tune/logreg seeds 0..N-1")
    p.add_argument("--clf-lr", type=float, default=1e-3, help="classifier fine-tuning learning rate")
    p.add_argument("--clf-epochs", type=int, default=None, help="fixed classifier epochs (default: rule)")
    p.add_argument("--clf-steps", type=int, default=400, help="minimum classifier optimisation steps")
    p.add_argument("--clf-min-epochs", type=int, default=10, help="minimum classifier epochs")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    p.add_argument("--threads", type=int, default=None, help="torch/BLAS threads (default: torch's)")
    p.add_argument("--out-dir", type=Path, default=RESULTS, help="where few_labels.md/.json go")
    p.add_argument("--run-dir", type=Path, default=None, help="SDAE run directory (default: OUT_DIR/sdae)")
    args = p.parse_args(argv)
    args.fractions = [float(f) for f in args.fractions.split(",")]
    if args.seeds < 1 or not all(0 < f <= 1 for f in args.fractions):
        p.error("--seeds must be >= 1 and every fraction in (0, 1]")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the experiment; print and write the table and the raw numbers."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    t_start = time.perf_counter()
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)  # resolved once: every stage uses the same
    n_features = read_data(DataConfig(data=args.data)).x.shape[1]
    layers = [int(w) for w in args.layers.split(",")] if args.layers else default_layers(n_features)
    print(f"{args.data}: SDAE {'-'.join(map(str, layers))} on {device} ({precision}), seeds {args.seeds}")

    # 1. one SDAE, unsupervised, on every training row
    t0 = time.perf_counter()
    run = autoencoders.train(
        data=args.data,
        layers=layers,
        activation=args.activation,
        pretrain="greedy",
        pretrain_epochs=args.pretrain_epochs,
        corruption=args.corruption,
        noise=args.noise,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.sdae_seed,
        compare=False,
        quiet=True,
        device=str(device),
        precision=precision,
        out=str(args.run_dir or args.out_dir / "sdae"),
    )
    sdae = {
        "run_dir": str(run.dir),
        "layers": run.model.layers,
        "wall_seconds": time.perf_counter() - t0,
        **sdae_seconds(run.history),
        **{
            k: run.metrics[k] for k in ("train_seconds", "n_train", "test_sse_per_image", "pca_sse_per_image")
        },
        "linear_probe_accuracy": run.metrics.get("linear_probe_accuracy", math.nan),
    }
    print(
        f"SDAE trained in {sdae['train_seconds']:.1f} s (pretraining {sdae['pretrain_seconds']:.1f} s), "
        f"test SSE/image {sdae['test_sse_per_image']:.2f} (PCA {sdae['pca_sse_per_image']:.2f})"
    )

    # the run's splits, scaled as classify scales them: logistic regression sees the same rows
    _, ds = run_dataset(run.dir)
    y_train = ds.y_train.numpy()
    class_index = np.unique(y_train, return_inverse=True)[1]  # what train_classifier draws from
    seeds = list(range(args.seeds))
    fractions = []
    for fraction in args.fractions:
        n_labelled = len(labelled_subset(y_train, fraction, 0))
        epochs = clf_epochs(n_labelled, args)
        per_seed = []
        for seed in seeds:
            rows = labelled_subset(y_train, fraction, seed)
            if not np.array_equal(rows, labelled_subset(class_index, fraction, seed)):
                raise RuntimeError("labelled rows differ between logistic regression and classify")
            res: dict[str, Any] = {"seed": seed}
            for method, scratch in (("pretrained", False), ("scratch", True)):
                name = f"classifier-{fraction:g}-seed{seed}" + ("-scratch" if scratch else "")
                out = autoencoders.classify(
                    run.dir,
                    fraction,
                    out=run.dir / name,
                    from_scratch=scratch,
                    epochs=epochs,
                    lr=args.clf_lr,
                    batch_size=args.batch_size,
                    seed=seed,
                    device=str(device),
                    precision=precision,
                    quiet=True,
                )
                if out.metrics["labelled_examples"] != len(rows):
                    raise RuntimeError("classify used a different number of labelled rows")
                res[method] = out.metrics
            res["logreg"] = logreg_accuracy(ds, rows)
            per_seed.append(res)
            print(
                f"  {100 * fraction:g}% ({len(rows)} labels) seed {seed}: "
                + ", ".join(f"{METHODS[m]} {100 * res[m]['test_accuracy']:.2f}%" for m in METHODS)
            )
        summary = {
            m: dict(zip(("mean", "std"), mean_std([s[m]["test_accuracy"] for s in per_seed])))
            for m in METHODS
        }
        fractions.append(
            {
                "fraction": fraction,
                "labelled_examples": n_labelled,
                "epochs": epochs,
                "steps": epochs * math.ceil(n_labelled / args.batch_size),
                "summary": summary,
                "seeds": per_seed,
            }
        )

    report = {
        "command": " ".join(
            ["python", "benchmarks/few_labels.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "seeds": seeds,
        "n_test": len(ds.x_test),
        "sdae": sdae,
        "fractions": fractions,
        "total_seconds": time.perf_counter() - t_start,
        "env": {
            "device": str(device),
            "precision": precision,
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
    }
    text = markdown(report)
    print()
    print(text)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "few_labels.md").write_text(text)
    (args.out_dir / "few_labels.json").write_text(json.dumps(json_safe(report), indent=2) + "\n")
    print(f"wrote {args.out_dir / 'few_labels.md'} and {args.out_dir / 'few_labels.json'}")
    return report


if __name__ == "__main__":
    main()

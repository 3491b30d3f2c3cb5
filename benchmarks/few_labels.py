"""Few labels: what unsupervised pretraining is worth with 100, 600 and 6,000 labels.

One stacked denoising autoencoder (784-1000-500-250-30, ReLU, masking noise 0.2, greedy
layer-wise pretraining 3 epochs per layer, then 10 epochs end to end) is trained with
``autoencoders.train`` on every training row of Fashion-MNIST, without labels. Then, for
each number of labels and each seed, on the same class-balanced labelled rows (drawn with
that seed from the run's training split; as many from its validation split for early
stopping and model choice), every ``autoencoders classify`` method:

* ``finetune``: softmax head, the whole pretrained encoder trained on the labels;
* ``frozen``: the head alone on the pretrained codes (their logistic regression, then Adam);
* ``knn``: k nearest labelled codes, k chosen on the validation labels;
* ``semi``: labelled cross-entropy + the SDAE's own denoising loss on every training row;
* ``ladder``: a ladder network over the same widths (+ softmax), started from the SDAE's layers;

``--model conv`` (stride-2 convolutions 32, 64 → 30), ``--model vae`` (784-512-256-30) or
``--model wta`` (784-1000, ReLU code with lifetime winner-take-all sparsity 0.05, scaled
initialisation, one-cycle schedule) trains that autoencoder instead (no noise, no pretraining) to
ask whether another representation of the family pays off where the SDAE's does not. The conv
layers cannot start a ladder (its code layer is 3,136 → 30), so its column is then a ladder over
the encoder's widths from random weights, and named so; the VAE's starts one from its means.

Against two baselines: the same network from random init (``finetune`` with ``from_scratch``)
and scikit-learn's logistic regression on the raw pixels in [0, 1] of the same labelled rows,
its C chosen on the same validation labels. Reported: test accuracy on the full test split,
mean ± std over seeds, and seconds per method. The table replaces the part of
``benchmarks/README.md`` between its ``few-labels`` markers; every number also goes to
``benchmarks/results/few_labels.json``.

Run (from the repository root; 41 minutes with ``--semi-epochs 3`` on a 2-core CPU without
bf16 units, longer with the default 10)::

    python benchmarks/few_labels.py

Quick check (about a minute)::

    python benchmarks/few_labels.py --data digits --n-labels 50 --seeds 1 --semi-epochs 3 --out-dir /tmp/fl
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

import autoencoders
from autoencoders.classify.few_labels import FewLabels
from autoencoders.config import Config, DataConfig
from autoencoders.data.datasets import Dataset, load_dataset, read_data
from autoencoders.data.sources import MNIST_FILES
from autoencoders.io.checkpoint import file_sha256
from autoencoders.trained import open_run

HERE = Path(__file__).resolve().parent
METHODS = {
    "finetune": "fine-tuned",
    "frozen": "frozen + head",
    "knn": "kNN on codes",
    "semi": "semi-supervised",
    "ladder": "ladder",
    "scratch": "random init",
    "logreg": "logreg on pixels",
}
# Rasmus et al. 2015, Table 1: the full ladder (784-1000-500-250-250-250-10) on MNIST, test error
# in % (mean ± std over 10 draws of the labels), by number of labels
PUBLISHED_LADDER_MNIST = {100: (1.06, 0.37), 1000: (0.84, 0.08)}


def is_mnist(spec: str) -> bool:
    """MNIST itself: ``mnist``, or ``idx:DIR`` whose gzipped training images are MNIST's (SHA-256)."""
    if spec == "mnist":
        return True
    images = Path(spec[4:]) / "train-images-idx3-ubyte.gz"
    return spec.startswith("idx:") and images.is_file() and file_sha256(images) == MNIST_FILES[images.name]


def logreg(ds: Dataset, rows: np.ndarray, vrows: np.ndarray) -> dict[str, Any]:
    """Logistic regression on raw pixels, C picked on the validation labels (refit is not needed:
    the validation rows are not training rows)."""
    x, y = ds.x_train.numpy(), ds.y_train.numpy()
    t0 = time.perf_counter()
    best = None
    for c in (0.01, 0.1, 1.0, 10.0):
        clf = LogisticRegression(C=c, max_iter=2000).fit(x[rows], y[rows])
        score = clf.score(ds.x_val.numpy()[vrows], ds.y_val.numpy()[vrows])
        if best is None or score > best[0]:
            best = (score, c, clf)
    seconds = time.perf_counter() - t0
    acc = float(best[2].score(ds.x_test.numpy(), ds.y_test.numpy()))
    return {"test_accuracy": acc, "C": best[1], "train_seconds": seconds}


def cell(values: list[float]) -> str:
    """``mean ± std`` in percent (the mean alone for one value)."""
    a = 100 * np.asarray(values)
    return f"{a.mean():.2f}" if len(a) == 1 else f"{a.mean():.2f} ± {a.std(ddof=1):.2f}"


def markdown(report: dict[str, Any]) -> str:
    """The results table and its settings as markdown."""
    a, net = report["args"], report["pretrained"]
    methods = [m for m in METHODS if m in report["methods"]]
    names = dict(METHODS)  # a ladder its network could not start is named so
    pretrained = [m for m in methods if m not in ("scratch", "logreg")]
    if "ladder" in methods and not any(
        s["ladder"]["ladder_pretrained"] for r in report["results"] for s in r["seeds"]
    ):
        names["ladder"], pretrained = "ladder (random init)", [m for m in pretrained if m != "ladder"]
    lines = [
        f"{a['data']}: {net['description']}, without labels on all "
        f"{net['n_train']} training rows ({net['train_seconds']:.0f} s). Test accuracy (%) on "
        f"{report['n_test']} test rows, mean ± std over seeds {report['seeds']} (the seed draws the "
        "labelled rows and the initial weights). Each method also gets as many validation labels.",
        "",
        "| labels | " + " | ".join(names[m] for m in methods) + " |",
        "|---|" + "---:|" * len(methods),
    ]
    for r in report["results"]:
        cells = [cell([s[m]["test_accuracy"] for s in r["seeds"]]) for m in methods]
        if pretrained:
            best = max(pretrained, key=lambda m: r["mean"][m])
            cells[methods.index(best)] = f"**{cells[methods.index(best)]}**"
        lines.append(f"| {r['n_labels']} | " + " | ".join(cells) + " |")
    seconds = {
        m: np.mean([s[m]["train_seconds"] for r in report["results"] for s in r["seeds"]]) for m in methods
    }
    lines.append("| seconds per run (mean) | " + " | ".join(f"{seconds[m]:.1f}" for m in methods) + " |")
    published = [r for r in report["results"] if r["n_labels"] in PUBLISHED_LADDER_MNIST]
    for r in published if report.get("mnist") and pretrained else []:
        error, spread = PUBLISHED_LADDER_MNIST[r["n_labels"]]
        best = max(pretrained, key=lambda m: r["mean"][m])
        lines += [
            "",
            f"MNIST with {r['n_labels']} labels: the published ladder (Rasmus et al. 2015, "
            f"784-1000-500-250-250-250-10) reaches {100 - error:.2f} ± {spread:.2f} % test accuracy; "
            f"the best method here, {names[best]}, {100 * r['mean'][best]:.2f} %.",
        ]
    lines += [
        "",
        f"Budgets: fine-tuned, frozen and random init train for at least 1,000 updates of "
        f"{a['clf_batch_size']} labelled rows (Adam {a['clf_lr']:g}), semi-supervised and ladder for "
        f"{a['semi_epochs']} epochs over every training row with a labelled batch per update "
        f"(Adam {a['semi_lr']:g} and {a['ladder_lr']:g}, cosine decay); all stop after 10 epochs "
        "without a lower validation cross-entropy and keep their best validation weights. "
        f"Total wall time {report['total_seconds'] / 60:.1f} min ({report['env']}).",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--data", default="fashion-mnist", help="dataset spec (default fashion-mnist)")
    p.add_argument(
        "--model", choices=("sdae", "conv", "vae", "wta"), default="sdae", help="the pretrained network"
    )
    p.add_argument(
        "--layers",
        default=None,
        help="widths (defaults: SDAE 784,1000,500,250,30 or D,256,128,32; conv D,30; VAE D,512,256,30; "
        "WTA D,1000)",
    )
    p.add_argument("--pretrain-epochs", type=int, default=3, help="SDAE greedy pretraining epochs per layer")
    p.add_argument("--epochs", type=int, default=10, help="end-to-end epochs of the pretrained network")
    p.add_argument("--n-labels", default="100,600,6000", help="numbers of labels, comma-separated")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    p.add_argument("--methods", default=",".join(METHODS), help="which columns to run")
    p.add_argument("--clf-lr", type=float, default=1e-3, help="fine-tuned/frozen/random-init learning rate")
    p.add_argument("--clf-batch-size", type=int, default=100, help="classifier batch size (every method)")
    p.add_argument("--semi-epochs", type=int, default=10, help="semi-supervised and ladder epochs")
    p.add_argument("--semi-lr", type=float, default=1e-3, help="semi-supervised learning rate")
    p.add_argument("--ladder-lr", type=float, default=2e-3, help="ladder learning rate")
    p.add_argument("--out-dir", type=Path, default=HERE / "results", help="where few_labels.json goes")
    p.add_argument("--run-dir", type=Path, default=None, help="its run directory (reused when complete)")
    args = p.parse_args(argv)
    args.n_labels = [int(n) for n in args.n_labels.split(",")]
    args.methods = args.methods.split(",")
    if unknown := set(args.methods) - set(METHODS):
        p.error(f"unknown methods {sorted(unknown)}; choose from {', '.join(METHODS)}")
    return args


KINDS = {"sdae": "dense", "conv": "conv", "vae": "vae", "wta": "dense"}  # --model → the run's model kind


def pretrain(args: argparse.Namespace, n_features: int) -> Path:
    """The pretrained network's run directory: trained unless it already holds a complete run,
    which must be of the ``--model`` asked for."""
    run_dir = args.run_dir or args.out_dir / "runs" / f"few-labels-{args.model}"
    manifest = run_dir / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text())["completed"]:
        if (kind := open_run(run_dir).cfg.model.model) != KINDS[args.model]:
            sys.exit(f"{run_dir} holds a {kind} run, not --model {args.model}; give another --run-dir")
        return run_dir
    layers = [int(w) for w in args.layers.split(",")] if args.layers else None
    if args.model == "sdae":
        default = [784, 1000, 500, 250, 30] if n_features == 784 else [n_features, 256, 128, 32]
        settings = {"pretrain": "greedy", "pretrain_epochs": args.pretrain_epochs}
        settings |= {"corruption": "masking", "noise": 0.2}
    elif args.model == "conv":
        default, settings = [n_features, 30], {"model": "conv", "channels": [32, 64]}
    elif args.model == "vae":
        default, settings = [n_features, 512, 256, 30], {"model": "vae"}
    else:  # one wide ReLU layer, lifetime winner-take-all (Makhzani & Frey 2015)
        default = [n_features, 1000]
        settings = {
            "code_activation": "relu", "lifetime_sparsity": 0.05, "init": "scaled", "lr_decay": "onecycle",
        }  # fmt: skip
    autoencoders.train(
        data=args.data, layers=layers or default, epochs=args.epochs,
        lr=2e-3, batch_size=64, seed=0, compare=False, quiet=True, out=str(run_dir),
        overwrite=run_dir.exists(), **settings,
    )  # fmt: skip
    return run_dir


def describe(cfg: Config) -> str:
    """What a run trained, from its own configuration."""
    m = cfg.model
    widths = "-".join(map(str, m.layers))
    if m.model == "conv":
        parts = [
            f"conv autoencoder ({', '.join(map(str, cfg.kind_options.channels))} channels → {m.layers[-1]})"
        ]
    elif m.model == "vae":
        parts = [f"VAE {widths} (codes: the posterior means)"]
    else:
        parts = [f"{'SDAE' if m.corruption != 'none' else 'autoencoder'} {widths}"]
    if m.corruption != "none":
        parts.append(f"{m.corruption} noise {m.noise:g}")
    if m.lifetime_sparsity:
        parts.append(f"{m.code_activation} code, winner-take-all (lifetime sparsity {m.lifetime_sparsity:g})")
    if cfg.pretrain.pretrain != "none":
        parts.append(f"{cfg.pretrain.pretrain} pretraining {cfg.pretrain.pretrain_epochs} epochs/layer")
    return ", ".join([*parts, f"{cfg.train.epochs} epochs end to end"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the experiment; print the table, write it and the raw numbers."""
    args = parse_args(argv)
    t_start = time.perf_counter()
    run_dir = pretrain(args, read_data(DataConfig(data=args.data)).x.shape[1])
    run = open_run(run_dir)
    ds = load_dataset(run.cfg.data, scaler=run.scaler)  # as classify scales it
    metrics = json.loads((run_dir / "metrics.json").read_text())
    classes = np.unique(ds.y_train.numpy(), return_inverse=True)[1]
    val_classes = np.unique(ds.y_val.numpy(), return_inverse=True)[1]
    seeds = list(range(args.seeds))
    common = {"quiet": True, "batch_size": args.clf_batch_size}
    settings = {
        "finetune": {"method": "finetune", "lr": args.clf_lr},
        "frozen": {"method": "frozen", "lr": args.clf_lr},
        "knn": {"method": "knn"},
        "semi": {"method": "semi", "lr": args.semi_lr, "epochs": args.semi_epochs, "lr_decay": "cosine"},
        "ladder": {
            "method": "ladder",
            "lr": args.ladder_lr,
            "epochs": args.semi_epochs,
            "lr_decay": "cosine",
        },
        "scratch": {"method": "finetune", "from_scratch": True, "lr": args.clf_lr},
    }
    results = []
    for n in args.n_labels:
        per_seed = []
        for seed in seeds:
            how = FewLabels(n_labels=n)
            rows, vrows = how.subset(classes, seed), how.subset(val_classes, seed, cap=True)
            res: dict[str, Any] = {"seed": seed}
            for method in (m for m in args.methods if m != "logreg"):
                out = run_dir / f"classifier-{n}-{method}-seed{seed}"
                got = autoencoders.classify(
                    run_dir, n_labels=n, out=out, seed=seed, **common, **settings[method]
                )
                if got.metrics["labelled_examples"] != len(rows) or got.metrics["validation_labels"] != len(
                    vrows
                ):
                    raise RuntimeError(f"{method} used other labelled rows than the baselines")
                res[method] = got.metrics
            if "logreg" in args.methods:
                res["logreg"] = logreg(ds, rows, vrows)
            per_seed.append(res)
            print(f"{n} labels, seed {seed}: " + ", ".join(
                f"{m} {100 * res[m]['test_accuracy']:.2f}" for m in args.methods
            ), flush=True)  # fmt: skip
        mean = {m: float(np.mean([s[m]["test_accuracy"] for s in per_seed])) for m in args.methods}
        results.append({"n_labels": n, "mean": mean, "seeds": per_seed})

    threads = torch.get_num_threads()
    report = {
        "command": " ".join(
            ["python", "benchmarks/few_labels.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "methods": args.methods,
        "seeds": seeds,
        "n_test": len(ds.x_test),
        "pretrained": {
            "description": describe(run.cfg),
            **{k: metrics[k] for k in ("n_train", "train_seconds")},
        },
        "results": results,
        "mnist": is_mnist(args.data),
        "total_seconds": time.perf_counter() - t_start,
        # the precision the network trained at, which classify keeps (config.json says auto, if given)
        "env": f"torch {torch.__version__}, {threads} threads, precision {metrics.get('precision', 'auto')}",
    }
    text = markdown(report)
    print(text)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "few_labels.json").write_text(json.dumps(report, indent=2) + "\n")
    if args.out_dir == HERE / "results" and args.model == "sdae":  # the table the README shows
        readme = HERE / "README.md"
        start, end = "<!-- few-labels:start -->", "<!-- few-labels:end -->"
        block = f"{start}\n{text}\n{end}"
        readme.write_text(re.sub(f"{start}.*{end}", lambda _: block, readme.read_text(), flags=re.S))
    return report


if __name__ == "__main__":
    main()

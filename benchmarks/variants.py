"""Every kind and variant on Fashion-MNIST at code size 30, with PCA-30, in one table.

Run: ``python benchmarks/variants.py`` (``--epochs`` to change the budget). Each row is one
``autoencoders.train`` run (the path the CLI takes) with the same stack, budget and seed;
the table (test SSE/image, linear-probe accuracy, k-means accuracy and NMI on the test
codes, training time) replaces the part of ``benchmarks/README.md`` between its
``variants`` markers, and the raw metrics go to ``benchmarks/results/variants.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch

import autoencoders

HERE = Path(__file__).parent
STACK = [784, 1000, 500, 250, 30]
SIGMOID = {"activation": "sigmoid", "code_activation": "sigmoid"}
GREEDY = {"pretrain": "greedy", "pretrain_epochs": 2, "compare": False}
VARIANTS = {
    "plain": {},
    "denoising (masking 0.2)": {"corruption": "masking", "noise": 0.2},
    "sparse (KL, ρ = 0.05, sigmoid code)": {
        "code_activation": "sigmoid",
        "sparsity": "kl",
        "sparsity_target": 0.05,
        "sparsity_weight": 10.0,
    },
    "k-sparse (k = 10 of 30, from 30)": {"top_k": 10, "top_k_start": 30, "top_k_warmup": 5},
    "contractive (λ = 0.01)": {"contractive": 0.01},
    "conv (32, 64 → 30)": {"model": "conv", "channels": [32, 64], "layers": [784, 30]},
    "VAE (Bernoulli, β = 1; code = posterior mean)": {"model": "vae", "iw_samples": 0},
    "AAE (Gaussian prior)": {"model": "aae", "disc_layers": [500, 500]},
    "stacked AE (greedy 2 epochs/layer)": {**GREEDY},
    "stacked denoising AE": {**GREEDY, "corruption": "masking", "noise": 0.2},
    "stacked sparse AE (sigmoid, KL on every layer)": {
        **GREEDY,
        **SIGMOID,
        "sparsity": "kl",
        "sparsity_layers": "all",
        "sparsity_weight": 1.0,
    },
    "stacked contractive AE (sigmoid, λ = 0.01)": {**GREEDY, **SIGMOID, "contractive": 0.01},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10, help="end-to-end epochs of every run (default 10)")
    p.add_argument("--only", nargs="*", help="run only the variants whose names start with these")
    args = p.parse_args()
    results = HERE / "results" / "variants.json"
    # with --only, the other rows come from the last full run
    kept = json.loads(results.read_text())["rows"] if args.only and results.exists() else []
    rows, pca = [], None
    for name, settings in VARIANTS.items():
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        settings = {"layers": STACK, "batch_size": 256, "epochs": args.epochs, **settings}
        print(f"{name}: {settings}", flush=True)
        t0 = time.perf_counter()
        run = autoencoders.train(data="fashion-mnist", quiet=True, seed=0, **settings, out=str(_dir(name)))
        m = run.metrics
        wall = time.perf_counter() - t0
        rows.append({"variant": name, "settings": settings, "metrics": m, "wall_seconds": wall})
        pca = pca or {k: m[k] for k in m if k.startswith("pca_")}
        print(
            f"  SSE {m['test_sse_per_image']:.3f}  probe {m['linear_probe_accuracy']:.4f}  "
            f"k-means {m['kmeans_accuracy']:.4f}  {m['train_seconds']:.1f} s",
            flush=True,
        )
    machine = {"torch": torch.__version__, "threads": torch.get_num_threads(), "precision": m["precision"]}
    done = {row["variant"]: row for row in kept} | {row["variant"]: row for row in rows}
    rows = [done[name] for name in VARIANTS if name in done]
    results.write_text(
        json.dumps({"machine": machine, "epochs": args.epochs, "pca": pca, "rows": rows}, indent=2) + "\n"
    )
    _write_table(rows, pca, args.epochs, machine)


def _dir(name: str) -> Path:
    return HERE / "results" / "runs" / ("variant-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"))


def _write_table(rows: list[dict], pca: dict, epochs: int, machine: dict) -> None:
    lines = [
        f"Fashion-MNIST, {epochs} end-to-end epochs (greedy rows: plus 2 epochs per layer), batch 256,",
        f"Adam 2e-3, seed 0, {machine['precision']}, {machine['threads']} threads. "
        "Stack 784-1000-500-250-30 (ReLU unless named) except conv.",
        "",
        "| variant | test SSE/image | linear probe | k-means accuracy | k-means NMI | train time |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        m = row["metrics"]
        lines.append(
            f"| {row['variant']} | {m['test_sse_per_image']:.3f} | {m['linear_probe_accuracy']:.4f} | "
            f"{m['kmeans_accuracy']:.4f} | {m['kmeans_nmi']:.4f} | {m['train_seconds']:.1f} s |"
        )
    lines.append(
        f"| PCA-30 | {pca['pca_sse_per_image']:.3f} | {pca['pca_linear_probe_accuracy']:.4f} | "
        f"{pca['pca_kmeans_accuracy']:.4f} | {pca['pca_kmeans_nmi']:.4f} | |"
    )
    readme = HERE / "README.md"
    text = readme.read_text()
    start, end = "<!-- variants:start -->", "<!-- variants:end -->"
    table = "\n".join(lines)
    text = re.sub(f"{start}.*{end}", lambda _: f"{start}\n{table}\n{end}", text, flags=re.S)
    readme.write_text(text)
    print(table)


if __name__ == "__main__":
    main()

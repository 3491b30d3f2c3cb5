"""The scikit-learn face: codes as features against PCA, and what importing it costs.

1. On digits, ``make_pipeline(AutoencoderTransformer(...), LogisticRegression())`` against
   ``make_pipeline(MinMaxScaler(), PCA(16), LogisticRegression())``: test accuracy over
   ``--splits`` stratified 70/30 splits and ``--seeds`` seeds per split, for the transformer's
   defaults (a denoising tanh autoencoder, 16 codes) and for ReLU units without noise.
2. Import time, each in a fresh interpreter (median of ``--repeats``): ``import torch``, then
   ``import autoencoders``, then ``import sklearn.base``, then ``import autoencoders.sklearn``;
   each step's seconds beyond the previous ones.

Run (repository root; about 2 minutes on 2 cores)::

    python benchmarks/estimators.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from autoencoders.sklearn import AutoencoderTransformer

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = {
    "defaults (tanh, Gaussian noise 0.3)": {},
    "ReLU, no noise": {"activation": "relu", "corruption": "none"},
}
STEPS = ("torch", "autoencoders", "sklearn.base", "autoencoders.sklearn")
TIMER = """
import sys, time
seconds = []
for name in sys.argv[1:]:
    t = time.perf_counter()
    __import__(name)
    seconds.append(time.perf_counter() - t)
print(seconds)
"""


def accuracies(splits: int, seeds: int) -> dict[str, list[float]]:
    """Test accuracy of logistic regression on each variant's codes and on PCA's components."""
    x, y = load_digits(return_X_y=True)
    out: dict[str, list[float]] = {name: [] for name in [*VARIANTS, "PCA-16"]}
    for split in range(splits):
        x_train, x_test, y_train, y_test = train_test_split(
            x, y, test_size=0.3, random_state=split, stratify=y
        )
        pca = make_pipeline(MinMaxScaler(), PCA(16, random_state=0), LogisticRegression(max_iter=2000))
        out["PCA-16"].append(pca.fit(x_train, y_train).score(x_test, y_test))
        for name, settings in VARIANTS.items():
            for seed in range(seeds):
                pipe = make_pipeline(
                    AutoencoderTransformer(random_state=seed, **settings), LogisticRegression(max_iter=2000)
                )
                out[name].append(pipe.fit(x_train, y_train).score(x_test, y_test))
    return out


def import_seconds(repeats: int) -> dict[str, float]:
    """Median seconds of each import step, in fresh interpreters."""
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", TIMER, *STEPS], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(repeats)
    ]
    return {name: statistics.median(r[i] for r in runs) for i, name in enumerate(STEPS)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--splits", type=int, default=6)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    args = p.parse_args()
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}"
    }
    imports = report["import_seconds"] = import_seconds(args.repeats)
    for name, seconds in imports.items():
        print(f"import {name}: {seconds:.2f} s beyond the imports before it")
    scores = accuracies(args.splits, args.seeds)
    pca = np.repeat(scores["PCA-16"], args.seeds)
    for name, values in scores.items():
        line = f"{name}: {np.mean(values):.3f} ± {np.std(values):.3f} ({len(values)} fits)"
        if name != "PCA-16":
            line += f", above PCA-16 on its split in {int((np.array(values) > pca).sum())}"
        print(line)
    report["accuracy"] = scores
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / "estimators.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

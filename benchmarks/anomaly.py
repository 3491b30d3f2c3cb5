"""Anomaly detection on Fashion-MNIST: train without one class, score the test set, for every class.

Run: ``python benchmarks/anomaly.py [--epochs 10]``. For each class c the autoencoder
(``AutoencoderOutlierDetector``, 784-256-64-30 ReLU, linear code) is fitted on the training
images of the other nine classes; the test set's squared reconstruction errors then rank its
images, class c being the anomalies (1,000 of 10,000). PCA with 30 components fitted on the same
images, scored by its squared reconstruction error, is the baseline. The table (ROC-AUC and
average precision) replaces the part of ``benchmarks/README.md`` between its ``anomaly``
markers; the numbers also go to ``benchmarks/results/anomaly.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import average_precision_score, roc_auc_score

from autoencoders.data.sources import load_idx_dir, locate
from autoencoders.sklearn import AutoencoderOutlierDetector

HERE = Path(__file__).parent
NAMES = "T-shirt/top trouser pullover dress coat sandal shirt sneaker bag ankle-boot".split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    x_train, y_train, x_test, y_test = load_idx_dir(locate("fashion-mnist"))
    x_train = x_train.reshape(len(x_train), -1).astype(np.float32) / 255
    x_test = x_test.reshape(len(x_test), -1).astype(np.float32) / 255
    rows = []
    for c in range(10):
        normal = x_train[y_train != c]
        t0 = time.perf_counter()
        detector = AutoencoderOutlierDetector(layers=(256, 64, 30), epochs=args.epochs, random_state=0)
        ae_scores = -detector.fit(normal).score_samples(x_test)
        seconds = time.perf_counter() - t0
        pca = PCA(30, svd_solver="full").fit(normal)
        pca_scores = ((pca.inverse_transform(pca.transform(x_test)) - x_test) ** 2).sum(1)
        anomalous = y_test == c
        row = {
            "class": c,
            "name": NAMES[c],
            "ae_roc_auc": roc_auc_score(anomalous, ae_scores),
            "pca_roc_auc": roc_auc_score(anomalous, pca_scores),
            "ae_average_precision": average_precision_score(anomalous, ae_scores),
            "pca_average_precision": average_precision_score(anomalous, pca_scores),
            "ae_seconds": seconds,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    (HERE / "results").mkdir(exist_ok=True)
    result = {"epochs": args.epochs, "rows": rows}
    (HERE / "results" / "anomaly.json").write_text(json.dumps(result, indent=2))
    _write_table(rows, args.epochs)


def _write_table(rows: list[dict], epochs: int) -> None:
    lines = [
        f"`python benchmarks/anomaly.py --epochs {epochs}`: one held-out class as the anomalies "
        "(1,000 of the 10,000 test images), the other nine classes' 54,000 training images as normal data.",
        "",
        "| held-out class | AE ROC-AUC | PCA-30 ROC-AUC | AE average precision | PCA-30 average precision |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['class']} {r['name']} | {r['ae_roc_auc']:.3f} | {r['pca_roc_auc']:.3f} | "
            f"{r['ae_average_precision']:.3f} | {r['pca_average_precision']:.3f} |"
        )
    mean = {k: np.mean([r[k] for r in rows]) for k in rows[0] if k.endswith(("auc", "precision"))}
    lines.append(
        f"| mean | {mean['ae_roc_auc']:.3f} | {mean['pca_roc_auc']:.3f} | "
        f"{mean['ae_average_precision']:.3f} | {mean['pca_average_precision']:.3f} |"
    )
    readme = HERE / "README.md"
    text = readme.read_text()
    block = "<!-- anomaly:start -->\n" + "\n".join(lines) + "\n<!-- anomaly:end -->"
    if "<!-- anomaly:start -->" in text:
        text = re.sub(r"<!-- anomaly:start -->.*?<!-- anomaly:end -->", block, text, flags=re.S)
    else:
        text += "\n## Anomaly detection: one Fashion-MNIST class held out\n\n" + block + "\n"
    readme.write_text(text)


if __name__ == "__main__":
    main()

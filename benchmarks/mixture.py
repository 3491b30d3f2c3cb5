"""The Gaussian mixture of ``cluster --method gmm`` against scikit-learn's ``GaussianMixture`` (the
one the toolkit used before), side by side on the same codes: a trained run's test split, ``k``
components with full covariances, ``n_init`` k-means starts, several seeds. Reports each fit's
seconds (scikit-learn's import apart), its BIC and its clustering accuracy against the labels.

Run (repository root, nothing else running)::

    autoencoders train --data fashion-mnist --layers 784,1000,500,250,30 --epochs 1 \\
        --batch-size 256 --out /tmp/fr-run --quiet
    python benchmarks/mixture.py /tmp/fr-run --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import autoencoders
from autoencoders.config import Config
from autoencoders.eval.agreement import clustering_accuracy
from autoencoders.eval.clustering import gaussian_log_responsibilities, gaussian_mixture


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--n-init", type=int, default=10, help="as cluster's --n-init default")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args()
    cfg = Config.load_json(args.run_dir / "config.json")
    z = autoencoders.encode(args.run_dir, cfg.data.data, "test", device="cpu").astype(np.float64)
    y = autoencoders.load_dataset(cfg.data).y_test.numpy()
    t0 = time.perf_counter()
    from sklearn.mixture import GaussianMixture

    imported = time.perf_counter() - t0
    print(f"{len(z)} test codes of size {z.shape[1]}, k = {args.k}, n_init = {args.n_init}, ", end="")
    print(f"{torch.get_num_threads()} threads; importing sklearn.mixture took {imported:.2f} s")
    print("| seed | scikit-learn: s | BIC | accuracy | torch EM: s | BIC | accuracy |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        gm = GaussianMixture(
            args.k, covariance_type="full", n_init=args.n_init, random_state=seed, reg_covar=1e-5
        ).fit(z)
        sk = (time.perf_counter() - t0, gm.bic(z), clustering_accuracy(y, gm.predict(z)))
        t0 = time.perf_counter()
        means, precision_cholesky, weights, bic = gaussian_mixture(
            torch.from_numpy(z), args.k, seed, args.n_init
        )
        seconds = time.perf_counter() - t0
        log_r = gaussian_log_responsibilities(
            torch.from_numpy(z), means, precision_cholesky, torch.log(weights)
        )
        rows.append((sk, (seconds, bic, clustering_accuracy(y, log_r.argmax(1).numpy()))))
        print(f"| {seed} | {_cells(rows[-1][0])} | {_cells(rows[-1][1])} |")
    means = [tuple(statistics.mean(r[side][j] for r in rows) for j in range(3)) for side in (0, 1)]
    print(f"| mean | {_cells(means[0])} | {_cells(means[1])} |")


def _cells(fit: tuple[float, float, float]) -> str:
    """A fit's seconds, BIC and accuracy as table cells."""
    return f"{fit[0]:.1f} | {fit[1]:.1f} | {fit[2]:.4f}"


if __name__ == "__main__":
    main()

"""Clustering: every ``autoencoders cluster`` method against k-means on pixels and on PCA codes.

For each seed, one autoencoder (DEC's 784-500-500-2000-10, ReLU, a linear code or
``--code-activation``; ``--epochs`` epochs end to end with Adam at ``--lr``, constant by default
as in DEC-keras, batch ``--batch-size`` (256), ``--loss``, masking noise ``--noise``, L2 penalty
``--weight-decay``, on every training row) is
trained with ``autoencoders.train``; then the rows of ``--split`` (default: the 10,000 test rows)
are clustered by every method with k = the number of classes, each on the same codes:

* ``kmeans``: k-means++ on the codes, 10 restarts;
* ``gmm``: a full-covariance Gaussian mixture on the codes;
* ``dec``: DEC (Xie et al. 2016) from the k-means centres;
* ``idec``: IDEC (Guo et al. 2017), DEC keeping the reconstruction loss;
* ``manifold``: N2D (McConville et al. 2020), UMAP of the codes to k dimensions, then a mixture.

Reported: accuracy (best one-to-one matching of clusters to classes), NMI and ARI, mean ± std
over seeds, and seconds per method; beside them k-means on the raw rows and on PCA codes of the
same size (10 restarts). Then, with seed 0's autoencoder, DEC and IDEC on every training row, timed
against that autoencoder's own training. The table replaces the part of ``benchmarks/README.md``
between its ``clustering-<data>`` markers; every number also goes to
``benchmarks/results/clustering_<data>.json``.

Run (from the repository root, alone on the machine)::

    python benchmarks/clustering.py --data fashion-mnist
    python benchmarks/clustering.py --data digits --split all --epochs 200 --lr 2e-3 --lr-decay onecycle \
        --loss bce --noise 0.2 --weight-decay 1e-3 --code-activation tanh --skip-train-timing \
        --seeds 0,1,2,3,4,5,6,7,8,9,10,11

After a change to the clustering methods alone, ``--reuse`` clusters the autoencoders the last run
left in ``--out-dir`` (refused unless they were trained with the same settings)::

    python benchmarks/clustering.py --data fashion-mnist --reuse

Quick check (about a minute)::

    python benchmarks/clustering.py --data digits --seeds 0 --epochs 5 --skip-train-timing --out-dir /tmp/cl
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
from pathlib import Path
from typing import Any

import autoencoders
from autoencoders.config import Config
from autoencoders.options import ACTIVATIONS, CLUSTER_METHODS

SCORES = ("accuracy", "nmi", "ari")


def settings(data: str, seed: int, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``autoencoders.train``'s options for DEC's autoencoder, trained end to end on every training
    row of ``data`` as ``args`` say (with masking noise: a denoising one, as DEC's; Adam's L2
    penalty: weight decay)."""
    width = {"digits": 64}.get(data, 784)
    return dict(
        data=data,
        out=str(out),
        layers=[width, 500, 500, 2000, 10],
        activation="relu",
        code_activation=args.code_activation,
        loss=args.loss,
        corruption="masking" if args.noise else "none",
        noise=args.noise or 0.3,
        init="scaled",
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_decay=args.lr_decay,
        weight_decay=args.weight_decay,
        val_fraction=0.0,
        compare=False,
        seed=seed,
        quiet=True,
    )


def autoencoder(data: str, seed: int, out: Path, args: argparse.Namespace) -> tuple[Path, float]:
    """The run directory and training seconds of DEC's autoencoder for ``seed``: trained now, or
    with ``--reuse``, the one an earlier run of this script left in ``out`` with the same settings
    (so a change to the clustering methods is measured without training again)."""
    options = settings(data, seed, out, args)
    if not args.reuse:
        run = autoencoders.train(overwrite=True, **options)
        return run.dir, run.metrics["train_seconds"]
    metrics = out / "metrics.json"
    if not metrics.is_file():
        sys.exit(f"--reuse: {out} holds no finished run; run once without --reuse")
    wanted = autoencoders.run.as_config(**options).flat()  # every setting but the output directory
    saved = Config.from_dict(json.loads((out / "config.json").read_text())).flat()
    differ = sorted(name for name in wanted | saved if wanted.get(name) != saved.get(name))
    if differ:
        sys.exit(f"--reuse: {out} was trained with other settings ({', '.join(differ)}); drop --reuse")
    return out, json.loads(metrics.read_text())["train_seconds"]


def machine() -> str:
    """The CPU in words: model, cores, and whether it multiplies bf16 in hardware."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = re.search(r"model name\s*:\s*(.+)", info)
    bf16 = " with bf16 units" if re.search(r"\b(amx_bf16|avx512_bf16)\b", info) else " without bf16 units"
    return f"{model.group(1) if model else platform.machine()}, {os.cpu_count()} cores{bf16 if info else ''}"


def summarise(values: list[float]) -> str:
    mean = statistics.fmean(values)
    return f"{mean:.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{mean:.3f}"


def table(results: dict[str, Any]) -> str:
    """The Markdown table of every method and baseline, mean ± std over seeds."""
    rows = ["| method | accuracy | NMI | ARI | seconds |", "|---|---|---|---|---|"]
    per_seed = results["seeds"]
    for method in results["methods"]:
        runs = [s["methods"][method] for s in per_seed]
        cells = [summarise([r[k] for r in runs]) for k in SCORES]
        rows.append(
            f"| {method} | {' | '.join(cells)} | {statistics.fmean(r['seconds'] for r in runs):.1f} |"
        )
    any_method = results["methods"][0]  # every method's summary holds the same baselines
    for base, name in (("pixels", "k-means on the raw rows"), ("pca", "k-means on PCA-10 codes")):
        values = {k: [s["methods"][any_method][f"{base}_kmeans_{k}"] for s in per_seed] for k in SCORES}
        rows.append(f"| {name} (baseline) | {' | '.join(summarise(values[k]) for k in SCORES)} | – |")
    train = [s["train_seconds"] for s in per_seed]
    rows.append("")
    extras = f", masking noise {results['noise']}" if results["noise"] else ""
    if results.get("code_activation", "linear") != "linear":
        extras += f", {results['code_activation']} code"
    extras += f", weight decay {results['weight_decay']:g}" if results.get("weight_decay") else ""
    rows_used = "all rows" if results["split"] == "all" else f"the {results['split']} rows"
    schedule = {"none": "constant", "cosine": "cosine", "onecycle": "one-cycle"}[results["lr_decay"]]
    batch = "" if results.get("batch_size", 256) == 256 else f" of batch {results['batch_size']}"
    setup = f"{results['epochs']} epochs{batch}, Adam {results['lr']:g} {schedule}, {results['loss']}{extras}"
    setup += f"; clustered: {rows_used}"
    rows.append(f"Autoencoder training: {statistics.fmean(train):.1f} s per seed ({setup}).")
    for method, timing in results.get("all_training_rows", {}).items():
        rows.append(
            f"{method} on all {timing['rows']:,} training rows: {timing['seconds']:.1f} s "
            f"({timing['seconds'] / timing['train_seconds']:.2f}× the autoencoder's training), "
            f"{timing['updates']} updates, accuracy {timing['accuracy']:.3f}."
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--split", default="test", choices=("all", "train", "test"))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--loss", default="mse", choices=("mse", "bce"))
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (one-cycle: its peak)")
    p.add_argument("--lr-decay", default="none", choices=("none", "cosine", "onecycle"))
    p.add_argument(
        "--code-activation", default="linear", choices=ACTIVATIONS, help="the code layer's activation"
    )
    p.add_argument("--noise", type=float, default=0.0, help="masking noise of the autoencoder (0: none)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="Adam's L2 penalty on the weights")
    p.add_argument("--methods", default=",".join(CLUSTER_METHODS))
    p.add_argument("--skip-train-timing", action="store_true", help="no DEC/IDEC on every training row")
    p.add_argument("--out-dir", type=Path, default=Path("runs/bench-clustering"))
    p.add_argument("--no-readme", action="store_true", help="leave benchmarks/README.md as it is")
    p.add_argument(
        "--reuse", action="store_true", help="cluster the autoencoders an earlier run left in --out-dir"
    )
    args = p.parse_args(argv)
    methods = args.methods.split(",")
    results: dict[str, Any] = {
        "command": "python benchmarks/clustering.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "data": args.data,
        "split": args.split,
        "epochs": args.epochs,
        "loss": args.loss,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "lr_decay": args.lr_decay,
        "noise": args.noise,
        "code_activation": args.code_activation,
        "weight_decay": args.weight_decay,
        "methods": methods,
        "seeds": [],
    }
    for seed in (int(s) for s in args.seeds.split(",")):
        run_dir, train_seconds = autoencoder(args.data, seed, args.out_dir / f"{args.data}-seed{seed}", args)
        entry: dict[str, Any] = {"seed": seed, "train_seconds": train_seconds, "methods": {}}
        for method in methods:
            found = autoencoders.cluster(run_dir, split=args.split, method=method, seed=seed, quiet=True)
            entry["methods"][method] = {k: v for k, v in found.summary.items() if isinstance(v, int | float)}
            print(seed, method, {k: round(found.summary[k], 4) for k in (*SCORES, "seconds")}, flush=True)
        results["seeds"].append(entry)
        if seed == 0 and not args.skip_train_timing:
            results["all_training_rows"] = {}
            for method in ("dec", "idec"):
                found = autoencoders.cluster(
                    run_dir, split="train", method=method, out=run_dir / f"train-{method}", quiet=True
                )
                m = found.summary
                results["all_training_rows"][method] = {
                    "rows": m["rows"],
                    "seconds": m["seconds"],
                    "train_seconds": train_seconds,
                    "updates": m["updates"],
                    "accuracy": m["accuracy"],
                }
                print("all training rows", method, results["all_training_rows"][method], flush=True)
    text = table(results)
    print(text)
    out = Path(__file__).parent / "results" / f"clustering_{args.data}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    if not args.no_readme:
        readme = Path(__file__).parent / "README.md"
        start, end = f"<!-- clustering-{args.data}:start -->", f"<!-- clustering-{args.data}:end -->"
        body = f"{start}\n`{results['command']}` ({results['machine']}):\n\n{text}\n{end}"
        old = readme.read_text()
        pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
        readme.write_text(
            pattern.sub(body, old) if pattern.search(old) else old.rstrip() + "\n\n" + body + "\n"
        )


if __name__ == "__main__":
    main()

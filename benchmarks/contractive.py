"""The contractive penalty of a deep encoder, exact against estimated from random projections
(``--contractive-projections K``), side by side in one process: the same stack, data, epochs,
precision and seed, and a plain run without the penalty as the floor.

Each row trains Fashion-MNIST (54,000 rows, 6,000 held out) for ``--epochs`` epochs and reports
its training time, its time against the plain run's, the test SSE per image, the linear probe's
accuracy, and the exact mean ‖∂code/∂x‖²_F over ``--jacobian-rows`` test rows: what the penalty
is meant to lower, measured the same way for every row.

With ``--stage-only``, just the first part it prints: one Adam step of a greedy stage's
one-layer encoder (784 → 1000 ReLU units, a batch of 256 random rows) with the penalty in closed
form against the same layer's by autograd (one backward pass per unit).

Run (repository root, nothing else running)::

    python benchmarks/contractive.py --out-dir benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

# isort: off
import autoencoders  # before torch: the package's thread policy
import torch

# isort: on
from autoencoders import DenseAutoencoder
from autoencoders.data.datasets import load_dataset
from autoencoders.models.objectives import jacobian_norm


def stage_step_ms(autograd: bool, steps: int) -> float:
    """Milliseconds of one training step of a 784-1000 ReLU layer pair with the contractive
    penalty, in closed form or (``autograd``) one backward pass per code unit."""
    torch.manual_seed(0)
    model, x = DenseAutoencoder([784, 1000], code_activation="relu"), torch.rand(256, 784)
    if autograd:
        model.one_layer_encoder = lambda: None
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)

    def step() -> None:
        optimizer.zero_grad()
        out = model(x)
        (model.nll(out.logits, x).mean() + 0.01 * jacobian_norm(model, x, out)).backward()
        optimizer.step()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", default="784,1000,500,250,30")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--weight", type=float, default=0.01, help="--contractive")
    p.add_argument("--projections", type=int, nargs="+", default=[1, 4], help="each K at least 1")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--jacobian-rows", type=int, default=1000)
    p.add_argument("--out-dir", type=Path, default=None)
    p.add_argument("--stage-only", action="store_true", help="only the greedy stage's step")
    args = p.parse_args()
    if min(args.projections) < 1:
        p.error("--projections: each K is at least 1 (the exact penalty is always run)")
    stage = {"closed_form_ms": stage_step_ms(False, 20), "autograd_ms": stage_step_ms(True, 2)}
    print(
        f"a greedy stage 784 -> 1000 (ReLU), one step at batch 256: {stage['autograd_ms']:.1f} ms by "
        f"autograd, {stage['closed_form_ms']:.1f} ms in closed form"
    )
    if args.stage_only:
        return
    settings = {
        "data": "fashion-mnist", "layers": [int(w) for w in args.layers.split(",")], "epochs": args.epochs,
        "batch_size": 256, "lr": 2e-3, "precision": args.precision, "seed": 0, "quiet": True,
    }  # fmt: skip
    cases = {"plain": {}, "exact": {"contractive": args.weight}}
    cases |= {
        f"{k} projection{'s' * (k > 1)}": {"contractive": args.weight, "contractive_projections": k}
        for k in args.projections
    }
    x = load_dataset(autoencoders.Config().replace(data="fashion-mnist").data).x_test[: args.jacobian_rows]
    rows = {}
    print(
        f"Fashion-MNIST, {args.layers}, {args.epochs} epochs, batch 256, --contractive {args.weight:g}, "
        f"{args.precision}, {torch.get_num_threads()} threads, torch {torch.__version__}\n"
    )
    print("| penalty | train time | × plain | test SSE/image | linear probe | test ‖J‖²_F |")
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as work:
        for name, options in cases.items():
            run = autoencoders.train(**settings, **options, out=str(Path(work) / name.replace(" ", "-")))
            model = run.model.cpu().eval()
            with torch.no_grad():
                jacobian = jacobian_norm(model, x).item()
            m = run.metrics
            rows[name] = {
                "options": options,
                "train_seconds": m["train_seconds"],
                "test_sse_per_image": m["test_sse_per_image"],
                "linear_probe_accuracy": m["linear_probe_accuracy"],
                "test_jacobian_norm": jacobian,
            }
            ratio = m["train_seconds"] / rows["plain"]["train_seconds"]
            print(
                f"| {name} | {m['train_seconds']:.1f} s | {ratio:.1f}× | {m['test_sse_per_image']:.3f} | "
                f"{m['linear_probe_accuracy']:.4f} | {jacobian:.3f} |"
            )
    if args.out_dir is not None:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        machine = {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "os": platform.platform(),
        }
        result = {
            "settings": settings | {"contractive": args.weight},
            "machine": machine,
            "greedy_stage_step": stage,
            "runs": rows,
        }
        (args.out_dir / "contractive.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

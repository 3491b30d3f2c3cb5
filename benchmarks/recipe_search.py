"""The fast recipe of ``stacked_vs_tutorial.py`` alone, without the reference: its test-SSE curve.

A recipe search needs many runs, and the reference pipeline takes minutes each time; this
script runs only ``run_ours`` with the ``--fast-*`` recipe (same flags, same data, same clock:
test evaluations excluded) and prints the test SSE/image after every epoch with the wall time
at that point, to compare with the reference's final SSE from a full run of the benchmark.
Each run appends one JSON line to ``OUT_DIR/recipe_search.jsonl``.

    python benchmarks/recipe_search.py --fast-init scaled --fast-pretrain-epochs 0 --fast-epochs 7 \\
        --fast-lr-decay cosine --precision fp32
"""

from __future__ import annotations

import json

from stacked_vs_tutorial import parse_args, recipes, run_ours, setup


def main() -> None:
    """Run the fast recipe once; print its curve and append it to ``recipe_search.jsonl``."""
    args = parse_args()
    device, x_train, x_test = setup(args)
    recipe = recipes(args)["ours (fast recipe)"]
    result = run_ours(x_train, x_test, args, device, recipe)
    print(f"recipe {json.dumps(recipe)}, precision {result['precision']}")
    print("epoch | seconds | test SSE/image")
    for point in result["curve"]:
        print(f"{point['epoch']:>5} | {point['seconds']:7.1f} | {point['test_sse']:.3f}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    line = {k: result[k] for k in ("recipe", "precision", "stage_seconds", "total_seconds", "curve")}
    with open(args.out_dir / "recipe_search.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()

"""The run directory: the one owner of its file names, and its manifest.

``manifest.json`` says what the directory holds (format version, model kind, input shape,
code size) and whether training **completed**; commands that need a trained model refuse
an incomplete run and say how to continue it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .checkpoint import write_json
from .errors import UserError

RUN_FORMAT = 2
CONFIG, MANIFEST, WEIGHTS = "config.json", "manifest.json", "model.safetensors"
METRICS, HISTORY, STATE = "metrics.json", "history.csv", "state.safetensors"
RECONSTRUCTIONS, LOSS, PRETRAINING, SAMPLES = (
    "reconstructions.png",
    "loss.png",
    "pretraining.png",
    "samples.png",
)
CLASSIFIER_WEIGHTS, CLASSIFIER_CONFIG = "classifier.safetensors", "classifier.json"
TENSORBOARD = "tensorboard"


def write_manifest(
    run_dir: Path, kind: str, input_shape: tuple[int, ...], code_size: int, completed: bool
) -> None:
    """Record what the run is and whether it finished."""
    write_json(
        Path(run_dir) / MANIFEST,
        {
            "format": RUN_FORMAT,
            "kind": kind,
            "input_shape": list(input_shape),
            "code_size": code_size,
            "completed": completed,
        },
    )


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    """The manifest of ``run_dir``; a UserError when it is not a run directory of this format."""
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST
    if not path.is_file():
        if (run_dir / CONFIG).is_file():
            raise UserError(f"{run_dir} has no {MANIFEST}: it was made by an older version; train it again")
        raise UserError(f"{run_dir} is not a run directory (no {MANIFEST}); pass the --out of a training run")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON ({e}); the run directory is damaged") from None
    if manifest.get("format") != RUN_FORMAT:
        raise UserError(f"{run_dir} has run format {manifest.get('format')}; this version reads {RUN_FORMAT}")
    return manifest


def require_complete(run_dir: str | Path) -> dict[str, Any]:
    """The manifest of a run that finished training; a UserError naming the fix otherwise."""
    manifest = read_manifest(run_dir)
    if not manifest["completed"]:
        where = ""
        if (Path(run_dir) / STATE).is_file():
            from .training.state import read_state

            info = read_state(Path(run_dir) / STATE)[1]
            where = f" (it stopped in stage '{info['stage']}' after epoch {info['loop']['epoch']})"
        raise UserError(
            f"{run_dir} is an incomplete run{where}; continue it with: autoencoders train --resume {run_dir}"
        )
    return manifest

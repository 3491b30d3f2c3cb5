"""The run directory: the one owner of its file names, and its manifest.

``manifest.json`` says what the directory holds (format version, model kind, input shape,
code size) and whether training **completed**; commands that need a trained model refuse
an incomplete run and say how to continue it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .checkpoint import file_sha256, load_weights, write_json
from .errors import UserError

RUN_FORMAT = 3  # 3: the manifest records the SHA-256 of every weight file
CONFIG, MANIFEST, WEIGHTS = "config.json", "manifest.json", "model.safetensors"
METRICS, HISTORY, STATE = "metrics.json", "history.csv", "state.safetensors"
RECONSTRUCTIONS, LOSS, PRETRAINING, SAMPLES = (
    "reconstructions.png",
    "loss.png",
    "pretraining.png",
    "samples.png",
)
CLASSIFIER_WEIGHTS, CLASSIFIER_CONFIG = "classifier.safetensors", "classifier.json"
TENSORBOARD, SNAPSHOTS = "tensorboard", "snapshots"


def write_manifest(
    run_dir: Path,
    kind: str,
    input_shape: tuple[int, ...],
    code_size: int,
    completed: bool,
    stopped: str | None = None,
) -> None:
    """Record what the run is, whether it finished (or why it ``stopped``) and, once it has, its
    weight files' SHA-256."""
    run_dir = Path(run_dir)
    weights = sorted(p for p in run_dir.glob("*.safetensors") if p.name != STATE) if completed else []
    write_json(
        run_dir / MANIFEST,
        {
            "format": RUN_FORMAT,
            "kind": kind,
            "input_shape": list(input_shape),
            "code_size": code_size,
            "completed": completed,
            "sha256": {p.name: file_sha256(p) for p in weights},
        }
        | ({"stopped": stopped} if stopped else {}),
    )


def check_format(found: object, where: Path, what: str = "run format") -> None:
    """A UserError naming both versions unless ``found`` is the format this version reads."""
    if found == RUN_FORMAT:
        return
    if isinstance(found, int) and found > RUN_FORMAT:
        raise UserError(
            f"{where} was written by a newer version of autoencoders ({what} {found}; this version "
            f"reads {RUN_FORMAT}); upgrade with: pip install --upgrade autoencoders"
        )
    raise UserError(
        f"{where} has {what} {found}, from an older version (this one reads {RUN_FORMAT}); train it again"
    )


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    """The manifest of ``run_dir``; a UserError when it is not a run directory of this format."""
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST
    if not path.is_file():
        if (run_dir / CONFIG).is_file():
            raise UserError(
                f"{run_dir} has a config.json but no {MANIFEST}: training stopped before its first "
                "step or the directory was made by an older version; train it again"
            )
        raise UserError(f"{run_dir} is not a run directory (no {MANIFEST}); pass the --out of a training run")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({e}); the run directory is damaged") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{path} is not a manifest (a JSON object); the run directory is damaged")
    check_format(manifest.get("format"), run_dir)
    return manifest


def read_weights(run_dir: str | Path, name: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """The tensors of weight file ``name``, verified against the SHA-256 the manifest records."""
    checksums = manifest.get("sha256")
    expected = checksums.get(name) if isinstance(checksums, dict) else None
    if not isinstance(expected, str):
        raise UserError(f"{Path(run_dir) / MANIFEST} records no checksum for {name}; train the run again")
    return load_weights(Path(run_dir) / name, expected)


def require_complete(run_dir: str | Path) -> dict[str, Any]:
    """The manifest of a run that finished training; a UserError naming the fix otherwise."""
    manifest = read_manifest(run_dir)
    if manifest.get("stopped"):
        raise UserError(f"{run_dir} did not finish: {manifest['stopped']}")
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

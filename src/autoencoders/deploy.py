"""A trained run's encoder, decoder or whole autoencoder as an ONNX or TorchScript file for serving,
the input scaling folded in, with a JSON sidecar that says what goes in and comes out."""

from __future__ import annotations

import importlib.util
import io
import math
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .data.specs import IN_MEMORY, parse_spec
from .errors import UserError
from .io.checkpoint import atomic_write, check_writable, write_json
from .options import EXPORT_FORMATS, EXPORT_PARTS, IDX_KINDS
from .trained import TrainedRun, open_run

OPSET = 17


class Served(nn.Module):
    """One part of a trained autoencoder in the data's own units: rows as the training data was read
    (scaled and clipped to [0, 1] inside, as every command scales them) to codes (``encoder``; a
    VAE's posterior means), codes to rows (``decoder``), or rows to their reconstructions
    (``autoencoder``)."""

    def __init__(self, run: TrainedRun, part: str):
        super().__init__()
        self.model, self.part = run.model, part
        offset, span = (torch.as_tensor(a, dtype=torch.float32) for a in run.scaler)
        self.register_buffer("offset", offset)
        self.register_buffer("span", span)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.part == "decoder":
            return self.model.decode(x) * self.span + self.offset
        rows = ((x - self.offset) / self.span).clamp(0, 1)
        if self.part == "encoder":
            return self.model.encode(rows)
        return self.model.reconstruct(rows) * self.span + self.offset


def export(
    run_dir: str | Path, out: str | Path, fmt: str = "onnx", part: str = "encoder"
) -> tuple[Path, dict[str, Any]]:
    """Write ``part`` of a trained run to ``out`` as ``fmt`` (``onnx`` or ``torchscript``) with a
    dynamic batch axis, and ``out`` + ``.json`` describing it; return the sidecar's path and content."""
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"--format must be onnx or torchscript, not '{fmt}'")
    if part not in EXPORT_PARTS:
        raise UserError(f"--part must be one of {', '.join(EXPORT_PARTS)}, not '{part}'")
    if not isinstance(out, str | Path):
        raise UserError(f"--out must be the path of the file to write, not {out!r}")
    out = Path(out)
    if out.suffix.lower() != (suffix := EXPORT_FORMATS[fmt]):
        raise UserError(f"--out {out}: {fmt} files end in {suffix}; give a name like model{suffix}")
    if fmt == "onnx" and importlib.util.find_spec("onnx") is None:
        raise UserError("--format onnx needs the onnx package: pip install 'autoencoders[export]'")
    check_writable(out.parent)
    described = out.with_name(out.name + ".json")
    for path in (out, described):  # both, before either is written
        if path.is_dir():
            raise UserError(f"--out {out}: {path} is a directory; give another file name")
    run = open_run(run_dir)
    served = Served(run, part).eval().requires_grad_(False)  # outputs a server reads without detaching
    n_features, code_size = math.prod(run.model.input_shape), run.model.code_size
    width_in = code_size if part == "decoder" else n_features
    width_out = code_size if part == "encoder" else n_features
    offset, span = served.offset, served.span
    example = torch.rand(2, code_size) if part == "decoder" else (offset + 0.5 * span).expand(2, -1)
    kind = run.manifest["kind"]
    try:
        data = _onnx(served, example) if fmt == "onnx" else _torchscript(served, example)
    except Exception as e:  # the exporters raise many kinds; the user needs the first line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"the '{kind}' model's {part} cannot be exported to {fmt} ({first})") from None
    atomic_write(out, lambda tmp: Path(tmp).write_bytes(data))
    sidecar = {
        "format": fmt,
        "part": part,
        "kind": kind,
        "run_dir": str(Path(run_dir).resolve()),
        # float32 at both ends: ONNX Runtime refuses float64 rows
        "input": {
            "name": "input",
            "shape": ["batch", width_in],
            "dtype": "float32",
            "units": _units(run, part, "input"),
        },
        "output": {
            "name": "output",
            "shape": ["batch", width_out],
            "dtype": "float32",
            "units": _units(run, part, "output"),
        },
        "input_shape": run.manifest["input_shape"],
        "code_size": code_size,
        **({"columns": run.cfg.data.columns} if run.cfg.data.columns else {}),  # a data frame's, in order
        **({"opset": OPSET} if fmt == "onnx" else {}),
    }
    write_json(described, sidecar)
    return described, sidecar


def _units(run: TrainedRun, part: str, end: str) -> str:
    """What the numbers at one ``end`` of ``part`` are: codes, or rows read as the run read its data."""
    if (part, end) in (("encoder", "output"), ("decoder", "input")):
        return "codes"
    data = run.cfg.data
    kind = parse_spec(data.data)[0] if data.data != IN_MEMORY else IN_MEMORY
    shape = run.manifest["input_shape"]
    if kind == "digits":
        read = "scikit-learn's digits: pixel values 0 to 16 divided by 16"
    elif kind in IDX_KINDS:
        read = "uint8 pixels divided by 255"
    elif kind == "images":
        size = f"resized to {data.image_size[0]}×{data.image_size[1]} (bilinear), " if data.image_size else ""
        read = f"images {size}{'in gray' if shape[0] == 1 else 'in RGB'}, uint8 pixels divided by 255"
    elif kind == "csv":
        read = "the CSV's feature columns as numbers"
    else:  # .npy files and rows in memory
        read = "the numbers as given, uint8 ones divided by 255"
    if data.columns:
        read += ", in the order of the columns named below"
    layout = f", flattened from {'×'.join(map(str, shape))} in that order" if len(shape) > 1 else ""
    return f"rows as the run read its data ({read}){layout}"


def _onnx(served: Served, example: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript-based exporter announces its successor
        warnings.simplefilter("ignore")
        torch.onnx.export(
            served,
            (example,),
            buf,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return buf.getvalue()


def _torchscript(served: Served, example: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():  # TorchScript announces torch.export; serving stacks still read it
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(served, example, check_trace=False), buf)
    return buf.getvalue()

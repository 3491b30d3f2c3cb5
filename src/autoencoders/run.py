"""The Python API: train a configured model into a run directory, load it back, use it."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import viz
from .checkpoint import load_weights, save_weights, write_json, write_text
from .config import Config, UserError
from .data import Dataset, apply_scaler, load_dataset, read_data
from .metrics import evaluate, reconstruct_all
from .models import DenseAutoencoder
from .train import fit, resolve_device, resolve_precision

WEIGHTS, CONFIG, METRICS, HISTORY = "model.safetensors", "config.json", "metrics.json", "history.csv"


@dataclass
class Run:
    """A finished training run: where it lives and what it produced."""

    dir: Path
    config: Config
    model: DenseAutoencoder
    metrics: dict[str, Any]
    history: list[dict[str, Any]]


def as_config(config: Config | dict | str | Path | None = None, **overrides: Any) -> Config:
    """A validated Config from a Config, nested dict, TOML path or nothing, plus flat overrides."""
    if config is None:
        cfg = Config()
    elif isinstance(config, Config):
        cfg = config
    elif isinstance(config, dict):
        cfg = Config.from_dict(config)
    else:
        from .config import load_toml

        cfg = Config.from_dict(load_toml(config))
    cfg = cfg.replace(**overrides) if overrides else Config.from_dict(cfg.to_dict())
    return cfg


def _new_run_dir(cfg: Config) -> Path:
    if cfg.out:
        return Path(cfg.out)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-{cfg.model.model}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def _save_model(path: Path, model: DenseAutoencoder, ds: Dataset) -> None:
    tensors = dict(model.state_dict())
    tensors["input_offset"], tensors["input_span"] = ds.offset, ds.span
    save_weights(path, tensors)


def _history_csv(history: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]) if history else ["stage"])
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


def train(config: Config | dict | str | Path | None = None, **overrides: Any) -> Run:
    """Train the configured model; write config, weights, metrics, history and figures."""
    cfg = as_config(config, **overrides)
    torch.manual_seed(cfg.train.seed)
    device = resolve_device(cfg.train.device)
    ds = load_dataset(cfg.data)
    model = DenseAutoencoder.from_config(cfg.model, ds.n_features).to(device)
    cfg.model.layers = model.layers  # config.json records the widths actually used
    out = _new_run_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / CONFIG, cfg.to_dict())
    x_train, x_val = ds.x_train.to(device), ds.x_val.to(device)

    def checkpoint(_epoch: int) -> None:
        _save_model(out / WEIGHTS, model, ds)

    t0 = time.perf_counter()
    history: list[dict] = []
    if cfg.pretrain.pretrain == "greedy":
        from .layerwise import greedy_pretrain

        history += greedy_pretrain(model, x_train, x_val, cfg)
    stage = "fine-tune" if history else "train"
    history += fit(model, x_train, x_val, cfg.train, cfg.train.epochs, stage=stage, on_epoch=checkpoint)
    train_seconds = time.perf_counter() - t0
    _save_model(out / WEIGHTS, model, ds)

    metrics = evaluate(model, ds)
    seen = len(x_train) * len(history)  # every history row is one pass over the training split
    metrics.update(
        train_seconds=train_seconds,
        samples_per_second=seen / train_seconds if train_seconds > 0 else 0.0,
        epochs_run=sum(1 for h in history if h["stage"] == stage),
        precision=resolve_precision(cfg.train.precision, device),
        device=str(device),
        n_train=len(ds.x_train),
        n_test=len(ds.x_test),
    )
    write_json(out / METRICS, metrics)
    write_text(out / HISTORY, _history_csv(history))
    _figures(out, model, ds, history)
    return Run(out, cfg, model, metrics, history)


def _figures(out: Path, model: DenseAutoencoder, ds: Dataset, history: list[dict]) -> None:
    device = next(model.parameters()).device
    x = ds.x_test[:20]
    recon = reconstruct_all(model, x.to(device)).cpu().numpy()
    viz.reconstruction_grid(
        x.numpy(),
        recon,
        out / "reconstructions.png",
        ds.image_shape,
        title=f"test images (top) and reconstructions (bottom), code size {model.code_size}",
    )
    if history:
        viz.loss_curve(history, out / "loss.png")


def _read_run(run_dir: str | Path) -> tuple[Config, dict[str, torch.Tensor]]:
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise UserError(f"{run_dir} is not a run directory (no {CONFIG}); pass the --out of a training run")
    cfg = Config.load_json(run_dir / CONFIG)
    return cfg, load_weights(run_dir / WEIGHTS)


def load(run_dir: str | Path, device: str = "cpu") -> DenseAutoencoder:
    """The trained model of a run directory, in eval mode."""
    cfg, tensors = _read_run(run_dir)
    tensors.pop("input_offset", None)
    tensors.pop("input_span", None)
    model = DenseAutoencoder.from_config(cfg.model, cfg.model.layers[0])
    model.load_state_dict(tensors)
    return model.to(device).eval()


def _scaler(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    tensors = load_weights(Path(run_dir) / WEIGHTS)
    return tensors["input_offset"].numpy(), tensors["input_span"].numpy()


def evaluate_run(run_dir: str | Path, data: str | None = None) -> dict[str, Any]:
    """Recompute a run's test metrics from its checkpoint (optionally on other data)."""
    cfg, _ = _read_run(run_dir)
    if data is not None:
        cfg.data.data = data
    model = load(run_dir)
    ds = load_dataset(cfg.data, scaler=_scaler(run_dir))
    _check_width(model, ds.n_features, cfg.data.data)
    return evaluate(model, ds)


def _check_width(model: DenseAutoencoder, n_features: int, spec: str) -> None:
    if n_features != model.layers[0]:
        raise UserError(f"{spec} has {n_features} features but the model expects {model.layers[0]}")


def load_rows(run_dir: str | Path, data: str, split: str = "all") -> tuple[np.ndarray, tuple | None]:
    """Rows of ``data`` scaled as the run's training data was; ``split`` picks a part."""
    cfg, _ = _read_run(run_dir)
    cfg.data.data = data
    offset, span = _scaler(run_dir)
    if split == "all":
        raw = read_data(cfg.data)
        x = raw.x if raw.x_test is None else np.concatenate([raw.x, raw.x_test])
        return apply_scaler(x, offset, span), raw.image_shape
    ds = load_dataset(cfg.data, scaler=(offset, span))
    return {"train": ds.x_train, "val": ds.x_val, "test": ds.x_test}[split].numpy(), ds.image_shape


def encode(run_dir: str | Path, data: str, split: str = "all") -> np.ndarray:
    """Codes of ``data`` under a trained run's encoder."""
    from .metrics import encode_all

    model = load(run_dir)
    x, _ = load_rows(run_dir, data, split)
    _check_width(model, x.shape[1], data)
    return encode_all(model, torch.from_numpy(x)).numpy()


def reconstruct(
    run_dir: str | Path, data: str, split: str = "all"
) -> tuple[np.ndarray, np.ndarray, tuple | None]:
    """(inputs, reconstructions, image shape) of ``data`` under a trained run."""
    model = load(run_dir)
    x, shape = load_rows(run_dir, data, split)
    _check_width(model, x.shape[1], data)
    return x, reconstruct_all(model, torch.from_numpy(x)).numpy(), shape

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

from . import distributed, viz
from .checkpoint import load_weights, save_weights, write_json, write_text
from .classify import ClassifierResult, save_classifier, train_classifier
from .config import Config, UserError
from .data import Dataset, apply_scaler, load_dataset, read_data
from .metrics import evaluate, reconstruct_all
from .models import DenseAutoencoder
from .stream import RowStream
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
    """Train the configured model; write config, weights, metrics, history and figures.

    Under ``torchrun`` every rank trains its slice of each batch and returns the same model;
    rank 0 alone writes the run directory and computes the metrics.
    """
    cfg = as_config(config, **overrides)
    device = distributed.setup(cfg.train.device) or resolve_device(cfg.train.device)
    rank, world = distributed.rank_and_size()
    main = rank == 0
    torch.manual_seed(cfg.train.seed)
    ds = load_dataset(cfg.data)
    model = DenseAutoencoder.from_config(cfg.model, ds.n_features).to(device)
    if world > 1:
        torch.manual_seed(cfg.train.seed + rank)  # same initial weights, different corruption noise
    cfg.model.layers = model.layers  # config.json records the widths actually used
    out = _new_run_dir(cfg)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / CONFIG, cfg.to_dict())
    x_train, x_val = ds.x_train.to(device), ds.x_val.to(device)

    def checkpoint(_epoch: int) -> None:
        if main:
            _save_model(out / WEIGHTS, model, ds)

    t0 = time.perf_counter()
    history: list[dict] = []
    if cfg.pretrain.pretrain == "greedy" and cfg.pretrain.pretrain_epochs > 0:
        from .layerwise import greedy_pretrain

        history += greedy_pretrain(model, x_train, x_val, cfg, int(cfg.data.memory_budget * 2**30))
    stage = "fine-tune" if history else "train"
    history += fit(model, x_train, x_val, cfg.train, cfg.train.epochs, stage=stage, on_epoch=checkpoint)
    train_seconds = time.perf_counter() - t0
    if not main:
        if stage == "fine-tune" and cfg.pretrain.compare:
            _no_pretraining_baseline(cfg, ds, device, None)  # rank 0 trains it too
        return Run(out, cfg, model, {}, history)
    _save_model(out / WEIGHTS, model, ds)

    metrics = evaluate(model, ds)
    final = [h for h in history if h["stage"] == stage]
    final_seconds = sum(h["seconds"] for h in final)
    metrics.update(
        train_seconds=train_seconds,
        pretrain_seconds=sum(h["seconds"] for h in history if h["stage"] != stage),
        # end-to-end training throughput (pretraining epochs are cheaper and reported per stage)
        samples_per_second=len(x_train) * len(final) / final_seconds if final_seconds > 0 else 0.0,
        epochs_run=sum(1 for h in history if h["stage"] == stage),
        precision=resolve_precision(cfg.train.precision, device),
        device=str(device),
        processes=world,
        n_train=len(ds.x_train),
        n_test=len(ds.x_test),
    )
    if stage == "fine-tune" and cfg.pretrain.compare:
        history += _no_pretraining_baseline(cfg, ds, device, metrics)
    write_json(out / METRICS, metrics)
    write_text(out / HISTORY, _history_csv(history))
    _figures(out, model, ds, history, metrics)
    return Run(out, cfg, model, metrics, history)


def _no_pretraining_baseline(
    cfg: Config, ds: Dataset, device: torch.device, metrics: dict | None
) -> list[dict]:
    """Train the same stack from random init for the same epochs; add its numbers to ``metrics``."""
    torch.manual_seed(cfg.train.seed)
    model = DenseAutoencoder.from_config(cfg.model, ds.n_features).to(device)
    t0 = time.perf_counter()
    history = fit(
        model, ds.x_train.to(device), ds.x_val.to(device), cfg.train, cfg.train.epochs, stage="no pretraining"
    )
    seconds = time.perf_counter() - t0
    if metrics is None:
        return history
    m = evaluate(model, ds, pca_baseline=False)
    metrics["no_pretraining_sse_per_image"] = m["test_sse_per_image"]
    metrics["no_pretraining_train_seconds"] = seconds
    if "linear_probe_accuracy" in m:
        metrics["no_pretraining_linear_probe_accuracy"] = m["linear_probe_accuracy"]
    return history


def _figures(out: Path, model: DenseAutoencoder, ds: Dataset, history: list[dict], metrics: dict) -> None:
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
    if "no_pretraining_sse_per_image" in metrics:
        viz.pretraining_comparison(history, metrics, out / "pretraining.png")


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
    rows = {"train": ds.x_train, "val": ds.x_val, "test": ds.x_test}[split]
    if isinstance(rows, RowStream):
        rows = rows.materialise()
    return rows.numpy(), ds.image_shape


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


def classify(
    run_dir: str | Path,
    labels_fraction: float = 1.0,
    out: str | Path | None = None,
    from_scratch: bool = False,
    data: str | None = None,
    **train_overrides: Any,
) -> ClassifierResult:
    """Put a softmax head on a run's encoder and fine-tune it on a fraction of the labels.

    Writes ``classifier.safetensors``, ``classifier.json`` and ``metrics.json`` to ``out``
    (default: ``RUN_DIR/classifier-<fraction>``). ``train_overrides`` (``epochs``, ``lr``,
    ``batch_size``, ``seed``, ...) replace the run's own training settings.
    """
    cfg, _ = _read_run(run_dir)
    if data is not None:
        cfg.data.data = data
    cfg = cfg.replace(**{"epochs": 50, "lr": 1e-3, "patience": 0, **train_overrides})
    model = load(run_dir, str(resolve_device(cfg.train.device)))
    ds = load_dataset(cfg.data, scaler=_scaler(run_dir))
    _check_width(model, ds.n_features, cfg.data.data)
    result = train_classifier(model, ds, cfg.train, labels_fraction, from_scratch)
    name = f"classifier-{labels_fraction:g}" + ("-scratch" if from_scratch else "")
    out = Path(out) if out else Path(run_dir) / name
    save_classifier(out, result, {"run_dir": str(run_dir), "data": cfg.data.data, "train": vars(cfg.train)})
    return result

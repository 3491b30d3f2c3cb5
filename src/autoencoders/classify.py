"""A softmax head on a (pretrained) encoder, fine-tuned with labels: the SDAE classifier.

The classifier holds the autoencoder's own encoder layers (any model kind), so supervised
fine-tuning updates exactly the tensors unsupervised training produced. The same one
training loop trains it, through the supervised step, on (inputs, labels) batches.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .checkpoint import file_sha256, save_weights, write_json
from .config import TrainConfig
from .data import Dataset
from .errors import UserError
from .metrics import encode_all
from .models import Autoencoder
from .nn import set_trainable
from .rundir import CLASSIFIER_CONFIG, CLASSIFIER_WEIGHTS, METRICS, RUN_FORMAT
from .training.loop import fit
from .training.steps import supervised_step


class EncoderClassifier(nn.Module):
    """``autoencoder.encode`` followed by a linear softmax layer over ``n_classes``."""

    def __init__(self, autoencoder: Autoencoder, n_classes: int):
        super().__init__()
        self.autoencoder = autoencoder  # registered: its encoder is trained, not copied
        self.head = nn.Linear(autoencoder.code_size, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        return self.head(self.autoencoder.encode(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """Predicted class index of every row (eval mode)."""
        self.eval()
        return torch.cat([self(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def make_classifier(
    autoencoder: Autoencoder, n_classes: int, freeze_encoder: bool = False, copy_encoder: bool = True
) -> EncoderClassifier:
    """A softmax head on (a copy of) ``autoencoder``'s encoder; the decoder is frozen, and so is
    the encoder with ``freeze_encoder`` (then only the head learns)."""
    if copy_encoder:
        autoencoder = copy.deepcopy(autoencoder)  # the caller's autoencoder stays as it was
    set_trainable(autoencoder, False)  # the decoder takes no part in the classifier's loss
    if not freeze_encoder:
        for part in autoencoder.encoder_modules():
            set_trainable(part, True)
    device = next(autoencoder.parameters()).device
    return EncoderClassifier(autoencoder, n_classes).to(device)


def labelled_subset(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted row indices of a class-stratified ``fraction`` of ``y`` (at least one per class)."""
    if not 0 < fraction <= 1:
        raise UserError(f"--labels-fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        k = max(1, int(round(fraction * len(rows))))
        picked.append(rng.choice(rows, size=k, replace=False))
    return np.sort(np.concatenate(picked))


@dataclass
class ClassifierResult:
    """A fine-tuned classifier and its numbers."""

    model: EncoderClassifier
    classes: np.ndarray
    metrics: dict[str, Any]
    history: list[dict[str, Any]]


def train_classifier(
    autoencoder: Autoencoder,
    ds: Dataset,
    cfg: TrainConfig,
    labels_fraction: float = 1.0,
    from_scratch: bool = False,
    freeze_encoder: bool = False,
    unfreeze_epochs: int = 0,
    unfreeze_lr: float | None = None,
) -> ClassifierResult:
    """Fine-tune ``autoencoder``'s encoder with a softmax head on a fraction of the training labels.

    ``freeze_encoder`` trains the head alone on the encoder's codes (a linear classifier on
    frozen features); ``unfreeze_epochs`` then fine-tunes encoder and head together at
    ``unfreeze_lr`` (default: a tenth of ``cfg.lr``), so the pretrained layers move little.
    ``from_scratch`` re-initialises the encoder first: the same network and budget without
    pretraining, the baseline that shows what pretraining is worth. Returns test accuracy.
    """
    if unfreeze_epochs < 0 or cfg.epochs < 1 or (unfreeze_lr is not None and unfreeze_lr <= 0):
        raise UserError("--epochs must be >= 1, --unfreeze-epochs >= 0 and --unfreeze-lr > 0")
    if unfreeze_epochs and not freeze_encoder:
        raise UserError("--unfreeze-epochs follows head-only training: give --freeze-encoder too")
    if ds.y_train is None or ds.y_test is None:
        raise UserError("classification needs labels: use a labelled dataset (or --labels / --label-column)")
    classes, y_train = np.unique(ds.y_train.numpy(), return_inverse=True)
    if len(classes) < 2:
        raise UserError("classification needs at least two classes in the training labels")
    y_test = _class_index(ds.y_test.numpy(), classes)
    y_val = _class_index(ds.y_val.numpy(), classes) if ds.y_val is not None else None
    autoencoder = copy.deepcopy(autoencoder)  # the caller's autoencoder stays as it was
    if from_scratch:
        torch.manual_seed(cfg.seed)
        autoencoder.reset_parameters()
    torch.manual_seed(cfg.seed)
    model = make_classifier(autoencoder, len(classes), freeze_encoder, copy_encoder=False)
    device = next(autoencoder.parameters()).device
    rows = labelled_subset(y_train, labels_fraction, cfg.seed)
    train = (ds.x_train[rows].to(device), torch.from_numpy(y_train[rows]).to(device))
    # validation labels are as scarce as training labels: the same fraction of the validation split
    if y_val is not None and len(y_val):
        vrows = labelled_subset(y_val, labels_fraction, cfg.seed)
        val = (ds.x_val[vrows].to(device), torch.from_numpy(y_val[vrows]).to(device))
    else:
        val = train
    t0 = time.perf_counter()
    if freeze_encoder:
        fit_head(model, *train)
    step = supervised_step(model, cfg, cfg.epochs * math.ceil(len(rows) / cfg.batch_size))
    history = fit(step, train, val, cfg, cfg.epochs, stage="classify")
    if unfreeze_epochs:
        for part in autoencoder.encoder_modules():
            set_trainable(part, True)
        cfg = dataclasses.replace(cfg, lr=cfg.lr / 10 if unfreeze_lr is None else unfreeze_lr)
        step = supervised_step(model, cfg, unfreeze_epochs * math.ceil(len(rows) / cfg.batch_size))
        history += fit(step, train, val, cfg, unfreeze_epochs, stage="unfreeze")
    seconds = time.perf_counter() - t0
    pred = model.predict(ds.x_test.to(device)).cpu().numpy()
    metrics = {
        "test_accuracy": float((pred == y_test).mean()),
        "labels_fraction": labels_fraction,
        "labelled_examples": len(rows),
        "from_scratch": from_scratch,
        "freeze_encoder": freeze_encoder,
        "unfreeze_epochs": unfreeze_epochs,
        # the fraction actually used: at least one label per class, rounded per class
        "labels_used_fraction": len(rows) / len(y_train),
        "epochs_run": len(history),
        "train_seconds": seconds,
        "n_test": len(y_test),
    }
    return ClassifierResult(model, classes, metrics, history)


def fit_head(model: EncoderClassifier, x: torch.Tensor, y: torch.Tensor) -> None:
    """Start a head on frozen codes at the L2-regularised logistic regression of the standardised
    codes, folded into the linear layer: a few hundred Adam steps from random weights leave it
    far from that optimum when labels are few."""
    from sklearn.linear_model import LogisticRegression

    z = encode_all(model.autoencoder, x).double().cpu().numpy()
    mean, std = z.mean(0), z.std(0) + 1e-8
    fit = LogisticRegression(max_iter=2000).fit((z - mean) / std, y.cpu().numpy())
    coef, intercept = fit.coef_, fit.intercept_
    if coef.shape[0] == 1:  # two classes: one score, the logit of the second class
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.array([0.0, intercept[0]])
    with torch.no_grad():
        w = torch.from_numpy(coef / std).to(model.head.weight)
        model.head.weight.copy_(w)
        model.head.bias.copy_(torch.from_numpy(intercept - (coef * mean / std).sum(1)).to(model.head.bias))


def _class_index(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(classes, y).clip(0, len(classes) - 1)
    if not (classes[idx] == y).all():
        raise UserError("the test labels hold classes the training labels do not; check the label files")
    return idx


def save_classifier(
    out: Path, result: ClassifierResult, config: dict[str, Any], scaler: tuple[np.ndarray, np.ndarray]
) -> None:
    """Write the classifier's weights (autoencoder + head + input scaling), settings and metrics.

    ``config`` holds the autoencoder's own config and input shape, so the directory is
    self-contained: ``autoencoders.load`` rebuilds the classifier from it alone.
    """
    out.mkdir(parents=True, exist_ok=True)
    tensors = dict(result.model.state_dict())
    tensors["input_offset"], tensors["input_span"] = (torch.from_numpy(np.asarray(a)) for a in scaler)
    save_weights(out / CLASSIFIER_WEIGHTS, tensors)
    checksum = {CLASSIFIER_WEIGHTS: file_sha256(out / CLASSIFIER_WEIGHTS)}
    settings = {"format": RUN_FORMAT, **config, "classes": result.classes.tolist(), "sha256": checksum}
    write_json(out / CLASSIFIER_CONFIG, settings)
    write_json(out / METRICS, result.metrics)

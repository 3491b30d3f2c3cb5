"""Classifiers from a (pretrained) autoencoder and few labels: the SDAE classifier and beyond.

A classifier holds the autoencoder's own encoder layers (any model kind), so supervised
fine-tuning updates exactly the tensors unsupervised training produced. The methods
(fine-tuned or frozen softmax head, k nearest codes, semi-supervised training, a ladder
network) train through the one training loop: the supervised step on (inputs, labels)
batches, the semi-supervised step on every training row plus a labelled batch per step.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.batches import batches_per_epoch
from ..data.classes import labelled, shown
from ..data.datasets import Dataset
from ..data.stream import RowStream
from ..errors import SettingWarning, UserError, user_stacklevel
from ..eval.metrics import cached, encode_all, majority_class_accuracy, probe_sample
from ..eval.probes import linear_probe_accuracy
from ..fields import check_fields, flags, moved
from ..io.rundir import saved_dir, write_classifier
from ..models import Autoencoder
from ..models.layers import set_trainable
from ..models.objectives import Objective
from ..options import ClassifyOptions, TrainConfig
from ..runtime.device import gpu_math
from ..training.loop import fit
from ..training.steps import (
    AutoencoderLosses,
    SemiSupervisedStep,
    classification,
    supervised_step,
)
from .heads import EncoderClassifier, KNNHead, fit_head, make_classifier, predict_classes
from .ladder import Ladder


def labelled_subset(
    y: np.ndarray,
    fraction: float | None,
    seed: int,
    n_labels: int | None = None,
    names: np.ndarray | None = None,
) -> np.ndarray:
    """Sorted row indices of a labelled subset of ``y``, drawn with ``seed``.

    ``n_labels``: class-balanced, the same number of rows from every class (the remainder
    of ``n_labels`` / classes one more each in randomly chosen classes). Else a
    class-stratified ``fraction`` of each class (at least one row per class). ``names``: each
    class's name by its index in ``y``'s sorted classes, for messages.
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    if n_labels is None:
        if fraction is None or not 0 < fraction <= 1:
            raise UserError(f"--labels-fraction must be in (0, 1], got {fraction}")
        quota = np.maximum(1, np.round(fraction * counts).astype(int))
    else:
        if n_labels < len(classes):
            raise UserError(
                f"--n-labels {n_labels} is fewer than the {len(classes)} classes; give at least one per class"
            )
        quota = np.full(len(classes), n_labels // len(classes))
        quota[rng.choice(len(classes), n_labels % len(classes), replace=False)] += 1
        if (quota > counts).any():
            c = np.argmin(counts)  # the class that bounds how many labels every class can give
            raise UserError(
                f"--n-labels {n_labels} takes up to {quota.max()} labelled rows of every class, but class "
                f"{classes[c] if names is None else names[c]} has {counts[c]} labelled training rows; ask "
                f"for at most {len(classes) * counts[c]} labels"
            )
    picked = [rng.choice(np.flatnonzero(y == c), size=k, replace=False) for c, k in zip(classes, quota)]
    return np.sort(np.concatenate(picked))


# the optimizer a classifier trains by, whatever its autoencoder trained with: its lr is Adam's (a run's
# SGD at Adam's 1e-3 had left the classifier at chance)
HEAD_OPTIMIZER = {"optimizer": "adam", "lr_decay": "none", "weight_decay": 0.0}


@dataclass
class FewLabels(ClassifyOptions):
    """How a classifier is made from an autoencoder and (few) labels.

    ``method``: ``finetune`` (softmax head, whole encoder trained on the labels), ``frozen``
    (head alone on the codes, started at their logistic regression; ``unfreeze_epochs`` then
    fine-tunes everything at ``unfreeze_lr``), ``knn`` (k nearest labelled codes, k chosen on
    the validation labels), ``semi`` (the labelled rows' cross-entropy plus ``recon_weight`` ×
    the autoencoder's own loss per input feature on every training row, corrupted as in the
    run) or ``ladder`` (a ladder network over the encoder's widths, input and layer noise
    ``ladder_noise``). ``n_labels`` (class-balanced) or ``labels_fraction`` (stratified) of the
    training labels are used, and as many of the validation split's for early stopping (without a
    validation split, of the other training rows').
    """

    corrupt: Callable[[torch.Tensor], torch.Tensor] | None = None  # the run's own input corruption

    @property
    def full_batches(self) -> bool:
        """Whether training takes full batches only (the ladder's, as Rasmus et al.'s: its batch norm
        over an epoch's last few rows blew the weights up)."""
        return self.method == "ladder"

    def check(self) -> None:
        """Each option against its choices and range, then the combinations that make no sense."""
        check_fields(self)
        if self.labels_fraction is not None and self.n_labels is not None:
            raise UserError("give --n-labels or --labels-fraction, not both")
        if self.unfreeze_epochs and self.method != "frozen":
            raise UserError("--unfreeze-epochs follows head-only training: give --method frozen too")
        # a setting moved from its default must belong to the method
        if moved(self, ["recon_weight"]) and self.method != "semi":
            raise UserError("--recon-weight weighs the semi-supervised loss: give --method semi too")
        if moved(self, ["ladder_noise"]) and self.method != "ladder":
            raise UserError("--ladder-noise is the ladder network's: give --method ladder too")
        if self.unfreeze_lr is not None and not self.unfreeze_epochs:
            raise UserError("--unfreeze-lr is the rate of the epochs --unfreeze-epochs adds: give it too")
        if self.method == "knn":  # no gradient step: the settings of one change nothing
            given = moved(self, ["epochs", "patience", "lr"])
            if given:
                raise UserError(
                    f"{flags(given)}: settings of training, and --method knn trains nothing (it picks k "
                    "on the validation labels); leave them out, or give a method that trains"
                )

    def subset(
        self, y: np.ndarray, seed: int, cap: bool = False, names: np.ndarray | None = None
    ) -> np.ndarray:
        """The labelled rows of ``y``; ``cap``: at most what a class-balanced draw of ``y`` allows
        (the validation split may be smaller than the labels asked for); ``names``: the classes'
        names, for messages."""
        n = self.n_labels
        if n is not None and cap:
            classes, counts = np.unique(y, return_counts=True)
            n = min(n, len(classes) * counts.min())
        fraction = 1.0 if self.labels_fraction is None and n is None else self.labels_fraction
        return labelled_subset(y, fraction, seed, n, names)

    def name(self) -> str:
        """The default output directory's name."""
        amount = f"{self.n_labels}labels" if self.n_labels is not None else f"{self.labels_fraction or 1.0:g}"
        method = "" if self.method == "finetune" else f"-{self.method}"
        unfrozen = f"-unfrozen{self.unfreeze_epochs}" if self.unfreeze_epochs else ""
        seeded = "" if self.seed is None else f"-seed{self.seed}"  # a seed of its own: beside the run's
        return f"classifier-{amount}{'-scratch' if self.from_scratch else ''}{method}{unfrozen}{seeded}"


MIN_UPDATES = 1000  # the fewest updates a classifier's default budget makes


def default_epochs(
    rows_per_epoch: int, batch_size: int, min_steps: int = MIN_UPDATES, whole: bool = False
) -> int:
    """Epochs for at least ``min_steps`` updates (``whole``: of full batches only), and at least 10."""
    return max(10, math.ceil(min_steps / batches_per_epoch(rows_per_epoch, batch_size, whole=whole)))


def budget(
    cfg: TrainConfig, how: FewLabels, rows_per_epoch: int, min_steps: int = MIN_UPDATES
) -> TrainConfig:
    """``how``'s epochs and patience, or by default epochs for at least ``min_steps`` updates
    (and 10 epochs), and patience of 10 epochs or a tenth of those updates, whichever is
    longer: a few labels make one-update epochs."""
    steps = batches_per_epoch(rows_per_epoch, cfg.batch_size, whole=how.full_batches)
    epochs = how.epochs or default_epochs(rows_per_epoch, cfg.batch_size, min_steps, how.full_batches)
    patience = how.patience if how.patience is not None else max(10, math.ceil(min_steps / 10 / steps))
    return dataclasses.replace(cfg, epochs=epochs, patience=patience)


@dataclass
class ClassifierResult:
    """A trained classifier and its numbers."""

    model: nn.Module
    classes: np.ndarray  # what each output predicts: class numbers, or their names where they have them
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)  # what rebuilds ``model`` (its method)
    out: Path | None = None  # where ``classify`` saved it: what ``predict`` takes

    def __repr__(self) -> str:
        """Where, how and how well, in one line (the model, classes and history are its fields)."""
        m = self.metrics
        shown = {k: m[k] for k in ("test_accuracy", "n_labels", "labels_fraction") if m.get(k) is not None}
        numbers = "".join(f", {k}={v:.4g}" for k, v in shown.items())
        where = "" if self.out is None else f"out={str(self.out)!r}, "
        method = self.settings.get("method")
        return f"ClassifierResult({where}method={method}, classes={len(self.classes)}{numbers})"

    def __fspath__(self) -> str:
        """Its directory: the result goes wherever a ``classify`` directory does (``predict``)."""
        return saved_dir(self.out, "classifier")


class SemiLosses(nn.Module):
    """Cross-entropy of the labelled rows plus ``weight`` × the autoencoder's own objective per
    input feature on the unlabelled rows (their corrupted input, their clean target)."""

    def __init__(self, classifier: EncoderClassifier, weight: float, corrupt=None):
        super().__init__()
        autoencoder = classifier.autoencoder
        self.classifier, self.corrupt = classifier, corrupt
        self.reconstruction = AutoencoderLosses(autoencoder, Objective(autoencoder.terms()))
        self.weight = weight / classifier.n_features

    def forward(self, x_unlabelled: torch.Tensor, x_labelled: torch.Tensor, y: torch.Tensor) -> dict:
        values = classification(self.classifier(x_labelled), y)
        x_in = self.corrupt(x_unlabelled) if self.corrupt is not None else x_unlabelled
        unsupervised = self.reconstruction(x_in, x_unlabelled)
        loss = values["ce"] + self.weight * unsupervised.pop("loss")
        return {"loss": loss, **values, **unsupervised}


def train_classifier(
    autoencoder: Autoencoder, ds: Dataset, cfg: TrainConfig, how: FewLabels, memory_budget: int = 2 << 30
) -> ClassifierResult:
    """Train a classifier from ``autoencoder`` on a few of ``ds``'s training labels (see
    :class:`FewLabels`) and return its test accuracy. ``how.from_scratch`` re-initialises the
    encoder first: the same network and budget without pretraining, the baseline that shows
    what pretraining is worth. The test split is touched only to measure the result. Labelled
    rows of a stream beyond ``memory_budget`` bytes stay on disk, read a chunk at a time (but
    ``semi``'s and the ladder's, whose labelled batches are drawn apart from the epoch's rows).
    """
    how.check()
    if ds.y_train is None or ds.y_test is None:
        raise UserError(
            "classification needs labels, and this data has none: give --data with labels (idx:DIR, "
            "images:DIR with class folders, a csv: file with the run's label column, or npy: data with "
            "--labels FILE.npy)"
        )
    # the rows with a class, of each split (a CSV's label cells may be blank for the rest)
    known = labelled(ds.y_train.numpy())
    classes, y_train = np.unique(ds.y_train.numpy()[known], return_inverse=True)
    if len(classes) < 2:
        raise UserError("classification needs at least two classes in the training labels")
    known_test = labelled(ds.y_test.numpy())
    if not len(known_test):
        raise UserError(
            "no test row has a class to measure the classifier on; give classes to some of the test "
            "split's rows, or a larger --test-fraction when training"
        )
    known_val = np.arange(0) if ds.y_val is None else labelled(ds.y_val.numpy())
    y_val = None
    if len(known_val):
        y_val = _class_index(ds.y_val.numpy()[known_val], classes, "validation", ds.classes)
    autoencoder = copy.deepcopy(autoencoder)  # the caller's autoencoder stays as it was
    if how.from_scratch:
        torch.manual_seed(cfg.seed)
        autoencoder.reset_parameters()
    device = next(autoencoder.parameters()).device
    rows = how.subset(y_train, cfg.seed, names=shown(classes, ds.classes))  # of the rows with a class
    # their epochs pass over every training row (the ladder's in full batches)
    semi_supervised = how.method in ("semi", "ladder")
    streams = isinstance(ds.x_train, RowStream) and not semi_supervised
    if streams and len(rows) * ds.n_features * 4 > memory_budget:
        x_labelled = ds.x_train.subset(known[rows])
    else:
        x_labelled = ds.x_train[known[rows]]
    train = (x_labelled.to(device), torch.from_numpy(y_train[rows]).to(device))
    # validation labels are as scarce as training labels: as many, from the validation split, or
    # without one (--val-fraction 0) from the training rows not labelled, so that training still
    # stops early and keeps its best weights
    if y_val is not None and len(y_val):
        vrows = how.subset(y_val, cfg.seed, cap=True)
        x_val, y_val, val_from = ds.x_val[known_val[vrows]], y_val[vrows], "val"
    else:
        rest = np.setdiff1d(np.arange(len(y_train)), rows)
        # a draw of its own: the labelled draw's seed would pick each labelled row's neighbours
        # within its class, often the same writer's or source's
        seed = int(np.random.SeedSequence((cfg.seed, 1)).generate_state(1)[0])
        vrows = rest[how.subset(y_train[rest], seed, cap=True)] if len(rest) else rest  # sorted
        x_val, y_val, val_from = ds.x_train[known[vrows]], y_train[vrows], "train"
    val = (x_val.to(device), torch.from_numpy(y_val).to(device))
    unlabelled = ds.x_train.to(device) if semi_supervised else None
    rows_per_epoch = len(ds.x_train) if semi_supervised else len(rows)
    if how.method == "knn":  # trains nothing: no epochs to budget
        cfg = dataclasses.replace(cfg, epochs=0, patience=0)
    else:
        cfg = budget(cfg, how, rows_per_epoch)
    trained_as = dataclasses.asdict(cfg)  # its epochs and patience as budgeted, for classifier.json
    extra: dict[str, Any] = {}
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    if how.method == "knn":
        model, history = _knn(autoencoder, len(classes), train, val), []
        extra["knn_k"] = model.head.k
    elif how.method == "ladder":
        model, history, extra = _ladder(autoencoder, len(classes), unlabelled, train, val, cfg, how)
    else:
        model = make_classifier(autoencoder, len(classes), how.method == "frozen", copy_encoder=False)
        if how.method == "frozen":
            fit_head(model, *train)
        if how.method == "semi":
            set_trainable(autoencoder, True)  # the decoder learns the unlabelled rows
            losses = SemiLosses(model, how.recon_weight, how.corrupt)
            steps = cfg.epochs * batches_per_epoch(len(unlabelled), cfg.batch_size)
            step = SemiSupervisedStep(losses, model, train, cfg, steps, losses.reconstruction.objective)
            history = fit(step, unlabelled, val, cfg, cfg.epochs, stage="semi")
        else:
            history = fit_supervised(model, train, val, cfg, cfg.epochs, "classify")
        if how.unfreeze_epochs:
            for part in autoencoder.encoder_modules():
                set_trainable(part, True)
            cfg = dataclasses.replace(cfg, lr=cfg.lr / 10 if how.unfreeze_lr is None else how.unfreeze_lr)
            history += fit_supervised(model, train, val, cfg, how.unfreeze_epochs, "unfreeze")
    seconds = time.perf_counter() - t0
    y_test = _class_index(ds.y_test.numpy()[known_test], classes, "test", ds.classes)
    x_test = ds.x_test[torch.from_numpy(known_test)].to(device)
    pred = predict_classes(model, x_test).cpu().numpy()
    # the yardstick: the same labels without the encoder (at most PROBE_ROWS of them, as the run's),
    # cached as the data's baselines are: with every label of Fashion-MNIST, 5 s each time
    probe = (*probe_sample(*train), x_test, torch.from_numpy(y_test).to(device))
    pixels = cached(probe, lambda: {"accuracy": linear_probe_accuracy(*probe)}, device, "labelled-pixels-")
    metrics = {
        "test_accuracy": float((pred == y_test).mean()),
        # always guessing the training rows' commonest class: what the accuracy must beat to say anything
        "majority_class_accuracy": majority_class_accuracy(*map(torch.from_numpy, (y_train, y_test))),
        # logistic regression on the labelled rows as read
        "pixels_linear_probe_accuracy": pixels["accuracy"],
        "method": how.method,
        "labels_fraction": how.labels_fraction,
        "n_labels": how.n_labels,
        "labelled_examples": len(rows),
        "validation_labels": len(vrows),
        "validation_from": val_from if len(vrows) else None,  # the split its rows came from
        "from_scratch": how.from_scratch,
        "unfreeze_epochs": how.unfreeze_epochs,
        # the fraction actually used: at least one label per class, rounded per class
        "labels_used_fraction": len(rows) / len(y_train),
        "epochs": cfg.epochs,
        "patience": cfg.patience,
        "epochs_run": len(history),
        # every epoch run (an unfreezing one too) made one update per batch of its rows
        "updates": len(history) * batches_per_epoch(rows_per_epoch, cfg.batch_size, whole=how.full_batches),
        "train_seconds": seconds,
        "n_test": len(y_test),
        **extra,
    }
    # one class for every row, the test rows' commonest: no guess does better, at random or not
    guessed = float(np.bincount(y_test).max() / len(y_test)) if len(y_test) else 0.0
    if metrics["test_accuracy"] <= guessed:
        _warn_no_better(metrics, guessed, how)
    settings = {"method": how.method, "train": trained_as}
    if how.method == "ladder":
        settings["ladder"] = model.settings()
    elif how.method == "knn":
        settings["knn"] = {"k": model.head.k, "temperature": model.head.temperature}
    named = classes if ds.classes is None else np.asarray(ds.classes)[classes]
    return ClassifierResult(model, named, metrics, history, settings)


def _warn_no_better(metrics: dict[str, Any], guessed: float, how: FewLabels) -> None:
    """Warn that a classifier's test accuracy (in ``metrics``) is no better than ``guessed``, the
    share of the test rows' commonest class, naming what most likely holds it there."""
    updates = metrics["updates"]
    if how.method != "knn" and updates < MIN_UPDATES and how.epochs:  # a budget cut short comes first
        fix = f"train longer (more --epochs, or leave --epochs out for at least {MIN_UPDATES:,} updates)"
    elif how.method != "knn" and updates < MIN_UPDATES:
        fix = "early stopping ended it: give a larger --patience"
    elif how.from_scratch and how.method in ("semi", "ladder"):  # these learn the unlabelled rows too
        fix = "from scratch it learned nothing from the labelled or unlabelled rows: try another --lr"
    elif how.from_scratch:
        fix = "from scratch its encoder had only the labels to learn from: leave out --from-scratch"
    else:
        fix = "the run's codes may carry nothing of the classes (see its linear probe accuracy)"
    warnings.warn(
        f"the classifier does no better on the test rows than naming their commonest class for every "
        f"one (accuracy {metrics['test_accuracy']:.3f} against {guessed:.3f})"
        + (f" after {updates} updates of its weights" if updates else "")
        + f"; {fix}",
        SettingWarning,
        stacklevel=user_stacklevel(),
    )


def _knn(
    autoencoder: Autoencoder, n_classes: int, train: tuple[torch.Tensor, ...], val: tuple[torch.Tensor, ...]
) -> EncoderClassifier:
    """k nearest labelled codes, k the most accurate on the validation labels (5 without them)."""
    autoencoder.eval()
    head = KNNHead(encode_all(autoencoder, train[0]), train[1], n_classes, min(5, len(train[0])))
    model = EncoderClassifier(autoencoder, n_classes, head)
    if len(val[0]):
        z_val = encode_all(autoencoder, val[0])
        accuracy = {}
        with gpu_math("fp32", z_val.device):  # the distances as its predictions compute them
            for k in (k for k in (1, 3, 5, 9, 15, 25) if k <= len(train[0])):
                head.k = k
                accuracy[k] = float((head(z_val).argmax(1) == val[1]).float().mean())
        head.k = max(accuracy, key=lambda k: (accuracy[k], -k))
    return model


def fit_supervised(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    cfg: TrainConfig,
    epochs: int,
    stage: str,
) -> list[dict]:
    """``model`` trained on the labelled rows ``train`` by cross-entropy for ``epochs``, its learning
    rate schedule as long as they are; the history rows, named ``stage``."""
    step = supervised_step(model, cfg, epochs * batches_per_epoch(len(train[0]), cfg.batch_size))
    return fit(step, train, val, cfg, epochs, stage=stage)


def _ladder(
    autoencoder: Autoencoder,
    n_classes: int,
    unlabelled: torch.Tensor,
    train: tuple[torch.Tensor, ...],
    val: tuple[torch.Tensor, ...],
    cfg: TrainConfig,
    how: FewLabels,
) -> tuple[Ladder, list[dict], dict[str, Any]]:
    """A ladder network over the encoder's widths, started from its dense layers (a VAE's: the
    means') unless ``how.from_scratch``."""
    ladder = Ladder([*autoencoder.layers, n_classes], how.ladder_noise).to(train[0].device)
    if not how.from_scratch:
        weights = autoencoder.dense_weights()
        if weights is None:
            raise UserError(
                f"the ladder network is a dense stack, and a '{autoencoder.kind}' encoder cannot start "
                "it; use --method semi (which trains this encoder), or --from-scratch for a ladder of "
                "random weights"
            )
        ladder.init_from(weights)
    # full batches (digits' 1,294 rows in batches of 646, a last batch of 2: test accuracy 0.98 → 0.30)
    steps = cfg.epochs * batches_per_epoch(len(unlabelled), cfg.batch_size, whole=how.full_batches)
    step = SemiSupervisedStep(ladder.costs, ladder, train, cfg, steps, whole_batches=how.full_batches)
    history = fit(step, unlabelled, val, cfg, cfg.epochs, stage="ladder")
    return ladder, history, {"ladder_widths": ladder.widths, "ladder_pretrained": not how.from_scratch}


def _class_index(y: np.ndarray, classes: np.ndarray, split: str, names: list[str] | None) -> np.ndarray:
    """The place in ``classes`` (the training labels' classes) of each of ``split``'s labels ``y``."""
    idx = np.searchsorted(classes, y).clip(0, len(classes) - 1)
    unseen = np.unique(y[classes[idx] != y])
    if len(unseen):
        example = ", ".join(map(repr, shown(unseen[:3], names).tolist()))
        raise UserError(
            f"the {split} rows' labels hold {len(unseen)} class(es) that no labelled training row has "
            f"({example}{', ...' if len(unseen) > 3 else ''}), which a classifier cannot learn; give every "
            "class labelled training rows (labels that are a quantity or an id rather than classes: leave "
            "them out)"
        )
    return idx


def save_classifier(
    out: Path, result: ClassifierResult, config: dict[str, Any], scaler: tuple[np.ndarray, np.ndarray]
) -> None:
    """Write the classifier's weights (autoencoder + head + input scaling), settings and metrics.

    ``config`` holds the autoencoder's own config and input shape, so the directory is
    self-contained: ``autoencoders.load`` rebuilds the classifier from it alone.
    """
    settings = {**config, **result.settings, "classes": result.classes.tolist()}
    write_classifier(out, result.model.state_dict(), scaler, settings, result.metrics)

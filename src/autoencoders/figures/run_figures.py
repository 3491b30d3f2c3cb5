"""What a trained run learned, as pictures: ``autoencoders visualize RUN --what KIND``.

Reconstructions and denoising, the loss curves, the four classic views of learned features
(first-layer filters, the inputs that excite each code unit most, inputs found by activation
maximisation, and a 2-D map of the codes) and, for generative models, samples, interpolations
and traversals of one code dimension at a time.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import api, kinds
from ..config import Config
from ..data.classes import item_names, shown
from ..data.specs import label_name, parse_spec
from ..errors import SettingWarning, UserError, user_stacklevel
from ..eval.metrics import encode_all, reconstruct_all
from ..eval.probes import PCA
from ..fields import whole_at_least
from ..io import rundir
from ..models.layers import make_corruption
from ..options import FIGURE_KINDS, MOST_IN_A_PNG
from ..runtime.device import own_rng
from ..trained import (
    Data,
    TrainedRun,
    check_own_data,
    check_width,
    open_run,
    rows_and_labels,
    scaled_data,
)
from ..training.optimizers import Adam
from . import curves, plots


def visualize(
    run_dir: str | Path,
    what: str,
    out: str | Path | None = None,
    data: Data | None = None,
    n: int = 10,
    method: str = "pca",
    labels: Any = None,
    **reading: Any,
) -> Path:
    """Write figure ``what`` (a name in ``options.FIGURE_KINDS``: recon, denoise, loss, ...) of a
    trained run as a PNG; return its path (default ``RUN/<what>.png``). ``data``: a data spec,
    whose test rows are shown (default: the run's own), or rows in memory in the data's own units,
    shown as given (``labels``: theirs, for the colours of the latent map); ``reading``: how ``data`` is
    read where not as the run's own (``label_column``, ``columns``, ...: ``options.READING``)."""
    if what not in FIGURE_KINDS:
        raise UserError(f"--what must be one of {', '.join(FIGURE_KINDS)}, not '{what}'")
    n = whole_at_least("-n", n, 1)
    if what == "samples" and 4 * n > MOST_IN_A_PNG:
        raise UserError(
            f"-n {n}: samples draws 4 × n images, and a .png holds at most {MOST_IN_A_PNG:,}; give -n "
            f"{MOST_IN_A_PNG // 4} or fewer, or write more with autoencoders sample --out FILE.npy"
        )
    if what == "interpolate" and max(n, 2) + 2 > MOST_IN_A_PNG:
        raise UserError(
            f"-n {n}: interpolate draws the 2 rows and n points between, and a .png holds at most "
            f"{MOST_IN_A_PNG:,} images; give -n {MOST_IN_A_PNG - 2} or fewer, or write more with "
            "autoencoders interpolate RUN --data SPEC --steps N --out FILE.npy"
        )
    if method not in ("pca", "tsne"):
        raise UserError(f"--method must be pca or tsne, not '{method}'")
    if method != "pca" and what != "latent":
        raise UserError(f"--method {method} is how the latent figure maps codes to 2-D; give --what latent")
    in_memory = data is not None and not isinstance(data, str)
    if isinstance(data, str):
        parse_spec(data)  # a spec's mistakes before the run is read
    if labels is not None and not in_memory:
        raise UserError("labels go with rows in memory; a data spec's labels come with it")
    path = Path(out) if out is not None else Path(run_dir) / f"{what}.png"
    if path.suffix.lower() != ".png":
        raise UserError(f"--out {path}: visualize writes .png files; give a file name ending in .png")
    if what == "loss" and not rundir.read_manifest(run_dir)["completed"]:
        _loss_so_far(Path(run_dir), path)
        return path
    run = open_run(run_dir).reading(reading, "visualize", data)
    if data is None and what not in WITHOUT_ROWS:
        check_own_data(run_dir, run.cfg.data, ", or draw other rows: --data")
    rows = None
    if in_memory:  # drawn whole, as given: they have no test split
        x, y, classes = rows_and_labels(run, data, "all", labels)[:3]
        rows = FigureRows(torch.from_numpy(x), shown(y, classes), run.model, classes=classes, which="given")
    draw(run, Path(run_dir), what, path, run.cfg.data.data if data is None else data, n, method, rows)
    return path


@dataclass
class FigureRows:
    """Test rows as the model takes them, their labels as shown (with the order of the classes'
    names, where they have names), and their codes: ``known_codes`` when the caller has them, else
    encoded when first asked for; the figures of one report share them."""

    x: torch.Tensor
    y: np.ndarray | None
    model: nn.Module
    known_codes: torch.Tensor | None = None
    classes: list[str] | None = None
    names: tuple[str, ...] | None = None  # of class numbers, for legends: built-in data's items
    which: str = "test"  # what titles call the rows: a split's test rows, or the rows given

    @property
    def codes(self) -> torch.Tensor:
        if self.known_codes is None:
            self.known_codes = encode_all(self.model, self.x)
        return self.known_codes


def test_rows(run: TrainedRun, data: str) -> FigureRows:
    """The test rows of ``data`` scaled as the run's training data was, and their labels as
    figures show them (class names where they have names)."""
    x, y, classes = scaled_data(
        run.cfg.data, data, "test", run.scaler, shape=tuple(run.manifest["input_shape"])
    )[:3]
    check_width(run.model, x.shape[1], data)
    rows = torch.from_numpy(x)
    return FigureRows(rows, shown(y, classes), run.model, classes=classes, names=item_names(data))


# figures drawn without reading any rows: of the history, the prior and the weights
WITHOUT_ROWS = ("loss", "samples", "filters")


def draw(
    run: TrainedRun,
    run_dir: Path,
    what: str,
    path: Path,
    data: Data,
    n: int = 10,
    method: str = "pca",
    rows: FigureRows | None = None,
) -> None:
    """Draw figure ``what`` of an open run into ``path``; ``rows``: the ``FigureRows`` of ``data``
    when the caller already has them (a report draws several figures from one read)."""
    if what == "loss":
        _loss(run_dir, run, path)
    elif what == "samples":
        rows, shape = api.sample(run_dir, n * 4)
        title = f"{n * 4} samples from the prior (decoded means)"
        plots.image_grid(rows, path, shape, title, features=run.features)
    elif what == "filters":  # the weights alone
        _filters(run, path, n)
    elif what == "interpolate":
        which = "test" if isinstance(data, str) else "given"
        rows, shape = api.interpolate(run_dir, data, (0, 1), max(n, 2))
        title = f"{which} images 0 → 1: inputs at the ends, decoded codes between"
        plots.image_grid(rows, path, shape, title, len(rows), features=run.features)
    else:
        FIGURES[what](run, rows or test_rows(run, data), path, n, method)


def _loss(run_dir: Path, run: TrainedRun, path: Path) -> None:
    history = rundir.read_history(run_dir)
    if not history:
        raise UserError(f"{run_dir} trained for 0 epochs: there is no loss curve to draw")
    floor, split = curves.loss_floor(rundir.read_metrics(run_dir)) or (None, "")
    corrupted = run.cfg.model.corruption != "none"
    curves.loss_curve(history, path, run.model.loss_label, floor, corrupted, "", run.model.loss_term, split)


def _loss_so_far(run_dir: Path, path: Path) -> None:
    """The loss curve of a run that has not finished (still training, interrupted or diverged; the
    title says which where it can tell): the epochs of its last saved state, read from the state
    itself (``history.csv``, written beside it, follows it on a GPU only once the next state is saved)."""
    manifest = rundir.read_manifest(run_dir)
    stopped, saved = manifest.get("stopped"), rundir.saved_state(run_dir)
    if saved is None or not saved["history"]:
        raise UserError(
            f"{run_dir} stopped before it saved an epoch ({stopped}): no loss curve to draw"
            if stopped
            else f"{run_dir} has saved no epoch yet: no loss curve to draw; its first state is saved after "
            "an epoch that ends --save-every seconds of training or more after it began"
        )
    where = stopped or f"stage '{saved['stage']}' after epoch {saved['loop']['epoch']}"
    cfg = Config.load_json(run_dir / rundir.CONFIG)
    model = kinds.build(cfg.model, cfg.kind_options, tuple(manifest["input_shape"]))  # its loss's name
    state = {True: "still training", False: "stopped"}.get(rundir.training_elsewhere(run_dir), "not finished")
    title, corrupted = f"{'not finished' if stopped else state}: {where}", cfg.model.corruption != "none"
    curves.loss_curve(saved["history"], path, model.loss_label, None, corrupted, title, model.loss_term)


def _recon(run, rows: FigureRows, path: Path, n: int, method: str) -> None:
    x = rows.x
    recon = reconstruct_all(run.model, x[:n]).numpy()
    title = f"{rows.which} images and their reconstructions"
    plots.reconstruction_grid(x[:n].numpy(), recon, path, run.display_shape, title, run.features)


def _denoise(run, rows: FigureRows, path: Path, n: int, method: str) -> None:
    x = rows.x
    kind, level = run.cfg.model.corruption, run.cfg.model.noise
    title = f"denoising on {rows.which} images ({kind} {level:g}, as it was trained)"
    if kind == "none":  # a plain run: show what it does with the corruption a denoising AE would get
        kind, level = "masking", 0.3
        title = f"denoising on {rows.which} images (masking 0.3; this model was trained without corruption)"
    with own_rng(x.device):  # the same noise each time, the caller's random state untouched
        torch.manual_seed(0)
        noisy = make_corruption(kind, level)(x[:n].clone())
    drawn = [
        ("clean", x[:n]),
        (f"{kind} {level:g}", noisy),
        ("reconstructed", reconstruct_all(run.model, noisy)),
    ]
    plots.labelled_rows([(a, b.numpy()) for a, b in drawn], path, run.display_shape, title, run.features)


def _first_layer(model: nn.Module) -> nn.Module:
    for module in model.encoder_modules():
        for layer in module.modules():
            if isinstance(layer, nn.Linear | nn.Conv2d):
                return layer
    raise UserError(f"a '{model.kind}' model has no first layer with weights to show")


def _filters(run: TrainedRun, path: Path, n: int) -> None:
    w = _first_layer(run.model).weight.detach()
    if w.dim() == 4:  # conv kernels (out, in, k, k): one image per output channel
        colour = w.shape[1] == 3  # drawn in colour, as the images are; other channel counts averaged
        images = w.flatten(1) if colour else w.mean(1).flatten(1)
        shape = tuple(w.shape[1:]) if colour else tuple(w.shape[-2:])
        averaged = "" if w.shape[1] in (1, 3) else f", its {w.shape[1]} input channels averaged"
        what = f"{w.shape[0]} first-layer {w.shape[-1]}×{w.shape[-1]} convolution kernels{averaged}"
    else:
        images, shape = w, run.display_shape
        what = f"{w.shape[0]} first-layer units' input weights"
    shown = min(len(images), n * n)
    cols = min(n, math.ceil(math.sqrt(shown)))  # a square grid also when fewer than n × n are shown
    zero = "gray" if shape is not None else "white"  # a table's rows are strips in red and blue
    title = f"{what}, each scaled to its largest |weight|, {zero} = 0{_first(shown, len(images))}"
    signed = _unit_range(images[:shown].numpy())
    plots.image_grid(signed, path, shape, title, cols, plots.SIGNED, run.features)


def _unit_range(rows: np.ndarray) -> np.ndarray:
    """Each row scaled to [0, 1] symmetrically, so 0.5 (gray) is zero weight."""
    top = np.abs(rows).max(1, keepdims=True)
    return 0.5 + 0.5 * rows / np.where(top > 0, top, 1)


def _top(run, rows: FigureRows, path: Path, n: int, method: str) -> None:
    x, codes = rows.x, rows.codes
    units = min(n, codes.shape[1])
    k = min(8, len(x))
    best = codes[:, :units].topk(k, dim=0).indices.T  # (units, k)
    if (codes[:, :units] < 0).any():  # signed units: a sign means nothing, so both ends
        least = (-codes[:, :units]).topk(k, dim=0).indices.T
        drawn = [(f"unit {j}\n{end}", x[at[j]].numpy()) for j in range(units) for end, at in
                 (("largest", best), ("smallest", least))]  # fmt: skip
        ends = "largest (and smallest)"
    else:
        drawn, ends = [(f"unit {j}", x[best[j]].numpy()) for j in range(units)], "largest"
    title = (
        f"the {k} {rows.which} images with the {ends} value of each code unit{_first(units, codes.shape[1])}"
    )
    plots.labelled_rows(drawn, path, run.display_shape, title, run.features)


def _first(shown: int, units: int) -> str:
    """Which of ``units`` code units a figure of the first ``shown`` draws, when not all."""
    return "" if shown == units else f" (the first {shown} of {units}; a larger n shows more)"


def maximize_units(model: nn.Module, x: torch.Tensor, units: int, steps: int = 300) -> torch.Tensor:
    """For code units 0..units-1, the input that excites the unit most among inputs in the data's
    range [0, 1] with at most the mean norm of ``x`` (Erhan et al. 2009 bound the norm alone; the box
    keeps the result an input the data could hold): gradient ascent from the mean input, put back
    into the box and the ball after every step. Returns one row per unit."""
    radius = x.norm(dim=1).mean()
    z = x.mean(0, keepdim=True).repeat(units, 1).clamp(0, 1).requires_grad_(True)  # norm <= radius
    optimizer = Adam([z], lr=0.05)
    for _ in range(steps):
        # input j drives unit j; the gradient of the input alone: the weights get none, nor is one computed
        (z.grad,) = torch.autograd.grad(-model.encode(z).diagonal()[:units].sum(), z)
        optimizer.step()
        with torch.no_grad():
            # scaling towards 0 keeps a row in the box
            z.clamp_(0, 1).mul_((radius / z.norm(dim=1, keepdim=True).clamp_min(1e-12)).clamp(max=1))
    return z.detach()


def _maximize(run, rows: FigureRows, path: Path, n: int, method: str) -> None:
    x = rows.x
    units = min(n, run.model.code_size)
    images = maximize_units(run.model, x, units).numpy()  # in the data's range: drawn on its scale
    radius = float(x.norm(dim=1).mean())
    title = (
        f"activation maximisation: inputs in [0, 1] of norm at most {radius:.1f} that excite code units "
        f"0..{units - 1} most"
    )
    names = [f"unit {i}" for i in range(units)]
    plots.image_grid(
        images, path, run.display_shape, title, min(units, 10), features=run.features, names=names
    )


def _latent(run, rows: FigureRows, path: Path, n: int, method: str) -> None:
    keep = np.random.default_rng(0).permutation(len(rows.x))[:2000]
    codes = rows.codes[keep].numpy()
    if codes.shape[1] < 2:
        raise UserError("--what latent needs a code of two or more dimensions; this run's code has one")
    if len(codes) < 3 and codes.shape[1] > 2:  # too few rows to map: their first two units, as they are
        points, axes = codes[:, :2], ("code 0", "code 1")
    elif codes.shape[1] == 2:
        if method == "tsne":
            warnings.warn(
                "--method tsne maps codes of more than two dimensions to two; this run's code has two, "
                "drawn as they are: leave --method out",
                SettingWarning,
                stacklevel=user_stacklevel(),
            )
        points, axes = codes, ("code 0", "code 1")
    elif method == "tsne":
        from sklearn.manifold import TSNE

        # scikit-learn's 30, and on few codes a third of them: a perplexity near their count makes every
        # point every other's neighbour, which spreads them evenly whatever their classes
        perplexity = min(30.0, max(2.0, (len(codes) - 1) / 3))
        points = TSNE(2, init="pca", random_state=0, perplexity=perplexity).fit_transform(codes)
        axes = ("t-SNE 1 of the codes", "t-SNE 2 of the codes")
    else:
        points = PCA(torch.from_numpy(codes), 2).transform(torch.from_numpy(codes)).numpy()
        axes = ("principal component 1 of the codes", "principal component 2 of the codes")
    labels = None if rows.y is None else rows.y[keep]
    title = f"the codes of {len(points)} {rows.which} rows (code size {codes.shape[1]})"
    plots.scatter(points, labels, path, axes, title, rows.classes, rows.names, label_name(run.cfg.data))


def _traverse(run, rows: FigureRows, path: Path, n: int, method: str) -> None:
    model, codes = run.model, rows.codes
    dims = min(n, codes.shape[1])
    steps = 9
    # a table's code is a block of rows, one per step, where an image's steps stand side by side
    way = "top to bottom" if plots.table_rows(rows.x[:1].numpy(), run.display_shape) else "left to right"
    if model.can_sample and getattr(run.cfg.kind_options, "prior", "gaussian") == "gaussian":  # N(0, 1): ±3
        lo, hi = torch.full((dims,), -3.0), torch.full((dims,), 3.0)
        span = f"from −3 to +3, {way}"
    else:  # the range the test codes actually take
        lo, hi = codes[:, :dims].quantile(0.01, dim=0), codes[:, :dims].quantile(0.99, dim=0)
        span = f"from its 1st to its 99th percentile on the {rows.which} rows, {way}"
    varied = []
    for d in range(dims):
        z = codes[:1].repeat(steps, 1)
        z[:, d] = torch.linspace(float(lo[d]), float(hi[d]), steps)
        with torch.no_grad():
            varied.append((f"code {d}", model.decode(z).numpy()))
    title = f"{rows.which} image 0's code with one dimension varied {span}{_first(dims, codes.shape[1])}"
    plots.labelled_rows(varied, path, run.display_shape, title, run.features)


FIGURES = {
    "recon": _recon,
    "denoise": _denoise,
    "top": _top,
    "maximize": _maximize,
    "latent": _latent,
    "traverse": _traverse,
}

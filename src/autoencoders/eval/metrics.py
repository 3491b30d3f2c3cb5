"""Honest numbers: reconstruction error, the PCA baseline, and what codes are good for (linear probe,
kNN, k-means) beside the same on PCA codes and raw pixels."""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..data.classes import UNLABELLED
from ..data.datasets import SAMPLE_ROWS, Dataset
from ..data.sources import cache_dir
from ..data.stream import RowStream, map_rows, rows_at
from ..errors import UserError, say
from ..io.checkpoint import arrays_sha256, write_text
from ..models.layers import eval_mode
from ..runtime.device import gpu_math
from . import probes
from .agreement import clustering_accuracy, normalized_mutual_information
from .likelihood import elbo_parts, importance_sampled_nll


@torch.no_grad()
def in_batches(model: nn.Module, fn, x: torch.Tensor | RowStream, batch_size: int = 4096) -> torch.Tensor:
    """``fn`` over ``x`` in eval mode, restoring the model's mode afterwards: fp32 results, float64
    for float64 rows (through a float64 model); in fp32 on a GPU too. Each batch computes on the
    model's device, so rows on the host never sit on a GPU whole; the result is on ``x``'s device.
    A stream's rows are read part by part (``map_rows``), never whole."""
    if isinstance(x, RowStream):
        return map_rows(lambda part: in_batches(model, fn, part, batch_size), x)
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    where = next(model.parameters(), x).device  # a module without parameters computes where x is
    done = None
    with eval_mode(model), gpu_math("fp32", where):
        for i in range(0, max(len(x), 1), batch_size):
            part = fn(x[i : i + batch_size].to(where))
            if done is None:  # filled batch by batch: concatenated, the batches and the result would
                # both be held at the end (a reconstruction of large data twice its size)
                done = torch.empty((len(x), *part.shape[1:]), dtype=dtype, device=x.device)
            done[i : i + len(part)].copy_(part)
    return done


def beyond_range(rows: np.ndarray, block: int = 8192) -> np.ndarray:
    """Each scaled row's squared distance beyond the training range [0, 1], in float64: what an
    anomaly score adds for values the model sees clipped to its edge. In blocks: whole, the float64
    squares would be twice the rows' size."""
    out = np.empty(len(rows))
    for i in range(0, len(rows), block):
        part = rows[i : i + block]
        out[i : i + block] = np.square(part - np.clip(part, 0.0, 1.0), dtype=np.float64).sum(1)
    return out


def encode_all(model: nn.Module, x: torch.Tensor | RowStream) -> torch.Tensor:
    """Codes of all rows of ``x`` (eval mode, fp32)."""
    return in_batches(model, model.encode, x)


def reconstruct_all(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Reconstructions of all rows of ``x`` (eval mode, fp32)."""
    return in_batches(model, model.reconstruct, x)


def reconstruction_errors(
    x: torch.Tensor, reconstruct: torch.Tensor | Callable[[torch.Tensor], torch.Tensor], chunk: int = 8192
) -> dict[str, float]:
    """Per-pixel MSE, per-image SSE (sum over pixels, mean over images) and PSNR (peak 1).

    ``reconstruct`` is the reconstructions, or a function applied chunk by chunk (so large
    test sets never hold a float64 copy of themselves); computed on ``x``'s device.
    """
    sse = torch.zeros((), dtype=torch.float64, device=x.device)
    for i in range(0, len(x), chunk):
        rows = x[i : i + chunk]
        recon = reconstruct[i : i + chunk] if isinstance(reconstruct, torch.Tensor) else reconstruct(rows)
        # each row's error in the wider of the two precisions, at least float32 (a model's: a sum of
        # a few thousand squares, off by about 1e-9 of the float64 sum, 25 times faster on a CPU),
        # the rows' errors summed in float64
        wide = torch.promote_types(torch.promote_types(recon.dtype, rows.dtype), torch.float32)
        sse += (recon.to(wide) - rows.to(wide)).pow_(2).sum(1).double().sum()
    sse, mse = float(sse), float(sse) / x.numel()
    return {
        "mse": mse,
        "sse_per_image": sse / len(x),
        "psnr": 10 * math.log10(1.0 / mse) if mse > 0 else math.inf,
    }


def likelihood_metrics(model: nn.Module, x: torch.Tensor, iw_samples: int, quiet: bool = True) -> dict:
    """−ELBO (one sample per image), its reconstruction and KL parts, and the IW estimate of the NLL
    with its standard error over the rows: on ``model.nll_rows`` of them (0: all), a sample drawn
    with a fixed seed, so that every model of a dataset is scored on the same rows. With 1,000
    samples per row, the default 2,000 Fashion-MNIST rows take about 17 s on 2 CPU cores (784-512-
    256-16), all 10,000 about 85 s. In fp32 on a GPU too, as every metric."""
    with gpu_math("fp32", next(model.parameters()).device):
        with eval_mode(model):
            recon, kl = elbo_parts(model, x)
        out = {
            "test_neg_elbo": float((recon + kl).mean()),
            "test_recon_nll": float(recon.mean()),
            "test_kl": float(kl.mean()),
        }
        if iw_samples > 0:
            rows = x
            if 0 < model.nll_rows < len(x):
                pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[: model.nll_rows]
                pick = pick.sort().values.to(x.device)
                rows = x[pick]
                # the bound and the floor on the NLL's own rows: a sample's differ from the split's
                out["nll_rows_neg_elbo"] = float((recon + kl)[pick].mean())
                if (floor := bce_floor(model, rows)) is not None:
                    out["nll_rows_bce_floor"] = floor
            say(  # often longer than training: the note says which settings set its cost
                f"test NLL: {iw_samples} importance samples for each of {len(rows)} test rows "
                "(set by training's --iw-samples and --nll-rows)",
                quiet,
            )
            nll = importance_sampled_nll(model, rows, iw_samples, quiet=quiet)
            out |= {"test_nll": float(nll.mean()), "nll_rows": len(nll), "iw_samples": iw_samples}
            if len(nll) > 1:  # of one row, its mean has no standard error
                out["test_nll_se"] = float(nll.std() / math.sqrt(len(nll)))
    return out


def code_scores(
    z_train: torch.Tensor, y_train: torch.Tensor, z_test: torch.Tensor, y_test: torch.Tensor
) -> dict:
    """What features are good for: linear probe, kNN and k-means (accuracy, NMI), by metric name,
    over the rows that have a class. Computed on the features' device (see ``probes``). k-means
    needs at least two test rows per class: with as many clusters as rows, each row is a cluster of
    its own, a perfect score of nothing."""
    z_train, y_train = with_class(z_train, y_train)
    z_test, y_test = with_class(z_test, y_test)
    out = {
        "linear_probe_accuracy": probes.linear_probe_accuracy(z_train, y_train, z_test, y_test),
        "knn_accuracy": probes.knn_accuracy(z_train, y_train, z_test, y_test),
    }
    if len(y_test) >= 2 * len(torch.unique(y_test)):
        out["kmeans_accuracy"], out["kmeans_nmi"] = kmeans_scores(z_test, y_test)
    return out


def with_class(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows of (``x``, ``y``) that have a class (``UNLABELLED`` marks those without)."""
    known = y != UNLABELLED
    return (x, y) if bool(known.all()) else (x[known.to(x.device)], y[known])


# part of every cache key: bump it when what a baseline computes changes
BASELINE_VERSION = b"baselines-13"


def cached(
    arrays: tuple[torch.Tensor | None, ...],
    compute: Callable[[], dict],
    device: torch.device | str,
    prefix: str = "",
    data: str | None = None,
) -> dict:
    """``compute()``, or what it returned before for the same ``arrays`` (or ``data``), kind of
    ``device`` it computes on and file-name ``prefix``: cached on disk for baselines that depend on
    the data alone, not on the model. A GPU draws other random numbers than the CPU for the same
    seed (k-means' starts) and rounds otherwise: each kind of device keeps its own numbers. ``data``: the
    ``Dataset.rows_digest`` the arrays all come from, which names them without hashing them again
    (the probes' sample is drawn from it by a fixed rule)."""
    # torch's generator draws samples and k-means' starts, and another version may draw others
    version = BASELINE_VERSION + f", torch {torch.__version__}".encode()
    if data is None:
        digest = arrays_sha256((None if a is None else a.cpu().numpy() for a in arrays), version)
    else:
        # the rows as ``_rows`` draws them from it
        drawn = f"dataset {data}, probes on {PROBE_ROWS}, a stream's {SAMPLE_ROWS}, seeds 0"
        digest = hashlib.sha256(version + drawn.encode()).hexdigest()
    kind = torch.device(device).type
    path = cache_dir() / "baselines" / f"{'' if kind == 'cpu' else kind + '-'}{prefix}{digest}.json"
    try:
        out = json.loads(path.read_text())
        # numbers by name, as compute returns them, under the names it gives (written with them: a
        # file of other names, or none, is damaged and computed again)
        if isinstance(out, dict) and out.pop("names", None) == sorted(out):
            if all(type(v) in (int, float) for v in out.values()):
                return out
    except (OSError, ValueError):
        pass
    out = compute()
    try:
        # Python's own JSON, NaN and Infinity kept: this file is read back here alone, and a PSNR of an
        # exact reconstruction is infinite
        write_text(path, json.dumps(out | {"names": sorted(out)}))
    except UserError:  # an unwritable cache only costs the time to compute them again
        pass
    return out


# probes and baselines fit on at most this many training rows (a fixed-seed sample): a linear
# probe on 60,000 Fashion-MNIST images takes L-BFGS ~750 passes over them (35 s on 2 CPU cores)
PROBE_ROWS = 20_000


def sample_rows(rows: int, n: int = PROBE_ROWS, seed: int = 0) -> torch.Tensor:
    """Indices of ``n`` of ``rows`` rows drawn without replacement (all of them when there are no
    more), in order."""
    if rows <= n:
        return torch.arange(rows)
    return torch.randperm(rows, generator=torch.Generator().manual_seed(seed))[:n].sort().values


def probe_sample(
    x: torch.Tensor | RowStream, y: torch.Tensor, n: int = PROBE_ROWS, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """All rows of (``x``, ``y``), or ``n`` of them drawn without replacement, in order; in memory
    (of a stream, read)."""
    if len(x) <= n:
        return (x.materialise() if isinstance(x, RowStream) else x), y
    pick = sample_rows(len(x), n, seed)
    return rows_at(x, pick), y[pick.to(y.device)]


def pixel_scores(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    device: torch.device | str = "cpu",
    data: str | None = None,
) -> dict:
    """``code_scores`` on the raw inputs (computed on ``device``), keys prefixed ``pixels_``; cached
    per dataset on disk (``data``: as ``cached`` takes it), since they do not depend on the model and
    the probe on raw pixels is the slow one."""
    parts = (x_train, y_train, x_test, y_test)
    return cached(
        parts,
        lambda: {f"pixels_{k}": v for k, v in code_scores(*(t.to(device) for t in parts)).items()},
        device,
        data=data,
    )


def pca_scores(
    x_train: torch.Tensor,
    y_train: torch.Tensor | None,
    x_test: torch.Tensor,
    y_test: torch.Tensor | None,
    k: int,
    device: torch.device | str = "cpu",
    probe_rows: tuple[torch.Tensor, torch.Tensor] | None = None,
    data: str | None = None,
) -> dict:
    """PCA with ``k`` components fitted on the training rows: its test reconstruction error and,
    given labels, ``code_scores`` of its codes (the probes fit on ``probe_rows``, by default the
    training rows); keys prefixed ``pca_``. Computed on ``device``; cached per dataset (``data``)
    and ``k`` on disk, like ``pixel_scores``: the same for every model of that code size."""
    x_probe, y_probe = probe_rows if probe_rows is not None else (x_train, y_train)

    def compute() -> dict:
        pca = probes.PCA(x_train.to(device), k)
        test = x_test.to(device)
        err = reconstruction_errors(test, lambda rows: pca.inverse_transform(pca.transform(rows)))
        out = {"pca_sse_per_image": err["sse_per_image"], "pca_psnr": err["psnr"]}
        if y_train is not None and y_test is not None:
            z_probe, z_test = pca.transform(x_probe.to(device)), pca.transform(test)
            codes = code_scores(z_probe, y_probe.to(device), z_test, y_test.to(device))
            out |= {f"pca_{name}": v for name, v in codes.items()}
        return out

    arrays = (x_train, y_train, x_test, y_test, x_probe, y_probe)
    return cached(arrays, compute, device, prefix=f"pca{k}-", data=data)


def kmeans_scores(z: torch.Tensor, y: torch.Tensor, seed: int = 0) -> tuple[float, float]:
    """(accuracy, NMI) of k-means on ``z`` with k = the number of classes in ``y``."""
    y = y.cpu().numpy()
    pred = probes.kmeans(z, len(np.unique(y)), seed=seed)[0].cpu().numpy()
    return clustering_accuracy(y, pred), normalized_mutual_information(y, pred)


Rows = tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, torch.Tensor] | None, torch.Tensor | None]


def _rows(ds: Dataset) -> Rows:
    """The in-memory training rows and labels, the probes' sample of both and the test labels; the
    last three ``None`` unless the data has at least two classes."""
    x_train, y_train = ds.train_sample()
    if y_train is None or ds.y_test is None or not bool((ds.y_test != UNLABELLED).any()):
        return x_train, None, None, None
    labelled = with_class(x_train, y_train)  # the probes fit on rows that have a class
    if len(torch.unique(labelled[1])) < 2:
        return x_train, None, None, None
    return x_train, y_train, probe_sample(*labelled), ds.y_test


def _baselines(
    ds: Dataset, rows: Rows, k: int, device: torch.device | str, stop: threading.Event | None = None
) -> dict:
    x_train, y_train, probe, y_test = rows
    data = ds.rows_digest()
    out = pca_scores(x_train, y_train, ds.x_test, y_test, k, device, probe, data)
    if probe is not None and not (stop is not None and stop.is_set()):
        out |= pixel_scores(*probe, ds.x_test, y_test, device, data)
    return out


def baselines(
    ds: Dataset, k: int, device: torch.device | str = "cpu", stop: threading.Event | None = None
) -> dict:
    """What the data alone scores, beside which a model's metrics read: PCA with ``k`` components
    (its test error and, given labels, its codes' ``code_scores``) and the raw inputs' scores;
    computed on ``device`` and cached on disk, as they do not depend on the model. Once ``stop``
    is set, the part in progress is the last (the rest is missing)."""
    return _baselines(ds, _rows(ds), k, device, stop)


def bce_floor(model: nn.Module, x: torch.Tensor) -> float | None:
    """What a BCE model's loss never goes below on rows ``x`` (on its device), per example: grey
    pixels cost their own entropy; None for other losses."""
    if getattr(model, "loss_kind", None) != "bce":
        return None
    return float(in_batches(model, model.loss_floor, x).mean())


def evaluate(
    model: nn.Module,
    ds: Dataset,
    data_baselines: bool | Callable[[], dict] = True,
    iw_samples: int = 0,
    quiet: bool = True,
    test_codes: torch.Tensor | None = None,
    floor: float | None = None,
) -> dict[str, float]:
    """Test-set metrics of ``model`` on its device, and beside them the data's ``baselines`` with the
    same code size: computed here (``True``; on the model's device), none (``False``), or those a
    function returns (computed while the model trained, say). ``test_codes``: ``encode_all`` of the
    test rows when the caller has them; the reconstructions are their decoding. ``floor``: the
    test rows' ``bce_floor``, likewise.

    PCA fits on all training rows (at most 50,000 of a stream from disk); the linear probe and
    kNN of the codes, of PCA's codes and of the pixels fit on the same ``PROBE_ROWS`` of them.
    A model with a Gaussian posterior (VAE) also gets its ELBO parts and, with
    ``iw_samples`` > 0, the importance-sampled test NLL (nats per image).
    """
    device = next(model.parameters()).device
    k = model.code_size
    rows = _rows(ds)
    probe, y_test = rows[2:]
    x_test = ds.x_test.to(device)
    z_test = encode_all(model, x_test) if test_codes is None else test_codes
    # the decoded codes: as large as the test rows, which are on the device already
    ae = reconstruction_errors(x_test, in_batches(model, model.decode, z_test))
    own = {"test_mse": ae["mse"], "test_sse_per_image": ae["sse_per_image"], "test_psnr": ae["psnr"]}
    own["mean_row_sse_per_image"] = mean_row_sse(x_test, rows[0])  # what learning nothing scores
    if (floor := bce_floor(model, x_test) if floor is None else floor) is not None:
        own["test_bce_floor"] = floor
    if len(z_test) > 1:  # one row is constant in every unit: nothing to count
        own["dead_code_units"] = dead_units(z_test)
        if model.likelihood:  # a VAE's codes are posterior means
            own["active_units"] = active_units(z_test)
    if model.likelihood:
        own |= likelihood_metrics(model, x_test, iw_samples, quiet)
    if probe is not None:
        z_train = encode_all(model, probe[0].to(device))
        own |= code_scores(z_train, probe[1].to(device), z_test, y_test.to(device))
        own["majority_class_accuracy"] = majority_class_accuracy(probe[1], y_test)
        known = int((y_test != UNLABELLED).sum())
        if known < len(y_test):  # a label column blank in some rows: the accuracies count these
            own["labelled_test_rows"] = known
    if callable(data_baselines):
        base = data_baselines()
    else:
        base = _baselines(ds, rows, k, device) if data_baselines else {}
    if "pca_sse_per_image" in base:  # PCA has no more components than the rows have features
        base = base | {"pca_components": min(k, x_test.shape[1], len(ds.x_train))}
    # the test errors, PCA's beside them, then the rest: the model's scores before PCA's and the pixels'
    first = ("test_mse", "test_sse_per_image", "test_psnr", "pca_sse_per_image", "pca_psnr")
    merged = own | base
    return {name: merged[name] for name in first if name in merged} | {"code_size": k} | merged


def majority_class_accuracy(y_train: torch.Tensor, y_test: torch.Tensor) -> float:
    """The test accuracy of always guessing the commonest class of ``y_train``: what an accuracy
    must beat to say anything (on imbalanced classes, much more than 1 / classes)."""
    y_train, y_test = (y[y != UNLABELLED] for y in (y_train.cpu(), y_test.cpu()))
    commonest = torch.mode(y_train).values
    return float((y_test == commonest).double().mean())


# a unit is active when its posterior mean varies over the rows by more than this (Burda et al. 2016)
ACTIVE_VARIANCE = 0.01


def active_units(means: torch.Tensor) -> int:
    """How many units of a VAE's posterior means ``means`` are active: their variance over the rows
    is above ``ACTIVE_VARIANCE``. A collapsed unit's posterior stays near the prior for every row: its
    mean moves a little (so it is not dead), but it carries almost nothing about the input."""
    return int((means.double().var(0, correction=0) > ACTIVE_VARIANCE).sum())


def mean_row_sse(x: torch.Tensor, train: torch.Tensor) -> float:
    """The squared error per row of reconstructing every row of ``x`` by the mean of the rows
    ``train``: where a model that has learned nothing about single rows stands. The mean in
    float32, within 1e-8 of float64's on Fashion-MNIST and ten times sooner."""
    mean = train.float().mean(0).to(x.device)
    return reconstruction_errors(x, mean.expand_as(x))["sse_per_image"]


def dead_units(codes: torch.Tensor) -> int:
    """How many code units are constant over the rows ``codes`` (a ReLU unit that never fires, a
    saturated one): they carry nothing about the inputs."""
    codes = codes.float()
    spread = codes.amax(0) - codes.amin(0)
    return int((spread <= 1e-6 * (1 + codes.abs().amax(0))).sum())


def pca_name(metrics: dict) -> str:
    """PCA's name beside a model's scores: ``PCA-k`` at the model's code size, or with every
    component the data has when the code is wider than that."""
    k = metrics.get("pca_components", metrics.get("code_size", "?"))
    return f"PCA-{k}" + (", every component" if k != metrics.get("code_size", k) else "")

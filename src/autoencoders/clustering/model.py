"""A clusterer made from an autoencoder: its encoder and k clusters in the code space, and the DEC /
IDEC fine-tuning that trains both through the one training loop."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.stream import RowStream
from ..eval.clustering import gaussian_log_responsibilities, soft_assignment, target_distribution
from ..eval.metrics import in_batches
from ..models import Autoencoder
from ..models.layers import codes_as_in_use
from ..options import TrainConfig
from ..training.steps import GradientStep

Embedding = Callable[[np.ndarray], np.ndarray]  # codes to the space the clusters live in (UMAP's)


class Clusterer(nn.Module):
    """``autoencoder.encode`` followed by each code's log probability of each of k clusters.

    Around ``centres`` with a Student's t kernel (DEC's soft assignment: the nearest centre is the
    most probable, so k-means' clusters are its argmax too), or, given ``precision_cholesky`` and
    ``weights``, the posterior of a Gaussian mixture with those ``centres`` as means. ``embed``
    maps codes to the space of the clusters first (a fitted UMAP's ``transform``: held in memory,
    never saved).
    """

    def __init__(
        self,
        autoencoder: Autoencoder,
        centres: torch.Tensor,
        alpha: float = 1.0,
        precision_cholesky: torch.Tensor | None = None,
        weights: torch.Tensor | None = None,
        embed: Embedding | None = None,
    ):
        super().__init__()
        self.autoencoder = autoencoder  # registered: DEC trains its encoder, not a copy
        self.alpha, self.embed = alpha, embed
        self.gaussian = precision_cholesky is not None
        if self.gaussian:
            self.register_buffer("centres", centres.double())
            self.register_buffer("precision_cholesky", precision_cholesky.double())
            self.register_buffer("log_weights", torch.log(weights.double()))
        else:
            self.centres = nn.Parameter(centres.float().clone())

    def __deepcopy__(self, memo: dict) -> Clusterer:
        """A copy of the weights that shares ``embed``: a fitted UMAP is a model of its own, not
        tensors this module owns."""
        memo[id(self.embed)] = self.embed
        copied = self.__class__.__new__(self.__class__)
        memo[id(self)] = copied
        copied.__dict__.update({key: copy.deepcopy(value, memo) for key, value in self.__dict__.items()})
        return copied

    @classmethod
    def from_state(
        cls, autoencoder: Autoencoder, tensors: dict[str, torch.Tensor], alpha: float
    ) -> Clusterer:
        """The clusterer whose ``state_dict`` is ``tensors``, around ``autoencoder`` (rebuilt empty)."""
        gaussian = "precision_cholesky" in tensors
        clusterer = cls(
            autoencoder,
            tensors["centres"],
            alpha,
            tensors["precision_cholesky"] if gaussian else None,
            tensors["log_weights"].exp() if gaussian else None,
        )
        clusterer.load_state_dict(tensors)
        return clusterer

    @property
    def k(self) -> int:
        return len(self.centres)

    @property
    def n_features(self) -> int:
        return math.prod(self.autoencoder.input_shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The codes as the encoder gives them in use (a k-sparse code's selection included)."""
        with codes_as_in_use(self.autoencoder):
            return self.autoencoder.encode(x)

    def log_assign(self, z: torch.Tensor) -> torch.Tensor:
        """log p(cluster | code) of every row of codes ``z``."""
        if self.gaussian:
            return gaussian_log_responsibilities(z, self.centres, self.precision_cholesky, self.log_weights)
        return torch.log(soft_assignment(z, self.centres, self.alpha).clamp_min(1e-30))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encode(x)
        if self.embed is not None:
            z = torch.as_tensor(self.embed(z.cpu().numpy()), device=z.device)
        return self.log_assign(z)

    def assign(self, x: torch.Tensor) -> torch.Tensor:
        """Each row's probability of each cluster (eval mode, float32, in batches)."""
        return in_batches(self, lambda rows: self(rows).exp(), x)


class DECLosses(nn.Module):
    """KL(P ‖ Q) between DEC's target distribution of the batch's rows (looked up by their indices)
    and their soft assignment Q, plus ``gamma`` × the autoencoder's own reconstruction loss per
    input feature (IDEC; 0: DEC, which never runs the decoder)."""

    def __init__(self, clusterer: Clusterer, n_rows: int, gamma: float = 0.0):
        super().__init__()
        self.clusterer, self.gamma = clusterer, gamma / clusterer.n_features
        device = clusterer.centres.device
        self.register_buffer("target", torch.full((n_rows, clusterer.k), 1 / clusterer.k, device=device))

    def forward(self, x: torch.Tensor, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        ae = self.clusterer.autoencoder
        if self.gamma:
            with codes_as_in_use(ae):  # the codes DEC clusters: a k-sparse code's final k
                out = ae(x)
            z, recon = out.code, ae.nll(out.logits, x).mean()
        else:
            z = self.clusterer.encode(x)
        log_q = self.clusterer.log_assign(z.float())
        kl = F.kl_div(log_q, self.target[rows], reduction="batchmean")
        if not self.gamma:
            return {"loss": kl, "kl": kl}
        return {"loss": kl + self.gamma * recon, "kl": kl, "recon": recon}


class DECStep(GradientStep):
    """A gradient step on ``DECLosses`` over (rows, row indices) batches that refreshes the target
    distribution from every row every ``refresh`` updates, and finishes when, at a check (the first
    refresh at least ``check`` updates after the last one), fewer than ``tol`` of the rows changed
    cluster since the last check."""

    levers = {"recon": "--gamma"}  # cluster's: IDEC's reconstruction; DEC's KL has no weight

    def __init__(
        self,
        losses: DECLosses,
        rows: torch.Tensor | RowStream,
        cfg: TrainConfig,
        steps: int,
        refresh: int,
        check: int,
        tol: float,
    ):
        super().__init__(losses, losses.clusterer, cfg, steps)
        self.rows, self.refresh_every, self.check_every, self.tol = rows, refresh, check, tol
        self.updates, self.checked_at, self.changed = 0, 0, None
        self.labels = self.refresh()

    def data(self) -> list[torch.Tensor | RowStream]:
        return [self.rows, self.losses.target]  # every row's: copies made to time the step read them

    def refresh(self) -> torch.Tensor:
        """Set the target from the soft assignment of every row; return their clusters."""
        q = self.losses.clusterer.assign(self.rows)
        self.losses.target.copy_(target_distribution(q))
        return q.argmax(1)

    def end_batch(self) -> None:
        super().end_batch()
        self.updates += 1
        if self.updates % self.refresh_every:
            return
        labels = self.refresh()
        # settling is judged over DEC's own span of updates, never over one short epoch's refresh,
        # where a small learning rate moves too few rows to tell settled from barely started
        if self.updates - self.checked_at >= self.check_every:
            self.changed = float((labels != self.labels).float().mean())
            self.labels, self.checked_at = labels, self.updates
            self.finished = self.changed < self.tol

    def state(self) -> dict[str, Any]:
        """What the fine-tuning did: updates, the refresh interval, and the fraction of rows that
        changed cluster between the last two checks (None before the first)."""
        return {
            "updates": self.updates,
            "target_refresh_interval": self.refresh_every,
            "last_changed_fraction": self.changed,
            "converged": self.finished,
        }

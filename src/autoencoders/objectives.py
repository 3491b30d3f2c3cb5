"""Loss terms: a reconstruction term plus weighted named terms, each logged by name.

A term maps ``(model, input, target, output)`` to a per-batch mean. The objective sums
the weighted terms; its weights may depend on the epoch (e.g. a KL warm-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from .models.base import Output


class Term(Protocol):
    """A named loss term, averaged over the batch."""

    name: str

    def __call__(
        self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, out: Output
    ) -> torch.Tensor: ...


class Reconstruction:
    """The model's own reconstruction loss (BCE, SSE or −log p(x|z)), summed per example."""

    name = "recon"

    def __call__(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, out: Output) -> torch.Tensor:
        return model.nll(out.logits, target).mean()


class GaussianKL:
    """KL(q(z|x) ‖ N(0, I)) of a diagonal Gaussian posterior, summed over code units."""

    name = "kl"

    def __call__(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, out: Output) -> torch.Tensor:
        mean, logvar = out.posterior
        return gaussian_kl(mean.float(), logvar.float()).mean()


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Per-example KL(N(mean, exp(logvar)) ‖ N(0, I))."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(1)


@dataclass
class Weighted:
    """A term and its weight; with ``warmup``, the weight grows linearly to reach it at epoch ``warmup``."""

    term: Term
    weight: float = 1.0
    warmup: int = 0

    def weight_at(self, epoch: int | None) -> float:
        """The weight in (1-based) ``epoch``; None: the full weight."""
        if self.warmup > 0 and epoch is not None:
            return self.weight * min(1.0, epoch / self.warmup)
        return self.weight


class Objective:
    """Weighted sum of terms; ``__call__`` returns ``{"loss": total, name: term, ...}``.

    Training weighs the terms as in the current epoch; evaluation (``full=True``) always
    uses the full weights, so validation losses of different epochs (and early stopping on
    them) compare the same objective even during a warm-up.
    """

    def __init__(self, terms: list[Weighted]):
        names = [w.term.name for w in terms]
        if len(set(names)) != len(names) or "loss" in names:
            raise ValueError(f"loss terms need distinct names other than 'loss', got {names}")
        self.terms, self.epoch = terms, 1

    def __call__(
        self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, out: Output, full: bool = False
    ) -> dict[str, torch.Tensor]:
        values = {w.term.name: w.term(model, x, target, out) for w in self.terms}
        epoch = None if full else self.epoch
        total = sum(w.weight_at(epoch) * values[w.term.name] for w in self.terms)
        return {"loss": total, **values}

"""Loss terms: a reconstruction term plus weighted named terms, each logged by name.

A term maps ``(model, input, target, output)`` to a per-batch mean. The objective sums
the weighted terms; its weights may depend on the epoch (e.g. a KL warm-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from .output import Output


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


class Sparsity:
    """Sparsity penalty on code (or all encoder) activations (Ng's sparse autoencoder notes).

    ``kl``: Σ KL(ρ ‖ ρ̂_j) between the target ρ and each unit's mean activation ρ̂_j over the
    batch (units in (0, 1), e.g. sigmoid); ``squared``: Σ (ρ − ρ̂_j)²; ``l1``: the mean over
    examples of Σ |h_j|, for any activation.
    """

    name = "sparsity"

    def __init__(self, kind: str, target: float = 0.05, layers: str = "code"):
        self.kind, self.target, self.layers = kind, target, layers

    def __call__(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, out: Output) -> torch.Tensor:
        if self.layers == "code":
            acts = [out.code]
        else:  # every encoder layer (its last one is the code)
            acts = [h for k, h in out.hidden.items() if k.startswith("layer")] or [out.code]
        return sum(self._penalty(h.float()) for h in acts)

    def _penalty(self, h: torch.Tensor) -> torch.Tensor:
        if self.kind == "l1":
            return h.abs().sum(1).mean()
        rho, rho_hat = self.target, h.mean(0)
        if self.kind == "squared":
            return (rho - rho_hat).pow(2).sum()
        rho_hat = rho_hat.clamp(1e-6, 1 - 1e-6)
        return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


class Contractive:
    """Contractive penalty (Rifai et al. 2011): ‖∂code/∂x‖²_F, averaged over the batch.

    Closed form for an encoder of one dense layer, Σ_j σ'(a_j)² ‖W_j‖² with the slope σ' of its
    sigmoid, tanh, ReLU or linear units read from the code; any other encoder differentiates its
    code with respect to the input by autograd: exactly, one batched backward pass over the code
    units, or, with ``projections`` K, estimated from K backward passes (see ``jacobian_norm``).
    """

    name = "contractive"

    def __init__(self, projections: int = 0):
        self.projections = projections

    def __call__(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, out: Output) -> torch.Tensor:
        return jacobian_norm(model, x, out, self.projections)


def jacobian_norm(
    model: nn.Module, x: torch.Tensor, out: Output | None = None, projections: int = 0
) -> torch.Tensor:
    """Mean over rows of ``x`` of the squared Frobenius norm of J = ∂ model.encode(x) / ∂x.

    ``projections`` 0: exact, every row of J by one backward pass per code unit. K > 0 (where
    there is no closed form): an unbiased estimate, the mean over K random sign vectors u of
    ‖uᵀJ‖² (E[u uᵀ] = I: Hutchinson 1989), each its own per row: K backward passes in place of
    code-size (random projections of J as in Hoffman et al. 2019, "Robust learning with Jacobian
    regularization"). Training draws them from the default generator, as corruption draws its
    noise (a captured step replays it); evaluation from a fixed one of its own, so that every
    validation pass estimates with the same directions and leaves training's stream as it was.
    """
    one_layer = model.one_layer_encoder()
    if one_layer is not None:  # J = diag(σ'(a)) W: each code unit's slope times its weights
        layer, slope = one_layer
        h = (out.code if out is not None else model.encode(x)).float()
        return (slope(h).pow(2) @ layer.weight.float().pow(2).sum(1)).mean()
    training = torch.is_grad_enabled()  # evaluation needs the input gradient, not a graph of it
    with torch.enable_grad():
        inp = x.detach().requires_grad_(True)
        code = model.encode(inp)
        if projections:
            generator = None if training else torch.Generator(code.device).manual_seed(0)
            directions = torch.empty(projections, *code.shape, dtype=code.dtype, device=code.device)
            directions = directions.bernoulli_(0.5, generator=generator).mul_(2).sub_(1)
        else:
            units = torch.eye(code.shape[1], dtype=code.dtype, device=code.device)
            directions = units.unsqueeze(1).expand(-1, *code.shape)
        (jac,) = torch.autograd.grad(
            code, inp, grad_outputs=directions, is_grads_batched=True, create_graph=training
        )
    return jac.float().pow(2).sum() / (len(x) * (projections or 1))


def regularisers(m, code_layer: bool = True) -> list[Weighted]:
    """The weighted penalty terms a ``ModelConfig`` asks for (sparsity, contractive).

    ``code_layer`` False: for a greedy stage below the code, which code-only sparsity skips.
    """
    terms = []
    if m.sparsity != "none" and (code_layer or m.sparsity_layers == "all"):
        terms.append(Weighted(Sparsity(m.sparsity, m.sparsity_target, m.sparsity_layers), m.sparsity_weight))
    if m.contractive > 0:
        terms.append(Weighted(Contractive(m.contractive_projections), m.contractive))
    return terms


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

    def weights(self) -> tuple[float, ...]:
        """Each term's weight in the current training epoch."""
        return tuple(w.weight_at(self.epoch) for w in self.terms)

    def __call__(
        self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, out: Output, full: bool = False
    ) -> dict[str, torch.Tensor]:
        values = {w.term.name: w.term(model, x, target, out) for w in self.terms}
        epoch = None if full else self.epoch
        total = sum(w.weight_at(epoch) * values[w.term.name] for w in self.terms)
        return {"loss": total, **values}

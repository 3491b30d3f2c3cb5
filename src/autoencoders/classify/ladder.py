"""Ladder network (Rasmus et al. 2015, "Semi-supervised learning with ladder networks").

The denoising autoencoder in its strongest semi-supervised form: an MLP classifier whose
every layer is also denoised. A corrupted encoder path (Gaussian noise added to the input
and to every batch-normalised pre-activation) and a clean path share their weights; a
decoder climbs back down, and at each layer a combinator g(z̃, u) denoises the corrupted
z̃ with the top-down signal u. The cost is the cross-entropy of the corrupted path's
prediction on the labelled rows plus, on every unlabelled row, the per-layer squared
distance between the clean z and the decoder's batch-normalised estimate ẑ, weighted by
λ_l. Labelled and unlabelled rows are batch-normalised apart. Predictions use the clean
path with the running batch statistics of the unlabelled rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-5


def default_denoise_weights(n_layers: int) -> list[float]:
    """λ of the paper's fully connected MNIST ladder: 1000 on the input, 10 on the first hidden
    layer, 0.1 on every layer above (``n_layers`` + 1 values: input to top)."""
    return [1000.0, 10.0, *[0.1] * (n_layers - 1)][: n_layers + 1]


class Combinator(nn.Module):
    """The paper's vanilla combinator: ẑ = (z̃ − μ(u)) v(u) + μ(u), per unit,
    μ(u) = a1 σ(a2 u + a3) + a4 u + a5 and v(u) = a6 σ(a7 u + a8) + a9 u + a10."""

    def __init__(self, width: int):
        super().__init__()
        a = torch.zeros(10, width)
        a[1] = a[6] = 1.0  # a2 = a7 = 1, the rest 0: the published initialisation
        self.a = nn.Parameter(a)

    def forward(self, z_noisy: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        a = self.a
        # each multiply-add one pass over the batch (addcmul): on a CPU these passes, not the
        # products, were most of a ladder step
        mu = torch.addcmul(a[4], a[3], u).addcmul_(a[0], torch.sigmoid(torch.addcmul(a[2], a[1], u)))
        v = torch.addcmul(a[9], a[8], u).addcmul_(a[5], torch.sigmoid(torch.addcmul(a[7], a[6], u)))
        return torch.addcmul(mu, z_noisy - mu, v)


def _normalise(h: torch.Tensor) -> torch.Tensor:
    """Batch normalisation with the batch's own statistics and no learned scale (one fused pass,
    its gradient through the statistics included). A single row is its own mean: 0, as the formula
    gives it (torch's batch norm refuses one row; an epoch's last batch may hold one)."""
    return F.batch_norm(h, None, None, training=True, eps=EPS) if len(h) > 1 else h - h


class Ladder(nn.Module):
    """A ladder network over ``widths`` = [inputs, hidden..., classes]; ``forward`` → class logits."""

    def __init__(self, widths: list[int], noise: float = 0.3, denoise_weights: list[float] | None = None):
        super().__init__()
        n_layers = len(widths) - 1
        self.widths, self.noise = list(widths), noise
        self.denoise_weights = denoise_weights or default_denoise_weights(n_layers)
        if len(self.denoise_weights) != n_layers + 1:
            raise ValueError(f"a ladder with {n_layers} layers needs {n_layers + 1} denoising weights")
        # batch normalisation replaces the biases: β shifts and γ scales each normalised unit
        self.encoder = nn.ModuleList(nn.Linear(widths[i], widths[i + 1], bias=False) for i in range(n_layers))
        self.beta = nn.ParameterList(nn.Parameter(torch.zeros(w)) for w in widths[1:])
        self.gamma = nn.ParameterList(nn.Parameter(torch.ones(w)) for w in widths[1:])
        # decoder[i] maps layer i + 1's estimate down to layer i
        self.decoder = nn.ModuleList(nn.Linear(widths[i + 1], widths[i], bias=False) for i in range(n_layers))
        self.combinators = nn.ModuleList(Combinator(w) for w in widths)
        for i, w in enumerate(widths[1:]):
            self.register_buffer(f"running_mean{i}", torch.zeros(w))
            self.register_buffer(f"running_var{i}", torch.ones(w))

    @property
    def n_features(self) -> int:
        return self.widths[0]

    def settings(self) -> dict:
        """What rebuilds this network (its weights apart)."""
        return {"widths": self.widths, "noise": self.noise, "denoise_weights": self.denoise_weights}

    def init_from(self, weights: list[torch.Tensor]) -> None:
        """Start every hidden layer from pretrained dense weights (outermost first; their layers'
        biases are dropped, batch normalisation removes them); the softmax layer is new."""
        hidden = list(self.encoder)[:-1]
        if [a.weight.shape for a in hidden] != [w.shape for w in weights]:
            raise ValueError(
                f"weights of shapes {[tuple(w.shape) for w in weights]} do not fit {self.widths}"
            )
        with torch.no_grad():
            for a, w in zip(hidden, weights):
                a.weight.copy_(w)

    def _encode(
        self, x: torch.Tensor, noise: float = 0.0, n_labelled: int = 0, update: bool = False
    ) -> tuple[list[torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
        """(z of every layer from the input up, (mean, std) of every layer above the input, logits).

        With ``noise`` the corrupted path and the clean one run side by side as one batch twice as
        tall, the corrupted rows first: the two share their weights, and one product over both
        runs faster on a CPU than two. Each path is normalised on its own, and in training the
        first ``n_labelled`` rows of a path and the rest are normalised by the statistics of
        their own part, as the reference implementation does: normalised together, every batch
        would be half the same few labelled rows, a distribution unlike the data's (so
        normalised, a 100-label Fashion-MNIST ladder lost accuracy in evaluation the longer it
        trained; normalised apart, it holds). The returned statistics and, with ``update``, the
        running averages are the clean path's unlabelled part's, the data's own. In evaluation
        the running averages normalise.
        """
        rows = len(x)
        h = torch.cat([x.add(torch.randn_like(x), alpha=noise), x]) if noise else x
        path = [n_labelled, rows - n_labelled] if n_labelled else [rows]
        parts = path * 2 if noise else path
        zs, stats = [h], []
        for i, linear in enumerate(self.encoder):
            pre = linear(h)
            if self.training:
                split = pre.split(parts)
                z = torch.cat([_normalise(part) for part in split]) if len(split) > 1 else _normalise(pre)
                var, mean = torch.var_mean(split[-1], 0, unbiased=False)  # the clean unlabelled rows'
                if update:
                    with torch.no_grad():
                        getattr(self, f"running_mean{i}").lerp_(mean.float(), 0.1)
                        getattr(self, f"running_var{i}").lerp_(var.float(), 0.1)
            else:
                mean, var = getattr(self, f"running_mean{i}"), getattr(self, f"running_var{i}")
                z = (pre - mean) / torch.sqrt(var + EPS)
            std = torch.sqrt(var + EPS)
            if noise:  # the corrupted rows only; z is this layer's own tensor
                z[:rows].add_(torch.randn_like(z[:rows]), alpha=noise)
            zs.append(z)
            stats.append((mean, std))
            h = torch.addcmul(self.gamma[i] * self.beta[i], self.gamma[i], z)  # γ (z + β)
            if i < len(self.encoder) - 1:
                h = F.relu(h)
        return zs, stats, h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of the clean path."""
        return self._encode(x, update=self.training)[2]

    def costs(self, x_unlabelled: torch.Tensor, x_labelled: torch.Tensor, y: torch.Tensor) -> dict:
        """The training cost on one unlabelled and one labelled batch, and its parts: the
        corrupted path's cross-entropy on the labelled rows, the decoder's denoising costs on
        the unlabelled rows (as in the reference implementation)."""
        n = len(y)
        x = torch.cat([x_labelled, x_unlabelled])
        rows = len(x)
        both, stats, logits = self._encode(x, self.noise, n, update=True)
        # the corrupted path's rows, then (with noise) the clean path's
        clean_at = rows if self.noise else 0
        noisy_logits = logits[:rows]
        ce = F.cross_entropy(noisy_logits[:n].float(), y)
        top = len(self.encoder)
        denoise = torch.zeros((), device=x.device)
        z_hat = None
        for i in range(top, -1, -1):
            if i == top:
                u = _normalise(torch.softmax(noisy_logits[n:], 1))
            else:
                u = _normalise(self.decoder[i](z_hat))
            z_hat = self.combinators[i](both[i][n:rows], u)
            # the estimate is compared with the clean z in the clean path's normalisation
            z_bn = (z_hat - stats[i - 1][0]) / stats[i - 1][1] if i else z_hat
            # the squared distance summed over units and averaged over rows, per unit: one fused pass
            cost = F.mse_loss(z_bn.float(), both[i][clean_at + n :].float())
            denoise = denoise + self.denoise_weights[i] * cost
        return {"loss": ce + denoise, "ce": ce, "denoise": denoise}

    def extra_repr(self) -> str:
        return f"widths={self.widths}, noise={self.noise}, λ={self.denoise_weights}"

"""Likelihood of a variational autoencoder: the ELBO and the importance-sampled NLL.

log p(x) ≈ log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x) with z_k ~ q(z|x) (Burda et al. 2016).
The estimate is a stochastic lower bound of log p(x) that tightens as K grows, and is
exact for every K when q is the true posterior.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from ..models.layers import eval_mode
from ..models.objectives import gaussian_kl

LOG_2PI = math.log(2 * math.pi)


def _log_normal(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * (LOG_2PI + logvar + (z - mean).pow(2) / logvar.exp()).sum(-1)


# rows × importance samples decoded in one pass
ROWS_PER_PASS = 16384


def nll_pass_rows(samples: int) -> int:
    """The rows ``importance_sampled_nll`` takes per pass with ``samples`` samples: their samples
    fill one decoder pass."""
    return max(1, ROWS_PER_PASS // samples)


@torch.no_grad()
def importance_sampled_nll(
    model: torch.nn.Module,
    x: torch.Tensor,
    samples: int,
    generator: torch.Generator | int = 0,
    quiet: bool = True,
) -> torch.Tensor:
    """−log p(x) per row of ``x``, estimated with ``samples`` importance samples from q(z|x),
    drawn on ``x``'s device by ``generator`` (or one seeded with that number). Rows taken in parts
    of whole passes (``nll_pass_rows``), the generator passed on, get the scores of the rows whole."""
    if isinstance(generator, int):
        generator = torch.Generator(device=x.device).manual_seed(generator)
    per_chunk = nll_pass_rows(samples)
    s_chunk = min(samples, ROWS_PER_PASS)
    out = []
    with eval_mode(model):
        for rows in tqdm(
            x.split(per_chunk), desc=f"test NLL (K={samples})", disable=True if quiet else None, leave=False
        ):
            mean, logvar = model.posterior(rows)
            log_w = []
            for start in range(0, samples, s_chunk):
                s = min(s_chunk, samples - start)
                eps = torch.randn(s, *mean.shape, generator=generator, device=mean.device).to(mean)
                z = mean + (0.5 * logvar).exp() * eps
                logits = model.decode_logits(z.reshape(-1, mean.shape[1]))
                log_px_z = -model.nll(logits.view(s, len(rows), -1), rows)
                log_pz = -0.5 * (LOG_2PI + z.pow(2)).sum(-1)
                log_w.append(log_px_z + log_pz - _log_normal(z, mean, logvar))
            out.append(-(torch.logsumexp(torch.cat(log_w).double(), 0) - math.log(samples)))
    return torch.cat(out)


@torch.no_grad()
def elbo_parts(model: torch.nn.Module, x: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: −log p(x|z) at one sample z ~ q(z|x), and KL(q(z|x) ‖ p(z)); −ELBO is their sum."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    mean, logvar = model.posterior(x)
    z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=generator, device=x.device).to(mean)
    return model.nll(model.decode_logits(z), x), gaussian_kl(mean, logvar)

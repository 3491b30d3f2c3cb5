"""What a model's forward pass returns: read by the loss terms, the loop and the figures."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Output:
    """What ``forward`` returns."""

    logits: torch.Tensor  # output layer before its activation, flat rows
    code: torch.Tensor  # the representation (VAE: the posterior mean)
    hidden: dict[str, torch.Tensor] = field(default_factory=dict)  # named activations, for terms and figures
    posterior: tuple[torch.Tensor, torch.Tensor] | None = None  # (mean, log-variance) of a Gaussian code

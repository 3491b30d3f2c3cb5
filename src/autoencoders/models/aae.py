"""The adversarial autoencoder (Makhzani et al. 2015): a discriminator on codes shapes them to a prior.

The dense stack reconstructs as usual; a discriminator learns to tell its codes from
samples of the prior, and the encoder learns to fool it. Those phases alternate inside
one training step with three optimizers (reconstruction, discriminator, encoder as the
generator), so the loop is the same one every kind uses. Because the codes follow the
prior, decoding prior samples gives new images, as with a VAE.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..options import AAEConfig, ModelConfig
from .dense import DenseAutoencoder, widths_for
from .layers import code_select


def spread_directions(n: int, dims: int) -> torch.Tensor:
    """``n`` fixed unit vectors in ``dims`` dimensions, far apart: the mixture prior's means'
    directions. Orthogonal while ``n`` ≤ ``dims``; in 2-D evenly round the circle (Makhzani et al.'s
    mixture); else the farthest of many random directions from those already taken, one by one (in
    4-D, 10 random ones had left two means 0.93 apart at radius 3: one mode, for unit variances).
    A line has two directions: more points on it are spread evenly over [-1, 1]."""
    g = torch.Generator().manual_seed(0)
    if n <= dims:
        return torch.linalg.qr(torch.randn(dims, dims, generator=g))[0].t()[:n]
    if dims == 1:
        return torch.linspace(-1, 1, n)[:, None]
    if dims == 2:
        angles = 2 * math.pi * torch.arange(n) / n
        return torch.stack([angles.cos(), angles.sin()], 1)
    candidates = torch.randn(64 * n, dims, generator=g)
    candidates /= candidates.norm(dim=1, keepdim=True)
    taken, nearest = [0], (candidates - candidates[0]).norm(dim=1)
    for _ in range(n - 1):
        taken.append(int(nearest.argmax()))
        nearest = torch.minimum(nearest, (candidates - candidates[taken[-1]]).norm(dim=1))
    return candidates[taken]


class AdversarialAutoencoder(DenseAutoencoder):
    """A dense autoencoder whose codes a discriminator pushes towards ``prior``."""

    kind = "aae"
    can_sample = True

    def __init__(
        self,
        layers: list[int],
        prior: str = "gaussian",
        components: int = 10,
        disc_layers: tuple[int, ...] = (256, 256),
        adversarial_lr: float = 2e-4,
        **dense,
    ):
        super().__init__(layers, **dense)
        # a gentler regularisation phase: at the reconstruction rate the generator's gradients
        # can silence a deep ReLU encoder (every code the same)
        self.adversarial_lr = adversarial_lr
        widths = [self.code_size, *disc_layers]
        blocks: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            blocks += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        self.discriminator = nn.Sequential(*blocks, nn.Linear(widths[-1], 1))
        self.prior = prior
        self.register_buffer("means", 3 * spread_directions(components, self.code_size))

    @classmethod
    def from_config(
        cls, m: ModelConfig, a: AAEConfig, input_shape: tuple[int, ...]
    ) -> AdversarialAutoencoder:
        """Build from the model options and the ``[aae]`` section for rows of ``input_shape``."""
        return cls(
            widths_for(m.layers, input_shape),
            a.prior,
            a.components,
            tuple(a.disc_layers),
            a.adversarial_lr,
            activation_name=m.activation,
            code_activation=m.code_activation,
            output_activation=m.output_activation,
            tied=m.tied,
            loss=m.loss,
            input_shape=input_shape,
            code_select=code_select(m),
        )

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` codes drawn from the prior (the global RNG of the model's device unless ``generator``
        is given): drawn where the model is, so a training step copies nothing from the host."""
        device = self.means.device if generator is None else generator.device
        z = torch.randn(n, self.code_size, generator=generator, device=device)
        if self.prior == "mixture":
            pick = torch.randint(len(self.means), (n,), generator=generator, device=device)
            z = z + self.means.to(device)[pick]
        return z.to(self.means.device)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` new rows decoded from prior samples."""
        return self.decode(self.prior_sample(n, generator))

    def layer_pairs(self, schedule: str = "stagewise") -> list:
        return []  # the adversarial phases need the whole encoder

"""Autoencoder models: plain ``nn.Module``s with ``encode``, ``decode``, ``forward``, ``loss``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig, UserError
from .nn import TiedLinear, activation, corrupt


def reconstruction_loss(pre: torch.Tensor, target: torch.Tensor, kind: str, act: nn.Module) -> torch.Tensor:
    """Per-example summed reconstruction loss, averaged over the batch.

    ``pre`` is the output layer *before* its activation: BCE works on logits, which is
    exact and stable, and MSE applies the activation first.
    """
    n = target.shape[0]
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(pre.float(), target.float(), reduction="sum") / n
    return (act(pre).float() - target.float()).pow(2).sum() / n


class DenseAutoencoder(nn.Module):
    """Symmetric fully connected autoencoder, optionally with tied weights.

    ``layers`` runs from the input width to the code width, e.g. ``[784, 1000, 500, 250, 30]``;
    the decoder mirrors it. Encoder layer ``k`` and decoder layer ``-1-k`` form the shallow
    autoencoder that greedy pretraining trains at stage ``k``.
    """

    def __init__(
        self,
        layers: list[int],
        activation_name: str = "relu",
        code_activation: str = "linear",
        output_activation: str = "sigmoid",
        tied: bool = False,
        loss: str = "bce",
        corruption: str = "none",
        noise: float = 0.0,
    ):
        super().__init__()
        if len(layers) < 2:
            raise UserError("a dense autoencoder needs at least two layer widths (input, code)")
        if loss == "bce" and output_activation != "sigmoid":
            raise UserError("BCE loss needs a sigmoid output activation (or use --loss mse)")
        self.layers = list(layers)
        self.loss_kind, self.corruption, self.noise = loss, corruption, noise
        depth = len(layers) - 1
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers[:-1], layers[1:]))
        # encoder activations: hidden ones, then the code layer's
        self.encoder_acts = nn.ModuleList(
            activation(code_activation if k == depth - 1 else activation_name) for k in range(depth)
        )
        rev = list(reversed(layers))
        if tied:
            self.decoder = nn.ModuleList(TiedLinear(self.encoder[depth - 1 - k]) for k in range(depth))
        else:
            self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(rev[:-1], rev[1:]))
        self.decoder_acts = nn.ModuleList(
            activation(output_activation if k == depth - 1 else activation_name) for k in range(depth)
        )
        self.tied = tied

    @classmethod
    def from_config(cls, m: ModelConfig, n_features: int) -> DenseAutoencoder:
        """Build from a ModelConfig; the first width must match the data."""
        layers = m.layers or default_layers(n_features)
        if layers[0] != n_features:
            raise UserError(
                f"--layers starts with {layers[0]} but the data has {n_features} features; "
                f"start it with {n_features}"
            )
        return cls(
            layers,
            m.activation,
            m.code_activation,
            m.output_activation,
            m.tied,
            m.loss,
            m.corruption,
            m.noise,
        )

    @property
    def code_size(self) -> int:
        return self.layers[-1]

    @property
    def depth(self) -> int:
        return len(self.encoder)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Input → code."""
        for layer, act in zip(self.encoder, self.encoder_acts):
            x = act(layer(x))
        return x

    def decode_pre(self, z: torch.Tensor) -> torch.Tensor:
        """Code → output layer before its activation (logits for BCE)."""
        for layer, act in zip(self.decoder[:-1], self.decoder_acts[:-1]):
            z = act(layer(z))
        return self.decoder[-1](z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Code → reconstruction."""
        return self.decoder_acts[-1](self.decode_pre(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Training objective: reconstruct clean ``x`` from its corrupted version (if any)."""
        inp = corrupt(x, self.corruption, self.noise) if self.training else x
        pre = self.decode_pre(self.encode(inp))
        return reconstruction_loss(pre, x, self.loss_kind, self.decoder_acts[-1])

    def flops_per_example(self) -> int:
        """Multiply-adds ×2 of one forward pass (backward is about twice that)."""
        return 4 * sum(a * b for a, b in zip(self.layers[:-1], self.layers[1:]))


def default_layers(n_features: int) -> list[int]:
    """Default widths: input, 256, 64, 16 (narrower than the input)."""
    return [n_features, 256, 64, 16]

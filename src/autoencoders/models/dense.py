"""The fully connected (optionally tied-weight) autoencoder: the stack the rest of the family reuses."""

from __future__ import annotations

import math

from torch import nn

from ..errors import UserError
from ..options import ModelConfig
from .base import Stack
from .layers import TiedLinear, code_select


def mirrored_linear(widths: list[int], tied: bool) -> tuple[list[nn.Module], list[nn.Module]]:
    """Dense encoder layers along ``widths`` and decoder layers back (tied: transposed weights)."""
    encoder = [nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])]
    if tied:
        decoder: list[nn.Module] = [TiedLinear(layer) for layer in reversed(encoder)]
    else:
        rev = list(reversed(widths))
        decoder = [nn.Linear(a, b) for a, b in zip(rev[:-1], rev[1:])]
    return encoder, decoder


class DenseAutoencoder(Stack):
    """Symmetric fully connected autoencoder, optionally with tied weights.

    ``layers`` runs from the input width to the code width, e.g. ``[784, 1000, 500, 250, 30]``;
    the decoder mirrors it.
    """

    kind = "dense"

    def __init__(
        self,
        layers: list[int],
        activation_name: str = "relu",
        code_activation: str = "linear",
        output_activation: str = "sigmoid",
        tied: bool = False,
        loss: str = "bce",
        input_shape: tuple[int, ...] | None = None,
        code_select: nn.Module | None = None,
    ):
        if len(layers) < 2:
            raise UserError("a dense autoencoder needs at least two layer widths (input, code)")
        encoder, decoder = mirrored_linear(list(layers), tied)
        super().__init__(
            encoder, decoder, activation_name, code_activation, output_activation, loss, code_select
        )
        self.layers, self.tied = list(layers), tied
        self.input_shape = tuple(input_shape or (layers[0],))
        self.code_size = layers[-1]

    @classmethod
    def from_config(cls, m: ModelConfig, options: None, input_shape: tuple[int, ...]) -> DenseAutoencoder:
        """Build from the model options for rows of ``input_shape`` (the kind has no section of its own)."""
        layers = widths_for(m.layers, input_shape)
        return cls(
            layers,
            m.activation,
            m.code_activation,
            m.output_activation,
            m.tied,
            m.loss,
            input_shape,
            code_select(m),
        )


def widths_for(
    layers: list[int] | None, input_shape: tuple[int, ...], default: tuple[int, ...] = (256, 64, 16)
) -> list[int]:
    """``--layers`` checked against the data's width, or the input width then ``default``, its code
    at most half the input's width (one unit at least): a code as wide as a narrow table's rows is
    no reduction of them, and PCA at its size, the run's baseline, would copy them exactly."""
    n_features = math.prod(input_shape)
    layers = layers or [n_features, *default[:-1], min(default[-1], max(1, n_features // 2))]
    if layers[0] != n_features:
        raise UserError(
            f"--layers starts with {layers[0]} but the data has {n_features} features; "
            f"start it with {n_features}"
        )
    return list(layers)

"""The convolutional autoencoder: stride-2 convolutions down, transposed convolutions up.

A dense part joins them: the flattened feature maps go through ``--layers``' widths after
the input (the last one is the code) and back. Every convolution has its mirror, so greedy
layer-wise pretraining trains it one conv/deconv pair per stage (a stacked conv AE).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from ..options import ConvConfig, ModelConfig
from .base import Stack
from .dense import mirrored_linear, widths_for
from .layers import code_select


class Conv(nn.Module):
    """Stride-2 convolution on flat rows viewed as ``in_shape`` (C, H, W); returns flat rows."""

    def __init__(self, in_shape: tuple[int, int, int], out_channels: int, kernel_size: int):
        super().__init__()
        c, h, w = in_shape
        self.in_shape = tuple(in_shape)
        self.conv = nn.Conv2d(c, out_channels, kernel_size, stride=2, padding=kernel_size // 2)
        size = lambda n: (n + 2 * self.conv.padding[0] - kernel_size) // 2 + 1  # noqa: E731
        self.out_shape = (out_channels, size(h), size(w))
        if min(self.out_shape[1:]) < 1:
            raise UserError(f"images of {h}×{w} are too small for this many stride-2 convolutions")

    @property
    def weight(self) -> torch.Tensor:
        return self.conv.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.view(-1, *self.in_shape)).flatten(1)


class Deconv(nn.Module):
    """Transposed convolution from ``conv.out_shape`` back to ``conv.in_shape``, on flat rows.

    ``tied``: its weight *is* the convolution's (a transposed convolution with the same
    tensor is the exact transpose of the convolution); only the bias is its own.
    """

    def __init__(self, conv: Conv, tied: bool = False):
        super().__init__()
        k, p = conv.conv.kernel_size[0], conv.conv.padding[0]
        c_out, h, w = conv.in_shape
        _, h2, w2 = conv.out_shape
        self.in_shape, self.out_shape = conv.out_shape, conv.in_shape
        # output_padding picks the input size a stride-2 convolution maps onto the same output size
        self.output_padding = (h - ((h2 - 1) * 2 - 2 * p + k), w - ((w2 - 1) * 2 - 2 * p + k))
        self.padding = p
        if tied:
            object.__setattr__(self, "tied_to", conv)  # outside the module tree: one tensor, saved once
            self.bias = nn.Parameter(torch.zeros(c_out))
        else:
            self.tied_to = None
            self.deconv = nn.ConvTranspose2d(
                conv.out_shape[0], c_out, k, 2, p, output_padding=self.output_padding
            )

    def reset_parameters(self) -> None:
        """A fresh build's tied bias (zero); an untied ``deconv`` resets itself."""
        if self.tied_to is not None:
            nn.init.zeros_(self.bias)

    @property
    def weight(self) -> torch.Tensor:
        return self.tied_to.weight if self.tied_to is not None else self.deconv.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, *self.in_shape)
        if self.tied_to is not None:
            out = F.conv_transpose2d(
                x, self.weight, self.bias, 2, self.padding, output_padding=self.output_padding
            )
        else:
            out = self.deconv(x)
        return out.flatten(1)


class ConvAutoencoder(Stack):
    """Convolutions ``channels``, a dense part ``layers[1:]`` (the code last), and mirrors back."""

    kind = "conv"

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        channels: list[int],
        layers: list[int],
        kernel_size: int = 3,
        activation_name: str = "relu",
        code_activation: str = "linear",
        output_activation: str = "sigmoid",
        tied: bool = False,
        loss: str = "bce",
        code_select: nn.Module | None = None,
    ):
        convs, shape = [], tuple(input_shape)
        for c in channels:
            convs.append(Conv(shape, c, kernel_size))
            shape = convs[-1].out_shape
        dense_enc, dense_dec = mirrored_linear([math.prod(shape), *layers[1:]], tied)
        deconvs = [Deconv(conv, tied) for conv in reversed(convs)]
        super().__init__(
            [*convs, *dense_enc],
            [*dense_dec, *deconvs],
            activation_name,
            code_activation,
            output_activation,
            loss,
            code_select,
        )
        self.input_shape, self.channels, self.layers = tuple(input_shape), list(channels), list(layers)
        self.kernel_size, self.tied = kernel_size, tied
        self.code_size = layers[-1]

    def dense_weights(self) -> None:
        """None: the dense layers map convolution features, not the input (whatever their shapes)."""
        return None

    @classmethod
    def from_config(cls, m: ModelConfig, c: ConvConfig, input_shape: tuple[int, ...]) -> ConvAutoencoder:
        """Build from the model options and the ``[conv]`` section for images of ``input_shape`` (C, H, W)."""
        if len(input_shape) != 3:
            raise UserError(
                f"--model conv needs images, but the rows have shape {tuple(input_shape)}; "
                "give N×H×W data or --image-shape C,H,W (or use --model dense)"
            )
        layers = widths_for(m.layers, input_shape, default=(16,))
        return cls(
            input_shape,
            c.channels,
            layers,
            c.kernel_size,
            m.activation,
            m.code_activation,
            m.output_activation,
            m.tied,
            m.loss,
            code_select(m),
        )

"""The interface every model kind implements, and the layer stack most kinds are built from.

Models take and return **flat rows** (N × D): datasets keep rows flat and record the sample
shape, and a layer that needs images (a convolution) views its rows as (C, H, W) itself.
So data loading, streaming, caching and metrics never depend on the kind of model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..data.shapes import holds_images
from ..errors import UserError
from .layers import Slope, activation, slope_from_output
from .objectives import Reconstruction, Weighted
from .output import Output


def reconstruction_loss(
    logits: torch.Tensor, target: torch.Tensor, kind: str, act: nn.Module
) -> torch.Tensor:
    """Per-example summed reconstruction loss (summed over the last dimension).

    ``logits`` is the output layer *before* its activation: BCE works on logits, which is
    exact and stable; MSE (a sum of squared errors) applies the activation first. ``target``
    (rows × features) may also stand for each sample of ``logits`` (samples × rows × features:
    a posterior's importance samples), without a copy per sample.
    """
    if kind == "bce":
        logits = logits.float()
        if target.dim() < logits.dim():  # softplus(l) − x·l, each term as the fused loss: 2x faster
            return F.softplus(logits).addcmul_(logits, target.float(), value=-1).sum(-1)
        loss = F.binary_cross_entropy_with_logits(logits, target.float(), reduction="none")
    else:
        loss = (act(logits).float() - target.float()).pow(2)
    return loss.sum(-1)


class Autoencoder(nn.Module):
    """Base of every kind: ``encode``, ``decode``, ``forward`` → :class:`Output`, a likelihood."""

    kind: str = ""
    input_shape: tuple[int, ...]
    code_size: int
    layers: list[int]  # widths from the input to the code (a conv model: of its dense part)
    loss_kind: str
    # what a kind can do beyond encoding and decoding, read instead of its name
    can_sample = False  # ``sample(n)`` decodes draws from a prior
    likelihood = False  # a Gaussian ``posterior(x)`` and a decoder likelihood: its test NLL can be estimated
    iw_samples = 0  # importance samples for that NLL after training (from the kind's own options)
    nll_rows = 0  # test rows it averages over (0: all)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Input rows → codes."""
        raise NotImplementedError

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Codes → output layer before its activation."""
        raise NotImplementedError

    @property
    def output_act(self) -> nn.Module:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes → reconstructions."""
        return self.output_act(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> Output:
        code = self.encode(x)
        return Output(self.decode_logits(code), code, {"code": code})

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Rows → reconstructions: their codes decoded (deterministic in eval mode; a VAE's code is
        its posterior mean), so that codes already computed give the same reconstructions."""
        return self.decode(self.encode(x))

    def nll(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-example reconstruction loss of ``target`` under output ``logits``."""
        return reconstruction_loss(logits, target, self.loss_kind, self.output_act)

    def loss_floor(self, target: torch.Tensor) -> torch.Tensor:
        """Per-example loss of a perfect reconstruction of ``target``: under BCE the rows' own
        binary entropy (not 0 for grey values, and lower for dark, sparse rows), under SSE 0."""
        if self.loss_kind != "bce":
            return torch.zeros(len(target), device=target.device)
        x = target.float()
        return F.binary_cross_entropy(x, x, reduction="none").sum(1)

    # the history's column a loss figure draws against ``loss_label``: the reconstruction's, as the
    # label says (a sparse or contractive run's weighted penalties, added to it in the training
    # loss, are drawn on the figure's right axis)
    loss_term = "recon"

    @property
    def loss_label(self) -> str:
        """What its ``loss_term`` measures, in words (a loss figure's axis)."""
        values = "pixels" if holds_images(self.input_shape) else "features"  # a table's rows: features
        return f"BCE summed over {values}, per example" if self.loss_kind == "bce" else "SSE per example"

    def terms(self) -> list:
        """The weighted loss terms this kind trains with (see ``objectives``)."""
        return [Weighted(Reconstruction())]

    def layer_pairs(self, schedule: str = "stagewise") -> list[LayerPair]:
        """Shallow autoencoders greedy pretraining can train, outermost first; [] = not possible."""
        return []

    def encoder_modules(self) -> list[nn.Module]:
        """Modules that map inputs to codes (what a classifier on codes fine-tunes)."""
        raise NotImplementedError

    def dense_weights(self) -> list[torch.Tensor] | None:
        """The encoder as a dense stack: its weights, input side first, each (out, in) mapping one
        width of ``layers`` to the next; None when the encoder is not one. A network rebuilt from
        dense layers, such as a ladder, starts from them."""
        weights = [
            m.weight for part in self.encoder_modules() for m in part.modules() if isinstance(m, nn.Linear)
        ]
        widths = getattr(self, "layers", [])
        shapes = [(b, a) for a, b in zip(widths, widths[1:])]
        return weights if [tuple(w.shape) for w in weights] == shapes else None

    def set_epoch(self, epoch: int) -> None:
        """Follow the training epoch (1-based); most kinds do not need to."""

    def one_layer_encoder(self) -> tuple[nn.Linear, Slope] | None:
        """The encoder's only layer and its activation's slope as a function of the code, when the
        encoder is one dense layer whose code alone gives the slope (closed-form contraction), else
        None."""
        return None

    def reset_parameters(self) -> None:
        """Re-initialise every layer (the 'from scratch' baseline)."""
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()


class Stack(Autoencoder):
    """Encoder layers with activations, decoder layers with activations; flat rows between them.

    Encoder layer ``k`` and decoder layer ``-1-k`` are mirrors: together they form the
    shallow autoencoder greedy pretraining trains at stage ``k``.
    """

    init = "torch"  # weight initialisation (the config's model.init), set by kinds.build

    def __init__(
        self,
        encoder: list[nn.Module],
        decoder: list[nn.Module],
        activation_name: str,
        code_activation: str,
        output_activation: str,
        loss: str,
        code_select: nn.Module | None = None,
    ):
        super().__init__()
        if loss == "bce" and output_activation != "sigmoid":
            raise UserError("BCE loss needs a sigmoid output activation (or use --loss mse)")
        depth = len(encoder)
        self.loss_kind = loss
        self.encoder = nn.ModuleList(encoder)
        self.decoder = nn.ModuleList(decoder)
        self.encoder_acts = nn.ModuleList(
            activation(code_activation if k == depth - 1 else activation_name) for k in range(depth)
        )
        self.decoder_acts = nn.ModuleList(
            activation(output_activation if k == len(decoder) - 1 else activation_name)
            for k in range(len(decoder))
        )
        self.code_select = code_select  # k-sparse / winner-take-all selection of code units
        largest = max(code_select.k, code_select.k_start) if code_select is not None else 0
        if largest > layer_width(encoder[-1]):
            flag = "--top-k" if largest == code_select.k else "--top-k-start"
            raise UserError(f"{flag} {largest} is more than the {layer_width(encoder[-1])} code units")

    @property
    def depth(self) -> int:
        return len(self.encoder)

    def reset_parameters(self) -> None:
        """Re-initialise every layer as ``self.init`` says (the 'from scratch' baseline)."""
        super().reset_parameters()
        if self.init == "scaled":
            self.scale_init()

    def scale_init(self) -> None:
        """He et al. (2015) normal weights (fan-in, gain √2) for layers a ReLU or GELU follows,
        Glorot normal with the activation's gain for the others, zero biases: the variance of
        the signal then holds through the depth of the stack. PyTorch's default (uniform,
        variance 1 / (3 fan-in)) shrinks it about sixfold per ReLU layer, so a deep stack starts
        out as a near-constant output that takes epochs to escape."""
        layers = [*self.encoder, *self.decoder]
        for layer, act in zip(layers, [*self.encoder_acts, *self.decoder_acts]):
            name = {nn.ReLU: "relu", nn.GELU: "relu", nn.Tanh: "tanh"}.get(type(act), "linear")
            for m in layer.modules():
                if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
                    if name == "relu":
                        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    else:
                        nn.init.xavier_normal_(m.weight, nn.init.calculate_gain(name))
                if getattr(m, "bias", None) is not None:  # tied layers own only their biases
                    nn.init.zeros_(m.bias)

    @property
    def output_act(self) -> nn.Module:
        return self.decoder_acts[-1]

    def encode_hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Code and every encoder layer's activation, named ``layer1``, ``layer2``, ..."""
        hidden = {}
        for k, (layer, act) in enumerate(zip(self.encoder, self.encoder_acts)):
            x = act(layer(x))
            if k == self.depth - 1 and self.code_select is not None:
                x = self.code_select(x)
            hidden[f"layer{k + 1}"] = x
        return x, hidden

    def set_epoch(self, epoch: int) -> None:
        """Follow the training epoch (a k-sparse schedule does)."""
        if self.code_select is not None:
            self.code_select.epoch = epoch

    def one_layer_encoder(self) -> tuple[nn.Linear, Slope] | None:
        if self.depth == 1 and self.code_select is None:
            return _dense_with_slope(self.encoder[0], self.encoder_acts[0])
        return None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_hidden(x)[0]

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        for layer, act in zip(self.decoder[:-1], self.decoder_acts[:-1]):
            z = act(layer(z))
        return self.decoder[-1](z)

    def forward(self, x: torch.Tensor) -> Output:
        code, hidden = self.encode_hidden(x)
        return Output(self.decode_logits(code), code, hidden | {"code": code})

    def encoder_modules(self) -> list[nn.Module]:
        return [self.encoder, self.encoder_acts]

    def layer_pairs(self, schedule: str = "stagewise") -> list[LayerPair]:
        if len(self.decoder) != self.depth:
            return []
        return [LayerPair(self, k, schedule) for k in range(self.depth)]


class LayerPair(Autoencoder):
    """Encoder layer ``k`` of a stack with its mirror decoder layer, as a shallow autoencoder.

    It holds the stack's own layers (no copies), so what pretraining trains is what
    fine-tuning starts from. ``stagewise``: reconstruct the stage's own input (the cached
    features of layer ``k-1``), with BCE when that layer is a sigmoid layer (or the input of
    a BCE model), else MSE. ``phased``: the pair's output goes on through the frozen outer
    decoder layers and the loss is the network's own loss on the input.
    """

    def __init__(self, stack: Stack, k: int, schedule: str = "stagewise"):
        super().__init__()
        d = stack.depth
        self.k, self.schedule = k, schedule
        self.layer, self.act = stack.encoder[k], stack.encoder_acts[k]
        self.mirror, self.mirror_act = stack.decoder[d - 1 - k], stack.decoder_acts[d - 1 - k]
        if schedule == "phased" or k == 0:
            self.loss_kind = stack.loss_kind
        else:
            self.loss_kind = "bce" if isinstance(self.mirror_act, nn.Sigmoid) else "mse"
        # the top stage's code is selected as the stack's is (a stacked k-sparse AE)
        self.select = stack.code_select if k == d - 1 else None
        # frozen outer decoder layers the phased schedule decodes through (outside the module tree)
        self._outer = list(zip(stack.decoder[d - k :], stack.decoder_acts[d - k :]))
        self._out_act = self._outer[-1][1] if schedule == "phased" and self._outer else self.mirror_act

    @property
    def width(self) -> int:
        """Features per row this pair's encoder layer outputs."""
        return layer_width(self.layer)

    @property
    def output_act(self) -> nn.Module:
        return self._out_act

    def encode(self, h: torch.Tensor) -> torch.Tensor:
        """This layer's output for input ``h`` (what the next stage trains on)."""
        h = self.act(self.layer(h))
        return h if self.select is None else self.select(h)

    def set_epoch(self, epoch: int) -> None:
        if self.select is not None:
            self.select.epoch = epoch

    def one_layer_encoder(self) -> tuple[nn.Linear, Slope] | None:
        return _dense_with_slope(self.layer, self.act) if self.select is None else None

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        pre = self.mirror(z)
        if self.schedule == "phased":
            act = self.mirror_act
            for layer, next_act in self._outer:
                pre = layer(act(pre))
                act = next_act
        return pre

    def encoder_modules(self) -> list[nn.Module]:
        return [self.layer]


def layer_width(layer: nn.Module) -> int:
    """Flat output width of a dense or convolution layer."""
    return layer.out_features if isinstance(layer, nn.Linear) else math.prod(layer.out_shape)


def _dense_with_slope(layer: nn.Module, act: nn.Module) -> tuple[nn.Linear, Slope] | None:
    """``layer`` and the slope of ``act`` from its output, when the layer is dense and the slope is
    known from the output alone; else None."""
    slope = slope_from_output(act)
    return (layer, slope) if isinstance(layer, nn.Linear) and slope is not None else None

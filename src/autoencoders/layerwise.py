"""Greedy layer-wise pretraining of a stacked autoencoder (Bengio et al. 2007; Vincent et al. 2010).

Stage ``k`` trains encoder layer ``k`` and its mirror decoder layer on the outputs of the
frozen layers below it. Those outputs are computed **once per stage** and cached, so the
cost of a stage is its own layer's cost, whatever its depth. The stage modules hold the
stack's own layers: what pretraining trains is exactly what fine-tuning starts from.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import Config
from .models import DenseAutoencoder, reconstruction_loss
from .nn import corrupt, set_trainable
from .stream import Rows, RowStream, write_stream
from .train import fit


class LayerPair(nn.Module):
    """Encoder layer ``k`` of a stack with its mirror decoder layer, as a shallow autoencoder.

    ``stagewise``: reconstruct the stage's own input (the cached features of layer ``k-1``),
    with BCE when that layer is a sigmoid layer (or the input of a BCE model), else MSE.
    ``phased``: the stack is one network whose inner layers are skipped; the pair's output
    goes on through the frozen outer decoder layers and the loss is the network's own
    reconstruction loss on the input.
    """

    def __init__(self, model: DenseAutoencoder, k: int, schedule: str = "stagewise"):
        super().__init__()
        d = model.depth
        self.k, self.schedule = k, schedule
        self.encoder, self.encoder_act = model.encoder[k], model.encoder_acts[k]
        self.decoder, self.decoder_act = model.decoder[d - 1 - k], model.decoder_acts[d - 1 - k]
        self.corruption, self.noise = model.corruption, model.noise
        if schedule == "phased" or k == 0:
            self.loss_kind = model.loss_kind
        else:
            self.loss_kind = "bce" if isinstance(self.decoder_act, nn.Sigmoid) else "mse"
        # frozen outer decoder layers the phased schedule decodes through
        self.outer = list(zip(model.decoder[d - k :], model.decoder_acts[d - k :]))

    def features(self, h: torch.Tensor) -> torch.Tensor:
        """This layer's output for input ``h`` (what the next stage trains on)."""
        return self.encoder_act(self.encoder(h))

    def loss(self, h: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        inp = corrupt(h, self.corruption, self.noise) if self.training else h
        pre = self.decoder(self.features(inp))
        if self.schedule == "stagewise" or not self.outer:
            return reconstruction_loss(pre, h, self.loss_kind, self.decoder_act)
        out_act = self.decoder_act
        for layer, act in self.outer:
            pre = layer(out_act(pre))
            out_act = act
        return reconstruction_loss(pre, x, self.loss_kind, out_act)


@torch.no_grad()
def cache_features(pair: LayerPair, h: Rows, memory_budget: int, batch_size: int = 4096) -> Rows:
    """Run ``pair.features`` over ``h`` once, in order, into RAM or a file streamed from disk.

    Features larger than ``memory_budget`` bytes go to a temporary file that later stages
    read in chunks, so pretraining a wide layer on a large dataset does not need it in RAM.
    """
    width = pair.encoder.out_features
    pair.eval()
    if len(h) * width * 4 > memory_budget:
        out: Rows = write_stream(pair.features, h, width).to(h.device)
    else:
        chunks = h.chunks() if isinstance(h, RowStream) else h.split(batch_size)
        out = torch.cat([pair.features(c).float() for c in chunks])
    pair.train()
    return out


def greedy_pretrain(
    model: DenseAutoencoder,
    x_train: Rows,
    x_val: Rows,
    cfg: Config,
    memory_budget: int = 2 << 30,
) -> list[dict]:
    """Pretrain ``model`` layer by layer in place; return the per-epoch history of all stages."""
    schedule = cfg.pretrain.schedule
    history: list[dict] = []
    h_train, h_val = x_train, x_val
    for k in range(model.depth):
        pair = LayerPair(model, k, schedule)
        # only this pair learns; the phased schedule also runs the frozen outer decoder
        set_trainable(model, False)
        set_trainable(pair, True)
        train = (h_train, x_train) if schedule == "phased" else h_train
        val = (h_val, x_val) if schedule == "phased" else h_val
        history += fit(
            pair, train, val, cfg.train, cfg.pretrain.pretrain_epochs, stage=f"pretrain layer {k + 1}"
        )
        set_trainable(model, True)
        if k + 1 < model.depth:
            h_train = cache_features(pair, h_train, memory_budget)
            h_val = cache_features(pair, h_val, memory_budget)
    return history


def stage_costs(history: list[dict]) -> dict[str, float]:
    """Seconds per pretraining stage (mean epoch time), for showing that cost is flat in depth."""
    stages: dict[str, list[float]] = {}
    for h in history:
        if h["stage"].startswith("pretrain"):
            stages.setdefault(h["stage"], []).append(h["seconds"])
    return {k: math.fsum(v) / len(v) for k, v in stages.items()}

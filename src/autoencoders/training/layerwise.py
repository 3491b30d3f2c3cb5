"""Greedy layer-wise pretraining of a stacked autoencoder (Bengio et al. 2007; Vincent et al. 2010).

Stage ``k`` trains the model's ``k``-th layer pair (an encoder layer and its mirror decoder
layer: dense or convolutional) on the outputs of the frozen layers below it. Those outputs
are computed **once per stage** and cached, so the cost of a stage is its own layer's cost,
whatever its depth. The pairs hold the stack's own layers: what pretraining trains is
exactly what fine-tuning starts from. Input corruption is the same training-time transform
full training uses.
"""

from __future__ import annotations

import functools

import torch

from ..data.batches import batches_per_epoch
from ..data.stream import Rows, RowStream, write_stream
from ..errors import UserError
from ..models.base import Autoencoder, LayerPair
from ..models.layers import eval_mode, make_corruption, output_range, set_trainable
from ..models.objectives import regularisers
from ..options import RunOptions
from ..runtime.device import gpu_math
from ..runtime.distributed import rank_and_size
from .state import Progress
from .steps import Step, autoencoder_step


@torch.no_grad()
def cache_features(pair: LayerPair, h: Rows, memory_budget: int, batch_size: int = 4096) -> Rows:
    """Run ``pair.encode`` over ``h`` once, in order, into RAM or a file streamed from disk.

    Features larger than ``memory_budget`` bytes go to a temporary file that later stages
    read in chunks, so pretraining a wide layer on a large dataset does not need it in RAM.
    Computed in fp32 on a GPU too (cuDNN's default would run convolutions in TF32), as the
    metrics are: they are the next stage's data.
    """
    width = pair.width
    with eval_mode(pair), gpu_math("fp32", next(pair.parameters()).device):
        if len(h) * width * 4 > memory_budget:
            return write_stream(pair.encode, h, width).to(h.device)
        chunks = h.chunks() if isinstance(h, RowStream) else h.split(batch_size)
        return torch.cat([pair.encode(c).float() for c in chunks])


def _stage_step(
    pair: LayerPair, below: LayerPair | None, h: Rows, cfg: RunOptions, steps: int, terms: list
) -> Step:
    """The step of the stage that trains ``pair`` on ``h``, the features of the ``below`` pair (None:
    the data), made when the stage runs. Salt-and-pepper noise writes the lowest and highest value
    of that input: the data's 0 and 1; above, the range of the lower layer's activation, or where it
    has none (ReLU, GELU, linear) the features' own."""
    span = (0.0, 1.0)
    if cfg.model.corruption == "salt-and-pepper" and below is not None:
        span = output_range(below.act) or value_range(h)
    corrupt = make_corruption(cfg.model.corruption, cfg.model.noise, span)
    return autoencoder_step(pair, cfg.train, steps, corrupt, terms)


def value_range(h: Rows) -> tuple[float, float]:
    """The lowest and highest value in ``h``."""
    chunks = h.chunks() if isinstance(h, RowStream) else [h]
    lows, highs = zip(*((c.min(), c.max()) for c in chunks))
    return float(min(lows)), float(max(highs))


def pretrainable_pairs(model: Autoencoder, schedule: str) -> list[LayerPair]:
    """The model's layer pairs, or a UserError when it has none."""
    pairs = model.layer_pairs(schedule)
    if not pairs:
        raise UserError(
            f"--pretrain greedy is not available for --model {model.kind}: it has no layer pairs "
            "to pretrain; use --pretrain none"
        )
    return pairs


def greedy_pretrain(
    model: Autoencoder,
    x_train: Rows,
    x_val: Rows,
    cfg: RunOptions,
    progress: Progress,
    memory_budget: int = 2 << 30,
) -> list[dict]:
    """Pretrain ``model`` layer pair by layer pair in place; return the new history rows."""
    schedule = cfg.pretrain.schedule
    pairs = pretrainable_pairs(model, schedule)
    last = progress.count + len(pairs) - 1  # the index of the top stage
    world = rank_and_size()[1]  # the updates each process makes: its slice of every batch
    steps = cfg.pretrain.pretrain_epochs * batches_per_epoch(len(x_train), cfg.train.batch_size, world)
    history: list[dict] = []
    h_train, h_val = x_train, x_val
    for k, pair in enumerate(pairs):
        # only this pair learns; the phased schedule also runs the frozen outer decoder
        set_trainable(model, False)
        set_trainable(pair, True)
        phased = schedule == "phased"
        # each stage uses the same pieces as full training: corruption, sparsity, contraction
        terms = pair.terms() + regularisers(cfg.model, code_layer=k == len(pairs) - 1)
        below = pairs[k - 1] if k else None
        history += progress.run_stage(
            f"pretrain layer {k + 1}",
            functools.partial(_stage_step, pair, below, h_train, cfg, steps, terms),
            (h_train, x_train) if phased else h_train,
            (h_val, x_val) if phased else h_val,
            cfg.train,
            cfg.pretrain.pretrain_epochs,
        )
        set_trainable(model, True)
        # the next stage's input, unless a resumed run is already past every stage above
        if k + 1 < len(pairs) and progress.will_run(last):
            h_train = cache_features(pair, h_train, memory_budget)
            h_val = cache_features(pair, h_val, memory_budget)
    return history

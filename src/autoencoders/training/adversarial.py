"""The adversarial autoencoder's step: three optimizers in one batch, through the same loop."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..errors import UserError
from ..models.aae import AdversarialAutoencoder
from ..models.objectives import Objective
from ..options import TrainConfig
from ..runtime.distributed import rank_and_size
from .steps import AutoencoderLosses, Batch, Step, make_optimizer, make_schedulers


class AdversarialStep(Step):
    """An adversarial autoencoder's batch: reconstruction phase, then regularisation phase.

    1. encoder and decoder minimise the reconstruction terms (optimizer ``ae``);
    2. the discriminator learns prior samples (label 1) from codes (label 0) (``disc``);
    3. the encoder, as the generator, learns to make its codes pass as prior samples (``gen``).
    """

    def __init__(
        self,
        model: AdversarialAutoencoder,
        cfg: TrainConfig,
        steps: int,
        corrupt: Callable[[torch.Tensor], torch.Tensor] | None = None,
        terms: list | None = None,
    ):
        if rank_and_size()[1] > 1:
            raise UserError("--model aae trains in one process; start it without torchrun")
        self.module, self.corrupt = model, corrupt
        self.objective = Objective(terms if terms is not None else model.terms())
        self.losses = AutoencoderLosses(model, self.objective)
        encoder = [p for m in model.encoder_modules() for p in m.parameters()]
        decoder = [*model.decoder.parameters(), *model.decoder_acts.parameters()]
        adversarial = dataclasses.replace(cfg, lr=model.adversarial_lr)
        self.optimizers = {
            "ae": make_optimizer([*encoder, *decoder], cfg),
            "disc": make_optimizer(model.discriminator.parameters(), adversarial),
            "gen": make_optimizer(encoder, adversarial),
        }
        self.schedulers = make_schedulers(self.optimizers, cfg.lr_decay, steps)

    def _disc_loss(self, codes: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss: as many prior samples (label 1) as ``codes`` (label 0)."""
        disc = self.module.discriminator
        real, fake = disc(self.module.prior_sample(len(codes))), disc(codes.detach())
        return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + (
            F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        )

    def _gen_loss(self, codes: torch.Tensor) -> torch.Tensor:
        """The encoder's adversarial loss: its codes should be taken for prior samples."""
        judged = self.module.discriminator(codes)
        return F.binary_cross_entropy_with_logits(judged, torch.ones_like(judged))

    def train_batch(self, batch: Batch) -> dict[str, torch.Tensor]:
        x = batch[0]
        inp = self.corrupt(x) if self.corrupt is not None else x
        with self.amp():
            values = self.losses(inp, x)
        self._update("ae", values["loss"])
        with self.amp():
            codes = self.module.encode(inp)
            disc = self._disc_loss(codes)
        self._update("disc", disc)
        with self.amp():
            gen = self._gen_loss(codes)  # judged by the updated discriminator
        self._update("gen", gen)
        return {k: v.detach() for k, v in values.items()} | {"disc": disc.detach(), "gen": gen.detach()}

    @torch.no_grad()
    def eval_batch(self, batch: Batch) -> dict[str, torch.Tensor]:
        with self.amp():
            codes = self.module.encode(batch[0])
            return self.losses(*batch) | {"disc": self._disc_loss(codes), "gen": self._gen_loss(codes)}

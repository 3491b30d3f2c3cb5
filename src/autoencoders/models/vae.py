"""The variational autoencoder (Kingma & Welling 2014): a Gaussian code with the reparameterisation trick.

The encoder is the dense stack whose code layer outputs a mean and a scale per code unit:
a log-variance (``logvar``) or a standard deviation through softplus (``std``). The
decoder is Bernoulli (``--loss bce``) or Gaussian (``--loss mse``) with a learned or fixed
standard deviation, so the loss is a true negative ELBO and the likelihood is comparable
across models of the same decoder on the same data. Not across decoders: a Bernoulli likelihood
of grey levels is no density over [0, 1] (it never falls below the rows' own binary entropy,
which the report gives), while a Gaussian one is.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from ..options import ModelConfig, VAEConfig
from .base import Output, Stack, reconstruction_loss
from .dense import mirrored_linear, widths_for
from .objectives import GaussianKL, Reconstruction, Weighted


class VAE(Stack):
    """Gaussian encoder q(z|x), standard normal prior, Bernoulli or Gaussian decoder p(x|z)."""

    kind = "vae"
    can_sample = likelihood = True
    loss_term = "loss"  # recon + β·KL, the −ELBO at β = 1, as its label says

    def __init__(
        self,
        layers: list[int],
        activation_name: str = "relu",
        output_activation: str = "sigmoid",
        loss: str = "bce",
        scale: str = "logvar",
        decoder_std: str = "learned",
        beta: float = 1.0,
        kl_warmup: int = 0,
        input_shape: tuple[int, ...] | None = None,
    ):
        if len(layers) < 2:
            raise UserError("a VAE needs at least two layer widths (input, code)")
        encoder, decoder = mirrored_linear(list(layers), tied=False)
        # the code layer outputs mean and scale side by side
        encoder[-1] = nn.Linear(layers[-2], 2 * layers[-1])
        super().__init__(encoder, decoder, activation_name, "linear", output_activation, loss)
        self.layers, self.scale, self.beta, self.kl_warmup = list(layers), scale, beta, kl_warmup
        self.input_shape = tuple(input_shape or (layers[0],))
        self.code_size = layers[-1]
        # log std of the Gaussian decoder: a parameter when learned, a saved constant when fixed
        fixed = loss == "mse" and decoder_std != "learned"
        if fixed:
            self.register_buffer("log_std", torch.tensor(math.log(float(decoder_std))))
        else:
            self.log_std = nn.Parameter(torch.tensor(0.0)) if loss == "mse" else None

    @classmethod
    def from_config(cls, m: ModelConfig, v: VAEConfig, input_shape: tuple[int, ...]) -> VAE:
        """Build from the model options and the ``[vae]`` section for rows of ``input_shape``."""
        if m.tied:
            raise UserError("--tied is not available for --model vae; leave it out")
        variants = {
            "--sparsity": m.sparsity != "none",
            "--contractive": m.contractive > 0,
            "--top-k": m.top_k > 0,
            "--lifetime-sparsity": m.lifetime_sparsity > 0,
        }
        refused = [flag for flag, given in variants.items() if given]
        if refused:
            one = len(refused) == 1
            raise UserError(
                f"{', '.join(refused)} {'shapes' if one else 'shape'} a deterministic code, but a VAE's is "
                f"Gaussian: leave {'it' if one else 'them'} out"
            )
        if m.loss == "bce" and v.decoder_std != "learned":
            raise UserError("--decoder-std sets the Gaussian decoder's noise: use it with --loss mse")
        model = cls(
            widths_for(m.layers, input_shape),
            m.activation,
            m.output_activation,
            m.loss,
            v.vae_scale,
            v.decoder_std,
            v.beta,
            v.kl_warmup,
            input_shape,
        )
        model.iw_samples, model.nll_rows = v.iw_samples, v.nll_rows
        return model

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x)."""
        return self.posterior_from(self.encode_hidden(x)[0])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean."""
        return self.posterior(x)[0]

    def forward(self, x: torch.Tensor) -> Output:
        """A reparameterised sample z ~ q(z|x), decoded. In eval mode the noise comes from a fixed
        seed: a validation loss is then the weights' alone, not a fresh draw's, when early stopping
        and ``--keep best`` compare epochs by it (its spread between draws is about the size of
        the last epochs' differences)."""
        h, hidden = self.encode_hidden(x)
        mean, logvar = self.posterior_from(h)
        generator = None if self.training else torch.Generator(mean.device).manual_seed(0)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        z = mean + torch.exp(0.5 * logvar) * noise
        return Output(self.decode_logits(z), mean, hidden | {"code": mean, "z": z}, (mean, logvar))

    def dense_weights(self) -> list[torch.Tensor] | None:
        """The hidden layers' weights and, for the code, the means' half of the code layer's."""
        linears = [m for part in self.encoder_modules() for m in part.modules() if isinstance(m, nn.Linear)]
        return [m.weight for m in linears[:-1]] + [linears[-1].weight[: self.code_size]]

    def posterior_from(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance from the code layer's output (mean and scale side by side)."""
        mean, s = h.chunk(2, dim=1)
        if self.scale == "std":
            return mean, 2 * torch.log(F.softplus(s) + 1e-6)
        return mean, s

    def nll(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """−log p(x|z) per example, in nats (Gaussian: with its normalising constant); ``target`` as
        ``reconstruction_loss`` takes it."""
        if self.loss_kind == "bce":
            return reconstruction_loss(logits, target, "bce", self.output_act)
        # at least fp32 (bf16 autocast outputs), fp64 stays fp64
        dtype = torch.promote_types(logits.dtype, torch.float32)
        sq = (self.output_act(logits).to(dtype) - target.to(dtype)).pow(2)
        log_std = self.log_std.to(dtype)
        per_dim = 0.5 * sq * torch.exp(-2 * log_std) + log_std + 0.5 * math.log(2 * math.pi)
        return per_dim.sum(-1)

    @property
    def loss_label(self) -> str:
        if self.kl_warmup:  # training's KL weight w rises over the warm-up; validation's is β throughout
            return "recon + w·KL per example (nats; w warms up to β)"
        return "recon + β·KL per example (nats; −ELBO at β = 1)"

    def terms(self) -> list:
        return [Weighted(Reconstruction()), Weighted(GaussianKL(), self.beta, self.kl_warmup)]

    def reset_parameters(self) -> None:
        """Every layer as a fresh build has it, a learned decoder std too (log 0)."""
        super().reset_parameters()
        if isinstance(self.log_std, nn.Parameter):  # a fixed --decoder-std is a buffer: nothing learned
            nn.init.zeros_(self.log_std)

    def layer_pairs(self, schedule: str = "stagewise") -> list:
        return []  # a Gaussian code layer has no deterministic shallow autoencoder to pretrain

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` new rows decoded from codes drawn from the prior N(0, I): the decoder's means (the
        Bernoulli's probabilities, the Gaussian's mean), not draws from p(x|z) with its noise."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.code_size, generator=generator).to(device)
        return self.decode(z)

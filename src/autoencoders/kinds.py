"""Model kinds by name: one line per kind, and everything that differs by kind.

``--model``, TOML, ``config.json``, ``load`` and ``classify`` find a kind here by its name: its
model's builder, its own config section (``[conv]``, ``[vae]``, ...; in ``options``) and the step
that trains it. A new kind is a file under ``models/``, its section and a line in ``KINDS`` (or a
``register`` call from outside the package); behaviour that differs by kind otherwise lives in the
model's own methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import UserError
from .fields import closest
from .options import AAEConfig, ConvConfig, ModelConfig, TrainConfig, VAEConfig

if TYPE_CHECKING:
    import torch

    from .models import Autoencoder
    from .training.steps import Step

# (model, training options, steps, corruption, terms or None for the model's own) -> its step
StepFactory = Callable[["Autoencoder", TrainConfig, int, Callable | None, list | None], "Step"]


# The built-in kinds' builders and steps import their models and training when called: the table's
# names, summaries and sections alone make the command line's flags, help and usage errors, which
# then answer without loading torch (1.2 s of each on 2 CPU cores)
def _dense(m: ModelConfig, options: None, shape: tuple[int, ...]) -> Autoencoder:
    from .models.dense import DenseAutoencoder

    return DenseAutoencoder.from_config(m, options, shape)


def _conv(m: ModelConfig, options: ConvConfig, shape: tuple[int, ...]) -> Autoencoder:
    from .models.conv import ConvAutoencoder

    return ConvAutoencoder.from_config(m, options, shape)


def _vae(m: ModelConfig, options: VAEConfig, shape: tuple[int, ...]) -> Autoencoder:
    from .models.vae import VAE

    return VAE.from_config(m, options, shape)


def _aae(m: ModelConfig, options: AAEConfig, shape: tuple[int, ...]) -> Autoencoder:
    from .models.aae import AdversarialAutoencoder

    return AdversarialAutoencoder.from_config(m, options, shape)


def _gradient_step(
    model: Autoencoder, cfg: TrainConfig, steps: int, corrupt: Callable | None, terms: list | None
) -> Step:
    from .training.steps import autoencoder_step

    return autoencoder_step(model, cfg, steps, corrupt, terms)


def _adversarial_step(
    model: Autoencoder, cfg: TrainConfig, steps: int, corrupt: Callable | None, terms: list | None
) -> Step:
    from .training.adversarial import AdversarialStep

    return AdversarialStep(model, cfg, steps, corrupt, terms)


@dataclass(frozen=True)
class Kind:
    """A model kind."""

    name: str
    summary: str  # what it is, in one line
    example: str  # a one-line CLI example
    build: Callable[[ModelConfig, Any, tuple[int, ...]], Autoencoder]  # (options, own section, shape)
    section: type | None = None  # its own config section, named like the kind
    step: StepFactory = _gradient_step  # one optimizer's gradient step on the model's terms

    @property
    def section_name(self) -> str | None:
        return self.name if self.section is not None else None


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "dense",
            "fully connected stack (plain, tied, denoising, stacked with --pretrain greedy)",
            "autoencoders train --layers 64,32,8",
            _dense,
        ),
        Kind(
            "conv",
            "stride-2 convolutions down, transposed convolutions up, a dense code layer",
            "autoencoders train --model conv --channels 32,64 --layers 64,16",
            _conv,
            ConvConfig,
        ),
        Kind(
            "vae",
            "variational: Gaussian code, reparameterisation, Bernoulli or Gaussian decoder",
            "autoencoders train --model vae --layers 64,128,8 --beta 1",
            _vae,
            VAEConfig,
        ),
        Kind(
            "aae",
            "adversarial: a discriminator on codes matches them to a Gaussian or mixture prior",
            "autoencoders train --model aae --layers 64,128,4 --prior gaussian",
            _aae,
            AAEConfig,
            _adversarial_step,
        ),
    )
}


def register(kind: Kind) -> Kind:
    """Add ``kind`` (a kind defined outside this package); its name must be new."""
    if kind.name in KINDS:
        raise ValueError(f"model kind '{kind.name}' is registered twice")
    KINDS[kind.name] = kind
    return kind


def get(name: str) -> Kind:
    """The kind called ``name``, or a UserError listing the known ones."""
    if not isinstance(name, str) or name not in KINDS:  # a damaged config.json may hold any JSON value
        meant = closest(name, KINDS) if isinstance(name, str) else ""
        raise UserError(f"--model must be one of {', '.join(KINDS)}, not {name!r}{meant}")
    return KINDS[name]


def sections() -> dict[str, type]:
    """The kinds' own config sections by section name."""
    return {k.section_name: k.section for k in KINDS.values() if k.section is not None}


def build(model: ModelConfig, options: Any, input_shape: tuple[int, ...]) -> Autoencoder:
    """The model ``model.model`` names, with its own section ``options``, for rows of
    ``input_shape``, initialised as ``model.init`` says."""
    built = get(model.model).build(model, options, tuple(input_shape))
    built.init = model.init
    if built.init != "torch":  # the layers were built with PyTorch's own initialisation
        built.reset_parameters()
    return built


def check_shape(options: Any, input_shape: tuple[int, ...]) -> None:
    """Refuse a new run whose kind's own section ``options`` cannot fit rows of ``input_shape``
    (the section's ``check_shape``, where it has one); trained runs are read as they are."""
    check = getattr(options, "check_shape", None)
    if check is not None:
        check(tuple(input_shape))


def make_step(
    model: Autoencoder,
    cfg: TrainConfig,
    steps: int,
    corrupt: Callable[[torch.Tensor], torch.Tensor] | None = None,
    terms: list | None = None,
) -> Step:
    """The step that trains ``model`` for its kind, on ``terms`` (default: the model's own)."""
    return get(model.kind).step(model, cfg, steps, corrupt, terms)

"""Model kinds; importing this package registers the built-in ones."""

from ..registry import Kind, register
from .aae import AAEConfig, AdversarialAutoencoder
from .base import Autoencoder, LayerPair, Output, Stack
from .conv import ConvAutoencoder, ConvConfig
from .dense import DenseAutoencoder
from .vae import VAE, VAEConfig

register(
    Kind(
        "dense",
        "fully connected stack (plain, tied, denoising, stacked with --pretrain greedy)",
        "autoencoders train --layers 64,32,8",
        DenseAutoencoder.from_config,
    )
)
register(
    Kind(
        "conv",
        "stride-2 convolutions down, transposed convolutions up, a dense code layer",
        "autoencoders train --model conv --channels 32,64 --layers 64,16",
        ConvAutoencoder.from_config,
        ConvConfig,
    )
)
register(
    Kind(
        "vae",
        "variational: Gaussian code, reparameterisation, Bernoulli or Gaussian decoder",
        "autoencoders train --model vae --layers 64,128,8 --beta 1",
        VAE.from_config,
        VAEConfig,
    )
)
register(
    Kind(
        "aae",
        "adversarial: a discriminator on codes matches them to a Gaussian or mixture prior",
        "autoencoders train --model aae --layers 64,128,4 --prior gaussian",
        AdversarialAutoencoder.from_config,
        AAEConfig,
    )
)

__all__ = [
    "AAEConfig",
    "AdversarialAutoencoder",
    "VAE",
    "Autoencoder",
    "ConvAutoencoder",
    "ConvConfig",
    "DenseAutoencoder",
    "LayerPair",
    "Output",
    "Stack",
    "VAEConfig",
]

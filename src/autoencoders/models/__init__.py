"""The model kinds' classes (``kinds`` names them) and the pieces they share."""

from .aae import AAEConfig, AdversarialAutoencoder
from .base import Autoencoder, LayerPair, Stack
from .conv import ConvAutoencoder, ConvConfig
from .dense import DenseAutoencoder
from .output import Output
from .vae import VAE, VAEConfig

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

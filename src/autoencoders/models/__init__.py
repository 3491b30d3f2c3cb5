"""The model kinds' classes (``kinds`` names them) and the pieces they share."""

from ..options import AAEConfig, ConvConfig, VAEConfig  # the kinds' own sections, as they were here
from .aae import AdversarialAutoencoder
from .base import Autoencoder, LayerPair, Stack
from .conv import ConvAutoencoder
from .dense import DenseAutoencoder
from .output import Output
from .vae import VAE

__all__ = [
    "AAEConfig",
    "ConvConfig",
    "VAEConfig",
    "AdversarialAutoencoder",
    "VAE",
    "Autoencoder",
    "ConvAutoencoder",
    "DenseAutoencoder",
    "LayerPair",
    "Output",
    "Stack",
]

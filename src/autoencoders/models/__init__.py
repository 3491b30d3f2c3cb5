"""The model kinds' classes (``kinds`` names them) and the pieces they share."""

from .aae import AdversarialAutoencoder
from .base import Autoencoder, LayerPair, Stack
from .conv import ConvAutoencoder
from .dense import DenseAutoencoder
from .output import Output
from .vae import VAE

__all__ = [
    "AdversarialAutoencoder",
    "VAE",
    "Autoencoder",
    "ConvAutoencoder",
    "DenseAutoencoder",
    "LayerPair",
    "Output",
    "Stack",
]

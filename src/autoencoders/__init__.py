"""autoencoders: the classic autoencoder family in PyTorch, fast and honest."""

from .api import classify, encode, evaluate_run, interpolate, load, reconstruct, sample
from .classify import ClassifierResult, EncoderClassifier
from .config import Config, DataConfig, ModelConfig, PretrainConfig, TrainConfig
from .data import Dataset, load_dataset
from .errors import UserError
from .models import VAE, AdversarialAutoencoder, Autoencoder, ConvAutoencoder, DenseAutoencoder, Output
from .registry import kinds
from .run import Run, resume, train

__all__ = [
    "VAE",
    "AdversarialAutoencoder",
    "Autoencoder",
    "ClassifierResult",
    "Config",
    "ConvAutoencoder",
    "DataConfig",
    "Dataset",
    "DenseAutoencoder",
    "EncoderClassifier",
    "ModelConfig",
    "Output",
    "PretrainConfig",
    "Run",
    "TrainConfig",
    "UserError",
    "classify",
    "encode",
    "evaluate_run",
    "interpolate",
    "kinds",
    "load",
    "load_dataset",
    "reconstruct",
    "resume",
    "sample",
    "train",
]

__version__ = "0.2.0"

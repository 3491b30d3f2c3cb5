"""autoencoders: the classic autoencoder family in PyTorch, fast and honest."""

from .classify import ClassifierResult, EncoderClassifier
from .config import Config, DataConfig, ModelConfig, PretrainConfig, TrainConfig, UserError
from .data import Dataset, load_dataset
from .models import DenseAutoencoder
from .run import Run, classify, encode, evaluate_run, load, reconstruct, train

__all__ = [
    "ClassifierResult",
    "Config",
    "DataConfig",
    "Dataset",
    "DenseAutoencoder",
    "EncoderClassifier",
    "ModelConfig",
    "PretrainConfig",
    "Run",
    "TrainConfig",
    "UserError",
    "classify",
    "encode",
    "evaluate_run",
    "load",
    "load_dataset",
    "reconstruct",
    "train",
]

__version__ = "0.1.0"

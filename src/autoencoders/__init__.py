"""autoencoders: the classic autoencoder family in PyTorch, fast and honest."""

import os

# Idle OpenMP threads sleep instead of spinning, so runs sharing cores do not slow each other
# down many times over; it takes effect only before the thread pool starts (see threads.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import kinds
from .api import (
    anomaly_scores_against_pca,
    encode,
    evaluate_run,
    interpolate,
    load,
    predict,
    reconstruct,
    sample,
    score,
)
from .classifiers import classify
from .classify.few_labels import ClassifierResult
from .classify.heads import EncoderClassifier
from .clustering.methods import ClusterResult
from .clustering.model import Clusterer
from .clusters import cluster
from .config import Config, DataConfig, ModelConfig, PretrainConfig, TrainConfig
from .data.datasets import Dataset, load_dataset
from .deploy import export
from .errors import UserError
from .figures.run_figures import visualize
from .models import VAE, AdversarialAutoencoder, Autoencoder, ConvAutoencoder, DenseAutoencoder, Output
from .run import Run, resume, train

__all__ = [
    "VAE",
    "AdversarialAutoencoder",
    "Autoencoder",
    "ClassifierResult",
    "ClusterResult",
    "Clusterer",
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
    "anomaly_scores_against_pca",
    "classify",
    "cluster",
    "encode",
    "evaluate_run",
    "export",
    "interpolate",
    "kinds",
    "load",
    "load_dataset",
    "predict",
    "reconstruct",
    "resume",
    "sample",
    "score",
    "train",
    "visualize",
]

__version__ = "0.2.0"

"""autoencoders: the classic autoencoder family in PyTorch, fast and honest."""

# first, before anything imports torch: idle OpenMP threads spin only briefly before they sleep, and
# a Ctrl-C while the command-line tool loads it ends in one line
from .runtime import console_start, wait_policy  # noqa: F401, I001

from . import api, classifiers, clusters, deploy, kinds, run
from .classify.few_labels import ClassifierResult
from .classify.heads import EncoderClassifier
from .clustering.methods import ClusterResult
from .clustering.model import Clusterer
from .config import Config, DataConfig, ModelConfig, PretrainConfig, TrainConfig, in_python_names
from .data import datasets
from .data.datasets import Dataset
from .errors import UserError
from .figures import run_figures
from .models import VAE, AdversarialAutoencoder, Autoencoder, ConvAutoencoder, DenseAutoencoder, Output
from .run import Run

# the Python face: errors name options as these functions take them (``epochs``), not as the CLI's
# flags (``--epochs``), which the commands, calling the same functions unwrapped, keep
python_names = in_python_names()
anomaly_scores_against_pca = python_names(api.anomaly_scores_against_pca)
encode = python_names(api.encode)
evaluate_run = python_names(api.evaluate_run)
interpolate = in_python_names({"pair": "indices"})(api.interpolate)
load = python_names(api.load)
predict = python_names(api.predict)
reconstruct = python_names(api.reconstruct)
sample = python_names(api.sample)
score = python_names(api.score)
classify = python_names(classifiers.classify)
cluster = python_names(clusters.cluster)
export = in_python_names({"format": "fmt"})(deploy.export)
visualize = python_names(run_figures.visualize)
resume = python_names(run.resume)
train = python_names(run.train)
load_dataset = python_names(datasets.load_dataset)
del python_names

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

"""autoencoders: the classic autoencoder family in PyTorch, fast and honest."""

# first, before anything imports torch: idle OpenMP threads spin only briefly before they sleep, and
# a Ctrl-C while the command-line tool starts ends in one line
from .runtime import console_start, wait_policy  # noqa: F401, I001
from .version import __version__ as __version__

import typing as _typing
from importlib import import_module as _import_module
from importlib.util import find_spec as _find_spec

if _typing.TYPE_CHECKING:  # the names below as type checkers and editors see them
    from . import kinds
    from .api import encode, evaluate_run, interpolate, load, predict, reconstruct, sample
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
    from .scoring import anomaly_scores_against_pca, score

# what the package's names are, and where: each is imported when first used, so that the command
# line's help and usage errors, which need none of them, answer without loading torch
_WHERE = {
    "VAE": "models",
    "AdversarialAutoencoder": "models",
    "Autoencoder": "models",
    "ConvAutoencoder": "models",
    "DenseAutoencoder": "models",
    "Output": "models",
    "ClassifierResult": "classify.few_labels",
    "EncoderClassifier": "classify.heads",
    "ClusterResult": "clustering.methods",
    "Clusterer": "clustering.model",
    "Config": "config",
    "DataConfig": "config",
    "ModelConfig": "config",
    "PretrainConfig": "config",
    "TrainConfig": "config",
    "Dataset": "data.datasets",
    "UserError": "errors",
    "Run": "run",
}
# modules found by a shorter name here than their path
_MODULES = {"datasets": "data.datasets", "run_figures": "figures.run_figures"}
# the Python face's functions: errors name options as these functions take them (``epochs``), not
# as the CLI's flags (``--epochs``), which the commands, calling the same functions unwrapped, keep;
# by name: (its module, the names it gives options where they differ from their flags')
_FUNCTIONS = {
    "anomaly_scores_against_pca": ("scoring", None),
    "encode": ("api", None),
    "evaluate_run": ("api", None),
    "interpolate": ("api", {"pair": "indices"}),
    "load": ("api", None),
    "predict": ("api", None),
    "reconstruct": ("api", None),
    "row_ids": ("api", None),
    "sample": ("api", None),
    "score": ("scoring", None),
    "classify": ("classifiers", None),
    "cluster": ("clusters", None),
    "export": ("deploy", {"format": "fmt"}),
    "visualize": ("figures.run_figures", None),
    "resume": ("run", None),
    "train": ("run", None),
    "load_dataset": ("data.datasets", None),
}


def __getattr__(name: str) -> object:
    """The package's name ``name``, or its module ``name``, imported on first use."""
    if name in _WHERE:
        value = getattr(_import_module(f".{_WHERE[name]}", __name__), name)
    elif name in _FUNCTIONS:
        module, renamed = _FUNCTIONS[name]
        from .config import in_python_names
        from .runtime.device import keeps_rng

        # a notebook's random draws stay its own: building a model to load weights into draws
        # initial weights, a figure seeds its noise
        fn = keeps_rng(getattr(_import_module(f".{module}", __name__), name))
        value = _directories(in_python_names(renamed)(fn))
        # named as where it is published (``autoencoders.train``), so that pickle finds it there
        value.__module__, value.__qualname__ = __name__, name
    elif name in _MODULES:
        value = _import_module(f".{_MODULES[name]}", __name__)
    # a module of the package (``autoencoders.kinds``); not ``__main__``, which runs the tool
    elif not name.startswith("_") and _find_spec(f".{name}", __name__) is not None:
        value = _import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # found here from now on
    return value


def _directories(fn: _typing.Callable) -> _typing.Callable:
    """``fn``, taking a ``Run`` or a classifier's or clustering's result as the directory it stands
    for (``os.PathLike``): a ``Path`` from there on, so that its messages name the directory."""
    import functools
    import os
    from pathlib import Path, PurePath

    def plain(value: object) -> object:
        stands_for = isinstance(value, os.PathLike) and not isinstance(value, PurePath)
        return Path(os.fspath(value)) if stands_for else value

    @functools.wraps(fn)
    def taking(*args: object, **kwargs: object) -> object:
        return fn(*map(plain, args), **{k: plain(v) for k, v in kwargs.items()})

    return taking


# ``autoencoders.classify`` is the function, ``autoencoders.classify.heads`` a module of the package of
# the same name. Loading that package sets the name to it, so it is loaded now (it holds no code)
# and the name given back to the function
_import_module(".classify", __name__)
globals().pop("classify", None)  # None: loaded before, as when the package is reloaded


def __dir__() -> list[str]:
    return sorted({n for n in globals() if not n.startswith("_")} | set(__all__))


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
    "row_ids",
    "sample",
    "score",
    "train",
    "visualize",
]

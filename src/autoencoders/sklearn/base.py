"""What the estimators share: their parameters, the autoencoder they fit, its predictions in float64,
saving and loading, and their documentation."""

from __future__ import annotations

import copy
import inspect
import numbers
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..config import Config, in_python_names
from ..data.datasets import dataset_from_arrays
from ..data.memory import identifying_names
from ..data.scaling import apply_scaler
from ..data.sources import check_finite
from ..data.specs import IN_MEMORY
from ..errors import SettingWarning, UserError, says_once, user_stacklevel
from ..eval.metrics import beyond_range, reconstruct_all
from ..io import rundir
from ..io.checkpoint import replace_dir, write_json
from ..runtime.device import own_rng, resolve_device
from ..runtime.threads import training_threads
from ..stages import build_model, train_stages
from ..trained import open_run
from ..training.state import Progress
from .checks import DTYPES, layer_widths, option_dict, plain, switch, validate

# what each constructor parameter means, for the estimators' Parameters sections (``documented``)
PARAMETERS = {
    "n_clusters": "number of clusters",
    "method": "how the codes are clustered: kmeans, gmm, dec, idec or manifold",
    "model": "autoencoder kind: dense, conv (with options={'image_shape': [C, H, W]}), vae or aae",
    "layers": "widths after the input, the last the code size (None: 256, 64 and a code of 16, or of "
    "half the input's width when that is narrower)",
    "activation": "activation of the hidden layers: relu, tanh, sigmoid, ...",
    "code_activation": "activation of the code layer",
    "loss": "reconstruction loss: bce (rows scaled to [0, 1]) or mse",
    "corruption": "input corruption while training: none, gaussian, masking or salt-and-pepper",
    "noise": "corruption level: gaussian's σ, the others' fraction of inputs",
    "pretrain": "none, or greedy layer-wise pretraining",
    "pretrain_epochs": "epochs per layer of greedy pretraining",
    "epochs": "epochs of end-to-end training",
    "batch_size": "rows per batch",
    "lr": "Adam's learning rate",
    "head_epochs": "epochs of the softmax head's training on the encoder (the whole encoder's too, "
    "unless freeze_encoder) over the labelled rows; None: at least 1,000 updates and 10 epochs, as "
    "classify's default (few labels make an epoch an update or two)",
    "head_lr": "learning rate of that training",
    "freeze_encoder": "train the head alone, on the pretrained codes",
    "unlabelled": "the label of rows without one (e.g. -1): they train the autoencoder, not the head",
    "cluster_options": "the method's other options by name (autoencoders.options.ClusterOptions)",
    "contamination": "fraction of the training rows predict calls outliers (offset_: that quantile)",
    "options": "any other training option by its flat name, as autoencoders.train takes it",
    "random_state": "seed: an int, a RandomState or None",
    "device": "cpu, cuda, or auto (a GPU when there is one)",
    "verbose": "progress bars while fitting",
}


# the estimators' own names for options their errors name by the CLI's flags
PARAMETER_OF = {"k": "n_clusters", "seed": "random_state"}
Fit = TypeVar("Fit", bound=Callable[..., Any])


def in_float64(module: torch.nn.Module) -> torch.nn.Module:
    """A float64 copy of a fitted ``module`` for predictions: float32 matrix products round a row
    differently with the number of rows in the call, float64 ones far below what a result shows,
    so a row's prediction does not depend on the rows beside it (or their order)."""
    return copy.deepcopy(module).double()


def fit_in_python_names(fit: Fit) -> Fit:
    """``fit`` whose UserErrors name options as an estimator takes them (``activation``, a key of
    ``options``, ``n_clusters``), not as the CLI's flags (``--activation``, ``--k``), and which
    tells each note once."""
    return cast(Fit, in_python_names(PARAMETER_OF)(says_once(fit)))


def documented(cls: type) -> type:
    """``cls`` with a Parameters section: each constructor parameter, its default and meaning."""
    lines = ["", "    Parameters", "    ----------"]
    for param in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        meaning = textwrap.wrap(PARAMETERS[param.name], 96, initial_indent=" " * 8, subsequent_indent=" " * 8)
        lines += [f"    {param.name} : default {param.default!r}", *meaning]
    if cls.__doc__:  # none under python -OO
        cls.__doc__ = cls.__doc__.rstrip() + "\n" + "\n".join(lines) + "\n"
    return cls


class AutoencoderEstimator(BaseEstimator):
    """Parameters and fitting shared by the estimators; the defaults here are the transformer's.

    ``layers`` are the widths after the input (the last is the code size; None: the model's own,
    for a dense stack 256, 64 and a code of 16 or half the input's width when that is narrower, so
    that a narrow table's code is a reduction of it); ``options`` takes
    any other training option by its flat name (``{"channels": [16, 32], "beta": 2.0}``). Codes
    meant as features default to a denoising autoencoder (Gaussian noise, σ = 0.3) of tanh units:
    on digits, logistic regression on its 16 codes beats it on PCA's 16 components, where ReLU
    units without noise fall short (benchmarks/README.md).
    """

    def __init__(
        self,
        model: str = "dense",
        layers: tuple[int, ...] | None = None,
        activation: str = "tanh",
        code_activation: str = "linear",
        loss: str = "bce",
        corruption: str = "gaussian",
        noise: float = 0.3,
        pretrain: str = "none",
        pretrain_epochs: int = 3,
        epochs: int = 50,
        batch_size: int = 64,
        lr: float = 2e-3,
        options: dict[str, Any] | None = None,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        verbose: bool = False,
    ):
        self.model = model
        self.layers = layers
        self.activation = activation
        self.code_activation = code_activation
        self.loss = loss
        self.corruption = corruption
        self.noise = noise
        self.pretrain = pretrain
        self.pretrain_epochs = pretrain_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.options = options
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _config(self, n_features: int) -> Config:
        options = option_dict("options", self.options, "train's options, e.g. {'weight_decay': 1e-4}")
        # the estimator's own parameters, and what they set under another name, are not options
        named = {"seed": "random_state", "split_seed": "random_state", "quiet": "verbose"}
        clash = sorted((set(self.get_params(deep=False)) | set(named)) & set(options))
        if clash:
            raise UserError(
                f"options may not hold {', '.join(clash)}: set the estimator's own parameter "
                f"{', '.join(dict.fromkeys(named.get(k, k) for k in clash))} instead"
            )
        given = sorted({"data", "labels", "label_column", "id_column", "out"} & set(options))
        if given:
            raise UserError(
                f"options may not hold {', '.join(given)}: an estimator fits the rows given to fit and "
                "writes only where save is told to"
            )
        if "test_fraction" in options:
            raise UserError(
                "options may not hold test_fraction: an estimator trains on every row given to fit; hold "
                "test rows out yourself (e.g. with train_test_split) and score on them"
            )
        widths = None if self.layers is None else layer_widths(self.layers)
        if self.model == "conv" and "image_shape" not in options:  # rows here are flat: N×D
            raise UserError(
                "model='conv' needs the shape of the images the rows hold: "
                "options={'image_shape': [C, H, W]} (e.g. [1, 8, 8] for digits)"
            )
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        settings = {
            "data": IN_MEMORY,  # a saved estimator's run names no data that is not its own
            "model": self.model,
            "layers": None if widths is None else [n_features, *widths],
            "activation": self.activation,
            "code_activation": self.code_activation,
            "loss": self.loss,
            "corruption": self.corruption,
            "noise": self.noise,
            "pretrain": self.pretrain,
            "pretrain_epochs": self.pretrain_epochs,
            "compare": False,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "seed": seed,
            "split_seed": seed,
            "test_fraction": 0.0,  # as the rows are split: every one given trains
            # every row trains (and fits the scaling) unless early stopping needs a validation split
            "val_fraction": 0.1 if options.get("patience", 0) > 0 else 0.0,
            "patience": 0,  # a fixed number of epochs unless options ask for early stopping
            # fp32: nothing is timed, so random_state alone decides the model (``auto`` measures)
            "precision": "fp32",
            "device": self.device,
            "quiet": not switch("verbose", self.verbose),
        }
        return Config().replace(**{**settings, **options})

    def _fit_autoencoder(self, X: Any, validated: bool = False) -> np.ndarray:
        """Validate ``X`` (unless done), train the autoencoder on it, return ``X`` as validated.

        The caller's global torch RNG is left as it was: training draws from it, seeded.
        """
        if not validated:
            X = validate(self, X, dtype=DTYPES, ensure_min_samples=2)
        self.config_ = self._config(X.shape[1])
        # settings given that change nothing, as train says; not those the estimator's defaults make
        # (its seed given: None would draw one from NumPy's global generator, the caller's)
        designed = type(self)(random_state=0)._config(X.shape[1]).inert_settings()
        for sentence in self.config_.inert_settings():
            if sentence not in designed:
                warnings.warn(sentence, SettingWarning, stacklevel=user_stacklevel())
        if hasattr(self, "feature_names_in_"):  # a data frame's: a saved run reads later frames by them
            self.config_.data.columns = identifying_names(self.feature_names_in_)
        check_finite(X, "X", self.config_.data.columns)  # beyond float32, or its precision: as train does
        ds = dataset_from_arrays(X.astype(np.float32), self.config_.data)
        device = resolve_device(self.config_.train.device)
        with own_rng(device):
            self.autoencoder_ = build_model(self.config_, ds.sample_shape, device)
            train = self.config_.train
            progress = Progress(None)  # nothing is written while fitting
            with training_threads(train.threads, self.autoencoder_, train.batch_size):
                train_stages(self.autoencoder_, self.config_, ds, device, progress)
        self.history_ = progress.history
        self.autoencoder_.eval()
        self.scaler_ = (ds.offset.numpy(), ds.span.numpy())
        return X

    def _scaled(self, X: Any, validated: bool = False) -> np.ndarray:
        """Rows of ``X`` scaled as the training rows were, not clipped to their range."""
        check_is_fitted(self)
        if not validated:
            X = validate(self, X, dtype=DTYPES, reset=False)
        check_finite(X, "X", self.config_.data.columns)
        return apply_scaler(X.astype(np.float32), *self.scaler_, clip=False)

    def _rows(self, X: Any, validated: bool = False) -> torch.Tensor:
        """Rows of ``X`` as the model takes them, on its device: scaled as the training rows were and
        clipped to their range, as every command and an exported model take rows."""
        rows = np.clip(self._scaled(X, validated), 0.0, 1.0)
        return torch.from_numpy(np.ascontiguousarray(rows)).to(next(self.autoencoder_.parameters()).device)

    def _errors(self, X: Any, validated: bool = False) -> np.ndarray:
        """Per-row squared reconstruction error of the rows as the model takes them, plus each value's
        squared distance beyond the training range (as ``autoencoders.score`` adds it: a value far out
        scores as far out as it is, where the model sees it at the edge); in the units of the scaling
        fitted on the training rows."""
        scaled = self._scaled(X, validated)
        clipped = np.clip(scaled, 0.0, 1.0)
        x = torch.from_numpy(np.ascontiguousarray(clipped)).to(next(self.autoencoder_.parameters()).device)
        recon = reconstruct_all(in_float64(self.autoencoder_), x.double()).double()
        return (recon - x.double()).pow(2).sum(1).cpu().numpy() + beyond_range(scaled)

    def save(self, path: str | Path, overwrite: bool = False) -> None:
        """Write a run directory: weights as safetensors, settings and fitted numbers as JSON.

        A ``path`` that is not empty is refused unless ``overwrite`` (it must hold an estimator saved
        before, which is replaced). The files are written beside ``path`` and moved there whole, so
        a save that fails leaves nothing half-written and what was there as it was."""
        check_is_fitted(self)
        path = Path(path)
        if path.is_symlink() and not path.exists():
            raise UserError(f"{path} is a link to nothing; save to a directory")
        if path.exists() and not path.is_dir():
            raise UserError(f"{path} is a file; save to a new or empty directory")
        if path.is_dir() and any(path.iterdir()):
            if not overwrite:
                raise UserError(
                    f"{path} is not empty; save to a new or empty directory, or pass overwrite=True to "
                    "replace the estimator saved there"
                )
            if not (path / rundir.ESTIMATOR).is_file():
                raise UserError(f"overwrite=True replaces a saved estimator; {path} holds none: it is kept")
            saved = {rundir.ESTIMATOR, rundir.CLASSIFIER_WEIGHTS, rundir.CLUSTERER_WEIGHTS}
            theirs = rundir.not_written_by_the_run(path, saved)
            if theirs:
                raise UserError(
                    f"overwrite=True replaces a saved estimator, and {path} also holds what save did not "
                    f"write ({', '.join(theirs[:5])}); move that out first: it is kept"
                )
        fitted = {"class": type(self).__name__, **plain(self._fitted_json())}
        model = self.autoencoder_

        def write(new: Path) -> None:
            rundir.write_config(new, self.config_.to_dict())
            rundir.write_weights(new / rundir.WEIGHTS, model.state_dict(), self.scaler_)
            self._save_weights(new)
            rundir.write_manifest(new, model.kind, model.input_shape, model.code_size, completed=True)
            write_json(new / rundir.ESTIMATOR, fitted)

        replace_dir(path.resolve(), write)  # a link's target: the directory it names

    def _save_weights(self, path: Path) -> None:
        """Weight files beyond the autoencoder's (the manifest records their checksums too)."""

    def _fitted_json(self) -> dict[str, Any]:
        params = self.get_params()
        seed = params["random_state"]
        # a RandomState object is not data; numpy integers become plain ones
        params["random_state"] = int(seed) if isinstance(seed, numbers.Integral) else None
        fitted = {"params": params, "n_features_in": self.n_features_in_}
        if isinstance(params["layers"], list):  # JSON keeps no tuples: the one given comes back
            fitted["layers_list"] = True
        if hasattr(self, "feature_names_in_"):  # a data frame's: checked against later ones
            fitted["feature_names_in"] = self.feature_names_in_.tolist()
        output = getattr(self, "_sklearn_output_config", {}).get("transform")  # what set_output chose
        return fitted | ({"transform_output": output} if output else {})

    @classmethod
    def load(cls, path: str | Path) -> AutoencoderEstimator:
        """An estimator saved by ``save``, ready to use (no pickle)."""
        path = Path(path)
        saved = rundir.read_json(path / rundir.ESTIMATOR, "saved estimator (estimator.json)")
        if saved.get("class") != cls.__name__:
            held = saved.get("class")
            raise UserError(f"{path} holds an estimator of class {held}; load it with that class")
        try:
            layers = saved["params"]["layers"]
            as_given = list if saved.get("layers_list") else tuple
            est = cls(**{**saved["params"], "layers": None if layers is None else as_given(layers)})
            run = open_run(path)  # config, model and input scaling, read once
            est.config_, est.autoencoder_, est.scaler_ = run.cfg, run.model, run.scaler
            est.n_features_in_ = saved["n_features_in"]
            if "feature_names_in" in saved:
                est.feature_names_in_ = np.asarray(saved["feature_names_in"], dtype=object)
            if "transform_output" in saved:
                est.set_output(transform=saved["transform_output"])
            est._restore(path, saved)
        except UserError:  # a check that names its own cause
            raise
        except (KeyError, TypeError, ValueError, OverflowError, RuntimeError) as e:
            raise UserError(
                f"{path / rundir.ESTIMATOR} is damaged ({type(e).__name__}: {e}); save the estimator again"
            ) from None
        return est

    def _restore(self, path: Path, saved: dict[str, Any]) -> None:
        """Fitted attributes beyond the autoencoder (classifier head, outlier offset)."""

"""scikit-learn estimators over the same core: a transformer, a classifier, a clusterer and an
outlier detector.

They follow scikit-learn's contract: ``__init__`` stores parameters only, validation happens
in ``fit``, learned attributes end in ``_``, ``random_state`` makes results identical, and they
work in ``Pipeline`` and ``GridSearchCV``. ``save(path)`` writes a run directory (weights as
safetensors, settings as JSON) that ``load(path)`` and ``autoencoders.load`` read back.
"""

from __future__ import annotations

import copy
import inspect
import numbers
import textwrap
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    OutlierMixin,
    TransformerMixin,
)
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .classify.few_labels import HEAD_OPTIMIZER, default_epochs, fit_supervised
from .classify.heads import EncoderClassifier, fit_head, make_classifier
from .clustering.methods import Clustering, find_clusters
from .clustering.model import Clusterer
from .config import Config, in_python_names
from .data.classes import is_missing, warn_if_unlabelled_marker
from .data.datasets import dataset_from_arrays
from .data.memory import identifying_names, not_numeric
from .data.scaling import apply_scaler
from .data.sources import check_finite
from .data.specs import IN_MEMORY
from .errors import SettingWarning, UserError, says_once, user_stacklevel
from .eval.metrics import beyond_range, encode_all, reconstruct_all
from .io import rundir
from .io.checkpoint import replace_dir, write_json
from .options import ClusterOptions, split_options, whole_at_least
from .runtime.device import own_rng, resolve_device
from .runtime.threads import training_threads
from .stages import build_model, train_stages
from .trained import open_run
from .training.state import Progress

DTYPES = (np.float64, np.float32)


def _switch(name: str, value: Any) -> bool:
    """A parameter that is on or off, as a bool; a UserError for anything else (the string "no" is
    true in Python, and would turn it on)."""
    if not isinstance(value, bool | np.bool_):
        raise UserError(f"{name} must be True or False, not {value!r}")
    return bool(value)


def _option_dict(name: str, value: Any, what: str) -> Mapping[str, Any]:
    """``value`` of the parameter ``name``: a dict of ``what`` (None: none); a UserError for anything
    else (an empty list or string too, which would read as none)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UserError(f"{name} must be a dict of {what}, not {type(value).__name__}")
    return value


def _widths(layers: Any) -> list[int]:
    """``layers`` (a tuple, list or array of whole numbers of at least 1) as a list of ints."""
    ok = not isinstance(layers, str | numbers.Number) and hasattr(layers, "__len__") and len(layers) > 0
    if not ok or not all(isinstance(w, numbers.Integral) and w >= 1 for w in layers):
        raise UserError(f"layers must be the widths after the input, e.g. (64, 16), or None; got {layers!r}")
    return [int(w) for w in layers]


def _in_float64(module: torch.nn.Module) -> torch.nn.Module:
    """A float64 copy of a fitted ``module`` for predictions: float32 matrix products round a row
    differently with the number of rows in the call, float64 ones far below what a result shows,
    so a row's prediction does not depend on the rows beside it (or their order)."""
    return copy.deepcopy(module).double()


def _plain(value: Any) -> Any:
    """``value`` with NumPy numbers and arrays (a grid search's parameters) as Python's, for JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value.tolist() if isinstance(value, np.ndarray | np.generic) else value


# what each constructor parameter means, for the estimators' Parameters sections (``_documented``)
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


def _host(a: Any) -> Any:
    """A torch tensor as a NumPy array of its dtype (bfloat16, which NumPy lacks: float32), from a
    GPU too; anything else as it is. scikit-learn would read a float32 tensor as float64 and could
    not read one on a GPU."""
    if not isinstance(a, torch.Tensor):
        return a
    return (a.float() if a.dtype == torch.bfloat16 else a).numpy(force=True)


def _validated(estimator: BaseEstimator, X: Any, *y: Any, **kwargs: Any) -> Any:
    """``validate_data`` (torch tensors read as ``_host`` reads them), after a ValueError naming a
    text column of X with the advice scikit-learn's own message ("could not convert string to
    float") lacks."""
    X, y = _host(X), tuple(_host(labels) for labels in y)
    dtypes, what = getattr(X, "dtypes", None), None
    if hasattr(dtypes, "items"):  # a data frame: its columns by name (objects may be numbers)
        for c, kind in dtypes.items():  # read as numbers, as train refuses to: dates, categories' codes
            if getattr(kind, "kind", "O") in "Mm" or str(kind) == "category":
                raise UserError(not_numeric(c, kind, X[c], "X"))
        text = (c for c, kind in dtypes.items() if getattr(kind, "kind", "O") in "USO" and not _numbers(X[c]))
        what = next((f"column {str(c)!r} of X is not numeric" for c in text), None)
    elif getattr(X, "dtype", None) is not None and X.dtype.kind in "US" and not _numbers(X):
        what = "X holds text"
    if what is not None:
        raise UserError(
            f"{what}; drop such columns, or code categories as 0/1 columns, one per category "
            "(pandas.get_dummies, or a OneHotEncoder before this estimator in a Pipeline)"
        )
    return validate_data(estimator, X, *y, **kwargs)


def _numbers(column: Any) -> bool:
    """Whether ``column`` (a data frame's, or an array of text) reads as numbers."""
    try:
        np.asarray(column, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return True


def _in_python_names(fit: Fit) -> Fit:
    """``fit`` whose UserErrors name options as an estimator takes them (``activation``, a key of
    ``options``, ``n_clusters``), not as the CLI's flags (``--activation``, ``--k``), and which
    tells each note once."""
    return cast(Fit, in_python_names(PARAMETER_OF)(says_once(fit)))


def _documented(cls: type) -> type:
    """``cls`` with a Parameters section: each constructor parameter, its default and meaning."""
    lines = ["", "    Parameters", "    ----------"]
    for param in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        meaning = textwrap.wrap(PARAMETERS[param.name], 96, initial_indent=" " * 8, subsequent_indent=" " * 8)
        lines += [f"    {param.name} : default {param.default!r}", *meaning]
    if cls.__doc__:  # none under python -OO
        cls.__doc__ = cls.__doc__.rstrip() + "\n" + "\n".join(lines) + "\n"
    return cls


class _Autoencoder(BaseEstimator):
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
        options = _option_dict("options", self.options, "train's options, e.g. {'weight_decay': 1e-4}")
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
        widths = None if self.layers is None else _widths(self.layers)
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
            "quiet": not _switch("verbose", self.verbose),
        }
        return Config().replace(**{**settings, **options})

    def _fit_autoencoder(self, X: Any, validated: bool = False) -> np.ndarray:
        """Validate ``X`` (unless done), train the autoencoder on it, return ``X`` as validated.

        The caller's global torch RNG is left as it was: training draws from it, seeded.
        """
        if not validated:
            X = _validated(self, X, dtype=DTYPES, ensure_min_samples=2)
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
            X = _validated(self, X, dtype=DTYPES, reset=False)
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
        recon = reconstruct_all(_in_float64(self.autoencoder_), x.double()).double()
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
        fitted = {"class": type(self).__name__, **_plain(self._fitted_json())}
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
    def load(cls, path: str | Path) -> _Autoencoder:
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


@_documented
class AutoencoderTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, _Autoencoder):
    """Codes as features: ``fit(X)`` trains an autoencoder, ``transform`` encodes, ``inverse_transform``
    decodes.

    ``score(X)`` is minus the mean over rows of each row's summed squared reconstruction error
    (higher is better).
    """

    @_in_python_names
    def fit(self, X: Any, y: Any = None) -> AutoencoderTransformer:
        """Train the autoencoder on the rows of ``X`` (``y`` is ignored)."""
        self._fit_autoencoder(X)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]  # codes in the rows' precision
        return tags

    @property
    def _n_features_out(self) -> int:
        return self.autoencoder_.code_size

    def transform(self, X: Any) -> np.ndarray:
        """The codes of the rows of ``X`` (a VAE's posterior means), computed in float64 so that a
        row's code does not depend on the rows beside it; float32 for float32 rows, else float64."""
        check_is_fitted(self)
        X = _validated(self, X, dtype=DTYPES, reset=False)
        codes = encode_all(_in_float64(self.autoencoder_), self._rows(X, validated=True).double())
        return codes.cpu().numpy().astype(X.dtype)  # validated as float64 or float32

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Rows decoded from the codes ``X``, in the units of the rows ``fit`` was given; float32 for
        float32 codes, else float64, as ``transform``."""
        check_is_fitted(self)
        z = check_array(_host(X), dtype=DTYPES)
        if z.shape[1] != self.autoencoder_.code_size:
            raise UserError(f"X has {z.shape[1]} features, but the codes have {self.autoencoder_.code_size}")
        device = next(self.autoencoder_.parameters()).device
        with torch.no_grad():  # in float64, as every prediction: a row's result whatever rows are beside it
            codes = torch.from_numpy(z.astype(np.float64)).to(device)
            rows = _in_float64(self.autoencoder_).decode(codes).cpu().numpy()
        offset, span = self.scaler_
        return (rows * span + offset).astype(z.dtype)  # validated as float64 or float32

    def score(self, X: Any, y: Any = None) -> float:
        """Minus the mean over rows of each row's summed squared reconstruction error (and distance
        beyond the training range)."""
        return -float(self._errors(X).mean())


@_documented
class AutoencoderClassifier(ClassifierMixin, _Autoencoder):
    """An autoencoder trained on X, then its encoder with a softmax head fine-tuned on (X, y).

    ``freeze_encoder`` trains the head alone on the pretrained codes. Rows labelled ``unlabelled``
    (-1 in scikit-learn's semi-supervised estimators) train the autoencoder only, so few labels
    gain from many rows.
    """

    def __init__(
        self,
        model: str = "dense",
        layers: tuple[int, ...] | None = None,
        activation: str = "relu",
        code_activation: str = "linear",
        loss: str = "bce",
        corruption: str = "none",
        noise: float = 0.3,
        pretrain: str = "none",
        pretrain_epochs: int = 3,
        epochs: int = 50,
        batch_size: int = 64,
        lr: float = 2e-3,
        head_epochs: int | None = None,
        head_lr: float = 1e-3,
        freeze_encoder: bool = False,
        unlabelled: Any = None,
        options: dict[str, Any] | None = None,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        verbose: bool = False,
    ):
        super().__init__(
            model, layers, activation, code_activation, loss, corruption, noise, pretrain, pretrain_epochs,
            epochs, batch_size, lr, options, random_state, device, verbose,
        )  # fmt: skip
        self.head_epochs = head_epochs
        self.head_lr = head_lr
        self.freeze_encoder = freeze_encoder
        self.unlabelled = unlabelled

    @_in_python_names
    def fit(self, X: Any, y: Any) -> AutoencoderClassifier:
        """Train the autoencoder on ``X``, then its encoder with a softmax head on the labels ``y``
        (of the rows whose label is not ``unlabelled``)."""
        missing = 0 if y is None else sum(map(is_missing, np.asarray(y, dtype=object).reshape(-1).tolist()))
        if missing:  # scikit-learn's checks refuse them in words of their own
            raise UserError(
                f"y holds {missing} missing label(s) (NaN, None or NA); mark the rows without a class with a "
                "label of y's kind and name it: y = numpy.where(pandas.isna(y), -1, y) with unlabelled=-1"
            )
        X, y = _validated(self, X, y, dtype=DTYPES)
        check_classification_targets(y)
        whole = isinstance(self.head_epochs, numbers.Integral) and not isinstance(self.head_epochs, bool)
        if not (whole or self.head_epochs is None):
            raise UserError(f"head_epochs must be a whole number of epochs or None, got {self.head_epochs!r}")
        if whole and self.head_epochs < 0:
            raise UserError(f"head_epochs must be >= 0, got {self.head_epochs}")
        if not isinstance(self.head_lr, numbers.Real) or not self.head_lr > 0:
            raise UserError(f"head_lr must be a number > 0, got {self.head_lr!r}")
        frozen = _switch("freeze_encoder", self.freeze_encoder)  # before the autoencoder trains
        if self.head_epochs == 0 and not frozen:  # a frozen encoder's head is fitted to its codes first
            raise UserError(
                "head_epochs=0 trains no classifier: its head would stay random; give 1 or more, or "
                "freeze_encoder=True (the head is then fitted to the codes)"
            )
        text = y.dtype.kind in "USO"  # labels as text, or as numbers: the marker must be the same
        if self.unlabelled is not None and (np.asarray(self.unlabelled).dtype.kind in "USO") != text:
            raise UserError(
                f"unlabelled={self.unlabelled!r} and the labels ({y.dtype}) are not of one kind, so no label "
                "equals it; give it as the labels hold it (e.g. '-1' for text labels)"
            )
        if self.unlabelled is None:
            warn_if_unlabelled_marker(y, "y")
        labelled = np.ones(len(y), bool) if self.unlabelled is None else np.asarray(y != self.unlabelled)
        if not labelled.any():
            raise UserError(f"every label is unlabelled={self.unlabelled!r}; label some rows to classify")
        self.classes_, labels = np.unique(y[labelled], return_inverse=True)
        if len(self.classes_) < 2:  # nothing to tell apart, as scikit-learn's classifiers refuse it
            raise UserError(
                f"the labelled rows hold one class, {self.classes_.tolist()[0]!r}; a classifier needs rows "
                "of at least 2 classes"
            )
        X = self._fit_autoencoder(X, validated=True)  # every row, labelled or not
        epochs = self.head_epochs
        if epochs is None:  # as classify's default budget
            epochs = default_epochs(int(labelled.sum()), self.config_.train.batch_size)
        # the head's own Adam, as classify's, whatever optimizer options gave the autoencoder
        cfg = self.config_.replace(**HEAD_OPTIMIZER, epochs=epochs, lr=self.head_lr, patience=0).train
        # on the autoencoder's threads, not the caller's
        with (
            own_rng(resolve_device(cfg.device)),
            training_threads(cfg.threads, self.autoencoder_, cfg.batch_size),
        ):
            torch.manual_seed(cfg.seed)
            self.classifier_ = make_classifier(self.autoencoder_, len(self.classes_), frozen)
            x = self._rows(X[labelled], validated=True)
            y_t = torch.from_numpy(labels.astype(np.int64)).to(x.device)
            if frozen:
                fit_head(self.classifier_, x, y_t)
            fit_supervised(self.classifier_, (x, y_t), (x[:0], y_t[:0]), cfg, cfg.epochs, "classify")
        self.classifier_.eval()
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the rows of ``X``, columns in the order of ``classes_``."""
        x = self._rows(X).double()
        with torch.no_grad():
            return torch.softmax(_in_float64(self.classifier_)(x), 1).cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row of ``X``."""
        proba = self.predict_proba(X)  # checks that the classifier is fitted
        return self.classes_[proba.argmax(1)]

    def _save_weights(self, path: Path) -> None:
        rundir.write_weights(path / rundir.CLASSIFIER_WEIGHTS, self.classifier_.state_dict())

    def _fitted_json(self) -> dict[str, Any]:
        # the dtype too: string labels read from a data frame are objects, which JSON would make <U
        return super()._fitted_json() | {
            "classes": self.classes_.tolist(),
            "classes_dtype": self.classes_.dtype.str,
        }

    def _restore(self, path: Path, saved: dict[str, Any]) -> None:
        dtype = np.dtype(saved["classes_dtype"]) if "classes_dtype" in saved else None  # earlier: inferred
        if dtype is not None and (dtype.kind not in "biufUO" or dtype.itemsize > 4096):  # not GBs a name
            raise ValueError(f"classes_dtype {dtype.str!r} is not one of labels")
        self.classes_ = np.asarray(saved["classes"], dtype=dtype)
        self.classifier_ = EncoderClassifier(copy.deepcopy(self.autoencoder_), len(self.classes_))
        self.classifier_.load_state_dict(
            rundir.read_weights(path, rundir.CLASSIFIER_WEIGHTS, rundir.read_manifest(path))
        )
        self.classifier_.eval()


@_documented
class AutoencoderClusterer(ClusterMixin, _Autoencoder):
    """An autoencoder trained on X, then ``n_clusters`` clusters of its codes by ``method``:
    ``kmeans``, ``gmm``, ``dec``, ``idec`` or ``manifold`` (UMAP, then a Gaussian mixture).

    ``cluster_options`` takes the other clustering options of the method by name (``{"n_init": 5}``;
    with ``method="idec"`` also ``{"gamma": 0.5, "tol": 0.01}``; see
    :class:`autoencoders.options.ClusterOptions`). ``labels_`` are the training rows' clusters;
    ``predict`` assigns new rows (``manifold``: through UMAP's embedding of new points, which places
    even the training rows a little differently, so a few may differ from ``labels_``). A Gaussian
    mixture's fit also sets ``bic_``, its Bayesian information criterion on the training codes
    (lower is better): compare it across ``n_clusters`` to choose the number of clusters.
    """

    def __init__(
        self,
        n_clusters: int = 8,
        method: str = "kmeans",
        model: str = "dense",
        layers: tuple[int, ...] | None = None,
        activation: str = "relu",
        code_activation: str = "linear",
        loss: str = "bce",
        corruption: str = "none",
        noise: float = 0.3,
        pretrain: str = "none",
        pretrain_epochs: int = 3,
        epochs: int = 50,
        batch_size: int = 64,
        lr: float = 2e-3,
        cluster_options: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        verbose: bool = False,
    ):
        super().__init__(
            model, layers, activation, code_activation, loss, corruption, noise, pretrain, pretrain_epochs,
            epochs, batch_size, lr, options, random_state, device, verbose,
        )  # fmt: skip
        self.n_clusters = n_clusters
        self.method = method
        self.cluster_options = cluster_options

    @_in_python_names
    def fit(self, X: Any, y: Any = None) -> AutoencoderClusterer:
        """Train the autoencoder on ``X`` (``y`` is ignored), then cluster its codes; ``labels_``
        are the rows' clusters."""
        X = _validated(self, X, dtype=DTYPES, ensure_min_samples=2)
        n_clusters = whole_at_least("n_clusters", self.n_clusters, 1)
        if n_clusters > len(X):
            raise UserError(f"n_clusters={n_clusters} must be at least 1 and at most n_samples={len(X)}")
        given = _option_dict(
            "cluster_options", self.cluster_options, "cluster's options, e.g. {'gamma': 0.5}"
        )
        own = sorted({"k", "method", "seed", "n_clusters", "random_state"} & set(given))
        if own:
            raise UserError(
                f"cluster_options may not hold {', '.join(own)}: set the estimator's own parameters "
                "n_clusters, method and random_state instead"
            )
        split_options(given, ClusterOptions, ())  # a mistyped name is named, with the nearest one
        how = Clustering(method=self.method, k=max(n_clusters, 2), seed=0, **given)
        how.check(len(X))  # before the autoencoder trains
        how.k = n_clusters  # scikit-learn admits one cluster (every row in it); the command does not
        X = self._fit_autoencoder(X, validated=True)
        how.seed = self.config_.train.seed
        with own_rng(resolve_device(self.config_.train.device)):
            result = find_clusters(self.autoencoder_, self._rows(X, validated=True), how, self.config_.train)
        self.clusterer_, self.labels_ = result.clusterer, result.labels.astype(np.int64)
        self.__dict__.pop("bic_", None)  # of an earlier fit by a mixture
        if "gmm_bic" in result.details:  # gmm, and manifold with dims: compare it across n_clusters
            self.bic_ = float(result.details["gmm_bic"])
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Each row of ``X``'s probability of each cluster under the fitted clusterer (k-means, DEC
        and IDEC: the Student's t soft assignment to the centres; gmm and manifold: the mixture's)."""
        x = self._rows(X).double()  # checks that the clusterer is fitted
        return _in_float64(self.clusterer_).assign(x).cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The cluster of each row of ``X``: the most probable under the fitted clusterer."""
        return self.predict_proba(X).argmax(1).astype(np.int64)

    def save(self, path: str | Path, overwrite: bool = False) -> None:
        check_is_fitted(self)
        if self.clusterer_.embed is not None:  # refused before anything is written
            raise UserError(
                "a manifold clusterer holds a UMAP embedding, which is not saved; save one of method "
                "kmeans, gmm, dec or idec"
            )
        super().save(path, overwrite)

    def _save_weights(self, path: Path) -> None:
        rundir.write_weights(path / rundir.CLUSTERER_WEIGHTS, self.clusterer_.state_dict())

    def _fitted_json(self) -> dict[str, Any]:
        bic = {"bic": self.bic_} if hasattr(self, "bic_") else {}
        return (
            super()._fitted_json() | {"labels": self.labels_.tolist(), "alpha": self.clusterer_.alpha} | bic
        )

    def _restore(self, path: Path, saved: dict[str, Any]) -> None:
        self.labels_ = np.asarray(saved["labels"], dtype=np.int64)
        if "bic" in saved:
            self.bic_ = saved["bic"]
        tensors = rundir.read_weights(path, rundir.CLUSTERER_WEIGHTS, rundir.read_manifest(path))
        self.clusterer_ = Clusterer.from_state(
            copy.deepcopy(self.autoencoder_), tensors, saved["alpha"]
        ).eval()


@_documented
class AutoencoderOutlierDetector(OutlierMixin, _Autoencoder):
    """Reconstruction error as the anomaly score (scikit-learn and PyOD conventions).

    ``score_samples`` is the negative squared reconstruction error, plus each value's squared
    distance beyond the training range (higher is more normal);
    ``offset_`` is its ``contamination`` quantile on the training rows, so ``predict`` labels
    that fraction of them −1 (outlier) and the rest 1.
    """

    def __init__(
        self,
        model: str = "dense",
        layers: tuple[int, ...] | None = None,
        activation: str = "relu",
        code_activation: str = "linear",
        loss: str = "bce",
        corruption: str = "none",
        noise: float = 0.3,
        pretrain: str = "none",
        pretrain_epochs: int = 3,
        epochs: int = 50,
        batch_size: int = 64,
        lr: float = 2e-3,
        contamination: float = 0.1,
        options: dict[str, Any] | None = None,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        verbose: bool = False,
    ):
        super().__init__(
            model, layers, activation, code_activation, loss, corruption, noise, pretrain, pretrain_epochs,
            epochs, batch_size, lr, options, random_state, device, verbose,
        )  # fmt: skip
        self.contamination = contamination

    @_in_python_names
    def fit(self, X: Any, y: Any = None) -> AutoencoderOutlierDetector:
        """Train the autoencoder on ``X`` (``y`` is ignored) and set ``offset_``, the
        ``contamination`` quantile of the training rows' scores."""
        if not isinstance(self.contamination, numbers.Real) or not 0 < self.contamination <= 0.5:
            raise UserError(f"contamination must be a fraction in (0, 0.5], got {self.contamination!r}")
        X = self._fit_autoencoder(X)
        self.offset_ = float(np.percentile(-self._errors(X, validated=True), 100 * self.contamination))
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        """Minus each row's summed squared reconstruction error and distance beyond the training
        range: higher is more normal."""
        return -self._errors(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples`` minus ``offset_``: negative for the rows ``predict`` calls outliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """1 for an inlier, -1 for an outlier (``decision_function`` below 0)."""
        return np.where(self.decision_function(X) >= 0, 1, -1)

    def _fitted_json(self) -> dict[str, Any]:
        return super()._fitted_json() | {"offset": self.offset_}

    def _restore(self, path: Path, saved: dict[str, Any]) -> None:
        self.offset_ = saved["offset"]

"""Run configuration: dataclasses, validation, JSON/TOML round trip.

Every field is also a CLI flag (``--field-name``) and a TOML key in its section, so a
run is fully described by ``config.json`` in its run directory.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACTIVATIONS = ("sigmoid", "relu", "tanh", "linear", "gelu")
CORRUPTIONS = ("none", "gaussian", "masking", "salt-and-pepper")


class UserError(Exception):
    """A problem with the user's input; shown as one line, without a traceback."""


def _opt(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    meta = {"help": help, "choices": choices}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    data: str = _opt("digits", "dataset: digits | fashion-mnist | mnist | idx:DIR | npy:FILE | csv:FILE")
    labels: str | None = _opt(None, "labels file (.npy) for npy: data")
    label_column: str | None = _opt(None, "label column (name or index) for csv: data")
    val_fraction: float = _opt(0.1, "fraction of the training split held out for validation")
    test_fraction: float = _opt(0.2, "test fraction for datasets without their own test split")
    split_seed: int = _opt(0, "seed of the train/validation/test split")
    memory_budget: float = _opt(
        2.0, "GiB of training rows or cached features kept in RAM; larger npy data streams from disk"
    )


@dataclass
class ModelConfig:
    model: str = _opt("dense", "model kind", ("dense",))
    layers: list[int] | None = _opt(
        None, "layer widths from input to code, e.g. 784,1000,500,250,30 (default: D,256,64,16)"
    )
    activation: str = _opt("relu", "hidden-layer activation", ACTIVATIONS)
    code_activation: str = _opt("linear", "code-layer activation", ACTIVATIONS)
    output_activation: str = _opt("sigmoid", "output-layer activation", ACTIVATIONS)
    tied: bool = _opt(False, "tie decoder weights to the transposed encoder weights")
    loss: str = _opt("bce", "reconstruction loss", ("bce", "mse"))
    corruption: str = _opt("none", "input corruption while training (denoising)", CORRUPTIONS)
    noise: float = _opt(0.3, "corruption level: std (gaussian) or fraction of inputs (others)")


@dataclass
class PretrainConfig:
    pretrain: str = _opt("none", "pretraining schedule", ("none", "greedy"))
    pretrain_epochs: int = _opt(3, "epochs per layer of greedy pretraining")
    schedule: str = _opt("stagewise", "greedy schedule", ("stagewise", "phased"))
    compare: bool = _opt(
        True, "with greedy pretraining, also train the stack from random init (same epochs) and report both"
    )


@dataclass
class TrainConfig:
    optimizer: str = _opt("adam", "optimizer", ("adam", "sgd"))
    lr: float = _opt(2e-3, "learning rate")
    lr_decay: str = _opt("none", "learning-rate decay over each training stage", ("none", "cosine"))
    momentum: float = _opt(0.9, "SGD momentum")
    weight_decay: float = _opt(0.0, "L2 weight decay")
    batch_size: int = _opt(64, "mini-batch size")
    epochs: int = _opt(100, "epochs of end-to-end training")
    patience: int = _opt(0, "stop after this many epochs without validation improvement (0: off)")
    seed: int = _opt(0, "random seed for initialisation and shuffling")
    precision: str = _opt("auto", "compute precision; auto measures bf16 vs fp32", ("auto", "fp32", "bf16"))
    device: str = _opt("auto", "device", ("auto", "cpu", "cuda"))
    quiet: bool = _opt(False, "no progress bars")


SECTIONS = {"data": DataConfig, "model": ModelConfig, "pretrain": PretrainConfig, "train": TrainConfig}


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON/TOML-ready)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        """Build from a nested dict; unknown keys are an error, missing keys keep defaults."""
        unknown = set(d) - set(SECTIONS) - {"out"}
        if unknown:
            raise UserError(f"unknown config section(s) {sorted(unknown)}; use {sorted(SECTIONS)}")
        parts = {}
        for name, klass in SECTIONS.items():
            values = d.get(name) or {}
            if not isinstance(values, dict):
                raise UserError(f"config section [{name}] must be a table of keys, not {values!r}")
            values = {k.replace("-", "_"): v for k, v in values.items()}
            names = {f.name for f in dataclasses.fields(klass)}
            bad = set(values) - names
            if bad:
                raise UserError(f"unknown key(s) {sorted(bad)} in [{name}]; valid: {sorted(names)}")
            parts[name] = klass(**values)
        cfg = cls(**parts, out=d.get("out"))
        cfg.validate()
        return cfg

    def flat(self) -> dict[str, Any]:
        """All fields of all sections by their (unique) field name."""
        return {k: v for name in SECTIONS for k, v in dataclasses.asdict(getattr(self, name)).items()}

    def replace(self, **overrides: Any) -> Config:
        """Copy with fields replaced by their flat name (``lr=1e-2``, ``layers=[64, 8]``)."""
        d = self.to_dict()
        for key, value in overrides.items():
            section = field_section(key)
            if section is None and key != "out":
                raise UserError(f"unknown option '{key}'")
            if section is None:
                d["out"] = value
            else:
                d[section][key] = value
        return Config.from_dict(d)

    def validate(self) -> None:
        """Check values a user can get wrong; raise UserError naming the fix."""
        m, t, dc = self.model, self.train, self.data
        for name, klass in SECTIONS.items():
            section = getattr(self, name)
            for f in dataclasses.fields(klass):
                choices = f.metadata.get("choices")
                value = _check_type(f, getattr(section, f.name))
                setattr(section, f.name, value)
                if choices and value not in choices:
                    raise UserError(f"--{_flag(f.name)} must be one of {', '.join(choices)}, not '{value}'")
        if m.layers is not None:
            if len(m.layers) < 2 or any(int(w) < 1 for w in m.layers):
                raise UserError("--layers needs at least two positive widths, e.g. 784,256,32")
            m.layers = [int(w) for w in m.layers]
        if m.loss == "bce" and m.output_activation != "sigmoid":
            raise UserError("--loss bce needs --output-activation sigmoid (or use --loss mse)")
        if t.patience > 0 and dc.val_fraction == 0:
            raise UserError("--patience needs a validation split; set --val-fraction above 0")
        for name, value in (("lr", t.lr), ("batch-size", t.batch_size)):
            if value <= 0:
                raise UserError(f"--{name} must be positive, got {value}")
        if t.epochs < 0 or self.pretrain.pretrain_epochs < 0:
            raise UserError("--epochs and --pretrain-epochs must be >= 0")
        for name, value in (("val-fraction", dc.val_fraction), ("test-fraction", dc.test_fraction)):
            if not 0 <= value < 1:
                raise UserError(f"--{name} must be in [0, 1), got {value}")
        if dc.memory_budget <= 0:
            raise UserError(f"--memory-budget must be positive (GiB), got {dc.memory_budget}")
        if not 0 <= m.noise <= (10 if m.corruption == "gaussian" else 1):
            raise UserError(f"--noise {m.noise} is out of range for {m.corruption} corruption")

    def save_json(self, path: Path) -> None:
        """Write as JSON."""
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load_json(cls, path: Path) -> Config:
        """Read a config.json written by ``save_json``."""
        return cls.from_dict(json.loads(Path(path).read_text()))


# what a field annotated with each type accepts (bool is an int subclass: refuse it for numbers)
_ACCEPTS = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "list[int]": (list, tuple)}


def _check_type(f: dataclasses.Field, value: Any) -> Any:
    """``value`` if it fits field ``f``'s annotation (ints widen to float), else a UserError."""
    kinds = [k.strip() for k in str(f.type).split("|")]
    if value is None and "None" in kinds:
        return value
    base = next(k for k in kinds if k != "None")
    ok = isinstance(value, _ACCEPTS[base]) and not (base != "bool" and isinstance(value, bool))
    if not ok:
        raise UserError(f"--{_flag(f.name)} must be {base}, not {value!r}")
    return float(value) if base == "float" else value


def _flag(name: str) -> str:
    return name.replace("_", "-")


def field_section(name: str) -> str | None:
    """The section holding the field ``name``, or None."""
    for section, klass in SECTIONS.items():
        if any(f.name == name for f in dataclasses.fields(klass)):
            return section
    return None


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config; sections [data] [model] [pretrain] [train], or flat keys."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"config file {path} is not valid TOML: {e}") from None
    nested: dict[str, Any] = {name: {} for name in SECTIONS}
    for key, value in raw.items():
        if key in SECTIONS and isinstance(value, dict):
            nested[key].update(value)
        elif key == "out":
            nested["out"] = value
        else:
            section = field_section(key.replace("-", "_"))
            if section is None:
                raise UserError(f"unknown key '{key}' in {path}")
            nested[section][key.replace("-", "_")] = value
    return nested

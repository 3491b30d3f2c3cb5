"""Run configuration: dataclasses, validation, JSON/TOML round trip.

Every field is also a CLI flag (``--field-name``) and a TOML key in its section, so a
run is fully described by ``config.json`` in its run directory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError

ACTIVATIONS = ("sigmoid", "relu", "tanh", "linear", "gelu")
CORRUPTIONS = ("none", "gaussian", "masking", "salt-and-pepper")


def option(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    meta = {"help": help, "choices": choices}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    data: str = option("digits", "dataset: digits | fashion-mnist | mnist | idx:DIR | npy:FILE | csv:FILE")
    labels: str | None = option(None, "labels file (.npy) for npy: data")
    label_column: str | None = option(None, "label column (name or index) for csv: data")
    val_fraction: float = option(0.1, "fraction of the training split held out for validation")
    test_fraction: float = option(0.2, "test fraction for datasets without their own test split")
    split_seed: int = option(0, "seed of the train/validation/test split")
    image_shape: list[int] | None = option(
        None,
        "view flat rows as images of this shape, C,H,W or H,W (e.g. 1,28,28); IDX and N×H×W data know it",
    )
    memory_budget: float = option(
        2.0, "GiB of training rows or cached features kept in RAM; larger npy data streams from disk"
    )


@dataclass
class ModelConfig:
    model: str = option("dense", "model kind (see the models table: dense, conv, vae)")
    layers: list[int] | None = option(
        None, "layer widths from input to code, e.g. 784,1000,500,250,30 (default: D,256,64,16)"
    )
    activation: str = option("relu", "hidden-layer activation", ACTIVATIONS)
    code_activation: str = option("linear", "code-layer activation", ACTIVATIONS)
    output_activation: str = option("sigmoid", "output-layer activation", ACTIVATIONS)
    tied: bool = option(False, "tie decoder weights to the transposed encoder weights")
    loss: str = option("bce", "reconstruction loss", ("bce", "mse"))
    corruption: str = option("none", "input corruption while training (denoising)", CORRUPTIONS)
    noise: float = option(0.3, "corruption level: std (gaussian) or fraction of inputs (others)")
    sparsity: str = option("none", "sparsity penalty on code activations", ("none", "kl", "squared", "l1"))
    sparsity_target: float = option(0.05, "target mean activation of each unit over a batch (kl, squared)")
    sparsity_weight: float = option(3.0, "weight of the sparsity penalty")
    sparsity_layers: str = option("code", "layers the sparsity penalty applies to", ("code", "all"))
    contractive: float = option(0.0, "weight of the contractive penalty: squared Frobenius norm of dcode/dx")
    top_k: int = option(0, "k-sparse code: keep the K largest code units of each sample (0: off)")
    top_k_start: int = option(0, "k-sparse: start with this larger k (0: --top-k from the start)")
    top_k_warmup: int = option(
        0, "k-sparse: epochs over which k falls linearly from --top-k-start to --top-k"
    )
    lifetime_sparsity: float = option(
        0.0,
        "winner-take-all: while training each code unit keeps this fraction of its largest batch activations",
    )


@dataclass
class PretrainConfig:
    pretrain: str = option("none", "pretraining schedule", ("none", "greedy"))
    pretrain_epochs: int = option(3, "epochs per layer of greedy pretraining")
    schedule: str = option("stagewise", "greedy schedule", ("stagewise", "phased"))
    compare: bool = option(
        True, "with greedy pretraining, also train the stack from random init (same epochs) and report both"
    )


    @property
    def greedy(self) -> bool:
        """Whether greedy layer-wise pretraining runs (schedule on, at least one epoch)."""
        return self.pretrain == "greedy" and self.pretrain_epochs > 0


@dataclass
class TrainConfig:
    optimizer: str = option("adam", "optimizer", ("adam", "sgd"))
    lr: float = option(2e-3, "learning rate")
    lr_decay: str = option("none", "learning-rate decay over each training stage", ("none", "cosine"))
    momentum: float = option(0.9, "SGD momentum")
    weight_decay: float = option(0.0, "L2 weight decay")
    batch_size: int = option(64, "mini-batch size")
    epochs: int = option(100, "epochs of end-to-end training")
    patience: int = option(0, "stop after this many epochs without validation improvement (0: off)")
    seed: int = option(0, "random seed for initialisation and shuffling")
    precision: str = option("auto", "compute precision; auto measures bf16 vs fp32", ("auto", "fp32", "bf16"))
    device: str = option("auto", "device", ("auto", "cpu", "cuda"))
    threads: str = option("auto", "CPU threads: auto (CPUs this process may use; 1 for small layers) or N")
    quiet: bool = option(False, "no progress bars")

    def __post_init__(self) -> None:
        if isinstance(self.threads, int) and not isinstance(self.threads, bool):
            self.threads = str(self.threads)  # threads=2 from Python means "2"


SECTIONS = {"data": DataConfig, "model": ModelConfig, "pretrain": PretrainConfig, "train": TrainConfig}


def kind_sections() -> dict[str, type]:
    """The model kinds' own sections (``[conv]``, ``[vae]``, ...), by section name."""
    from . import registry  # the registry imports the models, which import this module

    return registry.sections()


def all_sections() -> dict[str, type]:
    """Every section a config file or flag may name: the fixed ones, then the kinds' own."""
    return SECTIONS | kind_sections()


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    kind_options: Any = None  # the chosen kind's own section (e.g. ConvConfig), if it has one
    out: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON/TOML-ready); the kind's own section under its name."""
        d = {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}
        if self.kind_options is not None:
            d[_section_name(type(self.kind_options))] = dataclasses.asdict(self.kind_options)
        d["out"] = self.out
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        """Build from a nested dict; unknown keys are an error, missing keys keep defaults."""
        from . import registry

        sections = all_sections()
        unknown = set(d) - set(sections) - {"out"}
        if unknown:
            raise UserError(f"unknown config section(s) {sorted(unknown)}; use {sorted(sections)}")
        parts = {name: _section(name, klass, d.get(name)) for name, klass in SECTIONS.items()}
        kind = registry.get(parts["model"].model)
        for name in set(d) & set(kind_sections()):
            if d[name] and name != kind.section_name:
                raise UserError(f"section [{name}] applies to --model {name}, not --model {kind.name}")
        options = None
        if kind.section is not None:
            options = _section(kind.section_name, kind.section, d.get(kind.section_name))
        cfg = cls(**parts, kind_options=options, out=d.get("out"))
        cfg.validate()
        return cfg

    def sections(self) -> dict[str, Any]:
        """The section objects of this config by name (the kind's own one included)."""
        out = {name: getattr(self, name) for name in SECTIONS}
        if self.kind_options is not None:
            out[_section_name(type(self.kind_options))] = self.kind_options
        return out

    def flat(self) -> dict[str, Any]:
        """All fields of all sections by their (unique) field name."""
        return {k: v for s in self.sections().values() for k, v in dataclasses.asdict(s).items()}

    def replace(self, **overrides: Any) -> Config:
        """Copy with fields replaced by their flat name (``lr=1e-2``, ``layers=[64, 8]``)."""
        d = self.to_dict()
        if "model" in overrides and overrides["model"] != self.model.model:
            # another kind: the old kind's own options no longer apply
            d = {k: v for k, v in d.items() if k in SECTIONS or k == "out"}
        for key, value in overrides.items():
            section = field_section(key)
            if section is None and key != "out":
                raise UserError(f"unknown option '{key}'")
            if section is None:
                d["out"] = value
            else:
                d.setdefault(section, {})[key] = value
        return Config.from_dict(d)

    def validate(self) -> None:
        """Check values a user can get wrong; raise UserError naming the fix."""
        m, t, dc = self.model, self.train, self.data
        for section in self.sections().values():
            for f in dataclasses.fields(section):
                choices = f.metadata.get("choices")
                value = _check_type(f, getattr(section, f.name))
                setattr(section, f.name, value)
                if choices and value not in choices:
                    raise UserError(f"--{_flag(f.name)} must be one of {', '.join(choices)}, not '{value}'")
        if m.layers is not None:
            if len(m.layers) < 2 or any(int(w) < 1 for w in m.layers):
                raise UserError("--layers needs at least two positive widths, e.g. 784,256,32")
            m.layers = [int(w) for w in m.layers]
        if dc.image_shape is not None and not (
            len(dc.image_shape) in (2, 3) and all(int(w) >= 1 for w in dc.image_shape)
        ):
            raise UserError("--image-shape needs two or three positive sizes: H,W or C,H,W (e.g. 1,28,28)")
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
        from .threads import check_threads

        check_threads(t.threads)
        if dc.memory_budget <= 0:
            raise UserError(f"--memory-budget must be positive (GiB), got {dc.memory_budget}")
        if not 0 <= m.noise <= (10 if m.corruption == "gaussian" else 1):
            raise UserError(f"--noise {m.noise} is out of range for {m.corruption} corruption")
        self._validate_variants()
        if self.kind_options is not None and hasattr(self.kind_options, "validate"):
            self.kind_options.validate()

    def _validate_variants(self) -> None:
        """Sparsity, contractive and k-sparse settings, and the combinations that make no sense."""
        m = self.model
        if m.sparsity in ("kl", "squared"):
            acts = [m.code_activation] + ([m.activation] if m.sparsity_layers == "all" else [])
            if any(a != "sigmoid" for a in acts):
                which = "--code-activation" + (" and --activation" if m.sparsity_layers == "all" else "")
                raise UserError(
                    f"--sparsity {m.sparsity} compares mean activations in (0, 1) with the target: "
                    f"use {which} sigmoid, or --sparsity l1 for any activation"
                )
            if not 0 < m.sparsity_target < 1:
                raise UserError(f"--sparsity-target must be in (0, 1), got {m.sparsity_target}")
        for name in ("sparsity_weight", "contractive", "top_k", "top_k_start", "top_k_warmup"):
            if getattr(m, name) < 0:
                raise UserError(f"--{_flag(name)} must be >= 0, got {getattr(m, name)}")
        if m.top_k_start and m.top_k_start < m.top_k:
            raise UserError(f"--top-k-start {m.top_k_start} must be at least --top-k {m.top_k}")
        if (m.top_k_start or m.top_k_warmup) and not m.top_k:
            raise UserError("--top-k-start and --top-k-warmup schedule k: give --top-k too")
        if bool(m.top_k_start) != bool(m.top_k_warmup):
            raise UserError("--top-k-start and --top-k-warmup go together: give both, or neither")
        if not 0 <= m.lifetime_sparsity < 1:
            raise UserError(f"--lifetime-sparsity must be in [0, 1), got {m.lifetime_sparsity}")

    def to_toml(self) -> str:
        """The full resolved config as TOML (unset options are left out), readable by ``--config``."""
        lines = []
        for name, section in self.sections().items():
            lines.append(f"[{name}]")
            for key, value in dataclasses.asdict(section).items():
                if value is not None:
                    lines.append(f"{key.replace('_', '-')} = {json.dumps(value)}")
            lines.append("")
        return "\n".join(lines)

    def save_json(self, path: Path) -> None:
        """Write as JSON."""
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load_json(cls, path: Path) -> Config:
        """Read a config.json written by ``save_json``."""
        try:
            d = json.loads(Path(path).read_text())
        except json.JSONDecodeError as e:
            raise UserError(f"{path} is not valid JSON ({e}); the run directory is damaged") from None
        return cls.from_dict(d)


def _section(name: str, klass: type, values: Any) -> Any:
    """An instance of section ``klass`` from a dict of its keys (``-`` or ``_`` spelled)."""
    values = values or {}
    if not isinstance(values, dict):
        raise UserError(f"config section [{name}] must be a table of keys, not {values!r}")
    values = {k.replace("-", "_"): v for k, v in values.items()}
    names = {f.name for f in dataclasses.fields(klass)}
    bad = set(values) - names
    if bad:
        raise UserError(f"unknown key(s) {sorted(bad)} in [{name}]; valid: {sorted(names)}")
    return klass(**values)


def _section_name(klass: type) -> str:
    return next(name for name, k in kind_sections().items() if k is klass)


# what a field annotated with each type accepts (bool is an int subclass: refuse it for numbers)
_ACCEPTS = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "list[int]": (list, tuple)}


def _check_type(f: dataclasses.Field, value: Any) -> Any:
    """``value`` if it fits field ``f``'s annotation (ints widen to float), else a UserError."""
    kinds = [k.strip() for k in str(f.type).split("|")]
    if value is None and "None" in kinds:
        return value
    base = next(k for k in kinds if k != "None")
    ok = isinstance(value, _ACCEPTS[base]) and not (base != "bool" and isinstance(value, bool))
    if ok and base == "list[int]":  # whole numbers, also spelled as text ("8" from a form or a file)
        ok = all(_whole(v) for v in value)
        value = [int(v) for v in value] if ok else value
    if ok and base == "float" and not math.isfinite(value):
        raise UserError(f"--{_flag(f.name)} must be a finite number, not {value!r}")
    if not ok:
        raise UserError(f"--{_flag(f.name)} must be {base}, not {value!r}")
    return float(value) if base == "float" else value


def _whole(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lstrip("-").isdigit()
    return isinstance(v, int) and not isinstance(v, bool)


def _flag(name: str) -> str:
    return name.replace("_", "-")


def field_section(name: str) -> str | None:
    """The section holding the field ``name``, or None."""
    for section, klass in all_sections().items():
        if any(f.name == name for f in dataclasses.fields(klass)):
            return section
    return None


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config; sections [data] [model] [pretrain] [train] and the kind's own, or flat keys."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"config file {path} is not valid TOML: {e}") from None
    sections = all_sections()
    nested: dict[str, Any] = {name: {} for name in SECTIONS}
    for key, value in raw.items():
        if key in sections and isinstance(value, dict):
            nested.setdefault(key, {}).update(value)
        elif key == "out":
            nested["out"] = value
        else:
            section = field_section(key.replace("-", "_"))
            if section is None:
                raise UserError(f"unknown key '{key}' in {path}")
            nested[section][key.replace("-", "_")] = value
    return nested

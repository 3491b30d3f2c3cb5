"""Run configuration: dataclasses, validation, JSON/TOML round trip.

Every field is also a CLI flag (``--field-name``) and a TOML key in its section, so a
run is fully described by ``config.json`` in its run directory.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from . import kinds
from .errors import UserError
from .fields import Range, check_fields, flag, flags, moved, option_hint
from .options import (
    IDX_KINDS,
    ClassifyOptions,
    ClusterOptions,
    DataConfig,
    ModelConfig,
    PretrainConfig,
    TrainConfig,
    check_threads,
    scheduled_k,
)

SECTIONS = {"data": DataConfig, "model": ModelConfig, "pretrain": PretrainConfig, "train": TrainConfig}


def kind_sections() -> dict[str, type]:
    """The model kinds' own sections (``[conv]``, ``[vae]``, ...), by section name."""
    return kinds.sections()


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
        sections = all_sections()
        unknown = set(d) - set(sections) - {"out"}
        if unknown:
            raise UserError(f"unknown config section(s) {sorted(unknown)}; use {sorted(sections)}")
        parts = {name: _section(name, klass, d.get(name)) for name, klass in SECTIONS.items()}
        kind = kinds.get(parts["model"].model)
        own_sections = kind_sections()
        for name in set(d) & set(own_sections):
            if not d[name] or name == kind.section_name:
                continue
            values = d[name]
            if isinstance(values, dict):
                given, default = _section(name, own_sections[name], values), own_sections[name]()
                keys = {k.replace("-", "_") for k in values}
                moved = [k for k in sorted(keys) if getattr(given, k) != getattr(default, k)]
                # another kind's whole section at its defaults, as --print-config writes it: nothing set
                if not moved and keys == {f.name for f in dataclasses.fields(default)}:
                    continue
                what = f"{', '.join(f'--{flag(k)}' for k in moved or sorted(keys))} (section [{name}])"
            else:
                what = f"[{name}]"
            raise UserError(
                f"{what}: options of --model {name}, and this run's model is {kind.name}; leave them "
                f"out, or add --model {name}"
            )
        options = None
        if kind.section is not None:
            options = _section(kind.section_name, kind.section, d.get(kind.section_name))
        out = d.get("out")
        cfg = cls(**parts, kind_options=options, out=None if out is None else str(out))  # a Path too
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
                raise UserError(f"unknown option '{key}'{option_hint(key, option_names())}")
            if section is None:
                d["out"] = value
            else:
                d.setdefault(section, {})[key] = value
        return Config.from_dict(d)

    def validate(self) -> None:
        """Check values a user can get wrong; raise UserError naming the fix."""
        m, t, dc = self.model, self.train, self.data
        for section in self.sections().values():
            check_fields(section)
        if m.layers is not None:
            if any(int(w) < 1 for w in m.layers):
                shown = ",".join(map(str, m.layers))
                raise UserError(f"--layers {shown}: every width must be at least 1, e.g. 784,256,32")
            if len(m.layers) < 2:
                raise UserError(
                    "--layers needs at least two widths, the input's and the code's, e.g. 784,256,32"
                )
            m.layers = [int(w) for w in m.layers]
        if dc.image_shape is not None and not (
            len(dc.image_shape) in (2, 3) and all(int(w) >= 1 for w in dc.image_shape)
        ):
            raise UserError("--image-shape needs two or three positive sizes: H,W or C,H,W (e.g. 1,28,28)")
        if m.loss == "bce" and m.output_activation != "sigmoid":
            raise UserError("--loss bce needs --output-activation sigmoid (or use --loss mse)")
        check_threads(t.threads)
        if m.corruption != "none":
            level = Range(0, 10) if m.corruption == "gaussian" else Range(0, 1)
            if m.noise not in level:
                what = "a std" if m.corruption == "gaussian" else "a fraction of the inputs"
                raise UserError(
                    f"--noise must be {level} for {m.corruption} corruption ({what}), got {m.noise}"
                )
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
        if m.top_k_start and m.top_k_start < m.top_k:
            raise UserError(f"--top-k-start {m.top_k_start} must be at least --top-k {m.top_k}")
        if (m.top_k_start or m.top_k_warmup) and not m.top_k:
            raise UserError("--top-k-start and --top-k-warmup schedule k: give --top-k too")
        if bool(m.top_k_start) != bool(m.top_k_warmup):
            raise UserError("--top-k-start and --top-k-warmup go together: give both, or neither")

    def _contraction_in_closed_form(self) -> bool:
        """Whether the model's ``one_layer_encoder`` will find its contractive penalty's closed form:
        one dense layer whose code gives its slope, no code units selected."""
        from .models.layers import activation, slope_from_output  # torch: only when training

        m = self.model
        one_layer = m.model == "dense" and m.layers is not None and len(m.layers) == 2
        selected = m.top_k or m.lifetime_sparsity
        return one_layer and not selected and slope_from_output(activation(m.code_activation)) is not None

    def _against_the_prior(self) -> list[str]:
        """An AAE's code settings that keep its codes from ever matching its prior, which spreads over
        every real number in every unit: the discriminator then always tells codes from prior draws,
        and ``sample`` decodes codes that no input is given."""
        m, said = self.model, []
        prior = f"the AAE's {self.kind_options.prior} prior"
        if m.code_activation != "linear":
            kept = {"sigmoid": "in (0, 1)", "tanh": "in (-1, 1)", "relu": "at 0 or above"}
            said.append(
                f"--code-activation {m.code_activation} keeps the codes "
                f"{kept.get(m.code_activation, 'above -0.17')}, where {prior} spreads over "
                "all numbers: they can never match it; use --code-activation linear"
            )
        selected = [n for n, on in (("top_k", m.top_k), ("lifetime_sparsity", m.lifetime_sparsity)) if on]
        if selected:
            said.append(
                f"{flags(selected)} {'makes' if len(selected) == 1 else 'make'} most code values 0, "
                f"where {prior} draws none: the codes can never match it; leave "
                f"{'it' if len(selected) == 1 else 'them'} out, or use --model dense"
            )
        if m.sparsity != "none":
            said.append(
                f"--sparsity {m.sparsity} pulls the code values towards 0, where {prior} spreads them: it "
                "works against the prior; leave it out, or use --model dense"
            )
        return said

    def inert_settings(self) -> list[str]:
        """Settings given (moved from their defaults) that change nothing in this config's training,
        or that work against another, each in a sentence: most likely a missing option, not a wish."""
        m, t, said = self.model, self.train, []
        if m.model == "aae":
            said += self._against_the_prior()
            if self.kind_options.prior != "mixture" and moved(self.kind_options, ["components"]):
                said.append(
                    f"--components {self.kind_options.components} counts the mixture prior's Gaussians, and "
                    "the prior is one Gaussian: give --prior mixture too"
                )
        if m.corruption == "none" and moved(m, ["noise"]):
            said.append(f"--noise {m.noise:g} has no effect without --corruption: the inputs stay clean")
        given = moved(m, ["sparsity_target", "sparsity_weight", "sparsity_layers"])
        if m.sparsity == "none" and given:
            verb = "shapes" if len(given) == 1 else "shape"
            said.append(f"{flags(given)} {verb} a sparsity penalty, and there is none: give --sparsity too")
        if m.sparsity == "l1" and moved(m, ["sparsity_target"]):
            said.append(
                f"--sparsity-target {m.sparsity_target:g} is what kl and squared sparsity pull mean "
                "activations to; l1 has no target: leave it out"
            )
        if m.contractive == 0 and moved(m, ["contractive_projections"]):
            said.append(
                f"--contractive-projections {m.contractive_projections} estimates a contractive penalty, "
                "and there is none: give --contractive too"
            )
        if m.contractive and m.contractive_projections and self._contraction_in_closed_form():
            said.append(
                f"--contractive-projections {m.contractive_projections} estimates nothing here: an "
                "encoder of one dense layer has its contractive penalty in closed form, exact and "
                "cheaper; leave it out"
            )
        given = moved(self.pretrain, ["pretrain_epochs", "schedule", "compare"])
        if self.pretrain.pretrain != "greedy" and given:
            verb = "shapes" if len(given) == 1 else "shape"
            typed = flags(given).replace("--compare", "--no-compare")  # its one way to be moved
            said.append(f"{typed} {verb} greedy pretraining, and there is none: add --pretrain greedy")
        if self.pretrain.pretrain == "greedy" and self.pretrain.pretrain_epochs == 0:
            said.append(
                "--pretrain greedy with --pretrain-epochs 0 pretrains nothing: the stack starts from random "
                "weights and nothing is compared; give --pretrain-epochs 1 or more"
            )
        if t.epochs == 0 and not self.pretrain.greedy:
            said.append("--epochs 0 and no pretraining leave the model untrained, with its random weights")
        warmup = getattr(self.kind_options, "kl_warmup", 0)
        if warmup > t.epochs > 0:
            said.append(
                f"--kl-warmup {warmup} is longer than --epochs {t.epochs}: the KL weight never reaches "
                "--beta, and the model is trained with less of it"
            )
        # k-sparse codes: the schedule runs in each training stage, greedy pretraining's top one too
        stages = [("--epochs", t.epochs)]
        stages += [("--pretrain-epochs", self.pretrain.pretrain_epochs)] if self.pretrain.greedy else []
        for option, epochs in stages:
            last = scheduled_k(m.top_k, m.top_k_start, m.top_k_warmup, epochs) if m.top_k_start else m.top_k
            if epochs > 0 and last != m.top_k:
                said.append(
                    f"--top-k-warmup {m.top_k_warmup} is too long for {option} {epochs}: k is {last} in "
                    f"the last epoch, not --top-k {m.top_k}, which evaluation and use take"
                )
        own_test = self.data.data.partition(":")[0] in IDX_KINDS
        if own_test and moved(self.data, ["test_fraction"]):
            said.append(
                f"--test-fraction {self.data.test_fraction:g} splits data without a test split of its own; "
                f"{self.data.data.partition(':')[0]} data has one, and it is the test split"
            )
        # (--keep last, the one other value, asks for what a run without validation rows does)
        judged = moved(t, ["patience"])
        if t.epochs > 0 and self.data.val_fraction == 0 and judged:
            verb = "judges" if len(judged) == 1 else "judge"
            said.append(
                f"{flags(judged)} {verb} epochs on the validation split, and --val-fraction 0 leaves "
                "none: every epoch runs and the last one's weights are kept"
            )
        if t.optimizer != "sgd" and moved(t, ["momentum"]):
            said.append(f"--momentum {t.momentum:g} is SGD's; with --optimizer {t.optimizer} it does nothing")
        if m.lifetime_sparsity and math.ceil(m.lifetime_sparsity * t.batch_size) >= t.batch_size:
            said.append(
                f"--lifetime-sparsity {m.lifetime_sparsity:g} keeps every activation of a batch of "
                f"{t.batch_size}: no sparsity; use a larger --batch-size"
            )
        return said

    def to_toml(self) -> str:
        """The full resolved config as TOML (unset options are left out), readable by ``--config``."""
        lines = [] if self.out is None else [f"out = {_toml_value(self.out)}", ""]  # before any table
        for name, section in self.sections().items():
            lines.append(f"[{name}]")
            for key, value in dataclasses.asdict(section).items():
                if value is not None:
                    lines.append(f"{key.replace('_', '-')} = {_toml_value(value)}")
            lines.append("")
        return "\n".join(lines)

    @classmethod
    def load_json(cls, path: Path) -> Config:
        """The config of a run's ``config.json`` at ``path`` (as ``rundir.write_config`` writes it)."""
        from .io import rundir  # here: rundir loads torch, which the CLI's help and usage errors need not

        d = rundir.read_config(path)
        try:
            return cls.from_dict(d)
        except UserError as e:  # a value no run writes: named as the file holds it, not as a flag given
            raise UserError(
                f"{path} holds a value this toolkit never writes ({e}); the run directory is damaged"
            ) from None


def _toml_value(value: Any) -> str:
    """``value`` as TOML: JSON's spelling, in raw UTF-8 (TOML reads no JSON surrogate pairs, which
    a name beyond the BMP would get), with DEL escaped as TOML wants it."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _section(name: str, klass: type, values: Any) -> Any:
    """An instance of section ``klass`` from a dict of its keys (``-`` or ``_`` spelled)."""
    values = values or {}
    if not isinstance(values, dict):
        raise UserError(f"config section [{name}] must be a table of keys, not {values!r}")
    names = {f.name for f in dataclasses.fields(klass)}
    bad = sorted(k for k in values if k.replace("-", "_") not in names)
    if bad:
        raise UserError(
            f"unknown key(s) {', '.join(_misplaced(k, name, names) for k in bad)} in [{name}]; "
            f"valid: {', '.join(sorted(flag(n) for n in names))}"
        )
    return klass(**{k.replace("-", "_"): v for k, v in values.items()})


def _misplaced(key: str, section: str, names: set[str]) -> str:
    """``key`` quoted, with where it belongs when another section takes it, or the nearest valid key."""
    home = field_section(key.replace("-", "_"))
    if home is not None and home != section:
        return f"'{key}' (it belongs in [{home}])"
    return f"'{key}'{option_hint(flag(key), [flag(n) for n in names])}"


def _section_name(klass: type) -> str:
    return next(name for name, k in kind_sections().items() if k is klass)


def option_names() -> list[str]:
    """Every option a config takes by its flat name: each section's fields, and ``out``."""
    return [f.name for klass in all_sections().values() for f in dataclasses.fields(klass)] + ["out"]


Fn = TypeVar("Fn", bound=Callable[..., Any])
# a command the user could run, quoted in a message: its flags stay flags
_COMMAND = re.compile(r"(autoencoders [a-z][a-z-]*(?:(?!: )[^;'`)])*)")  # to "; ", ": ", a quote or ")"
# commands a message suggests that Python has a call for: that call, in Python's messages
_CALLS: dict[re.Pattern, Callable[[re.Match], str]] = {
    re.compile(r"autoencoders train --resume (\S+)"): lambda m: f"autoencoders.resume({m.group(1)!r})",
    re.compile(r"autoencoders visualize (\S+) --what (\w+)"): (
        lambda m: f"autoencoders.visualize({m.group(1)!r}, {m.group(2)!r})"
    ),
}


def _as_call(command: str) -> str:
    """A command a message suggests, as Python's call where it has one, else as it is."""
    for pattern, call in _CALLS.items():
        if match := pattern.fullmatch(command):
            return call(match)
    return command


def in_python_names(renamed: dict[str, str] | None = None) -> Callable[[Fn], Fn]:
    """A decorator: the function's UserErrors name options as Python takes them (``epochs``,
    ``label_column``, ``n``, ``overwrite=True`` for a flag without a value) where they name the CLI's
    flags (``--epochs``, ``--label-column``, ``-n``, ``--overwrite``), and ``renamed`` options by
    their names there (``{"k": "n_clusters"}``); commands the message suggests running keep their
    flags, or become Python's call where it has one (``_CALLS``: ``autoencoders.resume('runs/x')``)."""
    renamed = renamed or {}

    def decorate(fn: Fn) -> Fn:
        names = [*option_names(), *inspect.signature(fn).parameters, *renamed]
        names += [f.name for klass in (ClassifyOptions, ClusterOptions) for f in dataclasses.fields(klass)]
        alternatives = "|".join(sorted({re.escape(flag(n)) for n in names}, key=len, reverse=True))
        as_flag = re.compile(rf"(?<![\w'-])(?:--({alternatives})|-(n))(?![\w-])")  # not a quoted value
        # a flag that takes no value is an option set to True in Python: "add overwrite=True"
        switches = {n for n, p in inspect.signature(fn).parameters.items() if isinstance(p.default, bool)}
        switches |= {
            f.name
            for klass in (*all_sections().values(), ClassifyOptions, ClusterOptions)
            for f in dataclasses.fields(klass)
            if f.type in ("bool", bool)
        }

        def parameter(match: re.Match) -> str:
            name = (match.group(1) or match.group(2)).replace("-", "_")
            # "tied must be bool": the option's value is meant, not the option given
            given = name in switches and not match.string.startswith(" must ", match.end())
            return renamed.get(name, name) + ("=True" if given else "")

        def in_python(message: str) -> str:
            parts = _COMMAND.split(message)  # text, command, text, ...: commands as they are
            return "".join(_as_call(p) if i % 2 else as_flag.sub(parameter, p) for i, p in enumerate(parts))

        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except UserError as e:
                e.args = (in_python(str(e)),)
                raise

        return cast(Fn, wrapped)

    return decorate


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
        what = "is a folder" if path.is_dir() else "does not exist"
        raise UserError(f"config file {path} {what}; give a TOML file, e.g. examples/fashion-sae-fast.toml")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        if path.suffix.lower() == ".json":  # a run's config.json, most likely
            raise UserError(
                f"config file {path} is JSON, and --config reads TOML; 'autoencoders train [options] "
                "--print-config' prints settings as TOML"
            ) from None
        raise UserError(f"config file {path} is not valid TOML: {e}") from None
    return nested_config(raw, str(path))


def nested_config(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """Settings in sections (data, model, pretrain, train and the kind's own), flat keys or both, as
    ``Config.from_dict`` takes them: each flat key in its section. ``source``: where they came from."""
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
                hint = option_hint(flag(key), map(flag, option_names()))
                raise UserError(f"unknown key '{key}' in {source}{hint}")
            table = raw.get(section)
            if isinstance(table, dict) and any(k.replace("-", "_") == key.replace("-", "_") for k in table):
                raise UserError(f"{source} sets '{key}' twice, at the top and in [{section}]; keep one")
            nested.setdefault(section, {})[key.replace("-", "_")] = value  # a kind's own: its section
    return nested

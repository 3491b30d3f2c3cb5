"""An option: a dataclass field with its default, help and the values it accepts; values checked
against it; and options named in messages (their flags, the nearest known name, what other tools
call them). ``options`` declares a run's options with it, and the CLI makes its flags from them.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import UserError


@dataclass(frozen=True)
class Range:
    """The numbers an option accepts: one source for validation and for ``--help``."""

    low: float
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        low, high = (f"{v:g}" if isinstance(v, float) else str(v) for v in (self.low, self.high))
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {low}"
        return f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"


POSITIVE, AT_LEAST_0, AT_LEAST_1 = Range(0, low_open=True), Range(0), Range(1)
SEED = Range(0, 2**32 - 1)  # as NumPy's and scikit-learn's seeds are
FRACTION = Range(0, 1, high_open=True)


def option(
    default: Any,
    help: str,
    choices: tuple[str, ...] | None = None,
    range: Range | None = None,  # noqa: A002 (reads as the option's range in the field list)
    shown_default: str | None = None,
) -> Any:
    """A config field: its default, help text, and the choices or range it accepts."""
    meta = {"help": help, "choices": choices, "range": range, "shown_default": shown_default}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def options_doc(sections: dict[str, type], indent: str = "    ") -> str:
    """Every option of ``sections`` as docstring lines, ``name (default ...): help``, grouped by
    section: what ``help()`` shows of a function that takes them as keyword arguments."""
    import textwrap

    lines = []
    for name, section in sections.items():
        lines += ["", f"{indent}{name}:"]
        for f in dataclasses.fields(section):
            shown = f.metadata.get("shown_default")
            if shown is None:
                shown = repr(f.default_factory() if f.default is dataclasses.MISSING else f.default)
            text = f"{f.name} (default {shown}): {f.metadata.get('help', '')}"
            lines += textwrap.wrap(text, 100, initial_indent=indent * 2, subsequent_indent=indent * 3)
    return "\n".join(lines) + "\n"


def split_options(
    options: dict[str, Any], klass: type, others: Iterable[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``options`` divided into the fields of section ``klass`` and the rest, each of which must be
    one of ``others``; a UserError names an unknown one and the nearest known name."""
    own, others = {f.name for f in dataclasses.fields(klass)}, set(others)
    for key in options:
        if key not in own and key not in others:
            raise UserError(f"unknown option '{key}'{option_hint(key, own | others)}")
    return {k: v for k, v in options.items() if k in own}, {k: v for k, v in options.items() if k not in own}


def check_fields(section: Any) -> None:
    """Each field of a section dataclass against its type, choices and range; values a user typed
    as text or ints are normalised in place (ints widen to float). A UserError names the flag."""
    for f in dataclasses.fields(section):
        if "help" not in f.metadata:  # not an option (e.g. a function a subclass carries)
            continue
        choices = f.metadata.get("choices")
        value = _check_type(f, getattr(section, f.name))
        setattr(section, f.name, value)
        if choices and value not in choices:
            one_of = f"--{flag(f.name)} must be one of {', '.join(choices)}, not '{value}'"
            raise UserError(one_of + closest(value, choices))
        bounds = f.metadata.get("range")
        if bounds is not None and value is not None and value not in bounds:
            raise UserError(f"--{flag(f.name)} must be {bounds}, got {value}")


# what a field annotated with each type accepts (bool is an int subclass: refuse it for numbers);
# numbers of any kind, NumPy's too, as a grid search's ``np.arange`` gives them
_ACCEPTS = {
    "int": (numbers.Integral,),
    "float": (numbers.Real,),
    "bool": (bool,),
    "str": (str,),
    "list[int]": (list, tuple),
    "list[str]": (list, tuple),
}

# each type as a message says what a value must be (a TOML file or Python gives lists as lists)
_IN_WORDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "str": "text",
    "list[int]": "a list of whole numbers, such as [64, 8]",
    "list[str]": 'a list of names, such as ["a", "b"]',
}


def _check_type(f: dataclasses.Field, value: Any) -> Any:
    """``value`` if it fits field ``f``'s annotation, one of its kinds where it names several (ints
    widen to float), else a UserError."""
    kinds = [k.strip() for k in str(f.type).split("|")]
    if value is None and "None" in kinds:
        return value
    kinds = [k for k in kinds if k != "None"]
    if getattr(value, "ndim", None) == 1 and any(k.startswith("list") for k in kinds):
        value = value.tolist()  # an array of widths or names

    def fits(kind: str) -> bool:  # bool is an int subclass: refuse it for numbers
        return isinstance(value, _ACCEPTS[kind]) and not (kind != "bool" and isinstance(value, bool))

    base = next((k for k in kinds if fits(k)), kinds[0])
    ok = fits(base)
    if ok and base == "list[int]":  # whole numbers, also spelled as text ("8" from a form or a file)
        bad = next((i for i, v in enumerate(value) if not _whole(v)), None)
        if bad is not None:
            raise UserError(f"--{flag(f.name)} must be whole numbers; item {bad + 1} is {value[bad]!r}")
        value = [int(v) for v in value]
    if ok and base == "list[str]":  # names: each once, none empty
        value = [str(v).strip() for v in value]
        if not value or "" in value or len(set(value)) < len(value):
            raise UserError(f"--{flag(f.name)} needs distinct, non-empty names, got {value}")
    if ok and base == "float" and not math.isfinite(value):
        raise UserError(f"--{flag(f.name)} must be a finite number, not {value!r}")
    if not ok:
        plain = value.item() if getattr(value, "ndim", None) == 0 else value  # a NumPy scalar's number
        shown = repr(plain) if isinstance(plain, int | float | str | bool) else f"a {type(value).__name__}"
        raise UserError(f"--{flag(f.name)} must be {' or '.join(_IN_WORDS[k] for k in kinds)}, not {shown}")
    return {"float": float, "int": int}.get(base, lambda v: v)(value)  # NumPy's numbers as Python's


def _whole(v: Any) -> bool:
    """Whether ``v`` is a whole number: an int, a float without a fraction (4.0), or its digits as text."""
    if isinstance(v, str):
        return v.strip().lstrip("-").isdigit()
    if isinstance(v, numbers.Real) and not isinstance(v, bool | numbers.Integral):
        return math.isfinite(v) and float(v).is_integer()
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def nearest(value: object, names: Iterable[str]) -> str | None:
    """The valid name nearest to a mistyped ``value`` (or the one it spells out: 'validation' for
    'val'), or None."""
    import difflib

    # flags compared without their dashes, which every one shares: "--nonsense" is not "--columns"
    bare = {n.lstrip("-"): n for n in names}
    match = [bare[m] for m in difflib.get_close_matches(str(value).lstrip("-"), list(bare), n=1, cutoff=0.5)]
    if not match:  # a word that spells a name out: the longest such name of three letters or more
        word = str(value).lstrip("-").lower()
        spelled = [b for b in bare if len(b) >= 3 and word.startswith(b.lower())]
        match = [bare[b] for b in sorted(spelled, key=len)[-1:]]
    return match[0] if match else None


# options other tools (Keras, scikit-learn, Lightning, pythae) name so, as Python spells them: the
# name of ours, or what this one does instead
_CODE_SIZE = "the code size is the last width of --layers, e.g. --layers 64,32,8"
_GPU = "a GPU is --device cuda"
OTHER_NAMES = {
    "code_size": _CODE_SIZE,
    "latent_dim": _CODE_SIZE,
    "hidden": "--layers gives every width, the input's first and the code's last",
    "hidden_layer_sizes": "layers",
    "hidden_dims": "layers",
    "denoising": "a denoising autoencoder is --corruption gaussian or masking, with --noise",
    "output": "out",
    "learning_rate": "lr",
    "learning_rate_init": "lr",
    "dataset": "data",
    "label": "labels are --label-column for csv: data, --labels FILE.npy for npy: data",
    "gpu": _GPU,
    "cuda": _GPU,
    "n_epochs": "epochs",
    "num_epochs": "epochs",
    "max_epochs": "epochs",
    "max_iter": "epochs",
    "early_stopping_patience": "patience",
    "alpha": "weight_decay",
    "l2": "weight_decay",
    "random_state": "seed",
}


def option_hint(value: str, names: Iterable[str]) -> str:
    """ " (...)" after an unknown option ``value``: its name here where another tool names it so
    (``OTHER_NAMES``), what this one does instead, or the nearest of ``names`` (flags or Python's
    names, as the caller spells them), else ""."""
    names = list(names)
    other = OTHER_NAMES.get(value.lstrip("-").replace("-", "_").lower(), "")
    ours = [n for n in names if n.lstrip("-").replace("-", "_") == other]
    if ours:
        return f" (did you mean '{ours[0]}'?)"
    return f" ({other})" if " " in other else closest(value, names)


def closest(value: object, names: Iterable[str]) -> str:
    """ " (did you mean 'X'?)" for ``nearest``'s name, else ""."""
    match = nearest(value, names)
    return f" (did you mean '{match}'?)" if match else ""


def moved(section: Any, names: Iterable[str]) -> list[str]:
    """Those of the fields ``names`` whose value in ``section`` is not their default: the settings given."""
    fields = {f.name: f for f in dataclasses.fields(section)}

    def default(f: dataclasses.Field) -> Any:
        return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default

    return [n for n in names if getattr(section, n) != default(fields[n])]


def flags(names: Iterable[str]) -> str:
    """Option names as their flags, listed: ``--epochs, --lr``."""
    return ", ".join(f"--{flag(n)}" for n in names)


def new_settings_refused(names: list[str]) -> UserError:
    """The error for settings given to a run that is resumed (``config``: a config file)."""
    return UserError(f"a resumed run continues with its own settings; leave out {flags(names)}")


def whole_at_least(option: str, value: Any, least: int) -> int:
    """``value`` as an int, or a UserError unless it is a whole number of at least ``least``;
    ``option`` is its flag (``--steps``, ``-n``), which Python's messages rename."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise UserError(f"{option} must be a whole number, not {value!r}")
    if value < least:
        raise UserError(f"{option} must be at least {least}, got {value}")
    return int(value)


def flag(name: str) -> str:
    """An option's name as its flag and config key spell it: ``batch_size`` → ``batch-size``."""
    return name.replace("_", "-")

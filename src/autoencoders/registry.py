"""Model kinds by name: ``kind -> (config section, builder)``, used by CLI, TOML, API and ``load``.

A kind registers itself with :func:`register`; everything else finds it here by the name
in ``--model`` or ``config.json``, so adding a kind touches no other module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import UserError


@dataclass(frozen=True)
class Kind:
    """A registered model kind."""

    name: str
    summary: str  # what it is, in one line
    example: str  # a one-line CLI example
    build: Callable  # (Config, input_shape) -> Autoencoder
    section: type | None = None  # its own config section, named like the kind

    @property
    def section_name(self) -> str | None:
        return self.name if self.section is not None else None


_KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add ``kind``; its name must be new."""
    if kind.name in _KINDS:
        raise ValueError(f"model kind '{kind.name}' is registered twice")
    _KINDS[kind.name] = kind
    return kind


def kinds() -> dict[str, Kind]:
    """Every registered kind by name (the built-in ones are registered on first use)."""
    from . import models  # noqa: F401  (importing the models registers them)

    return _KINDS


def get(name: str) -> Kind:
    """The kind called ``name``, or a UserError listing the known ones."""
    known = kinds()
    if name not in known:
        raise UserError(f"--model must be one of {', '.join(known)}, not '{name}'")
    return known[name]


def sections() -> dict[str, type]:
    """The kinds' own config sections by section name."""
    return {k.section_name: k.section for k in kinds().values() if k.section is not None}


def build(cfg, input_shape: tuple[int, ...]):
    """The model ``cfg.model.model`` names, for rows of ``input_shape``, initialised as
    ``cfg.model.init`` says."""
    model = get(cfg.model.model).build(cfg, tuple(input_shape))
    model.init = cfg.model.init
    if model.init != "torch":  # the layers were built with PyTorch's own initialisation
        model.reset_parameters()
    return model

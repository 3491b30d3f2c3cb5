"""Flags from option fields: the argument parser that answers a usage error in one line, naming
the nearest option or the command that takes it, and each option field as a flag."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import re
import types
import typing
from collections.abc import Callable
from typing import NoReturn

from . import kinds
from .config import all_sections
from .fields import Range, closest, option_hint

REQUIRED = "the following arguments are required: "  # argparse's words, which its error message starts with


class Parser(argparse.ArgumentParser):
    """Usage errors in one line (not the whole usage), with the nearest name for a mistyped choice.
    Options are taken whole: an abbreviation would let --output mean --output-activation."""

    def __init__(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    def error(self, message: str) -> NoReturn:
        typo = re.search(r"invalid choice: '?([^' ]+?)'? \(choose from (.+)\)", message)
        unknown = re.match(r"unrecognized arguments: (--[\w-]+)", message)
        empty = re.match(r"argument (--[\w-]+).*: expected one argument", message)
        if typo and message.startswith("argument COMMAND") and (stray := self._stray()):
            message = f"unrecognized arguments: {stray}{self._whose(stray)}"  # --epochs 2 train: not "2"
        elif typo:
            message += closest(typo.group(1), [c.strip(" '") for c in typo.group(2).split(",")])
        elif unknown:
            message += self._whose(unknown.group(1))
        elif empty and (value := self._after(empty.group(1))) and re.match(r"-\.?\d", value):
            # argparse reads "-1,2" as an option (only a plain number such as -1 passes as a value)
            message += f" (a value that starts with '-' reads as an option: write {empty.group(1)}={value})"
        elif message.endswith("required: COMMAND"):  # the program alone: name what it does
            commands = next(a.choices for a in self._actions if isinstance(a, argparse._SubParsersAction))
            message = f"give a command: {', '.join(commands)}"
        elif message.startswith(REQUIRED) and (stray := self._stray()):
            # a mistyped option (--output for --out) may be why a required one is missing: name it,
            # and any other missing one, which the next try would otherwise be the first to hear of
            whose = self._whose(stray)
            missing = [m for m in message.removeprefix(REQUIRED).split(", ") if f"'{m}'" not in whose]
            message = f"unrecognized arguments: {stray}{whose}"
            if missing:
                message += f"; {REQUIRED}{', '.join(missing)}"
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")

    def _whose(self, option: str) -> str:
        """Where an unknown ``option`` belongs: the top level, other commands, or a near name."""
        root = getattr(self, "root", None)  # set on each command's parser
        if root is not None and option in own_options(root):
            return f" (an option of {root.prog} itself: put it before the command)"
        owners = [o for o in commands_taking(root or self, option) if o != f"'{self.prog}'"]
        if owners:
            where = "not of this command" if root is not None else "put it after the command"
            return f" (an option of {' and '.join(owners)}, {where})"
        return option_hint(option, option_names(self))

    def _after(self, option: str) -> str | None:
        """The word after ``option`` on the command line (``words``, set by ``run``)."""
        words = getattr(self, "words", [])
        return next((after for word, after in zip(words, words[1:]) if word == option), None)

    def _stray(self) -> str | None:
        """The first option of the command line (``words``, set by ``run``) that neither this
        command's parser nor the top level takes."""
        known = own_options(self) + own_options(getattr(self, "root", self))
        for word in getattr(self, "words", []):
            option = word.split("=")[0]
            if option.startswith("--") and option not in known:
                return option
        return None


def option_names(parser: argparse.ArgumentParser) -> list[str]:
    """Every long option of ``parser`` and its subcommands."""
    names = []
    for action in parser._actions:  # argparse offers no public way to list them
        names += [o for o in action.option_strings if o.startswith("--")]
        if isinstance(action, argparse._SubParsersAction):
            names += [n for sub in action.choices.values() for n in option_names(sub)]
    return sorted(set(names))


def own_options(parser: argparse.ArgumentParser) -> list[str]:
    """The options ``parser`` takes itself, not through a subcommand."""
    return [
        o for a in parser._actions if not isinstance(a, argparse._SubParsersAction) for o in a.option_strings
    ]


def subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The subcommand ``name`` of ``parser``."""
    return next(a.choices[name] for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def commands_taking(parser: argparse.ArgumentParser, option: str) -> list[str]:
    """The subcommands of ``parser`` that take ``option``, as 'prog command' names."""
    return [
        f"'{sub.prog}'"
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for sub in action.choices.values()
        if option in option_names(sub)
    ]


def number(kind: type, bounds: Range) -> Callable[[str], float]:
    """An argparse type: a ``kind`` number within ``bounds``."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"'{text}' is not a{'' if kind is int else ' '}{'n integer' if kind is int else 'number'}"
            ) from None
        if value not in bounds:
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


def described(text: str, default: object, bounds: Range | None = None) -> str:
    """Help text ending in the default and the accepted range, the same way for every option."""
    return f"{text}; default: {default}" + (f", must be {bounds}" if bounds is not None else "")


def parse_ints(text: str) -> list[int]:
    try:
        return [int(w) for w in text.replace(" ", "").split(",") if w]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of integers") from None


def parse_names(text: str) -> list[str]:
    """Names separated by commas; a name holding a comma in double quotes, as in a CSV line."""
    names = next(csv.reader([text], skipinitialspace=True)) or [""]
    return [w.strip() for w in names]  # empty or repeated names are refused with the config


# how help spells the values of options whose name alone does not say it
METAVARS = {"image_shape": "C,H,W", "image_size": "H,W", "channels": "C,C,...", "labels": "FILE.npy"}


def add_fields(
    parser,
    klass: type,
    checked: bool = False,
    place: dict | None = None,
    only: tuple[str, ...] = (),
    shown: str | None = None,
) -> None:
    """One flag per option field of ``klass`` (``only`` those named, where given), default None (only
    given flags override). ``checked``: numbers are checked against their range as they are parsed;
    ``place``: field name -> the group (e.g. mutually exclusive) its flag goes in; ``shown``: the
    default their help names, where not the field's own."""
    hints = typing.get_type_hints(klass)
    for f in dataclasses.fields(klass):
        if "help" not in f.metadata or (only and f.name not in only):
            continue
        target = (place or {}).get(f.name, parser)
        flag, bounds = "--" + f.name.replace("_", "-"), f.metadata["range"]
        short = ("-q",) if f.name == "quiet" else ()
        kind = hints[f.name]
        if isinstance(kind, types.UnionType):  # X | None
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        help_text = described(f.metadata["help"], shown_default(f) if shown is None else shown, bounds)
        if kind is bool:
            target.add_argument(
                flag, *short, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        elif kind == list[str]:
            target.add_argument(flag, type=parse_names, default=None, metavar="NAME,...", help=help_text)
        elif typing.get_origin(kind) is list:
            metavar = METAVARS.get(f.name, "W,W,...")
            target.add_argument(flag, type=parse_ints, default=None, metavar=metavar, help=help_text)
        else:
            choices = tuple(kinds.KINDS) if f.name == "model" else f.metadata["choices"]
            parse = number(kind, bounds) if checked and bounds is not None else kind
            target.add_argument(
                flag, type=parse, default=None, choices=choices, metavar=METAVARS.get(f.name), help=help_text
            )


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """A flag per config field, grouped by section."""
    for section, klass in all_sections().items():
        title = section if section in ("data", "model", "pretrain", "train") else f"--model {section}"
        add_fields(parser.add_argument_group(title), klass)


def shown_default(f: dataclasses.Field) -> object:
    """A field's default as a user would type it."""
    if f.metadata["shown_default"] is not None:
        return f.metadata["shown_default"]
    if f.default_factory is not dataclasses.MISSING:
        return ",".join(map(str, f.default_factory()))
    return "not set" if f.default is None else f.default


def ranged(
    parser: argparse.ArgumentParser,
    flag: str | tuple[str, ...],
    kind: type,
    bounds: Range,
    default: object,
    text: str,
) -> None:
    """A numeric option (one or more spellings) checked against ``bounds``, its default and range in
    its help."""
    flags = (flag,) if isinstance(flag, str) else flag
    parser.add_argument(
        *flags, type=number(kind, bounds), default=default, help=described(text, default, bounds)
    )

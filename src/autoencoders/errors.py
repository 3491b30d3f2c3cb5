"""What the user is told beside results: errors they can fix (one line, without a traceback),
warnings, and notes on stderr."""

import errno
import functools
import re
import sys
from collections.abc import Callable
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

P, R = ParamSpec("P"), TypeVar("R")
_said: ContextVar[set[str] | None] = ContextVar("said", default=None)  # the notes of the operation running


class UserError(ValueError):
    """A problem with the user's input; shown as one line, without a traceback."""


class ToolkitWarning(UserWarning):
    """Something that works but most likely not as meant; the CLI shows it as one line."""


class DataWarning(ToolkitWarning):
    """Data that is read but most likely not what was meant."""


class SettingWarning(ToolkitWarning):
    """A setting that is taken but most likely slows the run or is not what was meant."""


# packages between a user's line and this package's code: scikit-learn calls the estimators' fit
# from fit_transform, pipelines and searches (joblib runs a search's fits)
_CALLERS = {__name__.split(".")[0], "sklearn", "joblib"}


def user_stacklevel() -> int:
    """The ``stacklevel`` at which a warning raised by the caller names the first frame outside this
    package and the libraries that call it: the user's own call, however deep it was raised."""
    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] in _CALLERS:
        frame, level = frame.f_back, level + 1
    return level


def say(message: str, quiet: bool) -> None:
    """One line on stderr, unless quiet: what a command is doing that takes long or is worth knowing."""
    said = _said.get()
    if quiet or (said is not None and message in said):
        return
    if said is not None:
        said.add(message)
    print(f"autoencoders: {message}", file=sys.stderr)


def says_once(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn``, a whole operation (a run, a classifier, a fit), in which ``say`` tells each note once:
    each of its training stages would repeat what holds for all of them."""

    @functools.wraps(fn)
    def once(*args: P.args, **kwargs: P.kwargs) -> R:
        token = _said.set(set()) if _said.get() is None else None  # an operation within one: the outer's
        try:
            return fn(*args, **kwargs)
        finally:
            if token is not None:
                _said.reset(token)

    return once


# how each library words an allocation that failed, and the size it asked for (torch's CPU
# allocator in bytes; torch's CUDA allocator and numpy with their unit)
_ASKED = (
    re.compile(r"tried to allocate (\d+) bytes", re.IGNORECASE),
    re.compile(r"(?:tried|unable) to allocate ([\d.]+ [KMGTPE]?i?B)", re.IGNORECASE),
)
_OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "not enough memory")


def out_of_resources(e: BaseException) -> str | None:
    """One line for an error that ran out of memory (host or GPU) or disk space, naming what asked
    for it and what to make smaller; None for any other error. (Files this toolkit writes whole say
    a full disk as a ``UserError`` naming the file; this names the writes that stream.)"""
    text = str(e)
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        where = f" writing {e.filename}" if e.filename else ""
        return (
            f"the disk is full{where}; free space there (runs go to --out, decoded images and "
            "baselines to $AUTOENCODERS_CACHE, streamed rows' temporary files to $TMPDIR)"
        )
    gpu = type(e).__name__ == "OutOfMemoryError" or any(
        words in text
        for words in ("CUDA out of memory", "CUDA error: out of memory", "MPS backend out of memory")
    )
    memory = (
        isinstance(e, MemoryError)
        or (isinstance(e, OSError) and e.errno == errno.ENOMEM)
        or (isinstance(e, RuntimeError) and any(words in text for words in _OUT_OF_MEMORY))
    )
    if not (gpu or memory):
        return None
    asked = ""
    for pattern in _ASKED:
        if found := pattern.search(text):
            size = found.group(1)
            asked = f" (one allocation of {int(size) / 2**30:.1f} GiB)" if size.isdigit() else f" ({size})"
            break
    return (
        f"out of {'GPU ' if gpu else ''}memory{asked}; make the job smaller: train with a lower "
        "--batch-size, a smaller --image-size or a narrower first layer in --layers"
        + ("; or compute on the CPU: --device cpu" if gpu else "")
    )

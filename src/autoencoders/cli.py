"""The command line's entry: the arguments parsed, the command run (each calls the Python API), and
the end a command-line tool makes: an error or warning in one line, its exit status, a quick exit."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import signal
import sys
import threading
import traceback
import types
import warnings
from collections.abc import Callable, Iterator

from .errors import ToolkitWarning, UserError, out_of_resources
from .flags import subcommand
from .parser import build_parser


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    words = sys.argv[1:] if argv is None else argv
    for command in next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    ).choices.values():
        command.words = words  # a required option missing: a mistyped one may be why
    parser.words = words  # a command's option before the command: its value read as the command
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # refused where it was given: before the command, or by the command's own parser
        before = words[: words.index(args.command)] if args.command in words else []
        where = parser if any(w in before for w in unknown) else subcommand(parser, args.command)
        where.error(f"unrecognized arguments: {' '.join(unknown)}")
    # the commands load torch and the rest (1.2 s on 2 CPU cores): only once the arguments are
    # good, so that --help, --version and usage errors answer at once
    from .commands import handle

    handle(args)
    return 0


def _one_line(show: Callable[..., None]) -> Callable[..., None]:
    """``warnings.showwarning`` that shows this toolkit's warnings as one line, each once (a part that
    reads the same data again would warn again: Python forgets what it has shown whenever a block
    changes its filters), others by ``show``."""
    said: set[str] = set()

    def shown(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
        if issubclass(category, ToolkitWarning):
            if str(message) not in said:
                said.add(str(message))
                print(f"autoencoders: warning: {message}", file=sys.stderr)
        else:  # another library's: as Python shows it, where it was raised
            show(message, category, *args, **kwargs)

    return shown


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line on stderr and exit status 2; memory or disk
    space running out, one line and status 1."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    status = 1  # an unexpected error, whose traceback follows
    with _sigterm_as_interrupt() as terminated:
        try:
            with warnings.catch_warnings():
                if not debug:  # this toolkit's warnings are one line, as its errors are
                    warnings.showwarning = _one_line(warnings.showwarning)
                status = run(argv)
        except UserError as e:
            if debug:
                traceback.print_exc()
            print(f"autoencoders: error: {e}", file=sys.stderr)
            status = 2
        except KeyboardInterrupt as e:
            word = "terminated (SIGTERM)" if terminated else "interrupted"
            print(f"autoencoders: {word}" + (f"; {e}" if str(e) else ""), file=sys.stderr)
            status = 143 if terminated else 130
        except BrokenPipeError:  # what reads the output stopped early (``| head``): end as Unix tools do
            status = 141
        except (MemoryError, RuntimeError, OSError) as e:  # after BrokenPipeError, an OSError
            if (message := out_of_resources(e)) is None:
                raise
            if debug:
                traceback.print_exc()
            print(f"autoencoders: error: {message}", file=sys.stderr)
            status = 1
        finally:
            # only training joins a process group, once its modules are loaded: none to leave (and
            # nothing to load) otherwise
            if (distributed := sys.modules.get(f"{__package__}.runtime.distributed")) is not None:
                distributed.teardown(finished=status == 0)
    sys.exit(status)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[list[bool]]:
    """Within the block, SIGTERM (``kill``, ``timeout``, a batch scheduler's time limit) stops a
    command as Ctrl-C does, saying how to continue; the list yielded holds True once it came. Only
    the main thread can take signals: elsewhere SIGTERM keeps its own way."""
    came: list[bool] = []

    def stop(signum: int, frame: types.FrameType | None) -> None:
        came.append(True)
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield came
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield came
    finally:
        signal.signal(signal.SIGTERM, previous)


def console() -> None:
    """The ``autoencoders`` and ``ae`` commands: ``main`` in a process of its own, which ends as soon as
    its work is done, its output flushed and its exit handlers run. Python's own teardown would then
    free torch, scikit-learn and matplotlib module by module: 0.4–0.9 s of every command on a 2-core
    CPU, for nothing a finished process needs (every file is closed by then)."""
    try:
        main()
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        if not isinstance(e.code, int | None):  # a message, which Python would print
            print(e.code, file=sys.stderr)
    # what Python's own exit does before its teardown: stop thread pools and join the threads
    # still working, then run the exit handlers (both functions are the interpreter's own)
    threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: the process started with it closed
                stream.flush()
        except BrokenPipeError:  # as in ``main``: what reads the output stopped early
            status = status or 141
        except OSError:  # output that could not be written (a full disk) fails the command
            status = status or 1
    os._exit(status)

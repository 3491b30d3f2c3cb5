"""A Ctrl-C while the command-line tool starts ends it as one during its work does: in one line,
without a traceback. Its modules load before the command's own handling of Ctrl-C is in place;
only the tool's own process is touched, never a program importing the package."""

import sys
from pathlib import Path


def _interrupted_in_one_line(kind: type, value: BaseException, tb: object) -> None:
    if issubclass(kind, KeyboardInterrupt):
        print("autoencoders: interrupted", file=sys.stderr)  # Python then exits as killed by SIGINT
    else:
        sys.__excepthook__(kind, value, tb)


# the ``autoencoders`` and ``ae`` commands, and ``python -m autoencoders``
if Path(sys.argv[0]).stem in ("autoencoders", "ae") or Path(sys.argv[0]).parent.name == "autoencoders":
    sys.excepthook = _interrupted_in_one_line

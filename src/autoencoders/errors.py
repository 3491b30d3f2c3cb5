"""What the user is told beside results: errors they can fix (one line, without a traceback),
warnings, and notes on stderr."""

import sys


class UserError(ValueError):
    """A problem with the user's input; shown as one line, without a traceback."""


class ToolkitWarning(UserWarning):
    """Something that works but most likely not as meant; the CLI shows it as one line."""


class DataWarning(ToolkitWarning):
    """Data that is read but most likely not what was meant."""


class SettingWarning(ToolkitWarning):
    """A setting that is taken but most likely slows the run or is not what was meant."""


def say(message: str, quiet: bool) -> None:
    """One line on stderr, unless quiet: what a command is doing that takes long or is worth knowing."""
    if not quiet:
        print(f"autoencoders: {message}", file=sys.stderr)

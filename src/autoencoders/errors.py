"""Errors a user can fix: shown as one line, without a traceback."""


class UserError(ValueError):
    """A problem with the user's input; shown as one line, without a traceback."""


class DataWarning(UserWarning):
    """Data that is read but most likely not what was meant; the CLI shows it as one line."""

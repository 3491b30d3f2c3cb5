"""Errors a user can fix: shown as one line, without a traceback."""


class UserError(ValueError):
    """A problem with the user's input; shown as one line, without a traceback."""

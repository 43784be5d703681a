"""Errors the CLI reports as one line (no traceback)."""


class UserError(Exception):
    """A problem with the user's input or environment; the message names it and the fix."""

"""Errors the CLI prints in plain words (no traceback)."""


class UserError(Exception):
    """Something the user can fix: bad input, a missing tool, a port that is not a board."""

    exit_code = 1

    def __init__(self, message, exit_code=None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

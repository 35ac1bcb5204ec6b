"""Errors every command shares."""


class UsageError(Exception):
    """Bad input from the user: `nas` prints it as one line and exits with status 2."""

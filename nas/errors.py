"""The one error type for user mistakes, shared by every layer (see docs/architecture.md).

A `UsageError` is a `ValueError` that knows what was wrong: the owner (a config class, a file,
a command-line option), the field, the value and what is allowed. The CLI prints it as one line
and exits with status 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

_UNSET = object()


class UsageError(ValueError):
    """Bad input from the user, with the owner, field, value and what is allowed when known."""

    def __init__(
        self,
        message: str | None = None,
        *,
        owner: str | None = None,
        field: str | None = None,
        value: object = _UNSET,
        allowed: str | None = None,
    ) -> None:
        self.owner, self.field, self.allowed = owner, field, allowed
        self.has_value = value is not _UNSET
        self.value = value if self.has_value else None
        if message is None:
            where = ".".join(part for part in (owner, field) if part)
            shown = f" = {shown_value(value)}" if self.has_value else ""
            message = f"{where}{shown} is invalid: {allowed}"
        super().__init__(message)


def shown_value(value: object) -> str:
    """The value as the user wrote it, or, for an integer too long to read, how long it is."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"a {len(str(abs(value)))}-digit integer (more than 64 bits)"
    return repr(value)


def bad_value(owner: str, name: str, value: object, allowed: str) -> UsageError:
    """`Owner.name = value is invalid: allowed`: names the field, the value and what is allowed."""
    return UsageError(owner=owner, field=name, value=value, allowed=allowed)

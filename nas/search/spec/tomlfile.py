"""Reading the project's TOML files (spaces, studies) with messages that name file, key and value."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nas.errors import UsageError, shown_value


def same(a: object, b: object) -> bool:
    """Equal as TOML values: true is not 1."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def show(value: object) -> str:
    """A value as TOML spells it, for messages about TOML files."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {show(v)}" for k, v in value.items()) + "}"
    return shown_value(value)


def jsonable(value: Any) -> Any:
    """Tuples as lists, recursively, so provenance reads back as it was written."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def invalid(label: str, key: str, value: object, allowed: str) -> UsageError:
    return UsageError(
        f"{label}: {key} = {show(value)} is invalid: {allowed}", owner=label, field=key, value=value, allowed=allowed
    )


def reason(exc: Exception) -> str:
    """What a UsageError says is allowed (its whole message when it does not say)."""
    if isinstance(exc, UsageError) and exc.allowed is not None:
        return exc.allowed
    return str(exc)


def read_toml(path: Path, *, label: str, what: str) -> dict[str, Any]:
    """The parsed file; a missing file or a syntax error is a ValueError naming the file (and line)."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise UsageError(f"{label}: no such {what} ({path.resolve()} does not exist)", owner=label) from None
    except IsADirectoryError:
        raise UsageError(f"{label}: is a folder, not a {what}", owner=label) from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{label}: invalid TOML: {exc}", owner=label) from None
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{label}: invalid TOML: not UTF-8 text ({exc.reason} at byte {exc.start})", owner=label
        ) from None
    except OSError as exc:
        raise UsageError(f"{label}: cannot read the {what}: {exc.strerror}", owner=label) from None


def check_keys(
    table: dict[str, Any], valid: Sequence[str], *, prefix: str, label: str, error: type[UsageError] = UsageError
) -> None:
    for key in table:
        if key not in valid:
            allowed = f"valid keys: {', '.join(sorted(valid))}"
            raise error(
                f"{label}: unknown key {prefix}{key} ({allowed})", owner=label, field=f"{prefix}{key}", allowed=allowed
            )

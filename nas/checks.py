"""Value checks every validated dataclass uses, and the one shape of their error messages."""

from __future__ import annotations

import math


def is_int(value: object) -> bool:
    """An int that is not a bool (True is an int in Python, never a width)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def bad_value(owner: str, name: str, value: object, allowed: str) -> ValueError:
    """`Owner.name = value is invalid: allowed`: names the field, the value and what is allowed."""
    return ValueError(f"{owner}.{name} = {value!r} is invalid: {allowed}")

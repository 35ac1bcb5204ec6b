"""Value checks every validated dataclass uses; `bad_value` (nas.errors) is the one shape of their errors."""

from __future__ import annotations

import math

from nas.errors import bad_value

__all__ = ["bad_value", "is_int", "is_number"]


def is_int(value: object) -> bool:
    """An int that is not a bool (True is an int in Python, never a width)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

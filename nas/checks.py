"""Value checks every validated dataclass uses; `bad_value` (nas.errors) is the one shape of their errors."""

from __future__ import annotations

import math

from nas.errors import bad_value

__all__ = ["INT64_MAX", "INT64_MIN", "bad_value", "is_int", "is_number"]


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what torch, numpy and the storages take; Python's ints have no bound


def is_int(value: object) -> bool:
    """An int that is not a bool (True is an int in Python, never a width) and fits 64 bits (TOML and JSON give
    Python ints of any size: `epochs = 10**400` failed every trial)."""
    return isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX


def is_number(value: object) -> bool:
    """A finite int or float that is not a bool; an int too large for a float is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False

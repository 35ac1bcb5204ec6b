"""Uncertainty of an accuracy measured on a finite split: one place for the interval every layer shows.

A validation accuracy on n images moves in steps of 1/n; two trials a step apart are not told
apart by the split. The Wilson score interval (Wilson 1927) is used rather than the normal
approximation because it stays inside [0, 1] and behaves at accuracies near 0 or 1 and small n.
"""

from __future__ import annotations

import math

__all__ = ["Z95", "wilson_interval"]

Z95 = 1.959963984540054  # two-sided 95% quantile of the standard normal


def wilson_interval(*, accuracy: float, n: int, z: float = Z95) -> tuple[float, float]:
    """(low, high): the 95% Wilson score interval of a proportion `accuracy` measured on `n` items."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"wilson_interval: n = {n!r}: an integer >= 1 is required")
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"wilson_interval: accuracy = {accuracy!r}: a number in [0, 1] is required")
    z2 = z * z
    centre = (accuracy + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(accuracy * (1 - accuracy) / n + z2 / (4 * n * n))
    # The interval contains the estimate; rounding must not push a bound past it (at 0 or 1 it touches).
    return max(0.0, min(accuracy, centre - half)), min(1.0, max(accuracy, centre + half))

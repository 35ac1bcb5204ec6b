"""Numbers as the report's server-drawn tables write them, the way report.js writes the trial table's."""

from __future__ import annotations


def count_text(value: float) -> str:
    """A count as report.js writes one (unit "count"): 3 significant digits in K, M or G (2.77M, 16.8K, 512)."""
    rounded = float(f"{value:.3g}")
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(rounded) >= scale:
            return f"{float(f'{value / scale:.3g}'):g}{suffix}"
    return f"{rounded:,.0f}" if rounded.is_integer() else f"{rounded:g}"


def _three(value: float) -> str:
    return f"{float(f'{value:.3g}'):g}"


def seconds_text(value: float) -> str:
    """Seconds as report.js writes them (unit "seconds"): s below 1,000, then min below 6,000, then h."""
    if abs(value) < 1000:
        return f"{_three(value)} s"
    return f"{_three(value / 60)} min" if abs(value) < 6000 else f"{_three(value / 3600)} h"


def ms_text(value: float) -> str:
    """Milliseconds as report.js writes them (unit "ms")."""
    return f"{_three(value)} ms"


__all__ = ["count_text", "ms_text", "seconds_text"]

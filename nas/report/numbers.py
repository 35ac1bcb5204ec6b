"""Numbers as the report's server-drawn tables write them, the way report.js writes the trial table's."""

from __future__ import annotations


def count_text(value: float) -> str:
    """A count as report.js writes one (unit "count"): 3 significant digits in K, M or G (2.77M, 16.8K, 512)."""
    rounded = float(f"{value:.3g}")
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(rounded) >= scale:
            return f"{float(f'{value / scale:.3g}'):g}{suffix}"
    return f"{rounded:,.0f}" if rounded.is_integer() else f"{rounded:g}"


__all__ = ["count_text"]

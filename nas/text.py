"""Counts in what the tool prints: "1 trial", "2 trials", "20,000 trials", never "1 trials" or "trial(s)"."""

from __future__ import annotations

__all__ = ["plural"]


def plural(n: float, noun: str, many: str | None = None) -> str:
    """`n` and its noun, singular only for exactly 1; `many` for nouns that do not just add "s". Thousands are
    separated ("20,000 trials"), as a reader expects."""
    shown = f"{n:,g}" if isinstance(n, float) else f"{n:,}"
    return f"{shown} {noun if n == 1 else (many or noun + 's')}"

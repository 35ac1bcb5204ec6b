"""Counts in what the tool prints: "1 trial", "2 trials", "20,000 trials", never "1 trials" or "trial(s)"."""

from __future__ import annotations

import shlex

__all__ = ["binary_size", "command", "plural"]


def plural(n: float, noun: str, many: str | None = None) -> str:
    """`n` and its noun, singular only for exactly 1; `many` for nouns that do not just add "s". Thousands are
    separated ("20,000 trials"), as a reader expects."""
    shown = f"{n:,g}" if isinstance(n, float) else f"{n:,}"
    return f"{shown} {noun if n == 1 else (many or noun + 's')}"


def command(*words: str | None, storage: str | None = None) -> str:
    """A command as a hint prints it, so it runs when pasted: each word shell-quoted (a study path with a space),
    None words left out, and `--storage URL` when the study was opened with one."""
    shown = [w for w in words if w is not None] + (["--storage", storage] if storage else [])
    return " ".join(shlex.quote(w) for w in shown)


def binary_size(n_bytes: float) -> str:
    """Bytes as memory is read: "970 MiB", "1.5 GiB" (3 significant figures), never "970M" that reads as a count."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n_bytes) >= scale:
            return f"{n_bytes / scale:.3g} {unit}"
    return f"{n_bytes:.0f} B"

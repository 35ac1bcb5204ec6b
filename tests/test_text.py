"""nas/text.py: the one plural rule for counts the tool prints."""

from __future__ import annotations

from nas.text import plural


def test_singular_only_for_exactly_one() -> None:
    assert [plural(n, "trial") for n in (0, 1, 2, 20000)] == ["0 trials", "1 trial", "2 trials", "20,000 trials"]


def test_floats_and_irregular_nouns() -> None:
    assert [plural(m, "minute") for m in (1.0, 0.05, 2.5)] == ["1 minute", "0.05 minutes", "2.5 minutes"]
    assert [plural(n, "class", "classes") for n in (1, 3)] == ["1 class", "3 classes"]

"""nas/text.py: the one plural rule for counts the tool prints, commands hints print, memory sizes."""

from __future__ import annotations

import shlex

from nas.text import binary_size, command, plural


def test_singular_only_for_exactly_one() -> None:
    assert [plural(n, "trial") for n in (0, 1, 2, 20000)] == ["0 trials", "1 trial", "2 trials", "20,000 trials"]


def test_floats_and_irregular_nouns() -> None:
    assert [plural(m, "minute") for m in (1.0, 0.05, 2.5)] == ["1 minute", "0.05 minutes", "2.5 minutes"]
    assert [plural(n, "class", "classes") for n in (1, 3)] == ["1 class", "3 classes"]


def test_a_command_hint_runs_when_pasted_even_with_a_space_in_a_path() -> None:
    """`run `nas run /tmp/my studies/a.toml` again` split the path in two when pasted."""
    assert command("nas", "run", "/tmp/my studies/a.toml") == "nas run '/tmp/my studies/a.toml'"
    assert shlex.split(command("nas", "run", "/tmp/my studies/a.toml")) == ["nas", "run", "/tmp/my studies/a.toml"]
    assert command("nas", "finalize", "a.toml", None, storage="sqlite:///x y.db") == (
        "nas finalize a.toml --storage 'sqlite:///x y.db'"
    )


def test_memory_reads_in_binary_units() -> None:
    assert [binary_size(v) for v in (512, 2048, 300 * 2**20, 1.5 * 2**30)] == ["512 B", "2 KiB", "300 MiB", "1.5 GiB"]

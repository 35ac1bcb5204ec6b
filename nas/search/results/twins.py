"""One network, one point: a reused twin (a network drawn again, its result copied) folds into the
trial that trained it.

A twin's stored `reused_from` always names the trial that trained the network (a twin of a twin
copies it), and its values equal that trial's, so wherever the source stands (a front, a chart, a
status line) the twins stand beside it as copies. Folding keeps the source and counts the copies;
the trial table and the trial budget still see every trial.
"""

from __future__ import annotations

from collections.abc import Iterable


def fold_twins(pairs: Iterable[tuple[int, int | None]]) -> dict[int, tuple[int, ...]]:
    """(trial number, reused_from) pairs -> {standing trial: every given trial it stands for, sorted}.

    The standing trial is the source when it is among the pairs, else the lowest-numbered twin (its
    source lies outside, say infeasible or not asked for). Keys keep the order of first appearance."""
    given = list(pairs)
    numbers = {number for number, _ in given}
    stand_in: dict[int, int] = {}  # a source not among the pairs -> its lowest-numbered twin
    for number, source in given:
        if source is not None and source not in numbers:
            stand_in[source] = min(number, stand_in.get(source, number))
    groups: dict[int, list[int]] = {}
    for number, source in given:
        standing = number if source is None else source if source in numbers else stand_in[source]
        groups.setdefault(standing, []).append(number)
    return {standing: tuple(sorted(members)) for standing, members in groups.items()}

"""Which connectivity mode is best at a budget: the numbers behind the report's first section.

For each cost panel the study's cost range is cut into budget levels; at each level every group (a
mode, or a baseline by its name) gets its best validation accuracy among its networks at or under
the level. The summary compares the best two modes at each level with a 95% interval for their
difference and claims a lead only when that interval excludes 0. Computing only, as the rest of
`nas.report.data`: `nas.report.connectivity_html` draws it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nas.arch.modes import MODES
from nas.checks import is_int, is_number
from nas.errors import bad_value
from nas.report.data import FrontPanel, FrontPoint, ReportData, group_of
from nas.report.forest import ForestRow, forest_rows, unfinished_modes
from nas.search.spec.objectives import ACCURACY, OBJECTIVES, PEAK_MEMORY
from nas.text import binary_size, plural

LEVELS = 5  # budget levels per cost panel: enough to see a trend, few enough to read as a table
FIGURES = 2  # significant figures of a level ("50K", "1.2M"), rounded up so the top level holds every network

CAVEAT = (
    "Each number is the best of that group's networks at or under the budget, so a mode the search sampled "
    "more often had more chances to reach a high best: the row headers give each group's network count, "
    "and each cell how many of them were at or under the budget."
)


@dataclass(frozen=True)
class Best:
    """A group's best network at or under one budget."""

    accuracy: float
    interval: tuple[float, float] | None  # its 95% Wilson interval; None when the split size is unknown
    trial: int
    cost: float
    networks: int  # the group's networks at or under the budget: the best is the best of these


@dataclass(frozen=True)
class Level:
    budget: float
    best: dict[str, Best]  # group -> its best; a group with no network at or under the budget is absent


@dataclass(frozen=True)
class Comparison:
    """The best two modes at one budget."""

    budget: float
    leader: str
    runner_up: str
    difference: float  # the leader's accuracy minus the runner-up's, as a fraction
    interval: tuple[float, float] | None  # 95% interval of the difference (Newcombe); None without split size

    @property
    def clear(self) -> bool:
        """The interval excludes 0: the lead is larger than the noise of the validation split."""
        return self.interval is not None and self.interval[0] > 0


@dataclass(frozen=True)
class OverBudget:
    """A baseline over a budget of the study: trained as a reference, so shown, but at no budget level."""

    group: str
    budgets: str  # "max_params", "max_params and max_flops"
    best: Best  # its best network (at its own cost, above every level)


@dataclass(frozen=True)
class Absent:
    """A mode of the study's space with no feasible network in this table."""

    mode: str
    trials: int  # searched trials of this mode, any status: 0 = the search never sampled it

    def why(self, cost: str) -> str:
        if self.trials == 0:
            return "never sampled by the search"
        return f"{plural(self.trials, 'trial')}, none feasible with {cost} measured"


@dataclass(frozen=True)
class BudgetTable:
    """One cost panel's answer: best accuracy per group at each budget, and the summary it supports."""

    cost: str
    groups: tuple[str, ...]  # modes in the modes table's order, then the rest (baselines, unknown) by name
    modes: tuple[str, ...]  # the groups that are connectivity modes: only these are compared
    networks: dict[str, int]  # group -> its feasible networks with this cost measured
    levels: tuple[Level, ...]
    comparisons: tuple[Comparison, ...]  # one per level where two or more modes have a network
    summary: tuple[str, ...]  # plain sentences generated from the numbers above
    over: tuple[OverBudget, ...] = ()  # baselines over a budget of the study, in name order
    absent: tuple[Absent, ...] = ()  # the space's modes with no row: never sampled, or nothing feasible


@dataclass(frozen=True)
class ConnectivityData:
    tables: tuple[BudgetTable, ...]  # one per cost panel, in the panels' order
    forest: tuple[ForestRow, ...] | None  # None when the study ran no ablation
    unfinished: tuple[str, ...]  # ablation modes with no finished run yet (not in the forest)
    caveat: str


def newcombe_interval(
    *, p1: float, interval1: tuple[float, float], p2: float, interval2: tuple[float, float]
) -> tuple[float, float]:
    """95% interval of p1 - p2 from the two proportions' Wilson intervals, inside [-1, 1].

    Newcombe's hybrid score interval, method 10 of R. G. Newcombe, "Interval estimation for the
    difference between independent proportions: comparison of eleven methods", Statistics in Medicine
    17 (1998) 873-890: it inherits the Wilson interval's respect for the bounds (no Wald interval past
    1) and its coverage at small n. The two accuracies here come from one validation split, so they
    are paired, not independent; networks that get the same images right make the true interval
    narrower, so this one errs on the wide side (a paired interval needs per-image predictions, which
    trials do not store)."""
    (l1, u1), (l2, u2) = interval1, interval2
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def budget_levels(*, low: float, high: float, count: int = LEVELS) -> tuple[float, ...]:
    """`count` budgets from `low` to `high`, log-spaced (linear when `low` <= 0), each rounded up to two
    significant figures; repeats after rounding are dropped, so a narrow range gives fewer."""
    if not is_int(count) or count < 1:
        raise bad_value("budget_levels", "count", count, "an integer >= 1")
    if not (is_number(low) and is_number(high) and low <= high):
        raise bad_value("budget_levels", "high", high, f"a finite number >= low ({low!r})")
    if count == 1 or low == high:
        return (_round_up(high),)
    steps = [i / (count - 1) for i in range(count)]
    raw = [low * (high / low) ** s for s in steps] if low > 0 else [low + (high - low) * s for s in steps]
    raw[-1] = high  # exactly, whatever the powers rounded to
    return tuple(dict.fromkeys(_round_up(v) for v in raw))


def _round_up(value: float) -> float:
    """The smallest number of FIGURES significant figures >= value (0 and negatives as they are)."""
    if value <= 0:
        return float(value)
    exponent = math.floor(math.log10(value)) - FIGURES + 1
    mantissa = value / 10.0**exponent
    while mantissa >= 10**FIGURES:  # log10 can be off by one at exact powers of ten
        exponent, mantissa = exponent + 1, mantissa / 10
    while mantissa < 10 ** (FIGURES - 1):
        exponent, mantissa = exponent - 1, mantissa * 10
    digits = math.ceil(round(mantissa, 9))  # 12.000000000000002 is 12, not 13
    return float(f"{digits}e{exponent}")


def _is_mode(point: FrontPoint) -> bool:
    return point.baseline is None and point.connectivity in MODES


def _best(points: Sequence[FrontPoint], cost: str, budget: float) -> Best | None:
    """The highest accuracy at or under the budget; a tie goes to the cheaper network, then the earlier trial."""
    under = [p for p in points if p.values[cost] <= budget]
    if not under:
        return None
    top = min(under, key=lambda p: (-p.values[ACCURACY], p.values[cost], p.number))
    return Best(top.values[ACCURACY], top.interval, top.number, top.values[cost], len(under))


def _compare(level: Level, modes: Sequence[str]) -> Comparison | None:
    present = sorted(
        (g for g in modes if g in level.best),
        key=lambda g: (-level.best[g].accuracy, level.best[g].cost, modes.index(g)),
    )
    if len(present) < 2:
        return None
    (leader, first), (runner_up, second) = ((g, level.best[g]) for g in present[:2])
    interval = None
    if first.interval is not None and second.interval is not None:
        interval = newcombe_interval(
            p1=first.accuracy, interval1=first.interval, p2=second.accuracy, interval2=second.interval
        )
    return Comparison(level.budget, leader, runner_up, first.accuracy - second.accuracy, interval)


def budget_table(
    *,
    panel: FrontPanel,
    levels: int = LEVELS,
    space_modes: Sequence[str] = (),
    mode_trials: dict[str, int] | None = None,
) -> BudgetTable:
    """The panel's best accuracy per group at each budget level, and the summary those numbers support.

    `space_modes`: the modes the study's space can sample, so one with no feasible network is named (with
    `mode_trials`, its count of searched trials) rather than silently missing. Baselines over a budget of the
    study are listed apart: no budget level is theirs."""
    by_group: dict[str, list[FrontPoint]] = {}
    over: dict[str, list[FrontPoint]] = {}
    for p in panel.points:
        (over if p.over else by_group).setdefault(group_of(p), []).append(p)
    modes = tuple(m for m in MODES if any(_is_mode(p) for p in by_group.get(m, ())))
    groups = (*modes, *sorted(set(by_group) - set(modes)))
    costs = [p.values[panel.cost] for ps in by_group.values() for p in ps]
    budgets = budget_levels(low=min(costs), high=max(costs), count=levels) if costs else ()
    rows = []
    for budget in budgets:
        best = {g: b for g in groups if (b := _best(by_group[g], panel.cost, budget)) is not None}
        rows.append(Level(budget, best))
    comparisons = tuple(c for row in rows if (c := _compare(row, modes)) is not None)
    networks = {g: len(by_group[g]) for g in groups}
    over_rows = []
    for g, ps in sorted(over.items()):
        top = min(ps, key=lambda p: (-p.values[ACCURACY], p.values[panel.cost], p.number))
        own = Best(top.values[ACCURACY], top.interval, top.number, top.values[panel.cost], len(ps))
        over_rows.append(OverBudget(g, " and ".join(top.over), own))
    counts = mode_trials or {}
    absent = tuple(Absent(m, counts.get(m, 0)) for m in space_modes if m not in modes)
    return BudgetTable(
        cost=panel.cost,
        groups=groups,
        modes=modes,
        networks=networks,
        levels=tuple(rows),
        comparisons=comparisons,
        summary=_summary(panel.cost, tuple(rows), modes, comparisons, groups),
        over=tuple(over_rows),
        absent=absent,
    )


def connectivity_data(*, data: ReportData, levels: int = LEVELS) -> ConnectivityData:
    """The section's numbers: a budget table per cost panel, and the ablation's forest when there is one."""
    mode_trials: dict[str, int] = {}
    for row in data.table:  # searched trials only: a baseline is not a sample of its mode
        if row.get("baseline") is None and isinstance(row.get("mode"), str):
            mode_trials[row["mode"]] = mode_trials.get(row["mode"], 0) + 1
    space_modes = data.space_modes or ()
    return ConnectivityData(
        tables=tuple(
            budget_table(panel=panel, levels=levels, space_modes=space_modes, mode_trials=mode_trials)
            for panel in data.panels
        ),
        forest=forest_rows(data.ablation) if data.ablation is not None else None,
        unfinished=unfinished_modes(data.ablation or ()),
        caveat=CAVEAT,
    )


# ----- the summary: sentences from the numbers only -----


def short(value: float) -> str:
    """A budget as people say it: 50K, 1.2M, 0.35."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def level_text(cost: str, value: float) -> str:
    """A budget or cost as people say it: 50K, 1.2M; memory in binary units (970 MiB), never "970M" bytes."""
    return binary_size(value) if cost == PEAK_MEMORY else short(value)


def unit_noun(cost: str) -> str:
    """What a cost counts, after its number: "parameters", "FLOPs", "ms", "of memory" (its number says MiB)."""
    if cost == PEAK_MEMORY:
        return "of memory"
    spec = OBJECTIVES.get(cost)
    return spec.unit if spec is not None else cost


def points(fraction: float) -> str:
    """A difference of accuracies in percentage points, one decimal (two when one would show 0.0)."""
    value = 100 * fraction
    text = f"{value:.1f}"
    return f"{value:.2f}" if text in ("0.0", "-0.0") and value != 0 else text


def _budgets(cost: str, budgets: Sequence[float], *, start: bool) -> str:
    """ "At <= 50K parameters", "At <= 50K and <= 120K parameters", "From <= 50K to <= 1.2M parameters"."""
    shown = [f"<= {level_text(cost, b)}" for b in budgets]
    unit = unit_noun(cost)
    if len(shown) == 1:
        text = f"at {shown[0]} {unit}"
    elif len(shown) == 2:
        text = f"at {shown[0]} and {shown[1]} {unit}"
    else:
        text = f"from {shown[0]} to {shown[-1]} {unit}"
    return text[0].upper() + text[1:] if start else text


def _verdict(level: Level, comparison: Comparison | None, modes: Sequence[str]) -> tuple[tuple[Any, ...], str]:
    """(what merges with the same verdict at the next level, the sentence's body after the budget)."""
    if comparison is None:
        present = [m for m in modes if m in level.best]
        if not present:
            return ("none",), "no mode has a network, so nothing is compared"
        return ("alone", present[0]), f"only {present[0]} has a network, so nothing is compared"
    c = comparison
    if c.interval is None:
        return ("unknown",), "the accuracies have no intervals (no split size recorded), so nothing is claimed"
    numbers = f"{points(c.difference)} points (95% interval {points(c.interval[0])} to {points(c.interval[1])})"
    if c.clear:
        body = f"{c.leader} leads {c.runner_up} by {numbers}"
        return ("lead", body), body
    pair = f"{c.leader} and {c.runner_up}"
    return ("noise", frozenset((c.leader, c.runner_up))), f"the difference between {pair} is within noise"


def _noise_numbers(c: Comparison) -> str:
    if c.interval is None:
        return ""
    low, high = (points(v) for v in c.interval)
    if points(c.difference) in ("0.0", "-0.0"):
        return f" (tied, 95% interval {low} to {high})"
    return f" ({c.leader} ahead by {points(c.difference)} points, 95% interval {low} to {high})"


def _summary(
    cost: str,
    levels: tuple[Level, ...],
    modes: tuple[str, ...],
    comparisons: tuple[Comparison, ...],
    groups: tuple[str, ...],
) -> tuple[str, ...]:
    if not levels:
        return ("No feasible network has this cost measured yet, so there is nothing to compare.",)
    if len(modes) < 2:
        which = f"only {modes[0]} has" if modes else "no connectivity mode has"
        return (f"Too little data to compare modes: {which} feasible networks, so no claim is made.",)
    if all(c.interval is None for c in comparisons):
        return (
            "No validation split size is recorded, so the accuracies have no intervals and no difference "
            "between modes is claimed; the table gives the numbers.",
        )
    by_budget = {c.budget: c for c in comparisons}
    runs: list[tuple[tuple[Any, ...], str, list[Level]]] = []  # consecutive levels with the same verdict
    for level in levels:
        key, body = _verdict(level, by_budget.get(level.budget), modes)
        if runs and runs[-1][0] == key:
            runs[-1][2].append(level)
        else:
            runs.append((key, body, [level]))
    sentences = []
    for key, body, members in runs:
        extra = ""
        if key[0] == "noise" and len({_noise_numbers(by_budget[m.budget]) for m in members}) == 1:
            extra = _noise_numbers(by_budget[members[0].budget])  # one set of numbers: say them
        sentences.append(f"{_budgets(cost, [m.budget for m in members], start=True)} {body}{extra}.")
    return (*sentences, *_baselines_ahead(cost, levels, modes, groups))


def _baselines_ahead(
    cost: str, levels: tuple[Level, ...], modes: tuple[str, ...], groups: tuple[str, ...]
) -> list[str]:
    """A sentence for each other group (a baseline) whose best is above every mode's best at some budget."""
    ahead: dict[str, list[float]] = {}
    for level in levels:
        best_mode = max((level.best[m].accuracy for m in modes if m in level.best), default=None)
        for group in groups:
            if group in modes or group not in level.best or best_mode is None:
                continue
            if level.best[group].accuracy > best_mode:
                ahead.setdefault(group, []).append(level.budget)
    return [
        f"Baseline {group} scores above every mode's best {_list_budgets(cost, budgets)} "
        "(compared by its accuracy alone, no interval claimed)."
        for group, budgets in ahead.items()
    ]


def _list_budgets(cost: str, budgets: Sequence[float]) -> str:
    shown = [f"<= {level_text(cost, b)}" for b in budgets]
    listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"
    return f"at {listed} {unit_noun(cost)}"

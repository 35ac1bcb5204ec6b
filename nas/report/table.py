"""The trial table a report embeds once: every trial, column by column, in compact JSON.

The page's charts and its paged trial table both read this one table (`report.js`), so a trial's
numbers are written once, not once per chart and trace. Numbers are rounded to 5 significant
digits (the page shows fewer; 5 keep an accuracy exact to one image in 100,000), integral floats are
written as integers, absent values as null, and a text column whose values repeat is written as
its distinct values and one index per trial. report.js formats a number for reading by its column's
`unit` (2.77M FLOPs, 32.3 s, 970 MiB) and sorts on the number itself.

The table fits a 1,280 px window: its columns come in the order a reader compares trials, trial,
status (with a short reason), network, accuracy with its interval, the study's cost objectives in its
order, then only the knobs whose values differ between trials (a knob the network ignores is blank:
`ReportData.table` has left it out), as many as fit (MAX_COLUMNS). Everything else a trial has (the other
measured costs, knobs equal in every trial or beyond the columns that fit, the validation split when it changed,
wall time, constraint values) is in its details row, opened by a click on its number.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nas.report.data import ReportData
from nas.report.figures import Style, styles
from nas.report.rows import KNOBS
from nas.search.results.records import ACCURACY_HIGH, ACCURACY_LOW, STATUSES, VAL_IMAGES
from nas.search.spec.objectives import ACCURACY, OBJECTIVES

# Columns that fit a 1,280 px window with the knobs' and costs' widest values (tests/report/test_browser.py): 16
# were 1,261 px of 1,265 (four costs, eight knobs), 17 were 1,374; knobs beyond this go to the details row.
MAX_COLUMNS = 15
SHORT_REASON = 60  # characters of a reason shown in its table cell; the whole sentence is on hover
DIGITS = 5  # significant digits kept of a float
# Kept in the JSON though no column shows them: the accuracy cell, the details row and the charts read them.
HIDDEN = ("reason", "short_reason", "baseline", "mode", "reused_from", "feasible", ACCURACY_LOW, ACCURACY_HIGH)


@dataclass(frozen=True)
class Column:
    """One column of the page's trial table."""

    key: str  # the JSON column it shows
    label: str  # its header
    kind: str  # how report.js shows it: trial | status | network | accuracy | cost | knob | number | text
    title: str = ""  # the header's hover text
    unit: str = ""  # how report.js writes a number: one of UNITS' values, or "" (up to 4 significant digits)


# An objective's unit (nas.search.spec.objectives) -> how report.js writes its numbers.
UNITS = {"FLOPs": "count", "parameters": "count", "ms": "ms", "s": "seconds", "bytes": "bytes"}


@dataclass(frozen=True)
class TrialTable:
    columns: tuple[Column, ...]  # shown, in order
    details: tuple[Column, ...]  # shown in a trial's details row only, in order
    data: dict[str, list[Any]]  # JSON column -> one value per trial (rounded), shown or HIDDEN
    groups: dict[str, Style]  # every group a trial belongs to (see group_name), in name order

    @property
    def rows(self) -> int:
        return len(self.data["number"])


def group_name(row: dict[str, Any]) -> str:
    """A table row's group, as `nas.report.data.group_of` names a point's: its baseline, else its mode."""
    return str(row.get("baseline") or row.get("mode") or "unknown")


def short_reason(reason: str | None) -> str | None:
    """The reason's first clause (up to ': ', '; ' or '. '), cut at a word to SHORT_REASON characters."""
    if not reason:
        return None
    first = re.split(r": |; |\. ", reason.strip(), maxsplit=1)[0].rstrip(".")
    if len(first) <= SHORT_REASON:
        return first
    cut = first[:SHORT_REASON]
    cut = cut.rsplit(" ", 1)[0] if " " in cut else cut[: SHORT_REASON - 1]  # a word cut short goes
    return cut.rstrip(",;: ") + "…"


def compact(value: Any) -> Any:
    """A value as the JSON table keeps it: floats to DIGITS significant digits (integral ones as integers),
    non-finite floats as null, lists joined with commas; strings, integers and booleans as they are."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        rounded = value if value.is_integer() else float(f"{value:.{DIGITS}g}")  # a count stays exact
        return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _has_values(rows: Sequence[dict[str, Any]], key: str) -> bool:
    return any(row.get(key) is not None for row in rows)


def varies(rows: Sequence[dict[str, Any]], key: str) -> bool:
    """Whether the trials hold more than one value of `key` (blanks do not count)."""
    return len({row[key] for row in rows if row.get(key) is not None}) > 1


def _cost(name: str) -> Column:
    return Column(name, name, "cost", OBJECTIVES[name].label, UNITS.get(OBJECTIVES[name].unit, ""))


def trial_table(data: ReportData) -> TrialTable:
    """The report's `table` as the page embeds it."""
    rows = data.table
    objectives = [n for n in data.objectives if n != ACCURACY and n in OBJECTIVES and _has_values(rows, n)]
    others = [n for n in OBJECTIVES if n != ACCURACY and n not in objectives and _has_values(rows, n)]
    knobs = [k for k in KNOBS if _has_values(rows, k)]
    knob = {k: Column(k, k, "knob", "blank when the network does not use it") for k in knobs}
    columns = [
        Column("number", "trial", "trial", "click a trial for its details"),
        Column("status", "status", "status", "hover a reason for the whole sentence"),
        Column("group", "network", "network", "connectivity mode, or the baseline's name"),
        Column(ACCURACY, "validation accuracy", "accuracy", "best epoch, with its 95% Wilson interval"),
        *(_cost(n) for n in objectives),
    ]
    varying = [k for k in knobs if varies(rows, k)]
    room = max(0, MAX_COLUMNS - len(columns))
    columns += [knob[k] for k in varying[:room]]
    details = [*(_cost(n) for n in others), *(knob[k] for k in varying[room:] + [k for k in knobs if k not in varying])]
    if len(data.val_images) > 1:  # one split size is said once at the top of the page
        details.append(Column(VAL_IMAGES, "validation images", "number"))
    if _has_values(rows, "duration_s"):
        details.append(Column("duration_s", "wall time", "number", "wall time of the trial", "seconds"))
    if _has_values(rows, "constraints"):
        details.append(Column("constraints", "constraint values (> 0: over)", "text"))
    if _has_values(rows, "prescreen"):
        details.append(Column("prescreen", "picked by the pre-screen", "text"))
    table: dict[str, list[Any]] = {}
    for key in dict.fromkeys([c.key for c in (*columns, *details) if c.key != "group"] + list(HIDDEN)):
        if key == "short_reason":
            table[key] = [short_reason(row.get("reason")) for row in rows]
        else:
            table[key] = [compact(row.get(key)) for row in rows]
    if not _has_values(rows, "reason"):
        del table["reason"], table["short_reason"]
    baselines = {str(row["baseline"]) for row in rows if row.get("baseline")}
    groups = styles({group_name(row) for row in rows}, baselines)
    return TrialTable(columns=tuple(columns), details=tuple(details), data=table, groups=groups)


def status_counts(table: TrialTable) -> dict[str, int]:
    """Trials per status, known statuses in their usual order first."""
    counts = Counter(str(s) for s in table.data["status"])
    return {s: counts[s] for s in [*(s for s in STATUSES if s in counts), *sorted(set(counts) - set(STATUSES))]}


def group_counts(table: TrialTable) -> dict[str, int]:
    """Trials per group, in the table's group order (a group's name as `group_name` gives it)."""
    rows = zip(table.data["mode"], table.data["baseline"], strict=True)
    counts = Counter(group_name({"mode": m, "baseline": b}) for m, b in rows)
    return {g: counts[g] for g in table.groups}


def encoded(table: TrialTable) -> dict[str, Any]:
    """The JSON the page embeds: a text column whose values repeat becomes {"levels": [...], "codes": [...]}."""
    columns: dict[str, Any] = {}
    for key, values in table.data.items():
        distinct = list(dict.fromkeys(v for v in values if v is not None))
        if distinct and all(isinstance(v, str) for v in distinct) and len(distinct) <= len(values) // 2:
            index = {v: i for i, v in enumerate(distinct)}
            columns[key] = {"levels": distinct, "codes": [None if v is None else index[v] for v in values]}
        else:
            columns[key] = values
    return {
        "rows": table.rows,
        "columns": [c.__dict__ for c in table.columns],
        "details": [c.__dict__ for c in table.details],
        "data": columns,
        "groups": {g: s.__dict__ for g, s in table.groups.items()},
    }

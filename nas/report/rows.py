"""The report's trial table as plain rows: one per trial, every status, the same keys in every row.

Every knob of `ArchConfig` (its connectivity is the row's mode) has a key in every row; a knob the network
does not use (its canonical form resets it), or a baseline's network does not have, is left blank (None), so a
reader never reads a value that changed nothing. A trial rejected before training has no accuracy (Optuna
stores 0 for it).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from nas.arch import ArchConfig
from nas.errors import UsageError
from nas.search.results.records import INTERVAL_KEYS
from nas.search.results.trial_record import TrialRecord
from nas.search.spec.objectives import ACCURACY, OBJECTIVES

# Every knob of a network, in ArchConfig's order: the connectivity is the row's mode, not a knob column.
KNOBS = tuple(f.name for f in dataclasses.fields(ArchConfig) if f.name != "connectivity")


def measured(record: TrialRecord, name: str) -> float | None:
    """An objective's value for a trial: its Optuna value, else the metric of that name."""
    value = record.values.get(name, record.metrics.get(name))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _number(value: float) -> str:
    """A constraint's value: a whole number with thousands separators (11,115,370, not 1.11154e+07)."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.4g}"


def _ignored_knobs(arch: dict[str, Any], known: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The knobs a stored network does not use (its canonical form resets them); none for a baseline or an
    unreadable config. `known` caches them per distinct config: a study repeats few."""
    key = json.dumps(arch, sort_keys=True, default=str)
    if key not in known:
        try:
            known[key] = ArchConfig.from_dict(arch).ignored_knobs()
        except (UsageError, TypeError):
            known[key] = ()
    return known[key]


def _over(record: TrialRecord) -> str | None:
    """What the status cell says of a baseline over a budget: it is complete, but on no front."""
    if not record.over_budgets:
        return None
    return f"over {' and '.join(record.over_budgets)}: trained as a reference, on no front"


def _row(record: TrialRecord, objectives: tuple[str, ...], known: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """One trial as the table shows it: the knobs its network ignores are left blank (None)."""
    block = record.arch.get("block_config")
    ignored = _ignored_knobs(record.arch, known) if record.arch else ()
    row: dict[str, Any] = {
        "number": record.number,
        "status": record.status,
        "feasible": record.feasible,
        "reason": record.reason or _over(record),
        "mode": record.connectivity,
        "baseline": record.baseline,
        "reused_from": record.reused_from,
    }
    for knob in KNOBS:
        value = None if knob in ignored else block if knob == "block_config" else record.arch.get(knob)
        row[knob] = ",".join(str(b) for b in value) if isinstance(value, list | tuple) else value
    for name in dict.fromkeys((*objectives, *OBJECTIVES)):
        row[name] = measured(record, name)
    if record.status == "rejected":  # never trained: Optuna's 0 is no accuracy
        row[ACCURACY] = None
    row.update({key: getattr(record, key) for key in INTERVAL_KEYS})
    row["constraints"] = "; ".join(f"{k}={_number(v)}" for k, v in sorted(record.constraints.items())) or None
    row["duration_s"] = record.duration_s
    row["prescreen"] = _picked(record.prescreen)
    return row


def _picked(prescreen: dict[str, Any] | None) -> str | None:
    """How a pre-screen picked the trial's network: "snip 25.98, the sampler's #10 of 64 proposals"."""
    if not prescreen:
        return None
    score = prescreen.get("score")
    shown = f"{score:.4g}" if isinstance(score, int | float) else "no score"
    return (
        f"{prescreen.get('proxy')} {shown}, the sampler's #{int(prescreen.get('rank', 0)) + 1} of "
        f"{prescreen.get('proposals')} proposals (select = {prescreen.get('select')})"
    )


def trial_rows(records: list[TrialRecord], objectives: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
    """Every trial as the table shows it, in the order given."""
    known: dict[str, tuple[str, ...]] = {}
    return tuple(_row(r, objectives, known) for r in records)

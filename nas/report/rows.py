"""The report's trial table as plain rows: one per trial, every status, the same keys in every row.

A knob the network does not use (its canonical form resets it) is left blank (None), so a reader never
reads a value that changed nothing.
"""

from __future__ import annotations

import json
from typing import Any

from nas.arch import ArchConfig
from nas.errors import UsageError
from nas.search.objectives import OBJECTIVES
from nas.search.records import INTERVAL_KEYS, TrialRecord

KEY_KNOBS = ("growth_rate", "bn_size", "block_config", "compression", "width_multiplier", "init_features", "stem")


def measured(record: TrialRecord, name: str) -> float | None:
    """An objective's value for a trial: its Optuna value, else the metric of that name."""
    value = record.values.get(name, record.metrics.get(name))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


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


def _row(record: TrialRecord, objectives: tuple[str, ...], known: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """One trial as the table shows it: the knobs its network ignores are left blank (None)."""
    block = record.arch.get("block_config")
    ignored = _ignored_knobs(record.arch, known) if record.arch else ()
    row: dict[str, Any] = {
        "number": record.number,
        "status": record.status,
        "feasible": record.feasible,
        "reason": record.reason,
        "mode": record.connectivity,
        "baseline": record.baseline,
        "reused_from": record.reused_from,
    }
    for knob in KEY_KNOBS:
        value = None if knob in ignored else block if knob == "block_config" else record.arch.get(knob)
        row[knob] = ",".join(str(b) for b in value) if isinstance(value, list | tuple) else value
    for name in dict.fromkeys((*objectives, *OBJECTIVES)):
        row[name] = measured(record, name)
    row.update({key: getattr(record, key) for key in INTERVAL_KEYS})
    row["constraints"] = "; ".join(f"{k}={v:g}" for k, v in sorted(record.constraints.items())) or None
    row["duration_s"] = record.duration_s
    return row


def trial_rows(records: list[TrialRecord], objectives: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
    """Every trial as the table shows it, in the order given."""
    known: dict[str, tuple[str, ...]] = {}
    return tuple(_row(r, objectives, known) for r in records)

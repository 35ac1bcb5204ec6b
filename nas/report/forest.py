"""The matched-cost ablation's forest plot rows, read from the ablation table `nas ablate` writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nas.checks import is_int, is_number
from nas.search.results.records import ABLATION_INTERVAL_COLUMNS, ABLATION_MEAN_COLUMN
from nas.search.spec.objectives import FLOPS, PARAMS


@dataclass(frozen=True)
class ForestRow:
    """One mode of the matched-cost ablation."""

    mode: str
    mean: float  # mean validation accuracy over seeds
    interval: tuple[float, float]  # 95% Student-t interval of the mean, clipped to [0, 1] (the ablation's)
    seeds: int
    params: float | None
    flops: float | None


def _number(value: Any) -> float | None:
    return float(value) if is_number(value) else None


def forest_rows(ablation: Sequence[dict[str, Any]]) -> tuple[ForestRow, ...]:
    """One row per ablation mode with a finished run (a mean and an interval); other rows are left out."""
    rows = []
    for row in ablation:
        mode, mean = row.get("mode"), _number(row.get(ABLATION_MEAN_COLUMN))
        low, high = (_number(row.get(c)) for c in ABLATION_INTERVAL_COLUMNS)
        if not isinstance(mode, str) or mean is None or low is None or high is None:
            continue
        seeds = row.get("seeds")
        rows.append(
            ForestRow(
                mode=mode,
                mean=mean,
                interval=(low, high),
                seeds=seeds if isinstance(seeds, int) and is_int(seeds) else 0,
                params=_number(row.get(PARAMS)),
                flops=_number(row.get(FLOPS)),
            )
        )
    return tuple(rows)


def unfinished_modes(ablation: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    shown = {row.mode for row in forest_rows(ablation)}
    return tuple(m for row in ablation if isinstance(m := row.get("mode"), str) and m not in shown)

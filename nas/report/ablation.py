"""The report's ablation table (`nas ablate`'s rows) as a reader takes it in at a 1,280 px window.

The stored rows keep one column per number (the CSV, for analysis); the page merges what is read together: the
accuracy with its spread and interval in one cell, the cost match with whether it is within tolerance, each
measured cost with its unit. Every cell still sorts by its number (`Cell`); a mode with no finished run is blank.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nas.checks import is_number
from nas.report.final import Cell
from nas.report.numbers import count_text, ms_text, seconds_text
from nas.search.results.records import ABLATION_INTERVAL_COLUMNS, ABLATION_MEAN_COLUMN
from nas.search.spec.objectives import ACCURACY, FLOPS, PARAMS
from nas.text import binary_size

STD_COLUMN = f"{ACCURACY}_std"
ACCURACY_HEADER = "validation accuracy (mean ± sd, 95% interval)"
# measured costs: the stored column -> (header, how a value reads)
MEASURED = {
    "latency_ms_mean": ("latency", ms_text),
    "peak_memory_mean": ("peak memory", binary_size),
    "train_time_mean": ("train time", seconds_text),
}


def _number(value: Any) -> float | None:
    return float(value) if is_number(value) else None


def _accuracy(row: dict[str, Any]) -> Cell:
    mean, std = _number(row.get(ABLATION_MEAN_COLUMN)), _number(row.get(STD_COLUMN))
    low, high = (_number(row.get(c)) for c in ABLATION_INTERVAL_COLUMNS)
    if mean is None:
        return Cell("", None)  # no finished run
    text = f"{mean:.1%}"
    if std is not None:
        text += f" ± {100 * std:.1f}"
    if low is not None and high is not None:
        text += f" ({100 * low:.1f}-{100 * high:.1f})"
    return Cell(text, mean)


def _off_target(row: dict[str, Any]) -> Cell:
    error = _number(row.get("cost_error"))
    if error is None:
        return Cell("", None)
    over = row.get("within_tolerance") is False
    return Cell(f"{error:.1%}" + (" (over tolerance)" if over else ""), error)


def ablation_cells(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows as the page shows them, in the stored rows' order of columns (merged ones where the first was)."""
    shown = []
    for row in rows:
        cells: dict[str, Any] = {}
        for key, value in row.items():
            if key in (ABLATION_MEAN_COLUMN, STD_COLUMN, *ABLATION_INTERVAL_COLUMNS):
                cells.setdefault(ACCURACY_HEADER, _accuracy(row))
            elif key in ("cost_error", "within_tolerance"):
                cells.setdefault("off the matched cost", _off_target(row))
            elif key in (PARAMS, FLOPS):
                number = _number(value)
                cells["FLOPs" if key == FLOPS else key] = Cell(count_text(number), number) if number is not None else ""
            elif key in MEASURED:
                header, text = MEASURED[key]
                number = _number(value)
                cells[header] = Cell(text(number), number) if number is not None else Cell("", None)
            else:
                cells[key] = value
        shown.append(cells)
    return shown


__all__ = ["ACCURACY_HEADER", "ablation_cells"]

"""Reads a report page back as its script (nas/report/report.js) reads it: the one JSON trial table, the chart
specs, and each chart's traces built exactly as report.js builds them, so tests assert on what is drawn.

tests/report/test_browser.py runs the real script in Chromium and checks that it draws the same number of
traces and points per chart as `traces_per_chart` finds here.
"""

from __future__ import annotations

import json
import re
from typing import Any


def script_json(page: str, element_id: str) -> Any:
    match = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', page, re.DOTALL)
    assert match is not None, element_id
    return json.loads(match.group(1))


def trial_table(page: str) -> dict[str, list[Any]]:
    """Every column of the embedded trial table, repeated text decoded from {levels, codes}."""
    data = script_json(page, "nas-trials")["data"]
    table = {}
    for key, column in data.items():
        if isinstance(column, dict):
            column = [None if c is None else column["levels"][c] for c in column["codes"]]
        table[key] = column
    return table


def groups(page: str) -> dict[str, dict[str, Any]]:
    return dict(script_json(page, "nas-trials")["groups"])


def charts(page: str) -> list[dict[str, Any]]:
    return list(script_json(page, "nas-charts")["charts"])


def esc(text: str) -> str:
    """report.js esc()."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _group(table: dict[str, list[Any]], r: int) -> str:
    return str(table["baseline"][r] or table["mode"][r] or "unknown")


def front_traces(spec: dict[str, Any], table: dict[str, list[Any]], looks: dict[str, dict[str, Any]]) -> list[dict]:
    """report.js frontTraces(), hover texts left out."""
    x, y = table[spec["x"]], table[spec["y"]]
    low, high = table["val_accuracy_low"], table["val_accuracy_high"]
    traces: list[dict[str, Any]] = []
    if spec["dominated"]:
        d = spec["dominated"]
        traces.append(
            {
                "name": "dominated within its mode",
                "x": [x[r] for r in d],
                "y": [y[r] for r in d],
                "marker": {
                    "color": [looks[_group(table, r)]["colour"] for r in d],
                    "symbol": [looks[_group(table, r)]["symbol"] for r in d],
                },
            }
        )
    for front in spec["fronts"]:
        rows, look = front["rows"], looks[front["group"]]
        if not rows:
            continue
        mode = ("lines+markers" if len(rows) > 1 else "markers") + ("+text" if look["baseline"] else "")
        traces.append(
            {
                "name": esc(front["group"]),
                "mode": mode,
                "x": [x[r] for r in rows],
                "y": [y[r] for r in rows],
                "marker": {"color": look["colour"], "symbol": look["symbol"]},
            }
        )
        bars = [r for r in rows if low[r] is not None and high[r] is not None]
        if bars:
            traces.append(
                {
                    "name": esc(f"{front['group']} 95% intervals"),
                    "x": [x[r] for r in bars],
                    "y": [y[r] for r in bars],
                    "error_y": {
                        "type": "data",
                        "symmetric": False,
                        "array": [high[r] - y[r] for r in bars],
                        "arrayminus": [y[r] - low[r] for r in bars],
                    },
                }
            )
    for r, budgets in spec.get("over", []):
        traces.append({"name": f"{esc(_group(table, r))} (over {budgets})", "x": [x[r]], "y": [y[r]]})
    overall = spec["overall"]
    name = spec.get("overallName") or "overall Pareto front"
    traces.append({"name": name, "x": [x[r] for r in overall], "y": [y[r] for r in overall]})
    return traces


def traces_per_chart(page: str) -> list[list[dict[str, Any]]]:
    """Each chart's traces in page order: front charts built from the table, plain figures as embedded."""
    table, looks = trial_table(page), groups(page)
    return [front_traces(spec, table, looks) if spec["kind"] == "front" else spec["data"] for spec in charts(page)]


def traces(page: str) -> list[dict[str, Any]]:
    """Every trace of every chart of the page."""
    return [trace for chart in traces_per_chart(page) for trace in chart]

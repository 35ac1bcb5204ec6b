"""The report's charts, each computed from a plain structure of `nas.report.data` (or `final`).

A front chart is a `FrontChart`: which rows of the page's one trial table (`nas.report.table`)
form which trace; `report.js` builds the traces from the table's columns, so a trial's numbers are
in the page once however many charts show it. The small charts (hypervolume, importance, learning
curves, final evaluation) are plain plotly figures. Every string that came from a study is
HTML-escaped before it reaches a label or a hover text (report.js escapes what it builds);
`nas.report.page` assembles the charts into the page.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nas.arch.modes import MODES
from nas.report.connectivity import short
from nas.report.data import FrontPanel, ReportData, group_of
from nas.report.final import FinalEvaluation
from nas.search.spec.objectives import ACCURACY, OBJECTIVES, PARAMS, PEAK_MEMORY
from nas.text import binary_size, plural

OTHER_COLOURS = ("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31")
BASELINE_SYMBOL = "star"
UNKNOWN_SYMBOL = "x"
X_PAD = 2.0  # the final chart's log x axis reaches this factor beyond its first and last point
PUBLISHED_SYMBOL = "hexagon"  # no mode's shape, so a published result never reads as one of ours
FRONT_NAME = "Pareto front of the study"  # a chart whose two axes are the study's only objectives
SAME_LISTED = 10  # trial numbers a hover lists of those sharing one marker; the rest are counted


@dataclass(frozen=True)
class Style:
    """How one group (a mode, a baseline, or unknown) looks in every chart and in the trial table."""

    colour: str
    symbol: str  # a plotly marker symbol
    baseline: bool


def styles(groups: Iterable[str], baselines: Iterable[str] = ()) -> dict[str, Style]:
    """Modes keep the modes table's colour and shape, so a mode looks the same in every chart and report;
    baselines are stars and other groups crosses, coloured in name order from OTHER_COLOURS."""
    names, starred = set(groups), set(baselines)
    result = {m: Style(mode.colour, mode.symbol, False) for m, mode in MODES.items() if m in names}
    for i, name in enumerate(sorted(names - set(MODES))):
        symbol = BASELINE_SYMBOL if name in starred else UNKNOWN_SYMBOL
        result[name] = Style(OTHER_COLOURS[i % len(OTHER_COLOURS)], symbol, name in starred)
    return dict(sorted(result.items()))


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 1e4 else f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ",".join(fmt(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


@dataclass(frozen=True)
class GroupFront:
    group: str
    rows: tuple[int, ...]  # trial-table rows on the group's own 2-D front, by cost, one per distinct point


@dataclass(frozen=True)
class FrontChart:
    """One front chart as `report.js` draws it from the trial table: which rows form which trace.

    Trials with the same group, cost and accuracy (exact ties: the same network drawn again, or a
    study padded with copies) share one marker, the lowest-numbered trial's; `same` lists the others
    under it, with the reused twins already folded into it (`FrontPoint.reused_by`).
    """

    cost: str
    dominated: tuple[int, ...]  # rows of points off their group's front, in one trace (per-point shape, colour)
    fronts: tuple[GroupFront, ...]  # each group's front: a small trace with its error bars
    overall: tuple[int, ...]  # the overall 2-D front, by cost, one row per distinct point
    same: dict[int, tuple[int, ...]]  # row -> trial numbers drawn under its marker (ties and folded twins)
    over: tuple[tuple[int, str], ...] = ()  # (row, the budgets it exceeds) of each over-budget baseline: hollow
    front_name: str = FRONT_NAME  # the overall front's legend entry: the study's, or only this chart's
    ticks: tuple[tuple[float, str], ...] = ()  # the cost axis's labelled values: whole numbers with units


def front_chart(panel: FrontPanel, rows_of: dict[int, int]) -> FrontChart:
    """`rows_of`: trial number -> its row in the trial table."""
    stand: dict[tuple[str, float, float], int] = {}  # (group, cost, accuracy) -> the trial drawn there
    same: dict[int, list[int]] = {}
    for p in sorted(panel.points, key=lambda p: p.number):
        first = stand.setdefault((group_of(p), p.values[panel.cost], p.values[ACCURACY]), p.number)
        same.setdefault(first, []).extend([p.number] if first != p.number else [])
        same[first].extend(p.reused_by)
    over = {p.number: " and ".join(p.over) for p in panel.points if p.over}
    drawn = set(stand.values()) - set(over)
    on_front = {n for numbers in panel.mode_fronts.values() for n in numbers}
    values = {p.number: (p.values[panel.cost], p.values[ACCURACY]) for p in panel.points}
    overall = {values[n]: n for n in reversed(panel.pareto)}  # the first trial at each point of the front
    return FrontChart(
        cost=panel.cost,
        dominated=tuple(rows_of[n] for n in sorted(drawn - on_front)),
        fronts=tuple(
            GroupFront(group, tuple(rows_of[n] for n in numbers if n in drawn))
            for group, numbers in sorted(panel.mode_fronts.items())
        ),
        overall=tuple(rows_of[n] for n in sorted(overall.values(), key=lambda n: (values[n], n))),
        same={rows_of[n]: tuple(sorted(members)) for n, members in same.items() if members},
        over=tuple((rows_of[n], budgets) for n, budgets in sorted(over.items())),
        front_name=FRONT_NAME if panel.is_study_front else f"front of this chart only (accuracy vs {panel.cost})",
        ticks=axis_ticks(panel.cost, [p.values[panel.cost] for p in panel.points]),
    )


MEMORY_STEPS = tuple(m * 2**20 for m in (1, 2, 5, 10, 20, 50, 100, 200, 500)) + tuple(
    m * 2**30 for m in (1, 2, 5, 10, 20, 50, 100)
)


def axis_ticks(cost: str, values: list[float]) -> tuple[tuple[float, str], ...]:
    """Labelled values for a cost axis, each a whole number with its unit: 1-2-5 per decade on a log axis
    ("50K", "100K", "200K"; plotly's own labels read "5 6 7 8 9 100k 2 3", digits with no decade), MiB/GiB
    on the memory axis (plotly's read "1B ... 3.5B", as if bytes were counted in billions). () where plotly's
    own are right (a linear axis of ms or seconds), or with nothing to draw."""
    spec = OBJECTIVES.get(cost)
    finite = [v for v in values if v > 0 and math.isfinite(v)]
    if not finite:
        return ()
    low, high = min(finite), max(finite)
    if cost == PEAK_MEMORY:
        step = next((s for s in MEMORY_STEPS if high / s <= 6), MEMORY_STEPS[-1])
        return tuple((k * step, binary_size(k * step)) for k in range(int(high * 1.05 // step) + 1))
    if spec is None or not spec.log_axis:
        return ()
    ticks: list[float] = []
    for mantissas in ((1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):  # a narrow range gets every digit
        decades = range(math.floor(math.log10(low / 1.5)), math.ceil(math.log10(high * 1.5)) + 1)
        ticks = [m * 10.0**e for e in decades for m in mantissas if low / 1.5 <= m * 10.0**e <= high * 1.5]
        if len(ticks) >= 3:
            break
    return tuple((t, short(t)) for t in ticks)


def _tick_layout(ticks: tuple[tuple[float, str], ...]) -> dict[str, Any]:
    """An axis's tickvals and ticktext from `axis_ticks` ({} where plotly's own are right)."""
    return {"tickvals": [v for v, _ in ticks], "ticktext": [t for _, t in ticks]} if ticks else {}


def _layout(fig: go.Figure) -> dict[str, Any]:
    """A figure's layout as plotly.js reads it, without the template (the page carries it once)."""
    layout: dict[str, Any] = json.loads(fig.to_json(validate=False))["layout"]
    layout.pop("template", None)
    return layout


def front_spec(chart: FrontChart) -> dict[str, Any]:
    """The chart as the page embeds it: the traces' rows, and the layout (axis titles escaped)."""
    spec = OBJECTIVES.get(chart.cost)
    title = spec.label if spec is not None else chart.cost
    fig = go.Figure()
    fig.update_layout(
        title=html.escape(f"validation accuracy against {title}"),
        xaxis={
            "title": html.escape(title),
            "type": "log" if spec is not None and spec.log_axis else "linear",
            **_tick_layout(chart.ticks),
        },
        yaxis={"title": "validation accuracy"},
        height=520,
        margin={"r": 20},
        legend={"itemsizing": "constant"},
    )
    return {
        "kind": "front",
        "x": chart.cost,
        "y": ACCURACY,
        "layout": _layout(fig),
        "dominated": list(chart.dominated),
        "fronts": [{"group": f.group, "rows": list(f.rows)} for f in chart.fronts],
        "overall": list(chart.overall),
        "overallName": html.escape(chart.front_name),
        "over": [[row, html.escape(budgets)] for row, budgets in chart.over],
        "same": {str(row): [len(numbers), list(numbers[:SAME_LISTED])] for row, numbers in chart.same.items()},
    }


def figure_spec(fig: go.Figure) -> dict[str, Any]:
    """A plain plotly figure as the page embeds it (its layout without the template)."""
    data: dict[str, Any] = json.loads(fig.to_json(validate=False))
    data["layout"].pop("template", None)
    return {"kind": "figure", "data": data.get("data", []), "layout": data["layout"]}


def template() -> dict[str, Any]:
    """plotly's default template, written once in the page for every chart."""
    fig = go.Figure()
    layout: dict[str, Any] = json.loads(fig.to_json())["layout"]
    return dict(layout.get("template", {}))


def hypervolume_figure(data: ReportData) -> go.Figure:
    """A step line through the trials where the volume changed (and the last), which draws the same steps
    as every trial would: a study of 20,000 trials changes it a few hundred times at most."""
    history = data.hypervolume_history
    steps = [(n, v) for i, (n, v) in enumerate(history) if i == 0 or i == len(history) - 1 or v != history[i - 1][1]]
    fig = go.Figure(
        go.Scatter(x=[n for n, _ in steps], y=[v for _, v in steps], mode="lines+markers", line={"shape": "hv"})
    )
    fig.update_layout(
        title="hypervolume of the feasible front so far",
        xaxis={"title": "trial number", "tickformat": ",d", **({"dtick": 1} if len(history) <= 10 else {})},
        yaxis={"title": "hypervolume", "rangemode": "tozero"},  # from 0: growth read against the whole
        height=400,
    )
    return fig


def importance_figure(data: ReportData) -> go.Figure:
    names = list(data.importances)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=[html.escape(n) for n in names])
    for i, name in enumerate(names, start=1):
        ranked = sorted(data.importances[name].items(), key=lambda kv: kv[1])
        fig.add_trace(
            go.Bar(
                x=[v for _, v in ranked],
                y=[html.escape(k) for k, _ in ranked],
                orientation="h",
                name=html.escape(name),
                showlegend=False,
            ),
            row=1,
            col=i,
        )
    fig.update_layout(title="parameter importance per objective (PED-ANOVA, feasible trials)", height=420)
    return fig


def curves_figure(data: ReportData, looks: dict[str, Style], group_by_number: dict[int, str]) -> go.Figure:
    """One line per distinct curve of the Pareto trials, in its group's colour and shape; trials with the
    same curve (exact copies) share it, named by the first."""
    curves: dict[tuple[str, tuple[tuple[int, float], ...]], list[int]] = {}
    for number, curve in sorted(data.learning_curves.items()):
        curves.setdefault((group_by_number.get(number, "unknown"), curve), []).append(number)
    fig = go.Figure()
    for (group, curve), numbers in curves.items():
        look = looks.get(group, Style("black", UNKNOWN_SYMBOL, False))
        copies = f" (+{len(numbers) - 1:,} identical)" if len(numbers) > 1 else ""
        fig.add_trace(
            go.Scatter(
                x=[e for e, _ in curve],
                y=[a for _, a in curve],
                mode="lines+markers",
                name=html.escape(f"trial {numbers[0]}, {group}{copies}"),
                line={"color": look.colour, "width": 1.5},
                marker={"symbol": look.symbol, "color": look.colour, "size": 8},
            )
        )
    fig.update_layout(
        title="validation accuracy per epoch, Pareto trials",
        xaxis={"title": "epoch", "dtick": 1},
        yaxis={"title": "validation accuracy"},
        height=460,
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0},  # names take no width from the plot
    )
    return fig


def final_figure(final: FinalEvaluation, looks: dict[str, Style]) -> go.Figure:
    """Test accuracy (mean, +-std over seeds) against parameters; published results as labelled hexagons,
    or dotted lines when the source gives no parameter count."""
    fig = go.Figure()
    for row in final.rows:
        fig.add_trace(
            go.Scatter(
                x=[row.params],
                y=[row.test_accuracy_mean],
                error_y={"type": "data", "array": [row.test_accuracy_std or 0.0], "visible": True},
                mode="markers+text",
                text=[html.escape(f"trial {row.trial}")],
                textposition="top center",
                hovertext=html.escape(
                    f"trial {row.trial} {row.network}, {plural(row.seeds, 'seed')}, {row.epochs} ep."
                ),
                hoverinfo="text",
                name=html.escape(f"trial {row.trial} {row.network}"),
                marker={
                    "color": looks[row.network].colour if row.network in looks else "black",
                    "symbol": looks[row.network].symbol if row.network in looks else "circle",
                    "size": 10,
                },
            )
        )
    # Published points close in parameters would print their labels over each other: alternate above/below.
    placed_all = sorted((p for p in final.published if p.params is not None), key=lambda p: p.params or 0)
    above = {id(p): i % 2 == 0 for i, p in enumerate(placed_all)}
    for source in dict.fromkeys(p.source for p in final.published):
        placed = [p for p in final.published if p.source == source and p.params is not None]
        fig.add_trace(
            go.Scatter(
                x=[p.params for p in placed],
                y=[p.test_accuracy for p in placed],
                mode="markers+text",
                text=[html.escape(f"{p.network} {p.test_accuracy:.1%}") for p in placed],
                textposition=["top center" if above[id(p)] else "bottom center" for p in placed],
                textfont={"size": 10},
                hovertext=[html.escape(f"{p.network}: {p.test_accuracy:.1%}. {p.note}. {p.source}") for p in placed],
                hoverinfo="text",
                name=html.escape(f"published: {source.split(': http')[0]}"),
                marker={
                    "symbol": PUBLISHED_SYMBOL,
                    "size": 11,
                    "color": "white",
                    "line": {"color": "black", "width": 1.5},
                },
            )
        )
    xs = [float(r.params) for r in final.rows] + [float(p.params) for p in placed_all if p.params is not None]
    # A source without a parameter count: a dotted line across the chart at its accuracy, named in the legend
    # (a label on the chart collided with the points and labels near it).
    low, high = (min(xs) / X_PAD, max(xs) * X_PAD) if xs else (1.0, 10.0)
    for p in final.published:
        if p.params is None:
            fig.add_trace(
                go.Scatter(
                    x=[low, high],
                    y=[p.test_accuracy, p.test_accuracy],
                    mode="lines",
                    line={"dash": "dot", "color": "grey", "width": 1.5},
                    name=html.escape(f"published: {p.network} {p.test_accuracy:.1%} (no parameter count)"),
                    hovertext=html.escape(f"{p.network}: {p.test_accuracy:.1%}. {p.note}. {p.source}"),
                    hoverinfo="text",
                )
            )
    fig.update_layout(
        title="test accuracy against parameters: finalized networks (mean +- std over seeds)"
        + (" and published results" if final.published else " (no published results for this dataset)"),
        # padded so that a label centred on the first or last point is not cut at the plot's edge
        xaxis={
            "title": "parameters",
            "type": "log",
            "range": [math.log10(low), math.log10(high)],
            **_tick_layout(axis_ticks(PARAMS, xs)),
        },
        yaxis={"title": "test accuracy"},
        height=560,
        legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0},
    )
    return fig

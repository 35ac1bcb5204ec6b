"""The report's plotly figures, each drawn from a plain structure of `nas.report.data` (or `final`).

Every string that came from a study is HTML-escaped before it reaches a label or a hover text;
`nas.report.page` assembles these figures into the page.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nas.arch.modes import MODES
from nas.report.data import FrontPanel, FrontPoint, ReportData, group_of
from nas.report.final import FinalEvaluation
from nas.search.objectives import ACCURACY, OBJECTIVES
from nas.text import plural

# Fixed colours (the modes table's), so a mode looks the same in every panel and every report.
MODE_COLOURS = {name: mode.colour for name, mode in MODES.items()}
OTHER_COLOURS = ("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31")


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


def colours(groups: Iterable[str]) -> dict[str, str]:
    """Mode colours are fixed; other groups (baselines, unknown) take the rest in name order."""
    extra = sorted(set(groups) - set(MODE_COLOURS))
    return {**MODE_COLOURS, **{g: OTHER_COLOURS[i % len(OTHER_COLOURS)] for i, g in enumerate(extra)}}


def _hover(point: FrontPoint, limit: int = 200) -> str:
    """One escaped line per knob and metric; long values (per-stage lists) are cut."""
    lines = []
    for key, value in point.hover.items():
        text = fmt(value)
        lines.append(f"{html.escape(str(key))}: {html.escape(text if len(text) <= limit else text[:limit] + '...')}")
    return "<br>".join(lines)


def _front_xy(panel: FrontPanel, numbers: Sequence[int]) -> tuple[list[float], list[float]]:
    by_number = {p.number: p for p in panel.points}
    front = [by_number[n] for n in numbers]
    return [p.values[panel.cost] for p in front], [p.values[ACCURACY] for p in front]


def interval_trace(panel: FrontPanel, numbers: Sequence[int], colour: str, group: str) -> go.Scatter | None:
    """Error bars (the 95% interval of each accuracy) on the points `numbers` that have one; None if none do."""
    by_number = {p.number: p for p in panel.points}
    shown = [(by_number[n], interval) for n in numbers if (interval := by_number[n].interval) is not None]
    if not shown:
        return None
    ys = [p.values[ACCURACY] for p, _ in shown]
    return go.Scatter(
        x=[p.values[panel.cost] for p, _ in shown],
        y=ys,
        mode="markers",
        marker={"size": 0, "color": colour},
        error_y={
            "type": "data",
            "symmetric": False,
            "array": [high - y for (_, (_, high)), y in zip(shown, ys, strict=True)],
            "arrayminus": [y - low for (_, (low, _)), y in zip(shown, ys, strict=True)],
            "color": colour,
            "thickness": 1.5,
            "width": 5,
        },
        name=html.escape(f"{group} 95% intervals"),
        legendgroup=html.escape(group),
        showlegend=False,
        hoverinfo="skip",
    )


def front_figure(panel: FrontPanel, palette: dict[str, str]) -> go.Figure:
    """Accuracy against one cost: points and step fronts per mode, the overall front on top."""
    fig = go.Figure()
    groups: dict[str, list[FrontPoint]] = {}
    for p in panel.points:
        groups.setdefault(group_of(p), []).append(p)
    for group, points in sorted(groups.items()):
        baseline = any(p.baseline for p in points)
        fig.add_trace(
            go.Scatter(
                x=[p.values[panel.cost] for p in points],
                y=[p.values[ACCURACY] for p in points],
                mode="markers+text" if baseline else "markers",
                text=[html.escape(p.baseline or "") for p in points] if baseline else None,
                textposition="top center",
                hovertext=[_hover(p) for p in points],
                hoverinfo="text",
                name=html.escape(group),
                legendgroup=html.escape(group),
                marker={
                    "color": palette[group],
                    "size": 12 if baseline else 8,
                    "symbol": "star" if baseline else "circle",
                },
            )
        )
        x, y = _front_xy(panel, panel.mode_fronts.get(group, ()))
        if len(x) > 1:
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines",
                    line={"color": palette[group], "shape": "hv", "width": 1.5},
                    name=html.escape(f"{group} front"),
                    legendgroup=html.escape(group),
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
        # Every point of the overall front is on its group's front, so these cover it (and each baseline).
        bars = interval_trace(panel, panel.mode_fronts.get(group, ()), palette[group], group)
        if bars is not None:
            fig.add_trace(bars)
    x, y = _front_xy(panel, panel.pareto)
    fig.add_trace(
        go.Scatter(
            x=x,
            y=y,
            mode="lines+markers",
            line={"color": "black", "shape": "hv", "width": 2.5},
            marker={"size": 16, "symbol": "circle-open", "color": "black", "line": {"width": 2}},
            name="overall Pareto front",
            hoverinfo="skip",
        )
    )
    spec = OBJECTIVES.get(panel.cost)
    title = spec.label if spec is not None else panel.cost
    fig.update_layout(
        title=html.escape(f"validation accuracy against {title}"),
        xaxis={"title": html.escape(title), "type": "log" if spec is not None and spec.log_axis else "linear"},
        yaxis={"title": "validation accuracy"},
        height=520,
    )
    return fig


def hypervolume_figure(data: ReportData) -> go.Figure:
    numbers = [n for n, _ in data.hypervolume_history]
    fig = go.Figure(go.Scatter(x=numbers, y=[v for _, v in data.hypervolume_history], mode="lines+markers"))
    fig.update_layout(
        title="hypervolume of the feasible front so far",
        xaxis={"title": "trial number"},
        yaxis={"title": "hypervolume"},
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


def curves_figure(data: ReportData) -> go.Figure:
    fig = go.Figure()
    for number, curve in sorted(data.learning_curves.items()):
        fig.add_trace(
            go.Scatter(x=[e for e, _ in curve], y=[a for _, a in curve], mode="lines+markers", name=f"trial {number}")
        )
    fig.update_layout(
        title="validation accuracy per epoch, Pareto trials",
        xaxis={"title": "epoch"},
        yaxis={"title": "validation accuracy"},
        height=420,
    )
    return fig


def final_figure(final: FinalEvaluation, palette: dict[str, str]) -> go.Figure:
    """Test accuracy (mean, +-std over seeds) against parameters; published results as labelled diamonds,
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
                marker={"color": palette.get(row.network, "black"), "size": 10},
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
                marker={"symbol": "diamond", "size": 11, "color": "white", "line": {"color": "black", "width": 1.5}},
            )
        )
    for p in final.published:
        if p.params is None:  # the source's name is in the hover text and the table below the chart
            fig.add_hline(
                y=p.test_accuracy,
                line_dash="dot",
                line_color="grey",
                annotation_text=html.escape(f"{p.network} {p.test_accuracy:.1%} (no parameter count)"),
                annotation_position="bottom left",
                annotation_font_size=10,
            )
    fig.update_layout(
        title="test accuracy against parameters: finalized networks (mean +- std over seeds) and published results",
        xaxis={"title": "parameters", "type": "log"},
        yaxis={"title": "test accuracy"},
        height=560,
        legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0},
    )
    return fig

"""Draws the "Which connectivity?" section from `nas.report.connectivity`'s numbers.

Every string that came from a study (mode and baseline names, ablation rows) is HTML-escaped before it
reaches the page or a plotly label, as in `nas.report.page`.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

import plotly.graph_objects as go

from nas.arch.modes import MODES
from nas.report.connectivity import BudgetTable, Level, connectivity_data, level_text, short, unit_noun
from nas.report.data import ReportData
from nas.report.forest import ForestRow
from nas.search.spec.objectives import FLOPS, OBJECTIVES, PARAMS, PEAK_MEMORY
from nas.text import plural

OTHER_COLOUR = "#7f7f7f"  # a mode the modes table does not know (an old study's)

INTRO = (
    "For each budget, the best validation accuracy each mode (and each baseline) reached with a network at or "
    "under it: accuracy, its 95% interval and the trial; the best at each budget in bold. A lead is claimed only "
    "when the 95% interval of the difference between the best two modes (Newcombe's hybrid score interval) "
    "excludes 0. Each mode's own front is drawn in the Pareto charts below."
)

ABLATION_CAVEAT = (
    "This study ran an ablation: each mode's runs are one architecture trained once per seed, so a cell above is "
    "the best of its seeds and flatters every mode alike; the forest plot below compares the modes fairly (the "
    "mean over seeds at matched cost)."
)


def _cell(level: Level, group: str, cost_name: str, leading: float | None) -> str:
    best = level.best.get(group)
    if best is None:
        return '<td class="none">-</td>'
    shown = f"{best.accuracy:.1%}"
    if best.interval is not None:
        shown += f" ({100 * best.interval[0]:.1f}-{100 * best.interval[1]:.1f})"
    text = html.escape(f"{shown} #{best.trial}")
    if best.accuracy == leading:
        text = f"<b>{text}</b>"
    cost = f"{best.cost:,.0f}" if float(best.cost).is_integer() else f"{best.cost:.4g}"
    if cost_name == PEAK_MEMORY:
        cost = f"{level_text(cost_name, best.cost)} ({cost} bytes)"
    title = html.escape(f"trial {best.trial}: {cost} {unit_noun(cost_name)}", quote=True)
    count = html.escape(f"best of {plural(best.networks, 'network')}")
    return f'<td title="{title}" style="white-space: nowrap">{text}<br><small>{count}</small></td>'


def budget_table_html(table: BudgetTable) -> str:
    """A row per group (modes, then baselines) with its network count, a column per budget level, so the
    table stays narrow at 1,280 px however many groups there are; the leader of each budget in bold."""
    unit = unit_noun(table.cost)
    head = "".join(f"<th>{html.escape(f'<= {level_text(table.cost, level.budget)}')}</th>" for level in table.levels)
    leading = [max((b.accuracy for b in level.best.values()), default=None) for level in table.levels]
    rows = []
    for g in table.groups:
        name = f"{html.escape(g)}<br><small>{html.escape(plural(table.networks[g], 'network'))}</small>"
        cells = "".join(_cell(level, g, table.cost, lead) for level, lead in zip(table.levels, leading, strict=True))
        rows.append(f"<tr><th>{name}</th>{cells}</tr>")
    span = len(table.levels)
    for over in table.over:  # a reference over the study's budget: its result, at no budget level
        best = over.best
        shown = f"{best.accuracy:.1%}"
        if best.interval is not None:
            shown += f" ({100 * best.interval[0]:.1f}-{100 * best.interval[1]:.1f})"
        text = (
            f"{shown} #{best.trial} at {level_text(table.cost, best.cost)} {unit}: over the study's {over.budgets}, "
            "so at no budget here"
        )
        name = f"{html.escape(over.group)}<br><small>{html.escape(f'over {over.budgets}')}</small>"
        rows.append(f'<tr class="over"><th>{name}</th><td colspan="{span}">{html.escape(text)}</td></tr>')
    for absent in table.absent:  # a mode of the space with no row would read as "not shown"; say why
        why = html.escape(absent.why(table.cost))
        rows.append(f'<tr class="absent"><th>{html.escape(absent.mode)}</th><td colspan="{span}">{why}</td></tr>')
    corner = html.escape(f"budget ({unit.removeprefix('of ')})")
    return (
        f'<div class="scroll"><table class="budget"><thead><tr><th>{corner}</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def forest_figure(rows: Sequence[ForestRow]) -> go.Figure:
    """Mean accuracy per mode with its interval, one row per mode; the x axis spans the intervals only."""
    fig = go.Figure()
    for row in rows:
        mode = MODES.get(row.mode)
        colour = mode.colour if mode is not None else OTHER_COLOUR
        low, high = row.interval
        cost = ", ".join(f"{short(v)} {unit_noun(k)}" for k, v in ((PARAMS, row.params), (FLOPS, row.flops)) if v)
        hover = f"{row.mode}: {row.mean:.1%} (95% interval {low:.1%} to {high:.1%}), {plural(row.seeds, 'seed')}"
        fig.add_trace(
            go.Scatter(
                x=[row.mean],
                y=[html.escape(f"{row.mode} ({short(row.params)} params)" if row.params else row.mode)],
                mode="markers",
                marker={"color": colour, "symbol": mode.symbol if mode is not None else "circle", "size": 13},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": [high - row.mean],
                    "arrayminus": [row.mean - low],
                    "color": colour,
                    "thickness": 2,
                    "width": 8,
                },
                hovertext=html.escape(f"{hover}; {cost}" if cost else hover),
                hoverinfo="text",
                name=html.escape(row.mode),
                showlegend=False,
            )
        )
    lows, highs = [r.interval[0] for r in rows], [r.interval[1] for r in rows]
    pad = max(0.05 * (max(highs) - min(lows)), 0.005) if rows else 0.0
    fig.update_layout(
        title="ablation at matched cost: mean validation accuracy per mode, 95% interval over seeds",
        xaxis={
            "title": "validation accuracy",
            "tickformat": ".1%",
            **({"range": [max(0.0, min(lows) - pad), min(1.0, max(highs) + pad)]} if rows else {}),
        },
        yaxis={"autorange": "reversed", "title": "", "automargin": True},
        height=160 + 45 * len(rows),
    )
    return fig


def connectivity_section(*, data: ReportData, figure: Callable[[go.Figure], str]) -> list[str]:
    """The section's HTML pieces: per cost panel a summary and the budget table, then the ablation's forest
    plot; `figure` embeds a plotly figure (page.py's, so plotly.js is inlined once per page)."""
    section = connectivity_data(data=data)
    parts = ["<h2>Which connectivity?</h2>", f"<p>{html.escape(INTRO)}</p>"]
    for table in section.tables:
        spec = OBJECTIVES.get(table.cost)
        label = spec.label if spec is not None else table.cost
        parts.append(f"<h3>{html.escape(f'Budget in {label}')}</h3>")
        parts.append("<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in table.summary) + "</ul>")
        if table.levels:
            parts.append(budget_table_html(table))
    parts.append(f"<p><small>{html.escape(section.caveat)}</small></p>")
    if section.forest is not None:
        parts.append(f"<p><small>{html.escape(ABLATION_CAVEAT)}</small></p>")
    if section.forest is not None:
        parts.append("<h3>Ablation at matched cost</h3>")
        if section.forest:
            parts.append(
                "<p>Each mode trained with its width solved for the same cost, once per seed: the mean validation "
                "accuracy and the 95% Student-t interval of the mean over the seeds, clipped to [0, 1].</p>"
            )
            parts.append(figure(forest_figure(section.forest)))
        else:
            parts.append("<p>The ablation has no mode with a finished run yet.</p>")
        if section.unfinished and section.forest:
            waiting = ", ".join(section.unfinished)
            parts.append(f"<p>{html.escape(f'No finished run yet, so not drawn: {waiting}.')}</p>")
    return parts

"""Draws a `ReportData` into one HTML file that opens offline (plotly.js inlined once).

The page holds every trial once, in one compact JSON table (`nas.report.table`), and every chart
as a small spec (`nas.report.figures`); `report.js` builds the charts' traces and the paged,
sortable, filterable trial table from them. When every chart is drawn it sets `data-plotted` on
the body to the number of charts (`data-charts`); script errors collect in `data-errors`.

Every piece of text that came from a study (names, reasons, attribute values, mode names) is
HTML-escaped before it reaches the page or a hover label (`report.js` escapes what it builds; the
JSON is written with `<`, `>` and `&` as \\u escapes, so nothing in it can close its script
element), and the file can only land inside `out_dir`, whatever the study is called.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from nas.files import write_text_atomic
from nas.report.ablation import ablation_cells
from nas.report.connectivity_html import connectivity_section
from nas.report.data import ReportData
from nas.report.figures import (
    FrontChart,
    Style,
    curves_figure,
    figure_spec,
    final_figure,
    fmt,
    front_chart,
    front_spec,
    hypervolume_figure,
    importance_figure,
    styles,
    template,
)
from nas.report.final import Cell, FinalEvaluation, final_table, published_table
from nas.report.networks import networks_section
from nas.report.proxies import proxy_intro, proxy_rows
from nas.report.table import TrialTable, encoded, group_counts, group_name, status_counts, trial_table
from nas.text import plural

MAX_FILENAME = 100
PAGE_ROWS = 100  # trials per page of the trial table
HERE = Path(__file__).resolve().parent
SCRIPT = "report.js"
STYLE = "report.css"
PARETO_LISTED = 30  # distinct results the summary line lists; the rest are counted
# Runs first in the body: every script error after it (plotly.js's, report.js's) lands in data-errors.
ERRORS_JS = (
    "window.nasErrors=[];function nasError(m){window.nasErrors.push(String(m));"
    'document.body.dataset.errors=window.nasErrors.join(" | ");}'
    'window.addEventListener("error",function(e){nasError(e.message||e.type);});'
    'window.addEventListener("unhandledrejection",function(e){nasError(e.reason);});'
)


def _plotly_js() -> str:
    """plotly.js as the installed plotly ships it, to inline once. Imported here, not at the top: importing
    plotly.offline adds a warning filter, and importing nas changes no global setting (tests/test_layers.py)."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def _e(value: Any) -> str:
    return html.escape(fmt(value))


def _prose(text: str) -> str:
    """Escaped text whose `backquoted` words (commands) show as code, not as backquotes."""
    return re.sub(r"`([^`<>]+)`", r"<code>\1</code>", html.escape(text))


def _final_section(final: FinalEvaluation, looks: dict[str, Style], figure: _Figures) -> list[str]:
    published = published_table(final)
    return [
        "<h2>Final evaluation</h2>",
        f"<p>{_prose(final.note)} Each network was trained again on train+validation once per seed, then measured "
        "once on the test split: mean and sample standard deviation over the seeds (<code>nas finalize</code>, "
        "also in runs/&lt;study&gt;/final.csv).</p>",
        _table(final_table(final)),
        figure(final_figure(final, looks)),
        *(["<h3>Published results</h3>", _table(published)] if published else []),
    ]


class _Figures:
    """Turns a chart (a plotly figure or a `FrontChart`) into an empty element of the page, keeping its spec
    for the one JSON list of charts that report.js draws."""

    def __init__(self) -> None:
        self.specs: list[dict[str, Any]] = []

    def __call__(self, chart: go.Figure | FrontChart) -> str:
        self.specs.append(front_spec(chart) if isinstance(chart, FrontChart) else figure_spec(chart))
        return f'<div class="chart" id="chart-{len(self.specs) - 1}"></div>'


def script_json(value: Any, element_id: str) -> str:
    """`value` as a JSON script element; `<`, `>` and `&` are written as \\u escapes, so no text from a study
    can end the element ("</script>") or open a comment ("<!--") inside it."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def pareto_summary(data: ReportData) -> str:
    """The Pareto set in a line: exact ties (the same values in every objective) are counted, not listed, and at
    most PARETO_LISTED distinct results are named."""
    if not data.pareto_numbers:
        return "empty"
    by_number = {row["number"]: row for row in data.table}
    ties: dict[tuple[Any, ...], list[int]] = {}
    for n in data.pareto_numbers:
        ties.setdefault(tuple(by_number[n].get(o) for o in data.objectives), []).append(n)
    named = [f"{ns[0]} (+{plural(len(ns) - 1, 'tie')})" if len(ns) > 1 else str(ns[0]) for ns in ties.values()]
    more = f" and {len(named) - PARETO_LISTED:,} more" if len(named) > PARETO_LISTED else ""
    head = plural(len(data.pareto_numbers), "trial")
    if len(ties) < len(data.pareto_numbers):
        head += f", {plural(len(ties), 'distinct result')}"
    return f"{head}: {', '.join(named[:PARETO_LISTED])}{more}"


def _options(element_id: str, everything: str, counts: dict[str, int]) -> str:
    options = [f'<option value="">{html.escape(everything)} ({sum(counts.values()):,})</option>']
    options += [f'<option value="{html.escape(k)}">{html.escape(k)} ({n:,})</option>' for k, n in counts.items()]
    return f'<select id="{element_id}">{"".join(options)}</select>'


def _trials_section(table: TrialTable) -> str:
    """The controls and the empty table report.js fills, one page of PAGE_ROWS trials at a time."""
    return (
        f"<p>{PAGE_ROWS} trials a page. Click a column header to sort, a trial number for its details (the other "
        "costs, the knobs equal in every trial or beyond the columns that fit, wall time); hover a reason for the "
        "whole sentence, a rounded count for its exact value. Knobs a network does not use are blank.</p>"
        f'<div class="controls" id="trial-controls" data-page-rows="{PAGE_ROWS}">'
        f"<label>network {_options('trial-group', 'all networks', group_counts(table))}</label>"
        f"<label>status {_options('trial-status', 'all statuses', status_counts(table))}</label>"
        '<label>find <input id="trial-search" type="search" placeholder="any text in a row"></label>'
        '<span class="pager"><button type="button" data-go="first" title="first page">&laquo;</button>'
        '<button type="button" data-go="prev" title="previous page">&lsaquo;</button>'
        '<span id="trial-page"></span>'
        '<button type="button" data-go="next" title="next page">&rsaquo;</button>'
        '<button type="button" data-go="last" title="last page">&raquo;</button></span>'
        '<span id="trial-count"></span></div>'
        '<div class="scroll"><table id="trials" class="trials"><thead></thead><tbody></tbody></table></div>'
    )


def resolution(val_images: Sequence[int]) -> str:
    """What one image of the validation split is worth, said once near the top of the page."""
    if not val_images:
        return "No trial recorded its validation split size, so accuracies are shown without intervals."
    if len(val_images) == 1:
        n = val_images[0]
        split = f"validation split: {n:,} images, so one image is {100 / n:.3g} points"
    else:
        sizes = ", ".join(f"{n:,}" for n in val_images)
        split = (
            f"validation splits of {sizes} images (the split changed during the study), so one image is "
            f"{100 / val_images[-1]:.3g} to {100 / val_images[0]:.3g} points"
        )
    return f"{split[0].upper()}{split[1:]}; 95% intervals are Wilson score intervals."


def _table(rows: Sequence[dict[str, Any]], *, sortable: bool = True) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for c in columns:
            value: Any = row.get(c)
            if isinstance(value, Cell):  # shown as its text, sorted by its number
                value, number = value.text, value.sort
            else:
                number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
            sort = f' data-sort="{float(number)!r}"' if number is not None else ""
            cells.append(f"<td{sort}>{_e(value)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    css = ' class="sortable"' if sortable else ""
    return f'<div class="scroll"><table{css}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _key_values(values: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_e(v)}</td></tr>" for k, v in values.items())
    return f"<table>{rows}</table>"


def render(data: ReportData) -> str:
    """The whole page as text."""
    figure = _Figures()
    table = trial_table(data)
    rows_of = {number: i for i, number in enumerate(table.data["number"])}
    finals = [row.network for row in data.final.rows] if data.final is not None else []
    looks = {**styles(finals), **table.groups}
    group_by_number = {row["number"]: group_name(row) for row in data.table}
    objectives = ", ".join(f"{n} ({d})" for n, d in zip(data.objectives, data.directions, strict=True))
    parts = [
        f"<h1>Study {_e(data.study_name)}</h1>",
        f"<p>Objectives: {html.escape(objectives)}. {plural(len(data.table), 'trial')}; "
        f"Pareto set over all objectives (feasible trials): {html.escape(pareto_summary(data))}.</p>",
        f"<p>{html.escape(resolution(data.val_images))}</p>",
    ]
    parts.extend(connectivity_section(data=data, figure=figure))
    if data.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in data.notes) + "</ul>")
    parts.append("<h2>Pareto fronts</h2>")
    parts.append(
        "<p>Every feasible trial; a connectivity mode has its own colour and marker shape, baselines are stars. "
        "Each mode's own front is a step line through its points, the overall front the thick black one; smaller, "
        "paler points are dominated within their mode. Error bars on the front points (and baselines) are the 95% "
        "intervals of their accuracies. Trials with exactly the same result share one point: its hover lists "
        "them.</p>"
    )
    parts.extend(figure(front_chart(panel, rows_of)) for panel in data.panels)
    parts.extend(networks_section(networks=data.networks, input_size=data.input_size))
    parts.append("<h2>Hypervolume</h2>")
    ref = ", ".join(f"{n}={v:.6g}" for n, v in zip(data.objectives, data.reference_point, strict=False))
    parts.append(
        "<p>Over all objectives in minimisation form (accuracy negated: -acc), against the fixed reference point "
        f"{html.escape(ref) or '(none)'}: the worst feasible value plus 10% of the range.</p>"
    )
    parts.append(figure(hypervolume_figure(data)))
    parts.append("<h2>Parameter importance</h2>")
    parts.append(figure(importance_figure(data)) if data.importances else "<p>Not computed (see notes).</p>")
    parts.append("<h2>Learning curves</h2>")
    if any(data.learning_curves.values()):
        parts.append(figure(curves_figure(data, looks, group_by_number)))
    else:
        parts.append("<p>No per-epoch history for the Pareto trials.</p>")
    parts.append("<h2>All trials</h2>")
    parts.append(_trials_section(table))
    if data.proxies is not None:
        parts.append("<h2>Zero-cost proxies</h2>")
        parts.append(f"<p>{_prose(proxy_intro(data.proxies))}</p>")
        parts.append(_table(proxy_rows(data.proxies)))
    if data.ablation is not None:
        parts.append("<h2>Ablation</h2>")
        parts.append(_table(ablation_cells(data.ablation)))
    if data.final is not None:
        parts.extend(_final_section(data.final, looks, figure))
    parts.append("<h2>Provenance</h2>")
    parts.append(_key_values(data.provenance))
    title = html.escape(f"densenas report: {data.study_name}")
    return "\n".join(
        [
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{title}</title>\n<style>{(HERE / STYLE).read_text(encoding='utf-8')}</style>\n</head>",
            f'<body data-charts="{len(figure.specs)}" data-plotted="0" data-errors="">',
            f"<script>{ERRORS_JS}</script>",
            *parts,
            script_json(encoded(table), "nas-trials"),
            script_json({"template": template(), "charts": figure.specs}, "nas-charts"),
            f"<script>{_plotly_js()}</script>",
            f"<script>{(HERE / SCRIPT).read_text(encoding='utf-8')}</script>",
            "</body>\n</html>\n",
        ]
    )


def safe_filename(name: str) -> str:
    """Only [A-Za-z0-9._-], no leading dot, at most 100 characters (the extension kept)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "report.html"
    if len(name) > MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        keep = dot and stem and len(ext) < 10
        name = stem[: MAX_FILENAME - len(ext) - 1] + "." + ext if keep else name[:MAX_FILENAME]
    return name


def write_report(*, data: ReportData, out_dir: Path = Path("reports"), filename: str | None = None) -> Path:
    """Write the page atomically (temporary file, then rename) inside out_dir; return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = out_dir.resolve()
    path = (root / safe_filename(filename or f"{data.study_name}.html")).resolve()
    if path.parent != root:
        raise ValueError(f"report path {str(path)!r} is not inside {str(root)!r}")
    return write_text_atomic(path=path, text=render(data))

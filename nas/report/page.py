"""Draws a `ReportData` into one HTML file that opens offline (plotly.js inlined once).

Every piece of text that came from a study (names, reasons, attribute values, mode names) is
HTML-escaped before it reaches the page or a hover label, and the file can only land inside
`out_dir`, whatever the study is called.
"""

from __future__ import annotations

import dataclasses
import html
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from nas.report.connectivity_html import connectivity_section
from nas.report.data import ReportData, group_of
from nas.report.figures import (
    colours,
    curves_figure,
    final_figure,
    fmt,
    front_figure,
    hypervolume_figure,
    importance_figure,
)
from nas.report.final import FinalEvaluation
from nas.report.networks import networks_section
from nas.search.objectives import ACCURACY
from nas.search.records import ACCURACY_HIGH, ACCURACY_LOW, VAL_IMAGES
from nas.text import plural

MAX_FILENAME = 100

SORT_JS = """
document.querySelectorAll("table.sortable th").forEach(function (th) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
    var asc = th.dataset.dir !== "asc";
    table.querySelectorAll("th").forEach(function (h) { delete h.dataset.dir; });
    th.dataset.dir = asc ? "asc" : "desc";
    var key = function (row) {
      var cell = row.cells[col];
      return cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent;
    };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
      var c = (x === "") - (y === "");
      if (c === 0) { c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y); return asc ? c : -c; }
      return c;
    }).forEach(function (row) { body.appendChild(row); });
  });
});
"""

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin-bottom: 1em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
table.sortable th { cursor: pointer; background: #f3f3f3; }
table.sortable th[data-dir="asc"]::after { content: " \\25B2"; }
table.sortable th[data-dir="desc"]::after { content: " \\25BC"; }
.scroll { overflow-x: auto; }
.nets { display: flex; flex-wrap: wrap; gap: 1em; }
figure.net { margin: 0; width: 600px; max-width: 100%; }
figure.net svg { width: 100%; height: auto; }
figure.net figcaption { font-size: 0.85em; color: #444; }
"""


def _e(value: Any) -> str:
    return html.escape(fmt(value))


def _prose(text: str) -> str:
    """Escaped text whose `backquoted` words (commands) show as code, not as backquotes."""
    return re.sub(r"`([^`<>]+)`", r"<code>\1</code>", html.escape(text))


def _final_section(final: FinalEvaluation, palette: dict[str, str], figure: _Figures) -> list[str]:
    published = [dataclasses.asdict(p) for p in final.published]
    return [
        "<h2>Final evaluation</h2>",
        f"<p>{_prose(final.note)} Each network was trained again on train+validation once per seed, then measured "
        "once on the test split: mean and sample standard deviation over the seeds (<code>nas finalize</code>, "
        "also in runs/&lt;study&gt;/final.csv).</p>",
        _table([row.to_dict() for row in final.rows]),
        figure(final_figure(final, palette)),
        *(["<h3>Published results</h3>", _table(published)] if published else []),
    ]


class _Figures:
    """Turns figures into page pieces; only the first carries plotly.js."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, fig: go.Figure) -> str:
        piece = fig.to_html(
            full_html=False, include_plotlyjs=self.count == 0, config={"displaylogo": False, "responsive": True}
        )
        self.count += 1
        return str(piece)


@dataclass(frozen=True)
class _Shown:
    """A table cell shown as `text` and sorted by `sort`."""

    text: str
    sort: float


def _trial_rows(data: ReportData) -> list[dict[str, Any]]:
    """The trials table as shown: each accuracy with its interval in one cell, "91.2% (88.0-93.6)"; the split
    size only when it differs between trials (otherwise the sentence at the top gives it)."""
    rows = []
    for row in data.table:
        row = dict(row)
        acc, low, high = row.get(ACCURACY), row.pop(ACCURACY_LOW, None), row.pop(ACCURACY_HIGH, None)
        if acc is not None and low is not None and high is not None:
            row[ACCURACY] = _Shown(f"{acc:.1%} ({100 * low:.1f}-{100 * high:.1f})", acc)
        if len(data.val_images) <= 1:
            row.pop(VAL_IMAGES, None)
        rows.append(row)
    return rows


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
            if isinstance(value, _Shown):
                cells.append(f'<td data-sort="{value.sort!r}">{html.escape(value.text)}</td>')
                continue
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            sort = f' data-sort="{float(value)!r}"' if numeric else ""
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
    palette = colours(group_of(p) for panel in data.panels for p in panel.points)
    objectives = ", ".join(f"{n} ({d})" for n, d in zip(data.objectives, data.directions, strict=True))
    parts = [
        f"<h1>Study {_e(data.study_name)}</h1>",
        f"<p>Objectives: {html.escape(objectives)}. {plural(len(data.table), 'trial')}; "
        f"Pareto set over all objectives (feasible trials): {_e(list(data.pareto_numbers)) or 'empty'}.</p>",
        f"<p>{html.escape(resolution(data.val_images))}</p>",
    ]
    parts.extend(connectivity_section(data=data, figure=figure))
    if data.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in data.notes) + "</ul>")
    parts.append("<h2>Pareto fronts</h2>")
    parts.append(
        "<p>Every feasible trial, coloured by connectivity mode (baselines are stars); each mode's own front is "
        "a thin step line in its colour, the overall front the thick black one. Error bars on the front points "
        "(and baselines) are the 95% intervals of their accuracies.</p>"
    )
    parts.extend(figure(front_figure(panel, palette)) for panel in data.panels)
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
    has_curves = any(data.learning_curves.values())
    parts.append(figure(curves_figure(data)) if has_curves else "<p>No per-epoch history for the Pareto trials.</p>")
    parts.append("<h2>All trials</h2><p>Click a column header to sort.</p>")
    parts.append(_table(_trial_rows(data)))
    if data.ablation is not None:
        parts.append("<h2>Ablation</h2>")
        parts.append(_table(data.ablation))
    if data.final is not None:
        parts.extend(_final_section(data.final, palette, figure))
    parts.append("<h2>Provenance</h2>")
    parts.append(_key_values(data.provenance))
    title = html.escape(f"densenas report: {data.study_name}")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(parts)
        + f"\n<script>{SORT_JS}</script>\n</body>\n</html>\n"
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
    page = render(data)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".report-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is for reading
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

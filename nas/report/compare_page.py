"""Draws a `Comparison` into `compare.html`: one offline file (plotly.js inlined once) beside the studies' reports.

Each study keeps one colour and one marker shape on every chart, so the page reads without colour
alone. Every string that came from a study (labels, names, modes) is HTML-escaped, and the links to
the studies' own reports must be relative, so the folder can be moved or mailed as a whole.
"""

from __future__ import annotations

import html
import urllib.parse
from pathlib import Path

import plotly.graph_objects as go

from nas.arch.cost import human
from nas.errors import bad_value
from nas.files import write_text_atomic
from nas.report.compare import ComparedStudy, Comparison, Network
from nas.report.page import ERRORS_JS
from nas.search.spec.objectives import ACCURACY, OBJECTIVES
from nas.text import plural

FILENAME = "compare.html"
# Plotly's qualitative D3 colours and distinct marker shapes: study i takes entry i (cycling).
STUDY_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
# Plotly's marker symbol and the same shape as a character, for the table's key.
STUDY_SYMBOLS = (
    ("circle", "\u25cf"),
    ("square", "\u25a0"),
    ("diamond", "\u25c6"),
    ("triangle-up", "\u25b2"),
    ("x", "\u2716"),
    ("cross", "\u271a"),
    ("triangle-down", "\u25bc"),
    ("star", "\u2605"),
)

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1280px; }
table { border-collapse: collapse; font-size: 0.9em; margin-bottom: 1em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; }
"""


# nasPlotted() runs after plotly draws each chart: counts it, and once all are drawn records the page's widths.
PLOTTED_JS = (
    "function nasWidths(){var d=document.documentElement;"
    "document.body.dataset.widths=JSON.stringify({window:d.clientWidth,page:d.scrollWidth});}"
    "function nasPlotted(){var b=document.body,n=Number(b.dataset.plotted)+1;"
    "if(n===Number(b.dataset.charts))nasWidths();b.dataset.plotted=String(n);}"
)


def style(index: int) -> tuple[str, str, str]:
    """(colour, plotly marker symbol, the same shape as a character) of the study at `index`."""
    symbol, glyph = STUDY_SYMBOLS[index % len(STUDY_SYMBOLS)]
    return STUDY_COLOURS[index % len(STUDY_COLOURS)], symbol, glyph


def _label(cost: str) -> str:
    spec = OBJECTIVES.get(cost)
    return spec.label if spec is not None else cost


def _hover(study: ComparedStudy, network: Network, cost: str, *, ties: int = 0) -> str:
    lines = [
        f"study: {study.label}",
        f"trial {network.number}: {network.group}",
        f"validation accuracy: {network.values[ACCURACY]:.4g}",
        f"{_label(cost)}: {network.values[cost]:,.6g}",
    ]
    if network.reuses:
        lines.append(f"reused by {plural(network.reuses, 'later trial')}")
    if ties:
        lines.append(f"and {plural(ties, 'other network')} with the same result")
    return "<br>".join(html.escape(line) for line in lines)


def _round(value: float) -> float:
    """5 significant digits: what a chart can show, and a third of plotly's 17-digit JSON."""
    return float(f"{value:.5g}")


def _ties(networks: list[Network], cost: str) -> list[list[Network]]:
    """Networks with the same cost and accuracy (as shown) together, in first-seen order: a large or padded
    study repeats results thousands of times, and one marker each is most of a page's bytes."""
    tied: dict[tuple[float, float], list[Network]] = {}
    for n in networks:
        tied.setdefault((_round(n.values[cost]), _round(n.values[ACCURACY])), []).append(n)
    return list(tied.values())


def _dominated(study: ComparedStudy, networks: list[Network], cost: str) -> tuple[list[float], list[float], list[str]]:
    """The study's dominated networks as points, one marker per distinct result, each with a one-line hover."""
    xs, ys, hovers = [], [], []
    for members in _ties(networks, cost):
        x, y = _round(members[0].values[cost]), _round(members[0].values[ACCURACY])
        numbers = ", ".join(str(n.number) for n in members[:5]) + (f" +{len(members) - 5}" if len(members) > 5 else "")
        groups = ", ".join(dict.fromkeys(n.group for n in members))
        xs.append(x)
        ys.append(y)
        hovers.append(html.escape(f"{study.label}: trial {numbers} ({groups}), {y:.1%}, {human(x)}"))
    return xs, ys, hovers


def comparison_figure(comparison: Comparison, cost: str) -> go.Figure:
    """Accuracy against `cost`: every study's feasible networks (faint) and its 2-D front as a step line."""
    fig = go.Figure()
    for index, study in enumerate(comparison.studies):
        colour, symbol, _ = style(index)
        group = html.escape(study.label)
        front = set(study.fronts.get(cost, ()))
        by_number = {n.number: n for n in study.networks}  # study.network(n) searches: n^2 at 20,000 trials
        rest = [by_number[n] for n in study.points.get(cost, ()) if n not in front]
        ordered = _ties([by_number[n] for n in study.fronts.get(cost, ())], cost)
        fig.add_trace(
            go.Scatter(
                x=[same[0].values[cost] for same in ordered],
                y=[same[0].values[ACCURACY] for same in ordered],
                mode="lines+markers",
                line={"color": colour, "shape": "hv", "width": 2},
                # Later studies draw smaller on top: two studies' equal networks both stay visible.
                marker={"color": colour, "symbol": symbol, "size": max(6, 13 - 2 * index), "opacity": 1.0},
                hovertext=[_hover(study, same[0], cost, ties=len(same) - 1) for same in ordered],
                hoverinfo="text",
                name=group,
                legendgroup=group,
                showlegend=True,
            )
        )
        if rest:
            xs, ys, hovers = _dominated(study, rest, cost)
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="markers",
                    marker={"color": colour, "symbol": symbol, "size": 7, "opacity": 0.35},
                    hovertext=hovers,
                    hoverinfo="text",
                    name=html.escape(f"{study.label} (dominated)"),
                    legendgroup=group,
                    showlegend=False,
                )
            )
    title = _label(cost)
    spec = OBJECTIVES.get(cost)
    fig.update_layout(
        title=html.escape(f"validation accuracy against {title}: each study's front"),
        xaxis={"title": html.escape(title), "type": "log" if spec is not None and spec.log_axis else "linear"},
        yaxis={"title": "validation accuracy"},
        height=520,
        legend={"orientation": "h", "yanchor": "top", "y": -0.15, "x": 0},
    )
    return fig


def _href(link: str) -> str:
    """A relative link, percent-encoded: no scheme, no host, no absolute path."""
    parts = urllib.parse.urlsplit(link)
    if not link or parts.scheme or parts.netloc or link.startswith(("/", "\\")):
        raise bad_value("write_comparison", "links", link, "relative links to the studies' reports")
    return html.escape(urllib.parse.quote(link, safe="/#?=&.-_~"))


def _table(comparison: Comparison, links: dict[str, str]) -> str:
    head = ("study", "study name", "objectives", "trials", "feasible networks", "twins folded", "front size")
    largest = max((s.hypervolume for s in comparison.studies if s.hypervolume is not None), default=None)
    rows = []
    for index, s in enumerate(comparison.studies):
        colour, _, glyph = style(index)
        name = html.escape(s.label)
        cell = f'<a href="{_href(links[s.label])}">{name}</a>' if s.label in links else name
        volume = f"{s.hypervolume:.6g}" if s.hypervolume is not None else "not computed"
        share = f"{s.hypervolume / largest:.3f}" if s.hypervolume is not None and largest else ""
        numbers = (s.trials, len(s.networks), s.twins, len(s.front))
        rows.append(
            f'<tr><td><span style="color:{colour}">{glyph}</span> {cell}</td>'
            f"<td>{html.escape(s.study_name)}</td><td>{html.escape(', '.join(s.objectives))}</td>"
            + "".join(f'<td class="num">{n:,}</td>' for n in numbers)
            + f'<td class="num">{html.escape(volume)}</td><td class="num">{share}</td></tr>'
        )
    cells = "".join(f"<th>{h}</th>" for h in (*head, "hypervolume", "of the largest"))
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_comparison(comparison: Comparison, links: dict[str, str]) -> str:
    """The whole page as text."""
    shown = ", ".join(f"{n} ({d})" for n, d in zip(comparison.objectives, comparison.directions, strict=True))
    reference = ", ".join(
        f"{name}={v:.6g}" for name, v in zip(comparison.objectives, comparison.reference_point, strict=False)
    )
    labels = ", ".join(s.label for s in comparison.studies)
    parts = [
        f"<h1>Comparison of {plural(len(comparison.studies), 'study', 'studies')}</h1>",
        "<p>Each network counts once: a trial that reused another's result is folded into it. Each study's own "
        "report is linked from the table.</p>",
    ]
    if comparison.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in comparison.notes) + "</ul>")
    parts.append("<h2>Hypervolume</h2>")
    if comparison.reference_point:
        parts.append(
            f"<p>Over the objectives every study shares: {html.escape(shown)}, in minimisation form (accuracy "
            f"negated), each study against the same reference point {html.escape(reference)}: the worst value "
            "over all the studies' feasible networks plus 10% of the range. The front size counts the networks "
            "on the Pareto set over these objectives.</p>"
        )
    else:
        parts.append("<p>Not computed: no feasible network measured every shared objective (see notes).</p>")
    parts.append(_table(comparison, links))
    parts.append("<h2>Pareto fronts</h2>")
    if comparison.costs:
        parts.append(
            "<p>One chart per cost every study measured: each study's networks in its own colour and marker "
            "shape (faint: dominated within the study), its front as a step line.</p>"
        )
    else:
        parts.append("<p>No cost was measured by every study with a feasible network: nothing to overlay.</p>")
    for index, cost in enumerate(comparison.costs):
        piece = comparison_figure(comparison, cost).to_html(
            full_html=False,
            include_plotlyjs=index == 0,
            config={"displaylogo": False, "responsive": True},
            post_script="nasPlotted();",
        )
        parts.append(str(piece))
    if not comparison.costs:
        parts.append("<script>nasWidths();</script>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape('densenas comparison: ' + labels)}</title>\n<style>{CSS}</style>\n</head>\n"
        f'<body data-charts="{len(comparison.costs)}" data-plotted="0" data-errors="">\n'
        f"<script>{ERRORS_JS}{PLOTTED_JS}</script>\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )


def write_comparison(*, comparison: Comparison, out_dir: Path, links: dict[str, str]) -> Path:
    """Write out_dir/compare.html atomically (temporary file, then rename); return its path.

    `links`: study label -> the study's own report, relative to out_dir (as written beside it)."""
    unknown = sorted(set(links) - {s.label for s in comparison.studies})
    if unknown:
        raise bad_value("write_comparison", "links", unknown, "labels of the compared studies")
    page = render_comparison(comparison, links)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path=out_dir.resolve() / FILENAME, text=page)

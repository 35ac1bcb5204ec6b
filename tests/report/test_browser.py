"""The page's script in a real browser: headless Chromium loads a report offline and must draw every chart with
no script error, and the trial table must page, filter, sort and open details as the JSON table says. In a
1,280 px window no table of a report (the trial table of a study with many searched knobs and long names, the
final evaluation) and no part of the page may be wider than the window: the page records the widths it was laid
out at (body[data-widths]) and a screenshot must show the trial table's right edge. compare.html is checked the
same way: every chart plotted, no script error, no wider than the window.

Chromium (Debian's `chromium`) is not a Python dependency: without it these tests skip, saying so.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from nas.report.compare import compute_comparison
from nas.report.compare_page import write_comparison
from nas.report.data import compute_report_data
from nas.report.page import PAGE_ROWS, write_report
from nas.report.table import compact
from nas.search.results import study_attrs
from nas.search.spec.objectives import ACCURACY
from tests.report.page_parse import charts, traces_per_chart, trial_table
from tests.report.test_compare import other_study
from tests.report.test_final import run
from tests.report.test_report import EVIL, PROVENANCE, add, hand_study, new_study, optimized_study

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium to run the report's script headless (apt-get install chromium)"
)
optuna.logging.set_verbosity(optuna.logging.WARNING)

MODES = ["dense", "osp", "dense_residual", "residual", "plain"]
WINDOW = 1280  # px: the width every page is laid out at here, a laptop's
PRUNED = "Pareto-aware stop after epoch 1: val accuracy 20.83%, at most ~25.00% by epoch 3, below trial 0's 90.62%"

# Appended after report.js in a copy of the page: works the trial table's controls as a reader would and writes
# what each step shows into body[data-probe].
PROBE = """<script>
(function () {
  var out = {};
  function rows() {
    return Array.from(document.querySelectorAll("#trials tbody tr[data-row]")).map(function (tr) {
      return Number(tr.dataset.row);
    });
  }
  function text(id) { return document.getElementById(id).textContent; }
  function choose(id, value) {
    var select = document.getElementById(id);
    select.value = value;
    select.dispatchEvent(new Event("change"));
  }
  function go(where) { document.querySelector('#trial-controls button[data-go="' + where + '"]').click(); }
  function header(label) {
    Array.from(document.querySelectorAll("#trials thead th")).find(function (th) {
      return th.textContent === label;
    }).click();
  }
  out.first = {rows: rows(), page: text("trial-page"), count: text("trial-count")};
  out.cells = Array.from(document.querySelectorAll("#trials tbody tr")[0].cells).map(function (td) {
    return td.textContent;
  });
  go("next");
  out.next = {rows: rows(), page: text("trial-page")};
  go("last");
  out.last = {rows: rows(), page: text("trial-page"), count: text("trial-count")};
  choose("trial-status", "pruned");
  out.pruned = {rows: rows(), page: text("trial-page"), count: text("trial-count")};
  document.querySelector("#trials tbody tr button.open").click();
  var details = document.querySelector("#trials tbody tr.details");
  out.details = details ? details.textContent : null;
  choose("trial-status", "");
  choose("trial-group", "plain");
  out.plain = {rows: rows(), count: text("trial-count")};
  choose("trial-group", "");
  var search = document.getElementById("trial-search");
  search.value = "PARETO-aware";
  search.dispatchEvent(new Event("input"));
  out.found = {rows: rows(), count: text("trial-count")};
  search.value = "";
  search.dispatchEvent(new Event("input"));
  header("validation accuracy");
  out.ascending = rows();
  header("validation accuracy");
  out.descending = rows();
  document.body.dataset.probe = JSON.stringify(out);
})();
</script>
"""


def chromium(page: Path, profile: Path, *options: str) -> str:
    """Chromium's output for the page once its scripts ran (10 s of virtual time) in a WINDOW px wide window."""
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        *options,
        page.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM after the page's scripts ran, as Chromium serialises it (a window of WINDOW x 1000 px, with its
    vertical scroll bar, as a reader's)."""
    return chromium(page, profile, f"--window-size={WINDOW},1000", "--dump-dom")


def too_wide(dom: str) -> dict[str, int]:
    """What the page laid out wider than its window (body[data-widths]): the page, or a table by its id or the
    heading above it, with its right edge in px; {} when everything fits."""
    widths = json.loads(body_attributes(dom)["data-widths"])
    assert WINDOW - 20 <= widths["window"] <= WINDOW  # less a scroll bar
    over = {name: right for name, right in widths.get("tables", []) if right > widths["window"]}
    return {"page": widths["page"], **over} if widths["page"] > widths["window"] else over


def body_attributes(dom: str) -> dict[str, str]:
    match = re.search(r"<body([^>]*)>", dom)
    assert match is not None
    return {k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', match.group(1))}


def drawn_charts(dom: str) -> list[tuple[int, int]]:
    """(traces, points) of each chart, as report.js recorded them once plotly drew it."""
    found = re.findall(r'<div class="chart[^"]*" id="chart-(\d+)" data-traces="(\d+)" data-points="(\d+)"', dom)
    return [(int(t), int(p)) for _, t, p in sorted(found, key=lambda f: int(f[0]))]


def expected_charts(page: str) -> list[tuple[int, int]]:
    return [(len(ts), sum(len(t.get("x") or []) for t in ts)) for ts in traces_per_chart(page)]


def paged_study() -> optuna.Study:
    """250 trials of five modes on a 96-image split, every tenth stopped early: three pages of the table."""
    study = new_study("paged")
    study.set_user_attr("provenance", {**PROVENANCE, "val_images": 96})
    for i in range(250):
        acc = (20 + (i * 37) % 70) / 96
        if i % 10 == 9:
            add(study, status="pruned", state=TrialState.PRUNED, budget=None, reason=PRUNED, acc=acc)
        else:
            add(study, mode=MODES[i % 5], k=4 + i % 40, acc=acc, flops=1e5 * (1 + i % 50), params=1e3 * (1 + i % 7))
    return study


@pytest.mark.parametrize("which", ["hostile", "optimized"])
def test_every_chart_is_drawn_without_a_script_error(which: str, tmp_path: Path) -> None:
    study = {"hostile": lambda: hand_study(name=EVIL), "optimized": optimized_study}
    rows = [{"variant": EVIL, "val_accuracy": 0.85}]
    path = write_report(data=compute_report_data(study=study[which](), ablation=rows), out_dir=tmp_path)
    page = path.read_text(encoding="utf-8")
    dom = dump_dom(path, tmp_path / "profile")
    body = body_attributes(dom)
    assert body["data-charts"] == body["data-plotted"] == str(len(charts(page)))
    assert body["data-errors"] == ""
    assert drawn_charts(dom) == expected_charts(page)  # report.js built the traces page_parse builds
    table = trial_table(page)
    assert "page 1 of 1</span>" in dom and f"trials 1-{len(table['number'])} of {len(table['number'])}" in dom
    assert len(re.findall(r'<tr data-row="\d+">', dom)) == len(table["number"])
    for element in ('<select id="trial-group">', '<select id="trial-status">', '<input id="trial-search"'):
        assert element in dom
    assert "<script>alert(1)" not in dom.split('id="nas-trials"')[0]  # the hostile name never became markup
    assert "<img src=x" not in dom and "<b>slow" not in dom
    assert too_wide(dom) == {}


def test_the_trial_table_pages_filters_sorts_and_opens_details(tmp_path: Path) -> None:
    data = compute_report_data(study=paged_study())
    path = write_report(data=data, out_dir=tmp_path)
    page = path.read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = dump_dom(probed, tmp_path / "profile")
    body = body_attributes(dom)
    assert body["data-errors"] == "" and body["data-plotted"] == body["data-charts"]
    out: dict[str, Any] = json.loads(body["data-probe"])
    table = trial_table(page)
    n = len(table["number"])
    assert out["first"] == {"rows": list(range(PAGE_ROWS)), "page": "page 1 of 3", "count": "trials 1-100 of 250"}
    assert out["next"] == {"rows": list(range(100, 200)), "page": "page 2 of 3"}
    assert out["last"] == {"rows": list(range(200, 250)), "page": "page 3 of 3", "count": "trials 201-250 of 250"}
    pruned = [r for r in range(n) if table["status"][r] == "pruned"]
    assert out["pruned"] == {"rows": pruned, "page": "page 1 of 1", "count": "trials 1-25 of 25 (250 in all)"}
    assert out["details"] is not None and PRUNED in out["details"]
    assert "params10K (10,000)" in out["details"] and "block_config3,3" in out["details"]  # dt then dd
    plain = [r for r in range(n) if table["mode"][r] == "plain"]
    assert out["plain"] == {"rows": plain, "count": f"trials 1-{len(plain)} of {len(plain)} (250 in all)"}
    assert out["found"] == {"rows": pruned, "count": "trials 1-25 of 25 (250 in all)"}  # the search reads reasons
    acc = table[ACCURACY]
    assert out["ascending"] == sorted(range(n), key=lambda r: (acc[r], r))[:PAGE_ROWS]
    assert out["descending"] == sorted(range(n), key=lambda r: (-acc[r], r))[:PAGE_ROWS]
    # The first row as shown: trial, status, network, accuracy with its interval, the cost objective, the knob
    # that varies; params (no objective here) only in the details row.
    low, high = table["val_accuracy_low"][0], table["val_accuracy_high"][0]
    assert (low, high) == (compact(data.table[0]["val_accuracy_low"]), compact(data.table[0]["val_accuracy_high"]))
    shown = f"{100 * acc[0]:.1f}% ({100 * low:.1f}-{100 * high:.1f})"
    assert out["cells"] == ["▸ 0", "complete", "● dense", shown, "100K", "4"]


LONG_REASON = "over budget before training: 11,173,962 parameters > max_params 2,000,000 and 1.82G FLOPs > max_flops 1G"


def wide_study(objectives: tuple[str, ...] = ("val_accuracy", "flops", "params")) -> optuna.Study:
    """A realistic wide table: two cost objectives, eight searched knobs (a long block config, two stems), long
    baseline names, long reasons, every measured cost, and a final evaluation on a dataset with published results."""
    study = new_study("wide", objectives)
    study.set_user_attr("provenance", {**PROVENANCE, "val_images": 10_000})
    for i in range(18):
        mode = MODES[i % len(MODES)]
        arch = {
            "connectivity": mode,
            "growth_rate": 12 + 4 * (i % 6),
            "bn_size": (0, 2, 4)[i % 3],
            "compression": 0.35 + 0.0371 * i,
            "block_config": [[6, 12, 24, 16], [3, 3, 3], [4, 8, 16, 12]][i % 3],
            "init_features": 16 + 8 * (i % 5),
            "stem": ("cifar", "imagenet")[i % 2],
            "width_multiplier": 1.0 + 0.137 * (i % 7),
            "drop_rate": 0.0171 * (i % 4),
        }
        metrics = {
            "val_accuracy": 0.8 + i / 200,
            "flops": 1.234567e8 * (1 + i),
            "params": 123_457.0 * (1 + i),
            "latency_ms": 1.234 + i,
            "peak_memory": 2**30 * (1.5 + i),
            "train_time": 1234.5 * (1 + i),
        }
        values = {"acc": metrics["val_accuracy"], "flops": metrics["flops"], "params": metrics["params"]}
        add(study, mode=mode, arch=arch, metrics=metrics, **values)
    tv = {"connectivity": "baseline", "baseline": "torchvision:resnet18", "arch": {"model": "torchvision:resnet18"}}
    measured = {"latency_ms": 3.21, "peak_memory": 2**30 * 2.5, "train_time": 4321.0}
    tv_metrics = {"val_accuracy": 0.91, "flops": 1.82e9, "params": 11_173_962, **measured}
    add(study, mode="residual", acc=0.91, flops=1.82e9, params=11_173_962, metrics=tv_metrics, **tv)
    add(study, status="rejected", acc=0.0, budget=9e6, reason=LONG_REASON, baseline="densenet_bc_100_k12")
    add(study, status="pruned", state=TrialState.PRUNED, budget=None, reason=PRUNED)
    add(study, status="failed", state=TrialState.FAIL, budget=None, reason="CUDA out of memory. " + "x" * 200)
    for trial, seed, accuracy in [(1, 0, 0.7042), (1, 1, 0.7121), (18, 0, 0.9312), (18, 1, 0.9351)]:
        final = run(trial, seed, accuracy)
        study_attrs.write_final_run(study, trial=trial, seed=seed, recipe_key="k5", run=final.to_dict())
    return study


def test_a_study_with_every_cost_as_an_objective_still_fits(tmp_path: Path) -> None:
    """Five objectives: three more cost columns beside the eight knobs (1,261 px of 1,265 when written)."""
    every = ("val_accuracy", "flops", "params", "latency_ms", "peak_memory", "train_time")
    data = compute_report_data(study=wide_study(every))
    assert [c for c in data.objectives] == list(every)
    from nas.report.table import MAX_COLUMNS
    from nas.report.table import trial_table as table_of

    table = table_of(data)  # 4 fixed columns, 5 costs, 6 of the 8 varying knobs; the other 2 in each details row
    assert len(table.columns) == MAX_COLUMNS
    assert {"width_multiplier", "drop_rate"} <= {c.key for c in table.details}
    dom = dump_dom(write_report(data=data, out_dir=tmp_path), tmp_path / "profile")
    assert body_attributes(dom)["data-errors"] == "" and too_wide(dom) == {}


def ablation_rows() -> list[dict[str, object]]:
    """`nas ablate`'s table as it stores it: six modes, two solved widths, every measured cost (1,716 px wide before
    the page merged its columns)."""
    rows: list[dict[str, object]] = []
    for i, mode in enumerate(MODES):
        rows.append(
            {"mode": mode, "growth_rate": 12 + i, "init_features": 24 + 2 * i, "params": 498_765 + i,
             "flops": 123_456_789 + i, "cost_error": 0.0123, "within_tolerance": i != 2, "seeds": 3,
             "val_accuracy_mean": 0.9123, "val_accuracy_std": 0.0041, "ci95_low": 0.9021, "ci95_high": 0.9225,
             "latency_ms_mean": 12.345, "peak_memory_mean": 123_456_789.0, "train_time_mean": 1234.5}
        )  # fmt: skip
    return rows


def test_a_wide_study_s_tables_fit_a_1280_px_window(tmp_path: Path) -> None:
    data = compute_report_data(study=wide_study(), ablation=ablation_rows())
    assert data.final is not None and data.final.published
    path = write_report(data=data, out_dir=tmp_path)
    dom = dump_dom(path, tmp_path / "profile")
    body = body_attributes(dom)
    assert body["data-errors"] == "" and body["data-plotted"] == body["data-charts"]
    names = [name for name, _ in json.loads(body["data-widths"])["tables"]]
    assert {"trials", "Ablation", "Final evaluation", "Published results"} <= set(names)
    assert too_wide(dom) == {}
    # Every knob was searched: each has a column, and the first row reads in units.
    page = path.read_text(encoding="utf-8")
    header = re.search(r'<table id="trials" class="trials"><thead><tr>(.*?)</tr>', dom)
    assert header is not None
    assert [html.unescape(h).replace("\u200b", "") for h in re.findall(r"<th[^>]*>(.*?)</th>", header.group(1))] == [
        "trial", "status", "network", "validation accuracy", "flops", "params", "growth_rate",
        "bn_size", "compression", "block_config", "init_features", "stem", "width_multiplier", "drop_rate",
    ]  # fmt: skip
    first = re.search(r'<tr data-row="0">(.*?)</tr>', dom)
    assert first is not None
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", first.group(1))]
    assert cells[4:6] == ["123M", "123K"] and trial_table(page)["flops"][0] == 123_456_700
    assert '<td class="num" title="123,456,700">123M</td>' in dom  # the exact number on hover
    # A screenshot as tall as the page, the trial table outlined: its right edge must be on screen.
    outlined = tmp_path / "outlined.html"
    mark = "<style>#trials { outline: 3px solid rgb(255, 0, 255); outline-offset: -3px; }</style>"
    outlined.write_text(page.replace("</head>", mark + "</head>"), encoding="utf-8")
    shot = tmp_path / "shot.png"
    height = json.loads(body["data-widths"])["height"] + 200
    chromium(outlined, tmp_path / "profile", f"--window-size={WINDOW},{height}", f"--screenshot={shot}")
    left, right = outline_edges(shot)
    assert left > 0 and left + WINDOW // 2 < right < WINDOW - 10, (left, right)  # both edges, on screen


def outline_edges(shot: Path) -> tuple[int, int]:
    """The x of the leftmost and rightmost magenta columns of a screenshot that run as tall as the outlined table."""
    from PIL import Image

    with Image.open(shot) as image:
        pixels = image.convert("RGB")
        width, height = pixels.size
        data = pixels.load()
        assert data is not None
        magenta = [sum(1 for y in range(0, height, 2) if data[x, y] == (255, 0, 255)) for x in range(width)]
    tallest = max(magenta)
    assert tallest > 20, "the outlined trial table is not in the screenshot"
    columns = [x for x, n in enumerate(magenta) if n >= tallest * 0.9]
    return columns[0], columns[-1]


def test_the_comparison_page_plots_every_chart_without_a_script_error(tmp_path: Path) -> None:
    comparison = compute_comparison(studies=[("a", hand_study("a")), ("b " + EVIL, other_study())])
    path = write_comparison(comparison=comparison, out_dir=tmp_path, links={"a": "a.html"})
    dom = dump_dom(path, tmp_path / "profile")
    body = body_attributes(dom)
    assert body["data-errors"] == ""
    assert body["data-charts"] == body["data-plotted"] == str(len(comparison.costs)) == "2"
    assert len(re.findall(r'class="plotly-graph-div', dom)) == 2
    assert too_wide(dom) == {}
    assert "<script>alert(1)" not in dom

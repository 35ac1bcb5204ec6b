"""The page's script in a real browser: headless Chromium loads a report offline and must draw every chart with
no script error, and the trial table must page, filter, sort and open details as the JSON table says.

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

from nas.report.data import compute_report_data
from nas.report.page import PAGE_ROWS, write_report
from nas.report.table import compact
from nas.search.objectives import ACCURACY
from tests.report.page_parse import charts, traces_per_chart, trial_table
from tests.report.test_report import EVIL, PROVENANCE, add, hand_study, new_study, optimized_study

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium to run the report's script headless (apt-get install chromium)"
)
optuna.logging.set_verbosity(optuna.logging.WARNING)

MODES = ["dense", "osp", "dense_residual", "residual", "plain"]
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


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM after the page's scripts ran (10 s of virtual time), as Chromium serialises it."""
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


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
    plain = [r for r in range(n) if table["mode"][r] == "plain"]
    assert out["plain"] == {"rows": plain, "count": f"trials 1-{len(plain)} of {len(plain)} (250 in all)"}
    assert out["found"] == {"rows": pruned, "count": "trials 1-25 of 25 (250 in all)"}  # the search reads reasons
    acc = table[ACCURACY]
    assert out["ascending"] == sorted(range(n), key=lambda r: (acc[r], r))[:PAGE_ROWS]
    assert out["descending"] == sorted(range(n), key=lambda r: (-acc[r], r))[:PAGE_ROWS]
    # The first row as shown: trial, status, network, accuracy with its interval, costs, knobs.
    low, high = table["val_accuracy_low"][0], table["val_accuracy_high"][0]
    assert (low, high) == (compact(data.table[0]["val_accuracy_low"]), compact(data.table[0]["val_accuracy_high"]))
    shown = f"{100 * acc[0]:.1f}% ({100 * low:.1f}-{100 * high:.1f})"
    assert out["cells"][:7] == ["▸ 0", "complete", "● dense", shown, "100,000", "1,000", "4"]

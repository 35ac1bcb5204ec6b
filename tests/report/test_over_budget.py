"""Baselines over the study's budgets are drawn (hollow, on no front) and listed as over budget; modes the
search never sampled are named; a chart's front says whose front it is."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from nas.report.connectivity import Absent, connectivity_data
from nas.report.connectivity_html import connectivity_section
from nas.report.data import compute_report_data
from nas.report.figures import FRONT_NAME, front_chart
from tests.report.test_report import add, new_study

SPACE = {
    "name": "s",
    "description": "",
    "fixed": {},
    "knobs": [{"name": "connectivity", "choices": ["dense", "osp", "plain"]}],
}


def constrained_study(objectives: tuple[str, ...] = ("val_accuracy", "flops")) -> optuna.Study:
    """max_params = 50K: two searched networks under it, ResNet-18 trained over it, one baseline out of memory."""
    study = new_study("over", objectives)
    study.set_user_attr("settings", {"space": SPACE})
    add(study, mode="dense", acc=0.90, flops=4e6, params=3e4, budget=None, constraints_of={"params": -2e4})  # 0
    add(study, mode="osp", acc=0.85, flops=2e6, params=2e4, budget=None, constraints_of={"params": -3e4})  # 1
    add(  # 2: the reference the reader asked for, 11.2M parameters
        study,
        mode="residual",
        acc=0.97,
        flops=5e8,
        params=11_175_370,
        budget=None,
        constraints_of={"params": 11_125_370, "memory": -1.0},
        baseline="torchvision:resnet18",
    )
    add(  # 3: out of memory: nothing measured worth drawing
        study,
        status="infeasible",
        mode="dense",
        acc=0.0,
        flops=9e9,
        params=9e7,
        budget=None,
        constraints_of={"params": 1.0, "memory": 1.0},
        baseline="densenet201",
    )
    add(
        study,
        status="rejected",
        mode="osp",
        acc=0.0,
        flops=1e3,
        params=9e5,
        budget=None,
        constraints_of={"params": 1.0},
    )
    return study


def test_an_over_budget_baseline_is_drawn_hollow_on_no_front_and_noted() -> None:
    study = constrained_study()
    data = compute_report_data(study=study)
    assert data.pareto_numbers == tuple(sorted(t.number for t in study.best_trials)) == (0, 1)
    for panel in data.panels:
        over = {p.number: p.over for p in panel.points if p.over}
        assert over == {2: ("max_params",)}  # ResNet-18 is there; the out-of-memory baseline is not
        assert 2 not in panel.pareto and all(2 not in front for front in panel.mode_fronts.values())
        assert 3 not in {p.number for p in panel.points} and 4 not in {p.number for p in panel.points}
        chart = front_chart(panel, {n: n for n in range(5)})
        assert chart.over == ((2, "max_params"),)
        assert 2 not in chart.dominated and all(2 not in f.rows for f in chart.fronts)
    assert any("torchvision:resnet18 (trial 2) is over the study's max_params" in n for n in data.notes)
    point = next(p for p in data.panels[0].points if p.number == 2)
    assert point.hover["over"] == "max_params"
    rows = {row["number"]: row for row in data.table}
    assert rows[2]["status"] == "complete"  # and its status cell says why it is on no front
    assert rows[2]["reason"] == "over max_params: trained as a reference, on no front"
    assert rows[3]["reason"] is None and rows[4]["reason"] is None  # the others keep their own reasons


def test_budget_tables_list_the_over_budget_baseline_and_name_the_modes_never_sampled() -> None:
    data = compute_report_data(study=constrained_study())
    section = connectivity_data(data=data)
    for table in section.tables:
        assert table.groups == ("dense", "osp")  # ResNet-18's 11.2M parameters stretch no budget level
        assert [(o.group, o.budgets, o.best.trial) for o in table.over] == [("torchvision:resnet18", "max_params", 2)]
        assert max(level.budget for level in table.levels) == {"flops": 4e6, "params": 3e4}[table.cost]
        assert table.absent == (Absent("plain", 0),)
    html = "".join(connectivity_section(data=data, figure=lambda fig: ""))
    assert "over the study&#x27;s max_params" in html or "over the study's max_params" in html
    assert "plain</th><td" in html and "never sampled by the search" in html


def test_a_mode_sampled_but_never_feasible_is_not_called_never_sampled() -> None:
    study = constrained_study()
    add(
        study,
        status="rejected",
        mode="plain",
        acc=0.0,
        flops=1e3,
        params=9e5,
        budget=None,
        constraints_of={"params": 1.0},
    )
    tables = connectivity_data(data=compute_report_data(study=study)).tables
    assert tables[0].absent == (Absent("plain", 1),)
    assert tables[0].absent[0].why("flops") == "1 trial, none feasible with flops measured"


def test_the_front_of_a_chart_that_is_not_the_studys_objectives_says_so() -> None:
    data = compute_report_data(study=constrained_study(("val_accuracy", "flops")))
    names: dict[str, Any] = {p.cost: front_chart(p, {n: n for n in range(5)}).front_name for p in data.panels}
    assert names["flops"] == FRONT_NAME
    assert names["params"] == "front of this chart only (accuracy vs params)"
    three = compute_report_data(study=constrained_study(("val_accuracy", "flops", "params")))
    assert {front_chart(p, {n: n for n in range(5)}).front_name for p in three.panels} == {
        "front of this chart only (accuracy vs flops)",
        "front of this chart only (accuracy vs params)",
    }


def test_a_cost_nobody_asked_for_gets_no_missing_panel_note_and_an_objective_does() -> None:
    assert not any("no panel" in n for n in compute_report_data(study=constrained_study()).notes)
    study = new_study("latency", ("val_accuracy", "latency_ms"))
    add(study, status="failed", state=TrialState.FAIL, budget=None, reason="loss is nan")
    assert "no panel for latency_ms: no feasible trial measured it" in compute_report_data(study=study).notes

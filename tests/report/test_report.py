"""Report data against Optuna's own answers, and the HTML page: offline, escaped, confined to out_dir."""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna._hypervolume import compute_hypervolume
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.storages.journal import JournalFileBackend
from optuna.study import StudyDirection
from optuna.trial import TrialState

from nas.report.data import (
    ACCURACY,
    FrontPanel,
    ReportData,
    compute_report_data,
    group_of,
    hypervolume,
    non_dominated,
)
from nas.report.page import render, safe_filename, script_json, write_report
from nas.search.spec.objectives import OBJECTIVES
from tests.report.page_parse import trial_table

optuna.logging.set_verbosity(optuna.logging.WARNING)

MODES = ["dense", "osp", "dense_residual", "residual", "plain"]
DISTRIBUTIONS = {"connectivity": CategoricalDistribution(MODES), "growth_rate": IntDistribution(4, 48)}
PROVENANCE = {"dataset": "digits", "split": "val (20%, seed 0)", "budget": "40 trials", "commit": "abc123"}
EVIL = "<script>alert(1)</script>"


def new_study(
    name: str = "unit", objectives: tuple[str, ...] = ("val_accuracy", "flops"), storage: Any = None
) -> optuna.Study:
    """A study as the runner makes it (in memory by default): directions and objective order from the schema."""
    directions = [StudyDirection[OBJECTIVES[o].direction.upper()] for o in objectives]
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(study_name=name, directions=directions, sampler=sampler, storage=storage)
    study.set_user_attr("objectives", list(objectives))
    study.set_user_attr("provenance", PROVENANCE)
    return study


def add(
    study: optuna.Study,
    *,
    status: str = "complete",
    mode: str = "dense",
    k: int = 12,
    acc: float = 0.5,
    flops: float = 1e6,
    params: float = 1e4,
    budget: float | None = -1.0,
    state: TrialState = TrialState.COMPLETE,
    reason: str | None = None,
    constraints_of: dict[str, float] | None = None,
    **attrs: Any,
) -> None:
    """One trial with the user attributes of nas/records.py; `budget` > 0 violates the constraint (or
    `constraints_of`: the trial's constraints by name, as the study stores them)."""
    metrics = {"val_accuracy": acc, "flops": flops, "params": params}
    objectives = study.user_attrs["objectives"]
    user_attrs: dict[str, Any] = {
        "status": status,
        "reason": reason,
        "connectivity": mode,
        "arch": {"connectivity": mode, "growth_rate": k, "block_config": [3, 3], "bn_size": 4},
        "arch_hash": f"h{mode}{k}",
        "metrics": metrics,
        "history": [{"epoch": e, "val_accuracy": acc * e / 3} for e in (1, 2, 3)],
        **attrs,
    }
    study.add_trial(
        optuna.trial.create_trial(
            state=state,
            # an objective the trial did not measure is inf, as the runner stores it (trial_objective._values)
            values=[{**metrics, **attrs.get("metrics", {})}.get(o, math.inf) for o in objectives]
            if state == TrialState.COMPLETE
            else None,
            params={"connectivity": mode, "growth_rate": k},
            distributions=DISTRIBUTIONS,
            user_attrs=user_attrs,
            constraints=constraints_of
            if constraints_of is not None
            else {"budget": budget}
            if budget is not None
            else None,
        )
    )


def hand_study(
    name: str = "unit", objectives: tuple[str, ...] = ("val_accuracy", "flops"), storage: Any = None
) -> optuna.Study:
    """Every status, a tie, a baseline, and an infeasible trial that would otherwise dominate all."""
    study = new_study(name, objectives, storage)
    add(study, mode="dense", k=12, acc=0.90, flops=4e6, params=3e4)  # 0
    add(study, mode="dense", k=24, acc=0.93, flops=9e6, params=8e4)  # 1
    add(study, mode="osp", k=12, acc=0.88, flops=2e6, params=2e4)  # 2
    add(study, mode="osp", k=16, acc=0.86, flops=3e6, params=1e4)  # 3: dominated in 2-D, not in 3-D
    add(study, mode="plain", k=8, acc=0.70, flops=1e6, params=5e4)  # 4
    add(study, mode="residual", k=8, acc=0.80, flops=5e6, params=6e4)  # 5: dominated
    add(study, status="reused", mode="dense", k=24, acc=0.93, flops=9e6, params=8e4, reused_from=1)  # 6: tie
    add(study, status="rejected", acc=0.99, flops=1e3, params=1e2, budget=2.0, reason="over the params budget")  # 7
    add(study, status="infeasible", acc=0.99, flops=1e3, params=1e2, budget=1.0, reason="out of memory")  # 8
    add(study, status="pruned", state=TrialState.PRUNED, budget=None, reason="<b>slow</b> & <img src=x onerror=z>")
    add(study, status="failed", state=TrialState.FAIL, budget=None, reason="non-finite loss nan at epoch 2")  # 10
    add(study, mode="dense", k=32, acc=0.95, flops=2e7, params=2e5, baseline="densenet121")  # 11
    add(study, status="running", state=TrialState.RUNNING, budget=None)  # 12
    return study


def optimized_study(n_trials: int = 40) -> optuna.Study:
    """A real optimize loop with a closed-form 'training': constraints, pruning, failures, latency."""
    study = new_study("optimized", ("val_accuracy", "flops", "params"))
    factor = {"dense": 1.0, "osp": 0.8, "dense_residual": 1.2, "residual": 0.6, "plain": 0.5}

    def objective(trial: optuna.Trial) -> tuple[float, float, float]:
        mode = trial.suggest_categorical("connectivity", MODES)
        k = trial.suggest_int("growth_rate", 4, 48)
        depth = trial.suggest_int("depth", 1, 8)
        flops = 1000.0 * k * k * depth * factor[mode]
        params = 50.0 * k * depth * (1 + factor[mode])
        acc = (1 - math.exp(-k * depth / 60)) * (0.7 + 0.3 * factor[mode] / 1.2)
        trial.set_user_attr("connectivity", mode)
        trial.set_user_attr("arch", {"connectivity": mode, "growth_rate": k, "block_config": [depth, depth]})
        trial.set_user_attr("history", [{"epoch": e, "val_accuracy": acc * e / 2} for e in (1, 2)])
        metrics = {"val_accuracy": acc, "flops": flops, "params": params}
        if trial.number % 3 == 0:
            metrics["latency_ms"] = flops / 1e5
        trial.set_user_attr("metrics", metrics)
        if depth == 8 and k > 30:
            trial.set_user_attr("status", "failed")
            trial.set_user_attr("reason", "non-finite loss")
            raise FloatingPointError("non-finite loss")
        if k < 6:
            trial.set_user_attr("status", "pruned")
            trial.set_user_attr("reason", "below the median at epoch 1")
            raise optuna.TrialPruned()
        over = params - 8000.0
        trial.set_constraint("params_budget", over)
        trial.set_user_attr("status", "rejected" if over > 0 else "complete")
        if over > 0:
            trial.set_user_attr("reason", f"params {params:.0f} over the budget of 8000")
        return acc, flops, params

    study.optimize(objective, n_trials=n_trials, catch=(FloatingPointError,))
    return study


@pytest.fixture(scope="module")
def optimized() -> tuple[optuna.Study, ReportData]:
    study = optimized_study()
    return study, compute_report_data(study=study)


def best_numbers(study: optuna.Study) -> tuple[int, ...]:
    """study.best_trials, a reused twin folded into the trial that trained its network (also on the front)."""
    best = {t.number: t.user_attrs.get("reused_from") for t in study.best_trials}
    return tuple(sorted(n for n, source in best.items() if source not in best))


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """(accuracy, cost): a is no worse in both and better in one."""
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def check_panel(panel: FrontPanel) -> None:
    xy = {p.number: (p.values[ACCURACY], p.values[panel.cost]) for p in panel.points}
    front = set(panel.pareto)
    assert front <= set(xy)
    for n in front:
        assert not any(dominates(xy[m], xy[n]) for m in xy), (panel.cost, n)
    for n in set(xy) - front:
        assert any(dominates(xy[m], xy[n]) for m in front), (panel.cost, n)
    costs = [xy[n][1] for n in panel.pareto]
    assert costs == sorted(costs)
    for group, numbers in panel.mode_fronts.items():
        assert set(numbers) <= {p.number for p in panel.points if group_of(p) == group}


@pytest.mark.parametrize("objectives", [("val_accuracy", "flops"), ("val_accuracy", "flops", "params")])
def test_pareto_numbers_match_optuna_with_constraints(objectives: tuple[str, ...]) -> None:
    study = hand_study(objectives=objectives)
    data = compute_report_data(study=study)
    assert data.pareto_numbers == best_numbers(study)
    assert not {7, 8} & set(data.pareto_numbers)  # infeasible, though they would dominate everything
    assert 1 in data.pareto_numbers and 6 not in data.pareto_numbers  # the reused twin folds into its source
    assert {1, 6} <= {t.number for t in study.best_trials}
    assert (3 in data.pareto_numbers) == (len(objectives) == 3)
    assert set(data.learning_curves) == set(data.pareto_numbers)
    assert [e for e, _ in data.learning_curves[1]] == [1, 2, 3]
    assert [a for _, a in data.learning_curves[1]] == pytest.approx([0.31, 0.62, 0.93])


def test_journal_file_study_read_back(tmp_path: Path) -> None:
    """Constraints and attributes survive a journal file, as a report on another machine reads it."""
    journal = JournalFileBackend(str(tmp_path / "study.log"))
    hand_study("journal", storage=optuna.storages.JournalStorage(journal))
    study = optuna.load_study(study_name="journal", storage=optuna.storages.JournalStorage(journal))
    data = compute_report_data(study=study)
    assert data.pareto_numbers == best_numbers(study) == (0, 1, 2, 4, 11)
    assert [row["status"] for row in data.table][7:9] == ["rejected", "infeasible"]


def test_optimized_study(optimized: tuple[optuna.Study, ReportData]) -> None:
    study, data = optimized
    states = {t.state for t in study.trials}
    assert {TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL} <= states
    assert any(t.constraints["params_budget"] > 0 for t in study.trials if t.state == TrialState.COMPLETE)
    assert data.pareto_numbers == best_numbers(study)
    assert data.proxies is None and "Zero-cost proxies" not in render(data)  # no scores stored: no section
    assert [p.cost for p in data.panels] == ["flops", "params", "latency_ms"]
    for panel in data.panels:
        check_panel(panel)
    assert set(data.importances) == {"val_accuracy", "flops", "params"}
    for importances in data.importances.values():
        assert set(importances) <= {"connectivity", "growth_rate", "depth"}
        assert sum(importances.values()) == pytest.approx(1.0)


def test_panels_and_mode_fronts() -> None:
    data = compute_report_data(study=hand_study())
    assert [p.cost for p in data.panels] == ["flops", "params"]
    assert not any("latency_ms" in n for n in data.notes)  # not an objective: no word on its missing panel
    for panel in data.panels:
        check_panel(panel)
        assert {p.number for p in panel.points} == {0, 1, 2, 3, 4, 5, 11}  # twin 6 folded into 1
        assert {p.number: p.reused_by for p in panel.points if p.reused_by} == {1: (6,)}
    flops = data.panels[0]
    assert flops.pareto == (4, 2, 0, 1, 11)
    assert flops.mode_fronts == {"dense": (0, 1), "densenet121": (11,), "osp": (2,), "plain": (4,), "residual": (5,)}


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_non_dominated_keeps_ties_as_the_pairwise_definition_does(dims: int) -> None:
    """Few distinct values, so many exact ties (as in a study padded with copies): each tie stays or goes together."""
    rng = np.random.default_rng(dims)
    for n in (0, 1, 2, 7, 300):
        loss = rng.integers(0, 6, size=(n, dims)).astype(float)
        expected = [not any(np.all(other <= row) and np.any(other < row) for other in loss) for row in loss]
        assert non_dominated(loss).tolist() == expected


@pytest.mark.parametrize("dims", [2, 3])
def test_hypervolume_matches_optuna(dims: int) -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 30, 200):
        points = rng.random((n, dims))
        reference = np.full(dims, 1.1)
        expected = compute_hypervolume(points, reference)
        assert hypervolume(points, reference) == pytest.approx(expected, rel=1e-9)
    assert hypervolume(np.empty((0, dims)), np.ones(dims)) == 0.0
    assert hypervolume(np.full((1, dims), 2.0), np.ones(dims)) == 0.0  # outside the box: no volume


@pytest.mark.parametrize("which", ["hand", "optimized"])
def test_hypervolume_history(which: str, optimized: tuple[optuna.Study, ReportData]) -> None:
    study, data = optimized if which == "optimized" else (hand_study(), None)
    data = data or compute_report_data(study=study)
    finished = [t.number for t in study.trials if t.state != TrialState.RUNNING]
    assert [n for n, _ in data.hypervolume_history] == finished
    volumes = [v for _, v in data.hypervolume_history]
    assert all(b >= a for a, b in itertools.pairwise(volumes))
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in data.directions])
    front = np.array([np.array(t.values) * signs for t in study.best_trials])
    reference = np.array(data.reference_point)
    assert np.all(front < reference)
    assert volumes[-1] == pytest.approx(compute_hypervolume(front, reference), rel=1e-9)


def test_table_has_every_trial_with_status_and_reason() -> None:
    study = hand_study()
    data = compute_report_data(study=study)
    rows = {row["number"]: row for row in data.table}
    assert sorted(rows) == [t.number for t in study.trials]
    assert len({tuple(row) for row in data.table}) == 1  # same columns in every row
    assert rows[7]["status"] == "rejected" and rows[7]["reason"] == "over the params budget"
    assert rows[8]["status"] == "infeasible" and not rows[8]["feasible"]
    assert rows[9]["status"] == "pruned" and "slow" in rows[9]["reason"]
    assert rows[10]["status"] == "failed" and rows[10]["reason"].startswith("non-finite")
    assert rows[12]["status"] == "running"
    assert rows[0]["block_config"] == "3,3" and rows[0]["constraints"] == "budget=-1"
    assert data.provenance["dataset"] == "digits" and data.provenance["trials_running"] == 1
    assert data.provenance["report_optuna_version"] == optuna.__version__


def test_nothing_feasible_still_reports(tmp_path: Path) -> None:
    study = new_study()
    add(study, status="failed", state=TrialState.FAIL, budget=None, reason="error")
    add(study, status="rejected", budget=1.0, reason="over budget")
    add(study, status="running", state=TrialState.RUNNING, budget=None)
    data = compute_report_data(study=study)
    assert data.pareto_numbers == best_numbers(study) == ()
    assert data.importances == {} and any("importance" in n for n in data.notes)
    assert data.hypervolume_history == ((0, 0.0), (1, 0.0)) and data.reference_point == ()
    assert all(not panel.points for panel in data.panels)
    assert len(data.table) == 3
    assert write_report(data=data, out_dir=tmp_path).read_text(encoding="utf-8").count("* plotly.js v") == 1

    empty = new_study("empty")
    assert compute_report_data(study=empty).table == ()


def test_html_is_offline_escaped_and_inside_out_dir(tmp_path: Path) -> None:
    study = hand_study(name=EVIL)
    rows = [{"variant": "no bottleneck", "val_accuracy": 0.91}, {"variant": EVIL, "val_accuracy": 0.85}]
    data = compute_report_data(study=study, ablation=rows)
    out = tmp_path / "reports"
    path = write_report(data=data, out_dir=out)
    assert path.parent == out.resolve() and path.name == "_script_alert_1___script_.html"
    text = path.read_text(encoding="utf-8")
    assert text.count("* plotly.js v") == 1
    assert not re.search(r"<script[^>]*src\s*=\s*[\"']?\s*(https?:)?//", text, re.IGNORECASE)
    assert EVIL not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<img src=x" not in text and "<b>slow</b>" not in text
    assert "FLOPs (fvcore: 1 multiply-add = 1)" in text
    assert "over the params budget" in text and "densenet121" in text and "no bottleneck" in text
    # The trial table's JSON keeps the reason whole, and no '<' of it reaches the page raw.
    assert trial_table(text)["reason"][9] == "<b>slow</b> & <img src=x onerror=z>"
    assert "\\u003cb\\u003eslow\\u003c/b\\u003e \\u0026 \\u003cimg" in text

    escaped = write_report(data=data, out_dir=out, filename="../../etc/passwd")
    assert escaped.parent == out.resolve() and escaped.exists()
    assert sorted(p.name for p in out.iterdir()) == sorted([path.name, escaped.name])  # no temporary files


def test_json_in_a_script_element_cannot_close_it_or_open_a_comment() -> None:
    value = {"name": "</script><script>alert(1)</script><!-- & \u2028", "n": [1, 0.5, None]}
    piece = script_json(value, "x")
    inner = piece.removeprefix('<script type="application/json" id="x">').removesuffix("</script>")
    assert "<" not in inner and ">" not in inner and "&" not in inner
    assert json.loads(inner) == value


def test_safe_filename() -> None:
    assert safe_filename("a b/c.html") == "a_b_c.html"
    assert safe_filename("...") == "report.html"
    long = safe_filename("x" * 300 + ".html")
    assert len(long) == 100 and long.endswith(".html")


def test_table_leaves_blank_the_knobs_a_network_ignores() -> None:
    """growth_rate means nothing to a residual network without a bottleneck, compression nothing to any
    width-preserving mode, width_multiplier nothing to a concatenating one: shown blank, not as if they mattered."""
    study = new_study()
    knobs = {"growth_rate": 32, "bn_size": 0, "compression": 0.5, "width_multiplier": 2.0, "block_config": [3, 3]}
    add(study, mode="residual", arch={"connectivity": "residual", **knobs})  # 0
    add(study, mode="residual", arch={"connectivity": "residual", **knobs, "bn_size": 4})  # 1: k sets the bottleneck
    add(study, mode="dense", arch={"connectivity": "dense", **knobs})  # 2
    add(study, mode="dense", arch={"connectivity": "dense", **knobs, "block_config": [3]})  # 3: no transition
    add(study, mode="dense", baseline="resnet18", arch={"model": "torchvision:resnet18", "connectivity": "baseline"})
    shown = ("growth_rate", "bn_size", "compression", "width_multiplier", "block_config")
    rows = [tuple(row[k] for k in shown) for row in compute_report_data(study=study).table]
    assert rows == [
        (None, 0, None, 2.0, "3,3"),
        (32, 4, None, 2.0, "3,3"),
        (32, 0, 0.5, None, "3,3"),
        (32, 0, None, None, "3"),
        (None, None, None, None, None),
    ]

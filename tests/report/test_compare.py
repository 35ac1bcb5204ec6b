"""The comparison of several studies against Optuna's own answers, and compare.html: offline, escaped, linked."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna._hypervolume import compute_hypervolume
from optuna.trial import TrialState

from nas.errors import UsageError
from nas.report.compare import Comparison, compute_comparison
from nas.report.compare_page import comparison_figure, write_comparison
from nas.search.spec.objectives import OBJECTIVES
from tests.report.test_report import EVIL, add, hand_study, new_study, optimized_study


def other_study(name: str = "b", objectives: tuple[str, ...] = ("val_accuracy", "flops")) -> optuna.Study:
    """A second study: a network reused twice, and a rejected trial that would dominate everything."""
    study = new_study(name, objectives)
    add(study, mode="residual", k=8, acc=0.85, flops=1.5e6, params=2e4)  # 0
    add(study, mode="residual", k=16, acc=0.91, flops=6e6, params=5e4)  # 1
    add(study, mode="plain", k=8, acc=0.60, flops=5e5, params=1e4)  # 2
    add(study, status="reused", mode="residual", k=16, acc=0.91, flops=6e6, params=5e4, reused_from=1)  # 3
    add(study, status="reused", mode="residual", k=16, acc=0.91, flops=6e6, params=5e4, reused_from=1)  # 4
    add(study, status="rejected", acc=0.99, flops=1e2, params=10, budget=3.0, reason="over budget")  # 5
    add(study, mode="dense", k=4, acc=0.55, flops=2e6, params=3e4)  # 6: dominated
    return study


def feasible_loss(study: optuna.Study, objectives: tuple[str, ...]) -> np.ndarray:
    """Every feasible trial's stored metrics in minimisation form (twins included: a copy adds no volume)."""
    rows = [
        [(-1 if OBJECTIVES[n].direction == "maximize" else 1) * t.user_attrs["metrics"][n] for n in objectives]
        for t in study.trials
        if t.state == TrialState.COMPLETE and all(c <= 0 for c in (t.constraints or {}).values())
    ]
    return np.array(rows, dtype=float).reshape(len(rows), len(objectives))


def expected_reference(*losses: np.ndarray) -> np.ndarray:
    union = np.vstack(losses)
    worst, best = union.max(axis=0), union.min(axis=0)
    return worst + 0.1 * (worst - best)


def best_loss(study: optuna.Study) -> np.ndarray:
    signs = np.array([-1.0 if d == optuna.study.StudyDirection.MAXIMIZE else 1.0 for d in study.directions])
    return np.array([np.array(t.values) * signs for t in study.best_trials])


def test_same_objectives_hypervolumes_equal_optunas_against_one_reference() -> None:
    a, b = hand_study("a"), other_study()
    comparison = compute_comparison(studies=[("a", a), ("b", b)])
    objectives = ("val_accuracy", "flops")
    assert comparison.objectives == objectives and comparison.directions == ("maximize", "minimize")
    reference = expected_reference(feasible_loss(a, objectives), feasible_loss(b, objectives))
    assert comparison.reference_point == pytest.approx(tuple(reference), rel=1e-12)
    for compared, study in zip(comparison.studies, (a, b), strict=True):
        assert compared.hypervolume == pytest.approx(compute_hypervolume(best_loss(study), reference), rel=1e-9)
    assert comparison.studies[0].hypervolume != comparison.studies[1].hypervolume
    assert comparison.notes == ()


def test_twins_are_folded_into_their_source() -> None:
    a, b = hand_study("a"), other_study()
    comparison = compute_comparison(studies=[("a", a), ("b", b)])
    first, second = comparison.studies
    # study.best_trials lists the twin beside its source; the comparison counts the network once.
    assert sorted(t.number for t in a.best_trials) == [0, 1, 2, 4, 6, 11]
    assert first.front == (0, 1, 2, 4, 11)
    assert sorted(t.number for t in b.best_trials) == [0, 1, 2, 3, 4]
    assert second.front == (0, 1, 2)
    assert [n.number for n in first.networks] == [0, 1, 2, 3, 4, 5, 11]
    assert [n.number for n in second.networks] == [0, 1, 2, 6]
    assert (first.twins, second.twins) == (1, 2)
    assert first.network(1).reuses == 1 and second.network(1).reuses == 2 and second.network(0).reuses == 0
    assert (first.trials, second.trials) == (13, 7)


def test_chart_points_are_each_studys_feasible_networks() -> None:
    a, b = hand_study("a"), other_study()
    comparison = compute_comparison(studies=[("a", a), ("b", b)])
    assert comparison.costs == ("flops", "params")  # counted for every trained network; no latency measured
    first, second = comparison.studies
    for cost in comparison.costs:
        assert first.points[cost] == (0, 1, 2, 3, 4, 5, 11)
        assert second.points[cost] == (0, 1, 2, 6)
    assert first.fronts["flops"] == (4, 2, 0, 1, 11)  # the single report's flops front, twin 6 folded
    assert second.fronts["flops"] == (2, 0, 1)
    assert second.fronts["params"] == (2, 0, 1)
    for cost in comparison.costs:
        traces = [t for t in comparison_figure(comparison, cost).data]
        for compared in comparison.studies:
            drawn = sorted(
                (float(x), float(y))
                for t in traces
                if t.legendgroup == compared.label
                for x, y in zip(t.x, t.y, strict=True)
            )
            networks = [compared.network(n) for n in compared.points[cost]]
            assert drawn == sorted((n.values[cost], n.values["val_accuracy"]) for n in networks)
            symbols = {t.marker.symbol for t in traces if t.legendgroup == compared.label}
            colours = {t.marker.color for t in traces if t.legendgroup == compared.label}
            assert len(symbols) == 1 and len(colours) == 1
        front_lines = [t for t in traces if t.mode == "lines+markers"]
        assert [t.line.shape for t in front_lines] == ["hv", "hv"]
        assert len({t.marker.symbol for t in front_lines}) == 2 and len({t.marker.color for t in front_lines}) == 2


def test_no_shared_cost_compares_on_the_counted_costs() -> None:
    a, b = hand_study("a", ("val_accuracy", "flops")), other_study("b", ("val_accuracy", "params"))
    comparison = compute_comparison(studies=[("a", a), ("b", b)])
    objectives = ("val_accuracy", "flops", "params")
    assert comparison.objectives == objectives
    reference = expected_reference(feasible_loss(a, objectives), feasible_loss(b, objectives))
    assert comparison.reference_point == pytest.approx(tuple(reference), rel=1e-12)
    for compared, study in zip(comparison.studies, (a, b), strict=True):
        expected = compute_hypervolume(feasible_loss(study, objectives), reference)
        assert compared.hypervolume == pytest.approx(expected, rel=1e-9)
    assert comparison.studies[0].front == (0, 1, 2, 3, 4, 11)  # 3 is on the 3-D front, 6 folded into 1
    assert comparison.notes == (  # no note says flops or params is left out: the fallback puts both in
        "the studies share no cost objective: the hypervolume is over val_accuracy, flops, params "
        "(counted for every trained network)",
    )


def test_three_objectives_and_a_cost_one_study_did_not_measure() -> None:
    objectives = ("val_accuracy", "flops", "params")
    a, b = optimized_study(), hand_study("hand", objectives)
    comparison = compute_comparison(studies=[("opt", a), ("hand", b)])
    assert comparison.objectives == objectives
    reference = expected_reference(feasible_loss(a, objectives), feasible_loss(b, objectives))
    assert comparison.reference_point == pytest.approx(tuple(reference), rel=1e-12)
    assert comparison.studies[0].hypervolume == pytest.approx(compute_hypervolume(best_loss(a), reference), rel=1e-9)
    assert comparison.studies[0].front == tuple(sorted(t.number for t in a.best_trials))
    assert comparison.costs == ("flops", "params")
    assert comparison.notes == ("no chart for latency_ms: not measured by every study (not by hand)",)


def test_a_study_without_feasible_trials_is_left_out_and_said() -> None:
    empty = new_study("empty")
    add(empty, status="rejected", budget=1.0, reason="over budget")
    comparison = compute_comparison(studies=[("a", hand_study("a")), ("empty", empty)])
    assert comparison.notes == ("empty: no feasible trial, left out of the charts and the hypervolume",)
    assert comparison.studies[1].hypervolume is None and comparison.studies[1].points == {"flops": (), "params": ()}
    reference = expected_reference(feasible_loss(hand_study("x"), ("val_accuracy", "flops")))
    assert comparison.reference_point == pytest.approx(tuple(reference), rel=1e-12)

    nothing = compute_comparison(studies=[("empty", empty), ("blank", new_study("blank"))])
    assert nothing.costs == () and nothing.reference_point == ()
    assert [s.hypervolume for s in nothing.studies] == [None, None]


@pytest.mark.parametrize("labels", [("a", "a"), ("a", "")])
def test_labels_must_be_distinct(labels: tuple[str, str]) -> None:
    with pytest.raises(UsageError, match=r"compute_comparison\.labels"):
        compute_comparison(studies=[(labels[0], hand_study("a")), (labels[1], other_study())])
    with pytest.raises(UsageError, match=r"compute_comparison\.studies"):
        compute_comparison(studies=[])


def comparison_page(tmp_path: Path) -> tuple[Comparison, Path]:
    comparison = compute_comparison(studies=[(EVIL, hand_study(EVIL)), ("b", other_study())])
    path = write_comparison(comparison=comparison, out_dir=tmp_path / "out", links={EVIL: "evil.html", "b": "b 1.html"})
    return comparison, path


def test_page_is_offline_escaped_and_linked(tmp_path: Path) -> None:
    comparison, path = comparison_page(tmp_path)
    assert path == (tmp_path / "out" / "compare.html").resolve()
    assert [p.name for p in path.parent.iterdir()] == ["compare.html"]  # no temporary file left
    text = path.read_text(encoding="utf-8")
    assert text.count("* plotly.js v") == 1
    assert not re.search(r"<script[^>]*src\s*=\s*[\"']?\s*(https?:)?//", text, re.IGNORECASE)
    assert EVIL not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    table = text[: text.index("<h2>Pareto fronts</h2>")]  # plotly.js, inlined below, holds links of its own
    assert re.findall(r'<a href="([^"]*)"', table) == ["evil.html", "b%201.html"]
    for s in comparison.studies:
        assert f"{s.hypervolume:.6g}" in text
    reference = ", ".join(
        f"{n}={v:.6g}" for n, v in zip(comparison.objectives, comparison.reference_point, strict=True)
    )
    assert text.count(reference) == 1
    assert "FLOPs (fvcore: 1 multiply-add = 1)" in text


@pytest.mark.parametrize(
    ("links", "name"),
    [({"b": "/etc/passwd"}, "/etc/passwd"), ({"b": "https://x.org/b.html"}, "https"), ({"c": "c.html"}, "c")],
)
def test_page_refuses_absolute_links_and_unknown_labels(tmp_path: Path, links: dict[str, str], name: str) -> None:
    comparison = compute_comparison(studies=[("a", hand_study("a")), ("b", other_study())])
    with pytest.raises(UsageError, match=r"write_comparison\.links") as error:
        write_comparison(comparison=comparison, out_dir=tmp_path, links=links)
    assert name in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_dominated_networks_with_one_result_share_one_marker() -> None:
    """A large study repeats results: one marker per distinct (cost, accuracy), its hover naming the trials."""
    from nas.report.compare import ComparedStudy, Network
    from nas.report.compare_page import _dominated

    nets = [Network(number=i, group="dense", values={"val_accuracy": 0.9, "flops": 1e6}, reuses=0) for i in range(7)]
    nets.append(Network(number=7, group="osp", values={"val_accuracy": 0.8123456, "flops": 2.5e6}, reuses=0))
    study = ComparedStudy(
        label="big", study_name="big", objectives=(), directions=(), trials=8, networks=tuple(nets), twins=0,
        points={}, fronts={}, front=(), hypervolume=None,
    )  # fmt: skip
    xs, ys, hovers = _dominated(study, nets, "flops")
    assert (xs, ys) == ([1e6, 2.5e6], [0.9, 0.81235])
    assert hovers == ["big: trial 0, 1, 2, 3, 4 +2 (dense), 90.0%, 1.00M", "big: trial 7 (osp), 81.2%, 2.50M"]

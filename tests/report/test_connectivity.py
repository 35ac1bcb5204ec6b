"""The "Which connectivity?" section: budget tables against the stored trials, the interval of a difference,
the sentences the numbers allow (and only those), the ablation's forest, and the escaped HTML."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import optuna
import pytest

from nas.arch import MODES
from nas.errors import UsageError
from nas.report.connectivity import (
    BudgetTable,
    ConnectivityData,
    budget_levels,
    connectivity_data,
    newcombe_interval,
    short,
)
from nas.report.connectivity_html import connectivity_section, forest_figure
from nas.report.data import ACCURACY, compute_report_data
from nas.report.page import write_report
from nas.search.results.trial_record import TrialRecord, load_records
from nas.search.run.ablate import ablation_table, match_width
from nas.stats import wilson_interval
from tests.conftest import digits_net
from tests.report.test_report import EVIL, PROVENANCE, add, hand_study, new_study, optimized_study


def _embed(fig: Any) -> str:
    return str(fig.to_html(full_html=False, include_plotlyjs=False))


def _table(section: ConnectivityData, cost: str) -> BudgetTable:
    return next(t for t in section.tables if t.cost == cost)


def _with_split(name: str = "split", val_images: int = 1000) -> optuna.Study:
    """A study whose trials have a known validation split, so every trained accuracy has an interval."""
    study = new_study(name)
    study.set_user_attr("provenance", {**PROVENANCE, "val_images": val_images})
    return study


# ----- the interval of a difference -----


@pytest.mark.parametrize(
    ("a", "m", "b", "n", "low", "high"),
    [  # Newcombe (1998), Table II, method 10 (hybrid score interval)
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (10, 10, 0, 10, 0.6075, 1.0000),
    ],
)
def test_newcombe_interval_matches_newcombe_1998(a: int, m: int, b: int, n: int, low: float, high: float) -> None:
    p1, p2 = a / m, b / n
    got = newcombe_interval(
        p1=p1, interval1=wilson_interval(accuracy=p1, n=m), p2=p2, interval2=wilson_interval(accuracy=p2, n=n)
    )
    assert got == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))


# ----- budget levels -----


def test_budget_levels_are_log_spaced_and_rounded_up_to_two_figures() -> None:
    assert budget_levels(low=1e4, high=2e5) == (10_000, 22_000, 45_000, 95_000, 200_000)
    assert budget_levels(low=12_345, high=123_456) == (13_000, 22_000, 40_000, 70_000, 130_000)
    assert budget_levels(low=0.0123, high=0.5) == (0.013, 0.032, 0.079, 0.2, 0.5)
    assert budget_levels(low=1e4, high=1e5, count=3) == (10_000, 32_000, 100_000)
    assert budget_levels(low=1000, high=1000) == (1000,)
    assert budget_levels(low=1e4, high=1.0001e4) == (10_000, 11_000)  # repeats after rounding dropped
    assert budget_levels(low=0, high=10) == (0, 2.5, 5, 7.5, 10)  # linear when log spacing cannot start
    with pytest.raises(UsageError, match="count = 0"):
        budget_levels(low=1, high=2, count=0)
    with pytest.raises(UsageError, match="high = 1"):
        budget_levels(low=2, high=1)


# ----- the budget table against the stored trials -----


def _value(record: TrialRecord, name: str) -> float | None:
    value = record.values.get(name, record.metrics.get(name))
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _brute_force(study: optuna.Study, cost: str, budget: float) -> dict[str, tuple[Any, ...]]:
    """group -> (accuracy, interval, trial, networks) straight from the stored trials: the highest accuracy at
    or under the budget (cheapest, then earliest, on a tie), counting a reused twin with the network it copies."""
    found: dict[str, list[tuple[float, float, int, int | None, tuple[float, float] | None]]] = {}
    for r in load_records(study):
        acc, c = _value(r, ACCURACY), _value(r, cost)
        if not r.feasible or acc is None or c is None or c > budget:
            continue
        interval = (r.val_accuracy_low, r.val_accuracy_high) if r.val_accuracy_low is not None else None
        group = r.baseline or r.connectivity or "unknown"
        found.setdefault(group, []).append((acc, c, r.number, r.reused_from, interval))
    result = {}
    for group, rows in found.items():
        acc, _, number, _, interval = min(rows, key=lambda row: (-row[0], row[1], row[2]))
        networks = len({source if source is not None else n for _, _, n, source, _ in rows})
        result[group] = (acc, interval, number, networks)
    return result


def _costs(study: optuna.Study, cost: str) -> list[float]:
    records = load_records(study)
    return [c for r in records if r.feasible and _value(r, ACCURACY) is not None and (c := _value(r, cost)) is not None]


@pytest.mark.parametrize("make", [hand_study, optimized_study], ids=["hand", "optimized"])
def test_budget_table_equals_a_brute_force_over_the_stored_trials(make: Any) -> None:
    study = make()
    section = connectivity_data(data=compute_report_data(study=study))
    assert [t.cost for t in section.tables] == [p.cost for p in compute_report_data(study=study).panels]
    assert len(section.tables) >= 2
    for table in section.tables:
        costs = _costs(study, table.cost)
        assert [level.budget for level in table.levels] == list(budget_levels(low=min(costs), high=max(costs)))
        for level in table.levels:
            got = {g: (b.accuracy, b.interval, b.trial, b.networks) for g, b in level.best.items()}
            assert got == _brute_force(study, table.cost, level.budget)
        top = table.levels[-1]
        assert table.networks == {g: b.networks for g, b in top.best.items()}  # the top level holds every network


def test_hand_study_table_folds_the_twin_and_keeps_the_baseline_apart() -> None:
    table = _table(connectivity_data(data=compute_report_data(study=hand_study())), "params")
    assert [level.budget for level in table.levels] == [10_000, 22_000, 45_000, 95_000, 200_000]
    assert table.groups == ("plain", "residual", "dense", "osp", "densenet121")
    assert table.modes == ("plain", "residual", "dense", "osp")
    assert table.networks == {"plain": 1, "residual": 1, "dense": 2, "osp": 2, "densenet121": 1}  # twin 6 folded
    assert {g: b.trial for g, b in table.levels[0].best.items()} == {"osp": 3}
    assert {g: b.trial for g, b in table.levels[-1].best.items()} == {
        "plain": 4,
        "residual": 5,
        "dense": 1,
        "osp": 2,
        "densenet121": 11,
    }
    assert [(c.budget, c.leader, c.runner_up) for c in table.comparisons] == [
        (45_000, "dense", "osp"),
        (95_000, "dense", "osp"),
        (200_000, "dense", "osp"),
    ]
    assert all(c.interval is None and not c.clear for c in table.comparisons)  # no split size recorded


# ----- the summary -----


def test_a_clear_lead_is_claimed_and_a_small_one_called_noise() -> None:
    study = _with_split()
    add(study, mode="dense", k=12, acc=0.95, params=1e4, flops=1e6)  # 0
    add(study, mode="residual", k=8, acc=0.85, params=1e4, flops=1e6)  # 1
    add(study, mode="residual", k=16, acc=0.951, params=1e5, flops=1e7)  # 2
    add(study, mode="dense", k=32, acc=0.99, params=1e5, flops=1e7, baseline="resnet18")  # 3
    table = _table(connectivity_data(data=compute_report_data(study=study)), "params")
    assert [level.budget for level in table.levels] == [10_000, 18_000, 32_000, 57_000, 100_000]
    lead, noise = table.comparisons[0], table.comparisons[-1]
    assert (lead.leader, lead.runner_up, lead.difference) == ("dense", "residual", pytest.approx(0.10))
    assert lead.interval == (pytest.approx(0.0741788, abs=1e-6), pytest.approx(0.1262996, abs=1e-6))
    assert (noise.leader, noise.runner_up, noise.clear) == ("residual", "dense", False)
    assert table.summary == (
        "From <= 10K to <= 57K parameters dense leads residual by 10.0 points (95% interval 7.4 to 12.6).",
        "At <= 100K parameters the difference between residual and dense is within noise "
        "(residual ahead by 0.1 points, 95% interval -1.8 to 2.0).",
        "Baseline resnet18 scores above every mode's best at <= 100K parameters "
        "(compared by its accuracy alone, no interval claimed).",
    )


def test_one_mode_is_too_little_data_and_nothing_is_claimed() -> None:
    study = _with_split()
    add(study, mode="dense", k=12, acc=0.95, params=1e4)
    add(study, mode="dense", k=24, acc=0.70, params=5e4)
    add(study, mode="dense", k=32, acc=0.99, params=1e5, baseline="resnet18")
    section = connectivity_data(data=compute_report_data(study=study))
    for table in section.tables:
        assert table.modes == ("dense",) and table.comparisons == ()
        assert table.summary == (
            "Too little data to compare modes: only dense has feasible networks, so no claim is made.",
        )


def test_without_a_split_size_no_difference_is_claimed() -> None:
    section = connectivity_data(data=compute_report_data(study=hand_study()))
    for table in section.tables:
        assert table.summary == (
            "No validation split size is recorded, so the accuracies have no intervals and no difference "
            "between modes is claimed; the table gives the numbers.",
        )
    empty = connectivity_data(data=compute_report_data(study=new_study("empty")))
    assert all(t.levels == () and "nothing to compare" in t.summary[0] for t in empty.tables)


def test_levels_with_one_mode_say_so_and_merge() -> None:
    study = _with_split()
    add(study, mode="osp", k=12, acc=0.90, params=1e4)
    add(study, mode="plain", k=8, acc=0.80, params=1e5)
    table = _table(connectivity_data(data=compute_report_data(study=study)), "params")
    assert table.summary == (
        "From <= 10K to <= 57K parameters only osp has a network, so nothing is compared.",
        "At <= 100K parameters osp leads plain by 10.0 points (95% interval 6.9 to 13.1).",
    )


# ----- the ablation's forest -----


def test_forest_rows_come_from_the_ablation_table() -> None:
    base = digits_net()
    matched = {
        m: match_width(base, m, match="params", target=15_000, tolerance=0.05, input_size=(1, 8, 8))
        for m in ("residual", "dense", "plain")
    }
    study = new_study("ablation", ("val_accuracy", "params"))
    accuracies = {"residual": (0.90, 0.92, 0.94), "dense": (0.97, 0.99)}  # plain: no finished run
    for mode, accs in accuracies.items():
        for seed, acc in enumerate(accs):
            key = {"mode": mode, "seed": seed, "match": "params", "target": 15_000}
            hashed = matched[mode].config.arch_hash()  # the matched network's, as nas ablate stores it
            add(study, mode=mode, acc=acc, params=matched[mode].params, ablation=key, arch_hash=hashed)
    rows = ablation_table(study, matched, tolerance=0.05)
    forest = connectivity_data(data=compute_report_data(study=study, ablation=rows)).forest
    assert forest is not None
    assert [(r.mode, r.seeds, r.params) for r in forest] == [
        ("residual", 3, matched["residual"].params),
        ("dense", 2, matched["dense"].params),
    ]
    assert connectivity_data(data=compute_report_data(study=study, ablation=rows)).unfinished == ("plain",)
    residual, dense = forest
    assert residual.mean == pytest.approx(0.92) and dense.mean == pytest.approx(0.98)
    half = 4.302652729911275 * 0.02 / math.sqrt(3)  # t(0.975, 2) * std / sqrt(n)
    assert residual.interval == (pytest.approx(0.92 - half), pytest.approx(0.92 + half))
    assert dense.interval == (pytest.approx(0.98 - 12.706204736174703 * 0.02 / 2), 1.0)  # clipped at 1

    fig = forest_figure(forest)
    labels = [(f"{m} ({short(matched[m].params)} params)",) for m in ("residual", "dense")]
    assert [t.y for t in fig.data] == labels and all(re.fullmatch(r"\w+ \(1\d\.?\d*K params\)", y) for (y,) in labels)
    assert [t.marker.symbol for t in fig.data] == [MODES["residual"].symbol, MODES["dense"].symbol]
    assert [t.marker.color for t in fig.data] == [MODES["residual"].colour, MODES["dense"].colour]
    low, high = fig.layout.xaxis.range
    assert 0.0 <= low < residual.interval[0] and dense.interval[1] <= high <= 1.0

    assert connectivity_data(data=compute_report_data(study=study)).forest is None  # no ablation ran
    with_ablation = "".join(connectivity_section(data=compute_report_data(study=study, ablation=rows), figure=_embed))
    without = "".join(connectivity_section(data=compute_report_data(study=study), figure=_embed))
    assert "the best of its seeds" in with_ablation and "the best of its seeds" not in without


# ----- the HTML -----


def test_section_html_has_the_table_and_escapes_study_names() -> None:
    study = _with_split("html")
    add(study, mode="dense", k=12, acc=0.95, params=1e4)
    add(study, mode="osp", k=8, acc=0.85, params=1e4, connectivity=EVIL)  # a mode an old study named
    add(study, mode="residual", k=16, acc=0.80, params=1e5, baseline=EVIL)
    ablation = [
        {"mode": EVIL, "seeds": 2, "val_accuracy_mean": 0.5, "ci95_low": 0.4, "ci95_high": 0.6},
        {"variant": "a row of another shape"},
    ]
    data = compute_report_data(study=study, ablation=ablation)
    text = "\n".join(connectivity_section(data=data, figure=_embed))
    assert EVIL not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert text.startswith("<h2>Which connectivity?</h2>")
    assert text.count('<table class="budget">') == 2  # flops and params
    params = text[text.index("Budget in parameters") :]
    assert "<b>95.0% (93.5-96.2) #0</b><br><small>best of 1 network</small>" in params
    start = re.search(r'Plotly\.newPlot\(\s*"[^"]+",\s*', text)
    assert start is not None
    traces, _ = json.JSONDecoder().raw_decode(text, start.end())
    assert [trace["y"] for trace in traces] == [["&lt;script&gt;alert(1)&lt;/script&gt;"]]  # no params: name only


def test_report_page_opens_with_the_section(tmp_path: Any) -> None:
    page = write_report(data=compute_report_data(study=hand_study()), out_dir=tmp_path).read_text(encoding="utf-8")
    assert (
        page.index("validation split size") < page.index("Which connectivity?") < page.index("<h2>Pareto fronts</h2>")
    )
    assert page.count("* plotly.js v") == 1


def test_a_tie_is_called_a_tie_not_a_lead_of_zero_points() -> None:
    from nas.report.connectivity import Comparison, _noise_numbers

    tie = Comparison(budget=1e6, leader="osp", runner_up="dense", difference=0.0, interval=(-0.051, 0.051))
    assert _noise_numbers(tie) == " (tied, 95% interval -5.1 to 5.1)"
    close = Comparison(budget=1e6, leader="osp", runner_up="dense", difference=0.0004, interval=(-0.05, 0.05))
    assert _noise_numbers(close) == " (osp ahead by 0.04 points, 95% interval -5.0 to 5.0)"

"""The trial table the page embeds once, and the front charts that name its rows."""

from __future__ import annotations

import math

import optuna
import pytest

from nas.report.data import compute_report_data
from nas.report.figures import front_chart
from nas.report.page import pareto_summary, render
from nas.report.table import SHORT_REASON, compact, encoded, short_reason, trial_table
from tests.report.page_parse import charts, front_traces, groups
from tests.report.page_parse import trial_table as read_table
from tests.report.test_report import add, hand_study, new_study

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize(
    ("reason", "short"),
    [
        (None, None),
        ("over the params budget", "over the params budget"),
        ("same network and recipe as trial 3: result reused, not retrained", "same network and recipe as trial 3"),
        (
            "Pareto-aware stop after epoch 1: val accuracy 24.83%, at most ~31.00% by epoch 3, below trial 7's 97.93%",
            "Pareto-aware stop after epoch 1",
        ),
        ("MO-ASHA stop at epoch 1 (rung 1 of 2): ranked 5 of 9 at this rung", "MO-ASHA stop at epoch 1 (rung 1 of 2)"),
        ("non-finite loss nan at epoch 2. Lower the learning rate", "non-finite loss nan at epoch 2"),
        ("word " * 30, "word " * 11 + "word…"),
    ],
)
def test_short_reason_is_the_first_clause_cut_at_a_word(reason: str | None, short: str | None) -> None:
    assert short_reason(reason) == short
    assert short is None or len(short) <= SHORT_REASON


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (0.912345678, 0.91235),
        (0.5, 0.5),
        (4e6, 4_000_000),
        (12_345_678.0, 12_345_678),  # a count stored as a float stays exact
        (1234567.89, 1_234_600),
        (1.5e-7, 1.5e-7),
        (math.nan, None),
        (math.inf, None),
        ([3, 3], "3,3"),
        (True, True),
        (7, 7),
        ("cifar", "cifar"),
        (None, None),
    ],
)
def test_compact_keeps_five_significant_digits(value: object, kept: object) -> None:
    assert compact(value) == kept and type(compact(value)) is type(kept)


def test_columns_come_in_the_order_a_reader_compares_trials() -> None:
    data = compute_report_data(study=hand_study(objectives=("val_accuracy", "params", "flops")))
    table = trial_table(data)
    assert [c.key for c in table.columns] == [
        "number",
        "status",
        "group",
        "val_accuracy",
        "params",  # the study's own cost objectives first, in its order
        "flops",
        "growth_rate",
        "bn_size",
        "block_config",
        "duration_s",
    ]
    assert table.rows == len(data.table) == 13
    assert table.data["short_reason"][9] == "<b>slow</b> & <img src=x onerror=z>"  # raw: report.js sets it as text
    assert [table.data["status"][i] for i in (6, 7, 12)] == ["reused", "rejected", "running"]
    assert table.data["reused_from"][6] == 1 and table.data["baseline"][11] == "densenet121"
    assert {g: (s.symbol, s.baseline) for g, s in table.groups.items()} == {
        "dense": ("circle", False),
        "densenet121": ("star", True),
        "osp": ("cross", False),
        "plain": ("square", False),
        "residual": ("diamond", False),
    }


def test_repeated_text_is_written_once_per_distinct_value() -> None:
    study = new_study()
    for i in range(40):
        add(study, mode=("dense", "plain")[i % 2], k=8 + i, acc=0.5 + i / 100)
    table = trial_table(compute_report_data(study=study))
    columns = encoded(table)["data"]
    assert columns["status"] == {"levels": ["complete"], "codes": [0] * 40}
    assert columns["mode"] == {"levels": ["dense", "plain"], "codes": [0, 1] * 20}
    assert columns["growth_rate"] == list(range(8, 48))  # numbers stay plain
    assert read_table(render(compute_report_data(study=study)))["mode"] == ["dense", "plain"] * 20


def test_exact_ties_share_one_marker_that_lists_them() -> None:
    """A study padded with copies: every copy of a network ties exactly, on the front or off it."""
    study = new_study()
    for _ in range(3):
        add(study, mode="dense", k=12, acc=0.90, flops=4e6)  # 0, 3, 6: on the front
        add(study, mode="dense", k=8, acc=0.80, flops=5e6)  # 1, 4, 7: dominated
        add(study, mode="osp", k=12, acc=0.90, flops=4e6)  # 2, 5, 8: ties dense in both values
    add(study, status="reused", mode="osp", k=12, acc=0.90, flops=4e6, reused_from=2)  # 9: a twin of 2
    data = compute_report_data(study=study)
    panel = data.panels[0]
    assert panel.pareto == (0, 2, 3, 5, 6, 8) and {p.number: p.reused_by for p in panel.points}[2] == (9,)
    rows_of = {n: n for n in range(10)}
    chart = front_chart(panel, rows_of)
    assert chart.dominated == (1,)
    assert [(f.group, f.rows) for f in chart.fronts] == [("dense", (0,)), ("osp", (2,))]
    assert chart.overall == (0,)  # dense 0 and osp 2 stand at the same point of the front
    assert chart.same == {0: (3, 6), 1: (4, 7), 2: (5, 8, 9)}
    assert pareto_summary(data) == "6 trials, 1 distinct result: 0 (+5 ties)"
    assert pareto_summary(compute_report_data(study=hand_study())) == "5 trials: 0, 1, 2, 4, 11"
    page = render(data)
    drawn = front_traces(next(s for s in charts(page) if s["kind"] == "front"), read_table(page), groups(page))
    assert [(t["name"], t["x"], t["y"]) for t in drawn] == [
        ("dominated within its mode", [5_000_000], [0.8]),
        ("dense", [4_000_000], [0.9]),
        ("osp", [4_000_000], [0.9]),
        ("overall Pareto front", [4_000_000], [0.9]),
    ]

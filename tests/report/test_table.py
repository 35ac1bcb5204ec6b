"""The trial table the page embeds once (which columns, which knobs, what goes to the details row), the front
charts that name its rows, and the final-evaluation tables as the page prints them."""

from __future__ import annotations

import math

import optuna
import pytest

from nas.report.data import compute_report_data
from nas.report.figures import front_chart
from nas.report.final import Cell, final_table, published_table
from nas.report.numbers import count_text
from nas.report.page import pareto_summary, render
from nas.report.table import SHORT_REASON, compact, encoded, short_reason, trial_table
from tests.report.page_parse import charts, front_traces, groups
from tests.report.page_parse import trial_table as read_table
from tests.report.test_final import run, study_with_runs
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
    assert [(c.key, c.unit) for c in table.columns] == [
        ("number", ""),
        ("status", ""),
        ("group", ""),
        ("val_accuracy", ""),
        ("params", "count"),  # the study's own cost objectives first, in its order
        ("flops", "count"),
        ("growth_rate", ""),  # the one knob that differs between trials
    ]
    # bn_size 4 and block_config 3,3 in every trial, the wall time and the constraint values: in the details row.
    assert [(c.key, c.unit) for c in table.details] == [
        ("bn_size", ""),
        ("block_config", ""),
        ("duration_s", "seconds"),
        ("constraints", ""),
    ]
    assert table.rows == len(data.table) == 13
    assert table.data["short_reason"][9] == "<b>slow</b> & <img src=x onerror=z>"  # raw: report.js sets it as text
    assert [table.data["status"][i] for i in (6, 7, 12)] == ["reused", "rejected", "running"]
    assert table.data["reused_from"][6] == 1 and table.data["baseline"][11] == "densenet121"
    assert table.data["val_accuracy"][7] is None  # rejected before training: Optuna's 0.99 here is no accuracy
    assert table.data["constraints"][7] == "budget=2"
    assert {g: (s.symbol, s.baseline) for g, s in table.groups.items()} == {
        "dense": ("circle", False),
        "densenet121": ("star", True),
        "osp": ("cross", False),
        "plain": ("square", False),
        "residual": ("diamond", False),
    }


TORCHVISION = {"model": "torchvision:resnet18", "connectivity": "baseline", "in_channels": 1, "num_classes": 10}


def knob_study() -> optuna.Study:
    """Searched compression and drop_rate; a stem, growth rate and width fixed by the space; a torchvision
    baseline whose network has none of the knobs; latency measured but no objective."""
    study = new_study("knobs", ("val_accuracy", "params", "flops"))
    fixed = {"growth_rate": 12, "bn_size": 4, "block_config": [3, 3], "stem": "cifar", "in_channels": 1}
    searched = [
        ("dense", {"compression": 0.5, "drop_rate": 0.1, "width_multiplier": 1.0}),
        ("dense", {"compression": 0.7, "drop_rate": 0.0, "width_multiplier": 1.0}),
        ("residual", {"compression": 0.5, "drop_rate": 0.2, "width_multiplier": 2.0}),
        ("residual", {"compression": 0.7, "drop_rate": 0.0, "width_multiplier": 2.0}),
    ]
    for i, (mode, knobs) in enumerate(searched):
        arch = {"connectivity": mode, **fixed, **knobs, "num_classes": 10}
        metrics = {"val_accuracy": 0.8 + i / 100, "flops": 1e6 * (i + 1), "params": 1e4 * (i + 1), "latency_ms": 1.5}
        add(study, mode=mode, arch=arch, metrics=metrics)
    tv = {"baseline": "torchvision:resnet18", "connectivity": "baseline", "arch": TORCHVISION}
    add(study, mode="residual", params=11_173_962, flops=1.8e9, budget=11_123_962.0, **tv)  # over a 50K budget
    return study


def test_only_the_knobs_that_differ_get_a_column_and_the_rest_is_in_the_details_row() -> None:
    table = trial_table(compute_report_data(study=knob_study()))
    assert [c.key for c in table.columns] == [
        "number",
        "status",
        "group",
        "val_accuracy",
        "params",
        "flops",
        "compression",  # 0.5 and 0.7 in dense networks (a residual one ignores it: blank)
        "drop_rate",  # searched: a column though KEY_KNOBS never had one
    ]
    assert [(c.key, c.kind, c.unit) for c in table.details] == [
        ("latency_ms", "cost", "ms"),  # measured, not an objective
        ("growth_rate", "knob", ""),
        ("bn_size", "knob", ""),
        ("block_config", "knob", ""),
        ("stem", "knob", ""),  # the same stem in every trial: no column
        ("width_multiplier", "knob", ""),  # 2.0 in both residual networks, blank in the dense ones
        ("in_channels", "knob", ""),
        ("num_classes", "knob", ""),
        ("duration_s", "number", "seconds"),
        ("constraints", "text", ""),
    ]
    assert table.data["compression"] == [0.5, 0.7, None, None, None]
    assert table.data["width_multiplier"] == [None, None, 2, 2, None]
    assert table.data["drop_rate"] == [0.1, 0, 0.2, 0, None]
    assert table.data["stem"] == ["cifar"] * 4 + [None]  # the baseline's network has no such knob
    assert table.data["constraints"][4] == "budget=11,123,962"  # not 1.11240e+07
    page = encoded(table)
    assert [c["key"] for c in page["details"]] == [c.key for c in table.details]
    assert set(page["data"]) >= {c.key for c in (*table.columns, *table.details) if c.key != "group"}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2_768_768, "2.77M"),
        (16_818, "16.8K"),
        (512, "512"),
        (999_999, "1M"),
        (999.6, "1K"),
        (11_673_344, "11.7M"),
        (1.5e9, "1.5G"),
        (768_000, "768K"),
        (0, "0"),
    ],
)
def test_counts_read_in_k_m_and_g_with_three_digits(value: float, text: str) -> None:
    assert count_text(value) == text


def test_the_final_tables_print_percentages_and_sort_by_the_numbers() -> None:
    data = compute_report_data(study=study_with_runs([run(3, 0, 0.7042), run(3, 1, 0.7242), run(7, 0, 0.91)]))
    assert data.final is not None
    rows = final_table(data.final)
    assert list(rows[0]) == [
        "trial",
        "network",
        "test accuracy (mean ± sd)",
        "seeds",
        "epochs",
        "validation accuracy (search)",
        "params",
        "FLOPs",
        "latency",
        "dataset",
        "train / test images",
    ]
    first, second = rows
    assert first["test accuracy (mean ± sd)"] == Cell("71.4% ± 1.4", 0.7142)
    assert second["test accuracy (mean ± sd)"] == Cell("91.0%", 0.91)  # one seed: no spread
    assert first["validation accuracy (search)"] == Cell("93.0%", 0.93)
    assert (first["params"], first["FLOPs"], first["latency"]) == (
        Cell("500K", 500_003),
        Cell("100M", 10**8),
        Cell("1.5 ms", 1.5),
    )
    assert first["train / test images"] == "60,000 / 10,000"
    published = published_table(data.final)
    assert [(p["network"], p["test accuracy"].text, p["params"].text) for p in published][:2] == [
        ("DenseNet-BC", "95.4%", "768K"),
        ("ResNet-18", "94.9%", ""),
    ]
    page = render(data)
    section = page[page.index("<h2>Final evaluation</h2>") : page.index("<h2>Provenance</h2>")]
    assert '<td data-sort="0.7142">71.4% ± 1.4</td>' in section and "0.7142<" not in section
    assert '<td data-sort="0.954">95.4%</td>' in section


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
        ("Pareto front of the study", [4_000_000], [0.9]),
    ]

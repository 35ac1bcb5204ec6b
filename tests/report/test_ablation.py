"""The report's ablation table: `nas ablate`'s rows read at a glance, each cell sorting by its number."""

from __future__ import annotations

from nas.report.ablation import ACCURACY_HEADER, ablation_cells
from nas.report.final import Cell

ROW = {
    "mode": "dense",
    "growth_rate": 12,
    "params": 15_046,
    "flops": 2_345_678,
    "cost_error": 0.0123,
    "within_tolerance": True,
    "seeds": 2,
    "val_accuracy_mean": 0.98,
    "val_accuracy_std": 0.01414,
    "ci95_low": 0.853,
    "ci95_high": 1.0,
    "latency_ms_mean": 1.234,
    "peak_memory_mean": 3 * 2**20,
    "train_time_mean": None,
}


def test_accuracies_read_in_percent_with_their_spread_and_interval_in_one_cell() -> None:
    """It printed 0.9200 beside a page that says 92.0%, in four columns."""
    (shown,) = ablation_cells([ROW])
    assert list(shown) == [
        "mode", "growth_rate", "params", "FLOPs", "off the matched cost", "seeds", ACCURACY_HEADER,
        "latency", "peak memory", "train time",
    ]  # fmt: skip
    assert shown[ACCURACY_HEADER] == Cell("98.0% ± 1.4 (85.3-100.0)", 0.98)
    assert (shown["params"], shown["FLOPs"]) == (Cell("15K", 15_046.0), Cell("2.35M", 2_345_678.0))
    assert shown["off the matched cost"] == Cell("1.2%", 0.0123)
    assert (shown["latency"], shown["peak memory"]) == (Cell("1.23 ms", 1.234), Cell("3 MiB", 3.0 * 2**20))
    assert shown["train time"] == Cell("", None) and (shown["mode"], shown["seeds"]) == ("dense", 2)
    (slow,) = ablation_cells([{**ROW, "train_time_mean": 1234.5}])
    assert slow["train time"] == Cell("20.6 min", 1234.5)  # as report.js writes seconds (it read 1.23e+03 s)


def test_seconds_and_milliseconds_read_as_the_trial_table_writes_them() -> None:
    from nas.report.numbers import ms_text, seconds_text

    assert [seconds_text(v) for v in (0.5, 12.34, 999.4, 1234.5, 7200.0)] == [
        "0.5 s",
        "12.3 s",
        "999 s",
        "20.6 min",
        "2 h",
    ]
    assert ms_text(1.234) == "1.23 ms"


def test_a_mode_without_a_finished_run_is_blank_and_a_missed_match_says_so() -> None:
    (unfinished,) = ablation_cells([{**ROW, "val_accuracy_mean": float("nan"), "within_tolerance": False}])
    assert unfinished[ACCURACY_HEADER] == Cell("", None)  # blank, not "nan%"
    assert unfinished["off the matched cost"] == Cell("1.2% (over tolerance)", 0.0123)

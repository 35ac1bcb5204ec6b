"""Axes a reader can read: whole numbers with their decade or unit, and a hypervolume drawn from zero."""

from __future__ import annotations

from nas.report.data import compute_report_data
from nas.report.figures import axis_ticks, front_chart, front_spec, hypervolume_figure
from tests.report.test_report import hand_study


def test_log_axes_label_every_tick_with_its_decade() -> None:
    """plotly labelled a FLOPs axis "5 6 7 8 9 100k 2 3": digits with no decade."""
    assert axis_ticks("flops", [58e3, 1.6e6]) == (
        (5e4, "50K"),
        (1e5, "100K"),
        (2e5, "200K"),
        (5e5, "500K"),
        (1e6, "1M"),
        (2e6, "2M"),
    )
    assert [t for _, t in axis_ticks("params", [10_000, 14_000])] == ["7K", "8K", "9K", "10K", "20K"]  # narrow


def test_memory_is_labelled_in_binary_units_not_as_a_count() -> None:
    """plotly labelled bytes "1B ... 3.5B", which reads as one byte."""
    assert axis_ticks("peak_memory", [300 * 2**20, 3.5e9]) == (
        (0, "0 B"),
        (2**30, "1 GiB"),
        (2**31, "2 GiB"),
        (3 * 2**30, "3 GiB"),
    )
    assert [t for _, t in axis_ticks("peak_memory", [40 * 2**20, 90 * 2**20])] == [
        "0 B",
        "20 MiB",
        "40 MiB",
        "60 MiB",
        "80 MiB",
    ]


def test_linear_axes_keep_plotlys_labels_and_charts_carry_the_ticks() -> None:
    assert axis_ticks("latency_ms", [1.0, 2.0]) == ()
    assert axis_ticks("flops", []) == ()
    data = compute_report_data(study=hand_study())
    panel = data.panels[0]
    spec = front_spec(front_chart(panel, {n: n for n in range(20)}))
    assert spec["layout"]["xaxis"]["ticktext"] == ["1M", "2M", "5M", "10M", "20M"]  # 1M to 20M FLOPs
    assert spec["layout"]["xaxis"]["type"] == "log"


def test_the_hypervolume_axis_starts_at_zero() -> None:
    """It started at 2.4M, so a small gain looked like a leap."""
    fig = hypervolume_figure(compute_report_data(study=hand_study()))
    assert fig.layout.yaxis.rangemode == "tozero"

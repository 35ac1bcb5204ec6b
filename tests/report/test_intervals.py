"""Validation accuracies with their 95% Wilson intervals: stored by a real study, read back, drawn, exported."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import optuna
import pandas
import pytest

from nas.data.datasets import DataConfig, load_data
from nas.report.data import ACCURACY, ReportData, compute_report_data
from nas.report.export import export_trials, trials_frame
from nas.report.page import write_report
from nas.report.table import compact
from nas.search.results import records as R
from nas.search.results import study_attrs
from nas.search.results.records import INTERVAL_KEYS, result_metrics
from nas.search.results.trial_record import TrialRecord, load_records
from nas.search.run.runner import run_worker
from nas.search.spec.studyfile_reader import load_study_file
from nas.stats import wilson_interval
from nas.train.results import TrialResult
from tests.report.page_parse import traces, trial_table
from tests.report.test_report import PROVENANCE, add, hand_study, new_study
from tests.search.run.test_study import TWO_NET_GRID, write_study


@dataclasses.dataclass(frozen=True)
class Digits:
    study: optuna.Study
    val_images: int
    data: ReportData
    html: str


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Digits]:
    """Three trials of two one-stage networks on digits: at least one trained twice over, so one is reused."""
    tmp = tmp_path_factory.mktemp("digits")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        (tmp / "two_nets.toml").write_text(TWO_NET_GRID)
        sf = load_study_file(write_study(tmp, trials=3, space="two_nets.toml", sampler="random", epochs=1))
        study = run_worker(sf)
        data = compute_report_data(study=study)
        html = write_report(data=data, out_dir=tmp / "reports").read_text(encoding="utf-8")
        yield Digits(study, len(load_data(DataConfig(name="digits")).val), data, html)


def test_each_trained_trial_stores_the_wilson_interval_of_its_split(digits: Digits) -> None:
    n = digits.val_images
    assert digits.study.user_attrs[study_attrs.STUDY_PROVENANCE]["val_images"] == n
    trials = digits.study.trials
    assert sorted(t.user_attrs[R.STATUS] for t in trials).count("reused") >= 1
    for t in trials:
        metrics = t.user_attrs[R.METRICS]
        low, high = wilson_interval(accuracy=metrics[ACCURACY], n=n)
        assert (metrics[R.VAL_IMAGES], metrics[R.ACCURACY_LOW], metrics[R.ACCURACY_HIGH]) == (n, low, high)
        assert low < metrics[ACCURACY] < high or metrics[ACCURACY] in (low, high)
    for record in load_records(digits.study):
        low, high = wilson_interval(accuracy=record.metrics[ACCURACY], n=n)
        assert (record.val_images, record.val_accuracy_low, record.val_accuracy_high) == (n, low, high)


def test_report_data_intervals_are_wilson_intervals_of_the_split(digits: Digits) -> None:
    n = digits.val_images
    assert digits.data.val_images == (n,)
    reused = sum(t.user_attrs[R.STATUS] == "reused" for t in digits.study.trials)
    for panel in digits.data.panels:
        assert len(panel.points) == 3 - reused  # one point per network: twins fold into their source
        assert sum(len(p.reused_by) for p in panel.points) == reused
        for p in panel.points:
            assert p.interval == wilson_interval(accuracy=p.values[ACCURACY], n=n)
            assert (p.hover["val_accuracy_low"], p.hover["val_accuracy_high"]) == p.interval
    for row in digits.data.table:
        interval = wilson_interval(accuracy=row[ACCURACY], n=n)
        assert (row["val_images"], row["val_accuracy_low"], row["val_accuracy_high"]) == (n, *interval)


def test_html_draws_error_bars_on_every_front_point_and_says_the_resolution(digits: Digits) -> None:
    n = digits.val_images
    assert f"Validation split: {n:,} images, so one image is {100 / n:.3g} points; 95% intervals are Wilson" in (
        digits.html
    )
    bars = [t for t in traces(digits.html) if "error_y" in t]
    assert bars and all(t["error_y"]["type"] == "data" and t["error_y"]["symmetric"] is False for t in bars)
    drawn = {
        (x, y, up, down)
        for t in bars
        for x, y, up, down in zip(t["x"], t["y"], t["error_y"]["array"], t["error_y"]["arrayminus"], strict=True)
    }
    expected = set()
    for panel in digits.data.panels:
        by_number = {p.number: p for p in panel.points}
        front = {n for numbers in panel.mode_fronts.values() for n in numbers}
        assert set(panel.pareto) <= front
        for number in front:
            p = by_number[number]
            low, high = (compact(v) for v in wilson_interval(accuracy=p.values[ACCURACY], n=n))
            acc = compact(p.values[ACCURACY])
            expected.add((compact(p.values[panel.cost]), acc, high - acc, acc - low))
    assert drawn == expected
    # Every trial's accuracy and interval, once, in the table the charts and the trial table read.
    table = trial_table(digits.html)
    assert table["number"] == [r["number"] for r in digits.data.table]
    for i, row in enumerate(digits.data.table):
        low, high = wilson_interval(accuracy=row[ACCURACY], n=n)
        shown = (table[ACCURACY][i], table["val_accuracy_low"][i], table["val_accuracy_high"][i])
        assert shown == (compact(row[ACCURACY]), compact(low), compact(high))


def test_exports_carry_split_size_and_interval(digits: Digits, tmp_path: Path) -> None:
    records = load_records(digits.study)
    frame = trials_frame(records, objectives=["val_accuracy", "flops"])
    columns = list(frame.columns)
    assert columns[columns.index("flops") + 1 : columns.index("flops") + 4] == list(INTERVAL_KEYS)
    assert not any(c.startswith("metric_val_") and c != "metric_val_accuracy" for c in columns)  # no copies
    for (_, row), record in zip(frame.iterrows(), records, strict=True):
        assert (row["val_images"], row["val_accuracy_low"], row["val_accuracy_high"]) == (
            record.val_images,
            record.val_accuracy_low,
            record.val_accuracy_high,
        )
    for fmt in ("csv", "parquet"):
        path = export_trials(study=digits.study, path=tmp_path / f"t.{fmt}", fmt=fmt)
        back = pandas.read_csv(path) if fmt == "csv" else pandas.read_parquet(path)
        assert list(back["val_images"]) == [digits.val_images] * len(records)
        assert list(back["val_accuracy_low"]) == [r.val_accuracy_low for r in records]
        assert list(back["val_accuracy_high"]) == [r.val_accuracy_high for r in records]


def test_record_fields_are_named_as_the_stored_keys() -> None:
    fields = {f.name for f in dataclasses.fields(TrialRecord)}
    assert set(INTERVAL_KEYS) <= fields


def test_no_interval_without_an_accuracy_or_a_split_size() -> None:
    base = TrialResult("complete", None, {}, "h", best_val_accuracy=0.5, best_epoch=1, val_images=96)
    assert {k: result_metrics(base)[k] for k in INTERVAL_KEYS} == {
        "val_images": 96,
        "val_accuracy_low": wilson_interval(accuracy=0.5, n=96)[0],
        "val_accuracy_high": wilson_interval(accuracy=0.5, n=96)[1],
    }
    unknown_split = dataclasses.replace(base, val_images=None)
    never_trained = dataclasses.replace(base, status="infeasible", best_val_accuracy=None, best_epoch=None)
    for result in (unknown_split, never_trained):
        assert not set(INTERVAL_KEYS) & set(result_metrics(result))


def old_study(val_images: int | None) -> optuna.Study:
    """Trials stored before intervals were: no split size in their metrics; the provenance may have one."""
    study = new_study("old")
    if val_images is not None:
        study.set_user_attr("provenance", {**PROVENANCE, "val_images": val_images})
    add(study, mode="dense", k=12, acc=0.90, flops=4e6)  # 0
    add(study, mode="osp", k=12, acc=0.88, flops=2e6)  # 1
    add(study, status="rejected", acc=0.0, flops=1e3, budget=2.0, reason="over budget", history=[])  # 2: untrained
    add(study, mode="dense", k=32, acc=0.95, flops=2e7, baseline="densenet121")  # 3
    return study


def test_old_study_takes_the_split_size_from_its_provenance(tmp_path: Path) -> None:
    records = {r.number: r for r in load_records(old_study(96))}
    for number, acc in ((0, 0.90), (1, 0.88), (3, 0.95)):
        low, high = wilson_interval(accuracy=acc, n=96)
        assert (records[number].val_images, records[number].val_accuracy_low) == (96, low)
        assert records[number].val_accuracy_high == high
    assert (records[2].val_images, records[2].val_accuracy_low, records[2].val_accuracy_high) == (None, None, None)

    data = compute_report_data(study=old_study(96))
    assert data.val_images == (96,)
    html = write_report(data=data, out_dir=tmp_path).read_text(encoding="utf-8")
    assert "Validation split: 96 images, so one image is 1.04 points" in html
    baseline = [t for t in traces(html) if t.get("name") == "densenet121 95% intervals"]
    low, high = (compact(v) for v in wilson_interval(accuracy=0.95, n=96))
    assert [(t["y"], t["error_y"]["array"], t["error_y"]["arrayminus"]) for t in baseline] == [
        ([0.95], [high - 0.95], [0.95 - low])
    ] * len(data.panels)  # one per chart: FLOPs and parameters


def test_old_study_without_a_split_size_reports_without_intervals(tmp_path: Path) -> None:
    study = old_study(None)
    assert all(r.val_accuracy_low is None for r in load_records(study))
    data = compute_report_data(study=study)
    assert data.val_images == () and all(p.interval is None for panel in data.panels for p in panel.points)
    html = write_report(data=data, out_dir=tmp_path).read_text(encoding="utf-8")
    assert "No trial recorded its validation split size" in html
    assert not any("error_y" in t for t in traces(html))
    table = trial_table(html)  # the accuracy as before, without an interval
    assert (table[ACCURACY][0], table["val_accuracy_low"][0], table["val_accuracy_high"][0]) == (0.9, None, None)
    assert list(trials_frame(load_records(study))["val_accuracy_low"].isna()) == [True] * 4


def test_hand_study_page_still_draws() -> None:
    data = compute_report_data(study=hand_study())
    assert data.val_images == () and {row["val_accuracy_low"] for row in data.table} == {None}

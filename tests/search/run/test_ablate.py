"""Ablations: widths solved to a matched cost, seeds aggregated into intervals, resumable."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from nas.arch import MODES, build_model
from nas.arch.cost import count_params, estimate
from nas.errors import UsageError
from nas.search.results.trial_record import stored
from nas.search.run.ablate import _interval, bounded_rows, match_width, run_ablation
from nas.search.spec.studyfile_reader import load_study_file
from tests.conftest import digits_net

BASE = digits_net()


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize(("match", "target"), [("params", 20_000), ("params", 150_000), ("flops", 2_000_000)])
def test_width_is_solved_to_the_target(mode: str, match: str, target: int) -> None:
    m = match_width(BASE, mode, match=match, target=target, tolerance=0.05, input_size=(1, 8, 8))
    assert m.config.connectivity == mode
    assert m.relative_error <= 0.05
    est = estimate(m.config, input_size=(1, 8, 8))
    assert getattr(est, match) == m.cost
    assert abs(m.cost - target) / target == pytest.approx(m.relative_error)
    assert count_params(build_model(m.config)) == m.params


T_975_2 = 4.302652729911275  # t(0.975, 2 degrees of freedom)


def test_interval_is_a_student_t_interval() -> None:
    mean, std, low, high = _interval([0.6, 0.5, 0.7])
    assert (mean, std) == (pytest.approx(0.6), pytest.approx(0.1))
    half = T_975_2 * 0.1 / math.sqrt(3)
    assert (low, high) == (pytest.approx(0.6 - half), pytest.approx(0.6 + half))
    assert _interval([0.7]) == (0.7, 0.0, 0.7, 0.7)


def test_interval_stays_inside_zero_and_one() -> None:
    mean, std, low, high = _interval([0.9, 0.8, 1.0])  # the t-interval reaches 1.148: clipped at 1
    half = T_975_2 * 0.1 / math.sqrt(3)
    assert (mean, low, high) == (pytest.approx(0.9), pytest.approx(0.9 - half), 1.0)
    mean, std, low, high = _interval([0.99, 1.0, 0.31])  # -0.22 to 1.75 unclipped: both ends clipped
    assert mean - T_975_2 * std / math.sqrt(3) < 0 < 1 < mean + T_975_2 * std / math.sqrt(3)
    assert (low, high) == (0.0, 1.0)
    mean, std, low, high = _interval([0.01, 0.0, 0.2])  # only the low end passes 0
    assert (low, high) == (0.0, pytest.approx(0.07 + T_975_2 * std / math.sqrt(3)))


def test_rows_of_an_older_table_are_bounded_as_now() -> None:
    rows = [
        {"mode": "dense", "ci95_low": 0.652, "ci95_high": 1.148, "val_accuracy_mean": 0.9},
        {"mode": "osp", "ci95_low": -0.216, "ci95_high": 0.97, "val_accuracy_mean": 0.4},
        {"mode": "plain", "ci95_low": math.nan, "ci95_high": math.nan, "val_accuracy_mean": math.nan},
    ]
    bounded = bounded_rows(rows)
    assert [(r["ci95_low"], r["ci95_high"]) for r in bounded[:2]] == [(0.652, 1.0), (0.0, 0.97)]
    assert math.isnan(bounded[2]["ci95_low"]) and math.isnan(bounded[2]["ci95_high"])  # no run yet: still unknown
    assert [r["val_accuracy_mean"] for r in bounded[:2]] == [0.9, 0.4] and rows[0]["ci95_high"] == 1.148


def test_ablation_runs_every_seed_once_and_tabulates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "ab.toml"
    path.write_text("""
[study]
name = "ab"
space = "connectivity_ablation"
objectives = ["val_accuracy", "params"]
sampler = "grid"
trials = 5
device = "cpu"
[data]
name = "digits"
[recipe]
epochs = 1
batch_size = 64
lr = 0.2
measure_latency = false
[ablation]
modes = ["residual", "dense"]
match = "params"
target = 15000
tolerance = 0.05
seeds = 2
""")
    sf = load_study_file(path)
    study, rows, csv_path = run_ablation(sf)
    runs = [stored(t) for t in study.trials if stored(t).ablation is not None]
    assert len(runs) == 4
    assert [r["mode"] for r in rows] == ["residual", "dense"]
    for row in rows:
        accs = [run.metrics["val_accuracy"] for run in runs if run.ablation and run.ablation["mode"] == row["mode"]]
        mean, std, low, high = _interval(accs)
        assert row["seeds"] == 2 and row["within_tolerance"]
        assert (row["val_accuracy_mean"], row["val_accuracy_std"]) == (pytest.approx(mean), pytest.approx(std))
        assert (row["ci95_low"], row["ci95_high"]) == (pytest.approx(low), pytest.approx(high))
        assert 0.0 <= row["ci95_low"] <= row["val_accuracy_mean"] <= row["ci95_high"] <= 1.0
    with csv_path.open() as f:
        table = list(csv.DictReader(f))
    assert [r["mode"] for r in table] == ["residual", "dense"]
    assert csv_path.with_suffix(".json").is_file()

    again, rows_again, _ = run_ablation(sf)  # resumed: nothing retrained
    assert len(again.trials) == len(study.trials)
    assert rows_again == rows


def _ablation_study(tmp_path: Path, ablation: str) -> Path:
    path = tmp_path / "ab.toml"
    path.write_text(f"""
[study]
name = "ab"
space = "connectivity_ablation"
objectives = ["val_accuracy", "params"]
trials = 1
device = "cpu"
[data]
name = "digits"
[recipe]
epochs = 1
batch_size = 64
measure_latency = false
[ablation]
{ablation}
""")
    return path


def test_a_target_no_width_reaches_is_refused_before_anything_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = _ablation_study(tmp_path, 'modes = ["dense", "residual"]\nmatch = "params"\ntarget = 1e12\nseeds = 1')
    with pytest.raises(UsageError) as err:
        run_ablation(load_study_file(path))
    assert str(err.value).startswith(f"{path}: ablation.target = 1e+12 is out of reach for dense: its growth_rate")
    assert err.value.field == "ablation.target"
    assert not (tmp_path / "runs").exists()  # no study, no trial


def test_a_mode_matched_outside_the_tolerance_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    ablation = 'modes = ["residual"]\nmatch = "params"\ntarget = 15000\ntolerance = 0.00001\nseeds = 1'
    sf = load_study_file(_ablation_study(tmp_path, ablation))
    _, rows, _ = run_ablation(sf)
    assert rows[0]["within_tolerance"] is False and rows[0]["seeds"] == 1
    warning = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("warning: "))
    assert warning.startswith("warning: ablation: residual matched at ")
    assert warning.endswith("from the target 15,000, outside the tolerance of 0%")

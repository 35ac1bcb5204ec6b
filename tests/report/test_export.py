"""The trials table: one row per trial of every status, and CSV and Parquet files pandas reads back."""

from __future__ import annotations

from pathlib import Path

import optuna
import pandas
import pytest

from nas.report.export import export_trials, trials_frame
from nas.search.results.trial_record import load_records
from tests.report.test_report import add, hand_study, new_study


def test_trials_frame_columns() -> None:
    study = hand_study()
    frame = trials_frame(load_records(study), objectives=["val_accuracy", "flops"])
    assert list(frame["number"]) == [t.number for t in study.trials]
    assert list(frame["status"]) == [
        "complete", "complete", "complete", "complete", "complete", "complete", "reused",
        "rejected", "infeasible", "pruned", "failed", "complete", "running",
    ]  # fmt: skip
    for column in ("feasible", "reason", "connectivity", "baseline", "reused_from", "arch_hash", "duration_s"):
        assert column in frame.columns
    # objectives keep their names; metrics that clash with them are prefixed; params is only a metric
    assert {"val_accuracy", "flops", "metric_val_accuracy", "metric_flops", "params"} <= set(frame.columns)
    assert {"param_connectivity", "param_growth_rate", "arch_growth_rate", "arch_block_config"} <= set(frame.columns)
    row = frame.set_index("number").loc[0]
    assert row["arch_block_config"] == "3,3" and row["val_accuracy"] == 0.9 and bool(row["feasible"])
    assert frame.set_index("number").loc[7, "reason"] == "over the params budget"
    assert list(frame.columns)[-1] == "duration_s"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_round_trip(fmt: str, tmp_path: Path) -> None:
    study = hand_study()
    path = export_trials(study=study, path=tmp_path / "out" / f"trials.{fmt}", fmt=fmt)
    assert path.exists() and [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary files
    back = pandas.read_csv(path) if fmt == "csv" else pandas.read_parquet(path)
    frame = trials_frame(load_records(study), objectives=["val_accuracy", "flops"], generation=1)
    assert list(back.columns) == list(frame.columns)
    assert list(back["generation"]) == [1] * len(study.trials)  # a study never grown: every trial ran in it
    assert len(back) == len(study.trials)
    assert list(back["number"]) == list(frame["number"])
    assert list(back["status"]) == list(frame["status"])
    assert back["reason"].isna().sum() == frame["reason"].isna().sum()
    assert list(back["val_accuracy"].dropna()) == list(frame["val_accuracy"].dropna())
    if fmt == "parquet":
        pandas.testing.assert_frame_equal(back, frame, check_dtype=False)


def test_mixed_types_still_write_parquet(tmp_path: Path) -> None:
    study = new_study()
    add(study, acc=0.8)
    study.add_trial(
        optuna.trial.create_trial(
            values=[0.6, 1e6],
            user_attrs={"status": "complete", "metrics": {"odd": "text", "flops": 1e6}, "arch": {"block_config": [2]}},
        )
    )
    study.add_trial(
        optuna.trial.create_trial(values=[0.5, 2e6], user_attrs={"status": "complete", "metrics": {"odd": 3}})
    )
    back = pandas.read_parquet(export_trials(study=study, path=tmp_path / "t.parquet", fmt="parquet"))
    assert list(back["odd"].dropna()) == ["text", "3"]


def test_bad_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="csv, parquet"):
        export_trials(study=hand_study(), path=tmp_path / "t.xlsx", fmt="xlsx")
    assert not list(tmp_path.iterdir())

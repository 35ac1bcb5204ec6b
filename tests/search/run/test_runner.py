"""The progress line after each trial: the study's own objectives, its front, counts in words."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from nas.search.results import records as R
from nas.search.results import study_attrs
from nas.search.run.runner import _Progress
from nas.search.run.storage import fail_and_requeue, open_storage
from nas.search.spec.objectives import OBJECTIVES


def study_of(tmp_path: Path, objectives: list[str]) -> optuna.Study:
    directions = [OBJECTIVES[n].direction for n in objectives]
    study = optuna.create_study(storage=open_storage(str(tmp_path / "journal.log")), directions=directions)
    study_attrs.write_study_objectives(study, objectives)
    return study


def finish(study: optuna.Study, state: TrialState, attrs: dict[str, Any]) -> FrozenTrial:
    """A finished trial as a worker stores it; its values are the metrics of the study's objectives."""
    objectives = study_attrs.study_objectives(study)
    metrics = attrs.get(R.METRICS, {})
    values = [float(metrics[n]) for n in objectives] if state == TrialState.COMPLETE else None
    study.add_trial(
        optuna.trial.create_trial(
            state=state, values=values, user_attrs=attrs, constraints={"memory": -1.0} if values else None
        )
    )
    return study.get_trials(deepcopy=False)[-1]


def lines(progress: _Progress, study: optuna.Study, trial: FrozenTrial, capsys: pytest.CaptureFixture[str]) -> str:
    progress.start = time.monotonic() - 10  # 10 s elapsed: the time left is then exact too
    progress(study, trial)
    return capsys.readouterr().out


def test_a_params_study_shows_params_not_flops_and_one_trial_in_the_singular(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = study_of(tmp_path, ["val_accuracy", "params"])
    progress = _Progress(4, 0, "w0 ")
    first = finish(
        study,
        TrialState.COMPLETE,
        {
            R.STATUS: "complete",
            R.CONNECTIVITY: "dense",
            R.METRICS: {"val_accuracy": 0.9, "params": 12_346, "flops": 1e7},
        },
    )
    assert lines(progress, study, first, capsys) == (
        "w0 [1/4] trial 0 dense complete val 90.0% 12.35K params | front 1 trial, best 90.0% | 10s elapsed, ~30s left\n"
    )
    second = finish(
        study,
        TrialState.COMPLETE,
        {R.STATUS: "reused", R.CONNECTIVITY: "osp", R.METRICS: {"val_accuracy": 0.95, "params": 2_000_000}},
    )
    assert lines(progress, study, second, capsys) == (
        "w0 [2/4] trial 1 osp reused val 95.0% 2.00M params | front 2 trials, best 95.0% | 10s elapsed, ~10s left\n"
    )


def test_every_cost_objective_in_the_study_order_and_a_failure_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = study_of(tmp_path, ["val_accuracy", "latency_ms", "flops", "train_time", "peak_memory"])
    progress = _Progress(3, 0, "")
    metrics = {
        "val_accuracy": 0.5,
        "flops": 2_500_000,
        "latency_ms": 1.234,
        "train_time": 12.34,
        "peak_memory": 300 * 2**20,
        "params": 100,
    }
    trial = finish(study, TrialState.COMPLETE, {R.STATUS: "complete", R.BASELINE: "plain20", R.METRICS: metrics})
    assert lines(progress, study, trial, capsys) == (
        "[1/3] trial 0 plain20 complete val 50.0% 1.23 ms latency 2.50M FLOPs 12.3 s training 300 MiB peak"
        " | front 1 trial, best 50.0% | 10s elapsed, ~20s left\n"
    )
    failed = finish(study, TrialState.FAIL, {R.STATUS: "failed", R.CONNECTIVITY: "dense", R.REASON: "loss is nan"})
    assert lines(progress, study, failed, capsys) == (
        "[2/3] trial 1 dense failed | front 1 trial, best 50.0% | 10s elapsed, ~5s left\n  reason: loss is nan\n"
    )


def test_before_any_feasible_trial_there_is_no_front_not_one_of_zero_trials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = study_of(tmp_path, ["val_accuracy", "params"])
    failed = finish(study, TrialState.FAIL, {R.STATUS: "failed", R.BASELINE: "resnet18", R.REASON: "out of memory"})
    assert lines(_Progress(2, 0, ""), study, failed, capsys) == (
        "[1/2] trial 0 resnet18 failed | no front yet | 10s elapsed, ~10s left\n  reason: out of memory\n"
    )  # was "front 0 trials, best 0.0%"


def test_the_counter_is_each_trials_place_in_finishing_order_never_a_repeat(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two trials finishing before either line is printed (two threads, or another worker's trial) showed the
    same count, `[2/4]` twice: each line now shows where its own trial finished."""
    study = study_of(tmp_path, ["val_accuracy", "params"])
    attrs = {R.STATUS: "complete", R.CONNECTIVITY: "dense", R.METRICS: {"val_accuracy": 0.9, "params": 100}}
    first, second = finish(study, TrialState.COMPLETE, attrs), finish(study, TrialState.COMPLETE, attrs)
    progress = _Progress(4, 0, "")
    assert lines(progress, study, first, capsys).startswith("[1/4] trial 0 dense complete")
    assert lines(progress, study, second, capsys).startswith("[2/4] trial 1 dense complete")
    other_worker = optuna.load_study(study_name=study.study_name, storage=open_storage(str(tmp_path / "journal.log")))
    third = finish(other_worker, TrialState.COMPLETE, attrs)
    assert lines(_Progress(4, 0, "w1 "), other_worker, third, capsys).startswith("w1 [3/4] trial 2")
    assert lines(progress, study, first, capsys).startswith("[1/4] trial 0")  # later trials do not move it


def test_a_trial_lost_with_its_worker_leaves_its_place_to_its_rerun(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lost trial 0 is failed and re-queued; trial 2 finishes first, then the re-run (trial 1): 1, 2, never 2 twice."""
    study = study_of(tmp_path, ["val_accuracy", "params"])
    running = study.ask()
    assert fail_and_requeue(study, study.get_trials(deepcopy=False)[running.number], "worker gone")
    attrs = {R.STATUS: "complete", R.CONNECTIVITY: "dense", R.METRICS: {"val_accuracy": 0.9, "params": 100}}
    other = finish(study, TrialState.COMPLETE, attrs)
    progress = _Progress(4, 0, "")
    assert lines(progress, study, other, capsys).startswith(f"[1/4] trial {other.number} dense")
    rerun = study.ask()
    assert rerun.number == 1  # the queued re-run
    for key, value in attrs.items():
        rerun.set_user_attr(key, value)
    study.tell(rerun, [0.9, 100])
    assert lines(progress, study, study.get_trials(deepcopy=False)[1], capsys).startswith("[2/4] trial 1 dense")


def test_a_rejected_trial_shows_its_costs_and_no_accuracy_it_never_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = study_of(tmp_path, ["val_accuracy", "flops"])
    attrs = {R.STATUS: "rejected", R.CONNECTIVITY: "plain", R.METRICS: {"val_accuracy": 0.0, "flops": 952_230}}
    trial = finish(study, TrialState.COMPLETE, attrs)
    assert lines(_Progress(2, 0, ""), study, trial, capsys).startswith(
        "[1/2] trial 0 plain rejected 952.23K FLOPs | "
    )  # was "rejected val 0.0% 952.23K FLOPs"


def test_a_baseline_over_a_budget_says_so_on_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It is complete and trained, but on no front: the line said only "complete"."""
    study = study_of(tmp_path, ["val_accuracy", "params"])
    metrics = {"val_accuracy": 0.667, "params": 11_176_512}
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.COMPLETE,
            values=[0.667, 11_176_512],
            user_attrs={R.STATUS: "complete", R.BASELINE: "torchvision:resnet18", R.METRICS: metrics},
            constraints={"params": 8_176_512.0, "memory": -1.0},
        )
    )
    trial = study.get_trials(deepcopy=False)[-1]
    assert lines(_Progress(2, 0, ""), study, trial, capsys) == (
        "[1/2] trial 0 torchvision:resnet18 complete (over max_params) val 66.7% 11.18M params | no front yet"
        " | 10s elapsed, ~10s left\n"
    )

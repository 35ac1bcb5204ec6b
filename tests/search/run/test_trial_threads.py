"""K trials at once in one worker (`--trials-per-gpu K`), on CPU with real worker processes: the budget, claims,
heartbeats, re-queue of a killed worker's K trials, the per-trial time limit in a thread, and the refusals
(Ctrl-C and SIGTERM: tests/search/run/test_signals.py)."""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

import pytest
from optuna.trial import TrialState

from nas.data.datasets import DataConfig, load_data
from nas.errors import UsageError
from nas.search.results import records as R
from nas.search.results import trial_record
from nas.search.results.records import FAILED_TRIAL
from nas.search.run.preflight import trials_at_once
from nas.search.run.storage import budget_used
from nas.search.spec.studyfile_reader import load_study_file
from tests.commands import nas_here
from tests.search.run.test_storage import WIDE_SPACE, load, nas, storage, study_file, wait_for_running

__all__ = ["storage"]  # the journal/PostgreSQL fixture, shared with test_storage.py


def test_k_threads_run_exactly_the_budget_side_by_side(tmp_path: Path, storage: str) -> None:
    path = study_file(tmp_path, trials=6, space=WIDE_SPACE)
    run = nas("run", str(path), "--trials-per-gpu", "3", "--storage", storage, "--no-report", cwd=tmp_path)
    assert run.returncode == 0, run.stderr.read() if run.stderr else ""
    study = load(path, storage)
    trials = sorted(study.trials, key=lambda t: t.number)
    assert [t.number for t in trials] == list(range(6)) and budget_used(trials) == 6
    assert all(t.state == TrialState.COMPLETE for t in trials)
    pids = {t.user_attrs[R.WORKER]["pid"] for t in trials}
    assert len(pids) == 1  # one process ...
    spans = [(t.datetime_start, t.datetime_complete) for t in trials]
    overlapping = [(a, b) for a in spans for b in spans if a is not b and a[0] < b[1] and b[0] < a[1]]
    assert overlapping  # ... whose trials trained at the same time
    for record in trial_record.load_records(study):
        assert any(n.startswith("trained beside 2 other trial(s)") for n in record.notes), record.notes


def test_a_killed_k_thread_worker_has_each_of_its_trials_rerun(tmp_path: Path, storage: str) -> None:
    path = study_file(tmp_path, trials=4, space=WIDE_SPACE)
    worker = nas(
        "worker", str(path), "--trials-per-gpu", "2", "--storage", storage, cwd=tmp_path, faults="0:hang,1:hang",
        wait=False,
    )  # fmt: skip
    victim = wait_for_running(path, storage, 0)
    assert wait_for_running(path, storage, 1) == victim == worker.pid  # both trials in that one process
    os.kill(victim, signal.SIGKILL)
    worker.wait(timeout=60)
    again = nas("run", str(path), "--trials-per-gpu", "2", "--storage", storage, "--no-report", cwd=tmp_path)
    assert again.returncode == 0, again.stderr.read() if again.stderr else ""
    study = load(path, storage)
    for lost in (0, 1):
        trial = next(t for t in study.trials if t.number == lost)
        assert trial.state == TrialState.FAIL
        rerun = [t for t in study.trials if t.system_attrs.get(FAILED_TRIAL) == lost]
        assert len(rerun) == 1 and rerun[0].state == TrialState.COMPLETE and rerun[0].params == trial.params
    assert budget_used(study.trials) == 4 and len(study.trials) == 6
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))


def test_a_hung_trial_in_a_thread_meets_the_time_limit(tmp_path: Path) -> None:
    storage = str(tmp_path / "runs" / "journal.log")
    path = study_file(tmp_path, trials=3, space=WIDE_SPACE, extra="trial_timeout_minutes = 0.15")
    run = nas(
        "run", str(path), "--trials-per-gpu", "2", "--storage", storage, "--no-report", cwd=tmp_path, faults="0:hang"
    )
    assert run.returncode == 0
    records = {r.number: r for r in trial_record.load_records(load(path, storage))}
    assert records[0].status == "failed" and "per-trial time limit of 0.15 minutes" in (records[0].reason or "")
    assert records[1].status == records[2].status == "complete"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("0", "nas run: error: --trials-per-gpu = 0 is invalid: an integer from 1 to 16, or auto"),
        ("17", "nas run: error: --trials-per-gpu = 17 is invalid: an integer from 1 to 16, or auto"),
        ("two", "nas run: error: argument --trials-per-gpu: invalid value 'two': an integer >= 1 or auto is required"),
    ],
)
def test_a_bad_trials_per_gpu_is_refused_before_the_study_starts(tmp_path: Path, option: str, message: str) -> None:
    path = study_file(tmp_path, trials=2)
    run = nas_here("run", str(path), "--trials-per-gpu", option, "--no-report", cwd=tmp_path)
    assert run.returncode == 2 and run.stderr.strip().splitlines()[-1] == message
    assert not (tmp_path / "runs").exists()  # nothing created


def test_what_sharing_cannot_give_is_refused(tmp_path: Path) -> None:
    path = study_file(tmp_path, trials=2)
    path.write_text(path.read_text().replace("[recipe]", '[recipe]\ncompile = "on"'))
    run = nas_here("run", str(path), "--trials-per-gpu", "2", "--no-report", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == (
        f'nas run: error: --trials-per-gpu 2: {path} sets recipe.compile = "on", and torch.compile is not '
        'thread-safe: use compile = "graphs"; use --trials-per-gpu 1 (several processes: --workers-per-gpu)'
    )
    sf = load_study_file(study_file(tmp_path, trials=2))
    data = load_data(DataConfig(name="digits"))
    with_memory = dataclasses.replace(sf, objectives=("val_accuracy", "peak_memory"))
    with pytest.raises(UsageError, match="peak_memory is each trial's own peak, which trials sharing a device"):
        trials_at_once(with_memory, data, device="cpu", wanted=2)
    assert trials_at_once(with_memory, data, device="cpu", wanted=1) == 1
    assert trials_at_once(sf, data, device="cpu", wanted="auto") == 1  # a CPU: one at a time

"""Ctrl-C, SIGTERM and a killed parent: no worker outlives `nas run`, no trial is lost, one line is printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nas.search.results.trial_record import load_records, stored
from nas.search.run.storage import open_storage

SPACE = """
name = "s"
[fixed]
stem = "cifar"
growth_rate = 4
init_features = 4
[knobs.block_config]
choices = [[1], [2], [1, 1], [2, 1], [1, 2], [2, 2]]
"""


def study_file(tmp_path: Path, trials: int) -> Path:
    (tmp_path / "s.toml").write_text(SPACE)
    path = tmp_path / "sig.toml"
    path.write_text(f"""
[study]
name = "sig"
space = "s.toml"
trials = {trials}
device = "cpu"
heartbeat_seconds = 1
[data]
name = "digits"
[recipe]
epochs = 1
batch_size = 64
measure_latency = false
""")
    return path


def load(tmp_path: Path) -> optuna.Study:
    return optuna.load_study(study_name="sig", storage=open_storage(str(tmp_path / "runs" / "sig" / "journal.log")))


def worker_pids(study: optuna.Study) -> set[int]:
    return {int(stored(t).worker["pid"]) for t in study.get_trials(states=(TrialState.RUNNING,)) if stored(t).worker}


def running(tmp_path: Path) -> int:
    """Trials running in workers that announced themselves and have drawn their network (0 before the study
    exists): one interrupted before its draw has no parameters for its re-run to repeat."""
    if not (tmp_path / "runs" / "sig" / "journal.log").exists():
        return 0
    try:
        trials = load(tmp_path).get_trials(states=(TrialState.RUNNING,))
        return sum(bool(stored(t).worker) and stored(t).arch_hash is not None for t in trials)
    except KeyError:  # the journal file is there, the study not yet written into it
        return 0


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def wait_for(condition: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def start(path: Path, *args: str, faults: str = "", env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "NAS_INJECT_FAULTS": faults, **(env or {})}
    command = [sys.executable, "-m", "nas.cli", "run", str(path), "--no-report", *args]
    return subprocess.Popen(
        command, cwd=path.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.parametrize(
    ("workers", "per_worker", "signum"),
    [
        (2, 1, signal.SIGINT),
        (2, 1, signal.SIGTERM),
        (1, 1, signal.SIGINT),
        (1, 2, signal.SIGINT),
        (1, 2, signal.SIGTERM),
    ],
)
def test_interrupting_nas_run_stops_its_workers_and_requeues_their_trials(
    tmp_path: Path, workers: int, per_worker: int, signum: int
) -> None:
    """`per_worker`: trials at once in each worker (--trials-per-gpu), each in its own thread."""
    path = study_file(tmp_path, trials=2)
    run = start(path, "--workers", str(workers), "--trials-per-gpu", str(per_worker), faults="0:hang,1:hang")
    running_at_once = workers * per_worker
    wait_for(lambda: running(tmp_path) == running_at_once, 120)
    pids = worker_pids(load(tmp_path))
    run.send_signal(signum)  # to `nas run` alone: it must stop its workers itself
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130
    assert err.strip().splitlines()[-1] == f"interrupted: 0 trials kept, run `nas run {path}` again to resume"
    assert not any(alive(pid) for pid in pids)
    records = {r.number: r for r in load_records(load(tmp_path))}
    interrupted = list(range(running_at_once))  # trial 0 alone, or trials 0 and 1
    for n in interrupted:  # what the workers said is in `err`: shown when a trial was not re-queued
        assert records[n].status == "failed" and "interrupted: worker" in (records[n].reason or ""), err
    waiting = [t.state for t in load(tmp_path).trials if t.number >= running_at_once]
    assert waiting == [TrialState.WAITING] * running_at_once
    resumed = start(path)  # the re-queued trials run (they hang no more: faults are by trial number)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    trials = load(tmp_path).trials
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == 2
    for n in interrupted:
        rerun = next(t for t in trials if t.system_attrs.get("failed_trial") == n)
        assert rerun.state == TrialState.COMPLETE and rerun.params == trials[n].params


# Raises Ctrl-C's KeyboardInterrupt from code run by exec, as happens when the signal lands while a
# namedtuple or dataclass is being made (CPython 3.11 and 3.12 then exited -2, under `python -m` only).
INTERRUPT_INSIDE_EXEC = """
import signal
signal.signal(signal.SIGINT, lambda signum, frame: exec("raise KeyboardInterrupt"))
"""


def test_an_interrupt_inside_exec_still_exits_130(tmp_path: Path) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(INTERRUPT_INSIDE_EXEC)
    path = study_file(tmp_path, trials=2)
    pythonpath = os.pathsep.join(filter(None, [str(shim), os.environ.get("PYTHONPATH")]))
    run = start(path, faults="0:hang,1:hang", env={"PYTHONPATH": pythonpath})
    wait_for(lambda: running(tmp_path) == 1, 120)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    assert err.strip().splitlines()[-1] == f"interrupted: 0 trials kept, run `nas run {path}` again to resume"


def test_workers_stop_when_nas_run_is_killed(tmp_path: Path) -> None:
    path = study_file(tmp_path, trials=60)
    run = start(path, "--workers", "2")
    wait_for(lambda: running(tmp_path) >= 1, 120)
    pids = {pid for t in load(tmp_path).trials if (pid := stored(t).worker.get("pid"))}
    run.kill()  # SIGKILL: nothing runs in the parent any more
    run.wait()
    wait_for(lambda: not any(alive(pid) for pid in pids), 90)  # each stops after its current trial
    assert len(load(tmp_path).trials) < 60

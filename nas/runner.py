"""Running a study: the worker loop, worker processes, and progress lines.

`run_study` is `nas run`: it opens (or resumes) the study, runs the trials in this process or in
N worker processes, and returns the study. `run_worker` is `nas worker`, which other machines
start against the same storage URL. The budget counts every trial in the study, whatever its
state, so re-running a finished study adds nothing.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from nas import records as R
from nas.data import LoadedData, load_data
from nas.study import Objective, TrialFailed, open_study
from nas.studyfile import StudyFile


def _fmt(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"


class _Progress:
    """One line per finished trial: what it was, how it ended, the front so far, time left."""

    def __init__(self, budget: int, done_before: int, label: str) -> None:
        self.budget, self.done_before, self.label = budget, done_before, label
        self.start = time.monotonic()

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        attrs = trial.user_attrs
        done = len(study.get_trials(deepcopy=False, states=_FINISHED))
        metrics = attrs.get(R.METRICS, {})
        acc = metrics.get("val_accuracy")
        what = attrs.get(R.BASELINE) or attrs.get(R.CONNECTIVITY, "?")
        status = attrs.get(R.STATUS) or trial.state.name.lower()
        flops = metrics.get("flops")
        front = [t for t in study.best_trials] if study.user_attrs.get(R.STUDY_OBJECTIVES) else []
        best = max((t.user_attrs.get(R.METRICS, {}).get("val_accuracy", 0.0) for t in front), default=0.0)
        elapsed = time.monotonic() - self.start
        ran = max(done - self.done_before, 1)
        left = max(self.budget - done, 0) * elapsed / ran
        print(
            f"{self.label}[{done}/{self.budget}] trial {trial.number} {what} {status}"
            + (f" val {acc:.1%}" if acc is not None else "")
            + (f" {_fmt(flops)} FLOPs" if flops is not None else "")
            + f" | front {len(front)} trials, best {best:.1%} | {elapsed:.0f}s elapsed, ~{left:.0f}s left"
            + (
                f"\n{self.label}  reason: {attrs[R.REASON]}"
                if status in ("failed", "infeasible") and R.REASON in attrs
                else ""
            ),
            flush=True,
        )


_FINISHED = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
)


def run_worker(
    sf: StudyFile,
    *,
    storage: str | None = None,
    device: str | None = None,
    trials: int | None = None,
    data: LoadedData | None = None,
    label: str = "",
) -> optuna.Study:
    """Run trials until the study holds `trials` (default: the study file's budget) or time is up."""
    data = data if data is not None else load_data(sf.data)
    study = open_study(sf, storage=storage, data=data)
    objective = Objective(sf, data, device=device or sf.device)
    budget = trials if trials is not None else sf.trials
    deadline = time.monotonic() + sf.time_limit_minutes * 60 if sf.time_limit_minutes else None
    progress = _Progress(budget, len(study.get_trials(deepcopy=False, states=_FINISHED)), label)
    while True:
        existing = study.get_trials(deepcopy=False)
        waiting = any(t.state == optuna.trial.TrialState.WAITING for t in existing)  # enqueued baselines
        if len(existing) >= budget and not waiting:
            break
        if deadline is not None and time.monotonic() >= deadline:
            print(f"{label}time limit of {sf.time_limit_minutes} minutes reached", flush=True)
            break
        study.optimize(objective, n_trials=1, catch=(TrialFailed, Exception), callbacks=[progress])
    return study


def run_study(
    sf: StudyFile,
    *,
    trials: int | None = None,
    workers: int = 1,
    storage: str | None = None,
    device: str | None = None,
) -> optuna.Study:
    """`nas run`: create or resume the study and run it here or in `workers` processes."""
    if workers < 1:
        raise ValueError(f"workers = {workers} is invalid: at least 1 is required")
    data = load_data(sf.data)
    url = storage or sf.storage_url()
    study = open_study(sf, storage=url, data=data)  # created once, before any worker races to
    budget = trials if trials is not None else sf.trials
    if workers == 1:
        return run_worker(sf, storage=url, device=device, trials=budget, data=data)
    cmd = [sys.executable, "-m", "nas.cli", "worker", str(Path(sf.path)), "--storage", url, "--trials", str(budget)]
    if device:
        cmd += ["--device", device]
    procs = [subprocess.Popen([*cmd, "--label", f"w{i} "]) for i in range(workers)]
    codes = [p.wait() for p in procs]
    if any(codes):
        print(f"warning: worker exit codes {codes}", file=sys.stderr)
    return study

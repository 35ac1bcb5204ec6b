"""Running a study: the worker loop, worker processes, and progress lines.

`run_study` is `nas run`: it opens (or resumes) the study, runs the trials in this process or in
N worker processes, and returns the study. `run_worker` is `nas worker`, which other machines
start against the same storage URL. The budget counts every trial that says something about its
network, so re-running a finished study adds nothing; a trial interrupted or failed by the machine
is re-queued and its re-run counts instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from nas.data.datasets import LoadedData, load_data
from nas.search.results import generations, study_attrs, trial_record
from nas.search.results.tally import tally_of
from nas.search.run import preflight
from nas.search.run.prescreen import Prescreener, proxy_scorer
from nas.search.run.shares import Workers, own_cores, plan_shares, visible_gpus, worker_device, worker_gpus
from nas.search.run.storage import ClaimLock, fail_stale_trials
from nas.search.run.study import open_study
from nas.search.run.trial_life import TrialSlot, claim, grid_left, requeue, run_claimed_trial
from nas.search.run.trial_objective import Objective
from nas.search.spec.objectives import ACCURACY, OBJECTIVES
from nas.search.spec.studyfile import StudyFile
from nas.text import command, plural
from nas.train.measure import resolve_device
from nas.train.sharing import DeviceShare
from nas.train.trainer import warm_up_device


class _Progress:
    """One line per finished trial: what it was, how it ended in the study's own objectives, the front
    so far, time left. The front and count come from a `StudyTally`, so a line costs the same at trial
    20,000 as at trial 2."""

    def __init__(self, budget: int, done_before: int, label: str, deadline: float | None = None) -> None:
        self.budget, self.done_before, self.label = budget, done_before, label
        self.deadline = deadline  # time.monotonic() of the study's time limit for this run: the time left stops there
        self.start = time.monotonic()
        self._lock = threading.Lock()  # trial threads of one worker print whole lines, one at a time

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        with self._lock:
            self._print(study, trial)

    def _print(self, study: optuna.Study, trial: FrozenTrial) -> None:
        tally = tally_of(study).update()
        record = trial_record.record_from_trial(trial)
        objectives = study_attrs.stored_objectives(study)
        untrained = {ACCURACY} if record.status == "rejected" else set()  # its stored accuracy 0 was never measured
        shown = [
            OBJECTIVES[n].show(record.metrics[n])
            for n in objectives or ()
            if record.metrics.get(n) is not None and n not in untrained
        ]
        front = tally.front if objectives else []
        best = max((float(trial_record.metrics_of(t).get(ACCURACY, 0.0)) for t in front), default=0.0)
        done = tally.budget_used
        place = tally.position(trial)  # this trial's own number: lines from other workers and threads never repeat it
        elapsed = time.monotonic() - self.start
        ran = max(done - self.done_before, 1)
        left = max(self.budget - done, 0) * elapsed / ran
        if self.deadline is not None:  # this run stops at its time limit, whatever the budget leaves
            left = min(left, max(self.deadline - time.monotonic(), 0.0))
        what = record.baseline or record.connectivity or "?"
        over = f" (over {' and '.join(record.over_budgets)})" if record.over_budgets else ""
        print(
            " ".join([f"{self.label}[{place}/{self.budget}] trial {trial.number} {what} {record.status}{over}", *shown])
            + (f" | front {plural(len(front), 'trial')}, best {best:.1%}" if front else " | no front yet")
            + f" | {elapsed:.0f}s elapsed, ~{left:.0f}s left"
            + (
                f"\n{self.label}  reason: {record.reason}"
                if record.status in ("failed", "infeasible") and record.reason
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
    distinct_seed: bool = False,
    allow_changed: tuple[str, ...] = (),
    trials_at_once: int | str = 1,
) -> optuna.Study:
    """Claim and run trials until the study's budget is spent (default: the study file's) or
    the time limit is up; wait for other workers' trials that may still come back re-queued.

    `distinct_seed`: one of several workers; its sampler is seeded from the study seed and this
    process, since workers seeded alike would all propose the same architectures.
    `trials_at_once`: K trials train side by side, each in its own thread on its own CUDA stream
    (nas.train.sharing), each with its own claim, heartbeat, re-queue and progress line; `auto`
    picks K from the device's memory and the space's largest network (nas.search.run.preflight).
    """
    if distinct_seed:
        sf = dataclasses.replace(sf, seed=process_seed(sf.seed))
    url = storage or sf.storage_url()
    device = device or sf.device
    if data is None:
        data = load_data(sf.data)
        check_before_trials(sf, data, device=device)
    k = preflight.trials_at_once(sf, data, device=device, wanted=trials_at_once)
    if trials_at_once == "auto":
        print(f"{label}--trials-per-gpu auto: {plural(k, 'trial')} at once", flush=True)
    study = open_study(sf, storage=url, data=data, allow_changed=allow_changed)
    lock = ClaimLock(url, sf.name)
    budget = trials if trials is not None else sf.trials
    deadline = time.monotonic() + sf.time_limit_minutes * 60 if sf.time_limit_minutes else None
    claiming = _Claiming(
        sf=sf,
        study=study,
        lock=lock,
        budget=budget,
        deadline=deadline,
        progress=_Progress(budget, len(study.get_trials(deepcopy=False, states=_FINISHED)), label, deadline),
        label=label,
        prescreener=_prescreener(sf, data, device),
        storage=storage if storage != sf.storage_url() else None,  # the study file's own needs no --storage
    )
    share, dev = DeviceShare(k), resolve_device(device)
    if not share.shared:
        warm_up_device(dev, recipe=sf.recipe)
        claiming.loop(Objective(sf, data, device=device, lock=lock), None)
        return study

    def objective_for(slot: TrialSlot) -> Objective:
        return Objective(sf, data, device=device, lock=lock, share=share, check=slot.check)

    _run_slots(claiming, objective_for, share, dev)
    return study


def _prescreener(sf: StudyFile, data: LoadedData, device: str) -> Prescreener | None:
    if sf.prescreen is None:
        return None
    scorer = proxy_scorer(sf=sf, data=data, device=device)
    return Prescreener(sf, input_size=data.input_size, num_classes=data.num_classes, score=scorer)


@dataclasses.dataclass
class _Claiming:
    """What a worker's claim loop reads; the loop runs in the main thread, or in each trial thread."""

    sf: StudyFile
    study: optuna.Study
    lock: ClaimLock
    budget: int
    deadline: float | None
    progress: _Progress
    label: str
    prescreener: Prescreener | None = None  # picks each new trial's network among sampler proposals ([prescreen])
    storage: str | None = None  # the URL the worker was given, for the command that goes on
    said: set[str] = dataclasses.field(default_factory=set)  # what the worker said once, whatever its threads
    said_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def say_once(self, line: str) -> None:
        with self.said_lock:
            if line in self.said:
                return
            self.said.add(line)
        print(f"{self.label}{line}", flush=True)

    def loop(self, objective: Objective, slot: TrialSlot | None) -> None:
        sf, study, label = self.sf, self.study, self.label
        parent = os.environ.get(PARENT_ENV)
        while slot is None or not slot.stop.is_set():
            if parent is not None and str(os.getppid()) != parent:  # `nas run` is gone (SIGKILL): stop with it
                self.say_once("the nas run that started this worker is gone: stopping")
                break
            for number, why in fail_stale_trials(study, heartbeat_seconds=sf.heartbeat_seconds).items():
                print(f"{label}trial {number} lost: {why}", flush=True)
            if self.deadline is not None and time.monotonic() >= self.deadline:
                left = max(self.budget - tally_of(study).update().budget_used, 0)
                limit = plural(float(sf.time_limit_minutes or 0), "minute")
                again = command("nas", "run", sf.path, storage=self.storage)
                go_on = f"{plural(left, 'trial')} of the budget left; run `{again}` again to go on"
                self.say_once(
                    f"time limit of {limit} reached (it bounds each run): {go_on if left else 'budget spent'}"
                )
                break
            newer = generations.newer_generation(study)
            if newer is not None:  # its trials would go on into the old generation, off the grown study's front
                self.say_once(
                    f"study {study.study_name!r} has grown into generation {newer!r} since this worker started "
                    "(its search space changed): it claims no more trials here; start it again to work on the new one"
                )
                break
            trial = claim(study, self.lock, self.budget, self.prescreener)
            if trial is None:
                if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                    if grid_left(study, study.get_trials(deepcopy=False)) == 0:
                        self.say_once("the grid is done: every point of the search space was trained once")
                    break
                # A running trial of a dead worker may come back re-queued; `nas run` waits for this worker to
                # see none left, so a long nap would add to every run's wall time.
                time.sleep(min(1.0, sf.heartbeat_seconds))
                continue
            if slot is not None:
                slot.trial = trial
            finished = run_claimed_trial(study, trial, objective, sf, slot)
            if slot is not None:
                slot.trial = None
            self.progress(study, finished)


STOP_GRACE_SECONDS = 20.0  # after Ctrl-C, how long trial threads have to reach a step and re-queue their trials


def _run_slots(
    claiming: _Claiming, objective_for: Callable[[TrialSlot], Objective], share: DeviceShare, device: torch.device
) -> None:
    """Run the claim loop in `share.trials` threads until each is done; on Ctrl-C or a thread's failure stop
    them all, every running trial re-queued; raise what stopped them."""
    stop = threading.Event()
    slots = [TrialSlot(stop) for _ in range(share.trials)]

    def body(slot: TrialSlot) -> None:
        try:
            with share.trial_thread(device):
                warm_up_device(device, recipe=claiming.sf.recipe)
                claiming.loop(objective_for(slot), slot)
        except BaseException as err:  # kept for the main thread; the others stop at their next step
            slot.error = err
            stop.set()
        finally:
            slot.done.set()

    for i, slot in enumerate(slots):
        threading.Thread(target=body, args=(slot,), name=f"trial-{i}", daemon=True).start()
    try:
        for slot in slots:
            while not slot.done.wait(timeout=0.5):
                pass
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM reach this thread only: stop the others, re-queue their trials
        stop.set()
        end = time.monotonic() + STOP_GRACE_SECONDS
        for slot in slots:
            slot.done.wait(timeout=max(0.0, end - time.monotonic()))
        for slot in slots:
            if not slot.done.is_set() and slot.trial is not None:  # stuck outside a step: re-queue it from here
                with contextlib.suppress(Exception):
                    requeue(claiming.study, slot.trial, "interrupted: its worker was stopped; re-queued")
        raise
    for slot in slots:
        if slot.error is not None and not isinstance(slot.error, KeyboardInterrupt):
            raise slot.error


def check_before_trials(sf: StudyFile, data: LoadedData, *, device: str) -> None:
    """Refuse what would fail every trial before the study is created or resumed (nas.search.run.preflight)."""
    preflight.check_device(sf, device)
    preflight.check_data(sf, data)
    preflight.check_networks_fit(sf, data)
    preflight.check_prescreen(sf, data)
    if os.environ.get(PARENT_ENV) is None:  # a worker of `nas run --workers N`: its parent said them once
        for line in preflight.ignored_knob_warnings(sf, data):
            print(line, file=sys.stderr, flush=True)


PARENT_ENV = "NAS_PARENT_PID"  # set for the workers `nas run --workers N` starts: the pid they belong to


def process_seed(seed: int) -> int:
    """The study seed mixed with this host and process."""
    key = f"{seed}:{socket.gethostname()}:{os.getpid()}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big")


def run_study(
    sf: StudyFile,
    *,
    trials: int | None = None,
    workers: Workers = 1,
    workers_per_gpu: int | None = None,
    trials_per_gpu: int | str = 1,
    storage: str | None = None,
    device: str | None = None,
    allow_changed: tuple[str, ...] = (),
) -> optuna.Study:
    """`nas run`: create or resume the study and run it here or in worker processes, each owning its
    share of the machine (nas.search.run.shares); one process owns the whole machine."""
    device = device or sf.device
    preflight.check_device(sf, device)
    shares = plan_shares(
        workers=workers, gpus=worker_gpus(device, visible_gpus()), cores=own_cores(), workers_per_gpu=workers_per_gpu
    )
    data = load_data(sf.data)
    check_before_trials(sf, data, device=device)
    preflight.trials_at_once(sf, data, device=device, wanted=trials_per_gpu)  # refused here, not by each worker
    url = storage or sf.storage_url()
    study = open_study(sf, storage=url, data=data, allow_changed=allow_changed)  # once, before workers race to
    budget = trials if trials is not None else sf.trials
    if len(shares) == 1:
        return run_worker(
            sf,
            storage=url,
            device=device,
            trials=budget,
            data=data,
            allow_changed=allow_changed,
            trials_at_once=trials_per_gpu,
        )
    cmd = [sys.executable, "-m", "nas.cli", "worker", str(Path(sf.path)), "--storage", url, "--trials", str(budget)]
    cmd += ["--device", worker_device(device), "--trials-per-gpu", str(trials_per_gpu)]
    for key in allow_changed:
        cmd += ["--allow-changed", key]
    env = {**os.environ, PARENT_ENV: str(os.getpid())}
    procs = [
        subprocess.Popen([*cmd, "--label", f"w{i} ", "--share", share.to_json()], env={**env, **share.env()})
        for i, share in enumerate(shares)
    ]
    try:
        codes = [p.wait() for p in procs]
    except BaseException:  # Ctrl-C, SIGTERM, an error: no worker outlives this process
        stop_workers(procs)
        raise
    if any(codes):
        print(f"warning: worker exit codes {codes}", file=sys.stderr)
    return study


def stop_workers(procs: list[subprocess.Popen[bytes]], *, grace_seconds: float = 30.0) -> None:
    """SIGTERM every live worker (each re-queues its running trial and exits), SIGKILL any that linger."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

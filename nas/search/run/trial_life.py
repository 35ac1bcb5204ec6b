"""One claimed trial's life: claimed under the study's lock, run with a heartbeat and the per-trial time limit,
recorded as it ended, re-queued when the machine (not the network) failed it or its worker was stopped.

A worker (nas.search.run.runner) calls these from its main thread, or from each of its trial threads
(`--trials-per-gpu`): a `TrialSlot` then carries what stops a trial between two training steps.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.search.results import optuna_internals, records, trial_record
from nas.search.run.prescreen import Prescreener
from nas.search.run.storage import ClaimLock, Heartbeat, budget_used, fail_and_requeue
from nas.search.spec.studyfile import StudyFile
from nas.text import plural


class TrialTimeout(Exception):
    """The trial ran past the study's per-trial time limit."""

    @classmethod
    def after(cls, minutes: float) -> TrialTimeout:
        return cls(f"stopped after the per-trial time limit of {plural(float(minutes), 'minute')}")


class TrialSlot:
    """One trial thread of a worker (`--trials-per-gpu`): the trial it runs and what stops that trial.

    Signals reach only a process's main thread, so a trial in another thread is stopped between two training
    steps by `check`, the trainer's step hook: when its worker stops (re-queued, as after Ctrl-C) or when it
    passes the per-trial time limit (failed).
    """

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.trial: optuna.Trial | None = None
        self.deadline: float | None = None  # monotonic seconds; set while a trial runs under a time limit
        self.minutes: float | None = None
        self.error: BaseException | None = None  # what ended the thread, for the main thread to raise
        self.done = threading.Event()  # waited on instead of Thread.join, which Ctrl-C can leave wrong (gh-90882)

    def check(self, epoch: int, step: int) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt("the worker is stopping")
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise TrialTimeout.after(self.minutes or 0)


@contextlib.contextmanager
def _time_limit(minutes: float | None, slot: TrialSlot | None = None) -> Iterator[None]:
    """Interrupt the trial after `minutes`: SIGALRM in the main thread, the slot's step check in a trial thread."""
    if minutes is None:
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        if slot is None:
            raise RuntimeError("a trial outside the main thread needs its TrialSlot for the time limit")
        slot.deadline, slot.minutes = time.monotonic() + minutes * 60, minutes
        try:
            yield
        finally:
            slot.deadline = None
        return

    def expire(signum: int, frame: object) -> None:
        raise TrialTimeout.after(minutes)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, minutes * 60)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def grid_left(study: optuna.Study, trials: list[FrozenTrial]) -> int | None:
    """Points of a grid study's grid that no trial has taken yet; None for other samplers."""
    if not isinstance(study.sampler, optuna.samplers.GridSampler):
        return None
    taken = {trial_record.grid_point(t) for t in trials if t.state != TrialState.WAITING} - {None}
    return optuna_internals.grid_size(study.sampler) - len(taken)


def claim(
    study: optuna.Study, lock: ClaimLock, budget: int, prescreener: Prescreener | None = None
) -> optuna.Trial | None:
    """A trial to run (a waiting one first), or None when the budget is spent or the grid is done.

    With a pre-screen, a new trial is the proposal `prescreener` picks, queued and claimed at once; the
    picking (seconds of scoring) happens outside the lock, so other workers claim meanwhile."""
    with lock.hold():
        waiting = _waiting(study, budget)
        if waiting is None:
            return None
        if waiting or prescreener is None:
            return study.ask()
    choice = prescreener.choose(study)
    with lock.hold():
        waiting = _waiting(study, budget)  # the study as it is now: another worker may have spent the budget
        if waiting is None:
            return None
        if not waiting:  # else a re-run came back meanwhile: it goes first, and the choice is dropped
            study.enqueue_trial(choice.params, user_attrs=records.prescreen_attrs(choice.record(prescreener.prescreen)))
        return study.ask()


def _waiting(study: optuna.Study, budget: int) -> bool | None:
    """Whether a trial waits to be claimed (a baseline, a re-run); None when nothing is left to claim."""
    trials = study.get_trials(deepcopy=False)
    waiting = any(t.state == TrialState.WAITING for t in trials)
    if (budget_used(trials) >= budget or grid_left(study, trials) == 0) and not waiting:
        return None
    return waiting


# How a failing GPU or driver announces itself (out of memory is the network's, and handled by the trainer).
DEVICE_FAILURES = ("CUDA error", "cuDNN error", "CUBLAS_STATUS", "NCCL error")


def machine_failure(err: BaseException) -> bool:
    """The machine failed (disk, I/O, the GPU or its driver), not the network the trial trains."""
    return isinstance(err, OSError) or (isinstance(err, RuntimeError) and str(err).startswith(DEVICE_FAILURES))


def run_claimed_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    run: Callable[[optuna.Trial], tuple[float, ...]],
    sf: StudyFile,
    slot: TrialSlot | None = None,
) -> FrozenTrial:
    """Run one claimed trial with a heartbeat and the time limit; record how it ended.

    An interrupt anywhere from here on, the heartbeat's start included, re-queues the trial: it is
    already running in storage, and nothing else would fail it before its heartbeat goes stale."""
    state, values = TrialState.FAIL, None
    try:
        with Heartbeat(study, trial, sf.heartbeat_seconds):
            try:
                with _time_limit(sf.trial_timeout_minutes, slot):
                    values = run(trial)
                state = TrialState.COMPLETE
            except optuna.TrialPruned:
                state = TrialState.PRUNED
            except TrialTimeout as err:
                records.write_outcome(trial, "failed", str(err))
            except Exception as err:  # the objective stored the reason (TrialFailed or any error); go on
                if machine_failure(err):  # not the network's fault: re-queue it and stop this worker
                    requeue(study, trial, f"the machine failed, not the network ({err}); re-queued")
                    raise
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the trial says nothing about its network
        who = f"{socket.gethostname()}:{os.getpid()}"
        requeue(study, trial, f"interrupted: worker {who} was stopped; re-queued with the same parameters")
        raise
    return study.tell(trial, values, state=state if values is None else None)


def requeue(study: optuna.Study, trial: optuna.Trial, why: str) -> None:
    """Fail this running trial with `why` and queue its re-run, which counts against the budget instead."""
    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
    fail_and_requeue(study, frozen, why)

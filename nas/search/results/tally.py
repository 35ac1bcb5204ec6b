"""A study's Pareto front, finished-trial count and stopping evidence, kept up to date by reading each trial once.

`study.best_trials` deep-copies every trial of the study and sorts them all again; at 20,000 trials
that took seconds, after every trial (the progress line) and every epoch (Pareto-aware stopping).
A finished trial never changes in Optuna, so a `StudyTally` reads a trial when it first sees it
finished and never again. Trials other workers add (other processes, machines or `Study` objects on
the same storage) are picked up by number: a study numbers its trials 0, 1, 2, ... in the order
its storage lists them, so the trials from the first number not yet read are new, and the few
seen unfinished before are read again.

The front is Optuna's: complete trials whose every constraint is <= 0 that no other such trial
dominates, equal ones all kept, in trial-number order; it equals `study.best_trials`. A trial that
joins later is compared with the current front only (a trial the front dropped is dominated by a
member that stays), with the function Optuna applies to the whole study.

The evidence early stopping learns from (`nas.search.spec.stopping.Evidence`) is built once per finished
trial, and afresh on each update for the trials still running (their curves grow at MO-ASHA rungs).
"""

from __future__ import annotations

import bisect
import threading
import weakref
from datetime import datetime

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from nas.search.results import optuna_internals, trial_record
from nas.search.spec.objectives import ACCURACY, COSTS_BEFORE_TRAINING
from nas.search.spec.stopping import Evidence

__all__ = ["StudyTally", "evidence_of", "tally_of"]


def _loss(trials: list[FrozenTrial], directions: list[StudyDirection]) -> np.ndarray:
    """The trials' values as Optuna compares them: every objective minimised (maximised ones negated)."""
    signs = np.array([-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in directions])
    values = np.array([t.values for t in trials], dtype=float).reshape(len(trials), len(directions))
    loss: np.ndarray = values * signs
    return loss


def _feasible(trial: FrozenTrial) -> bool:
    return all(v <= 0.0 for v in trial.constraints.values())


def _finish_key(trial: FrozenTrial) -> tuple[datetime, int]:
    """When a trial finished (in the storage's clock; a trial finished without a time sorts last) and its number."""
    return (trial.datetime_complete or datetime.max, trial.number)


def evidence_of(trial: FrozenTrial) -> Evidence | None:
    """What early stopping may learn from `trial`, or None: a twin that copied another's result (it would
    count that one twice), a trial without every cost known before training (a baseline still running),
    one failed, rejected or not yet past an MO-ASHA rung."""
    status = trial_record.status_of(trial)
    if trial_record.reused_from_of(trial) is not None or status in ("rejected", "reused"):
        return None
    if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
        return None
    final = None
    if trial.state == TrialState.COMPLETE and status != "infeasible" and _feasible(trial):
        final = float(trial_record.metrics_of(trial).get(ACCURACY, 0.0))
    costs, curve = trial_record.costs_of(trial), trial_record.curve_of(trial)
    if len(costs) < len(COSTS_BEFORE_TRAINING) or (not curve and final is None):
        return None
    return Evidence(number=trial.number, costs=costs, curve=curve, final=final)


class StudyTally:
    """The front and finished-trial count of one study, read incrementally: call `update()` first."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self.directions = list(study.directions)
        self.front: list[FrozenTrial] = []  # equals study.best_trials after update()
        self.finished = 0  # complete, pruned and failed trials
        self._front_loss = np.empty((0, len(self.directions)))
        self._read_below = 0  # every trial numbered below this has been read once
        self._unfinished: list[int] = []  # of those, the ones that were not finished then: read again
        self._replaced: set[int] = set()  # lost trials whose finished re-runs count instead
        self._evidence: list[Evidence] = []  # of the finished trials, read once each
        self._running: list[FrozenTrial] = []  # as the last update read them
        self._finish_order: list[tuple[datetime, int]] = []  # (finished at, number) of every finished trial, sorted
        self._finish_key: dict[int, tuple[datetime, int]] = {}  # the same, by number
        self._lost: set[int] = set()  # trials lost with their worker whose re-run is queued, running or finished
        self._lock = threading.Lock()  # trial threads of one worker (--trials-per-gpu) update it, too

    @property
    def budget_used(self) -> int:
        """Finished trials that count against the budget (nas.search.run.storage.budget_used of the finished
        trials): a lost trial whose re-run finished counts once, as its re-run."""
        return self.finished - len(self._replaced)

    def update(self) -> StudyTally:
        """Read the trials that finished since the last update; returns self."""
        with self._lock:
            self._update()
        return self

    def _update(self) -> None:
        trials = self.study.get_trials(deepcopy=False)
        fresh = [trials[n] for n in self._unfinished] + trials[self._read_below :]
        self._read_below = len(trials)
        self._unfinished = [t.number for t in fresh if not t.state.is_finished()]
        for t in fresh:
            self._lost.update(trial_record.replaces(t))
        done = [t for t in fresh if t.state.is_finished()]
        self._running = [t for t in fresh if t.state == TrialState.RUNNING]
        self._evidence += [e for e in map(evidence_of, done) if e is not None]
        self.finished += len(done)
        for t in done:
            self._replaced.update(trial_record.replaces(t))
            self._finish_key[t.number] = _finish_key(t)
            bisect.insort(self._finish_order, self._finish_key[t.number])
        joining = [t for t in done if t.state == TrialState.COMPLETE and _feasible(t)]
        if joining:
            self._join(joining)

    def position(self, trial: FrozenTrial) -> int:
        """Where `trial` finished among the study's finished trials, as of the last update: the count of those
        that finished at or before it, less the ones lost with a worker (their re-runs count, where they
        finish). Every trial of a study gets its own number however many workers and threads print lines,
        and a trial that finished later a larger one; `budget_used` would count trials that finished after
        this one too, so two lines printed after one update showed the same number."""
        with self._lock:
            key = _finish_key(trial)
            lost = sum(1 for n in self._lost if n in self._finish_key and self._finish_key[n] <= key)
            return bisect.bisect_right(self._finish_order, key) - lost

    def others(self, *, exclude: int) -> list[Evidence]:
        """The stopping evidence of every trial but `exclude`, as of the last update: finished trials as read
        once, running ones as read by that update."""
        running = [e for e in map(evidence_of, self._running) if e is not None]
        return [e for e in [*self._evidence, *running] if e.number != exclude]

    def _join(self, trials: list[FrozenTrial]) -> None:
        candidates = self.front + trials
        loss = np.vstack([self._front_loss, _loss(trials, self.directions)])
        keep = optuna_internals.on_front(loss)
        order = sorted(np.flatnonzero(keep), key=lambda i: candidates[i].number)
        self.front = [candidates[i] for i in order]
        self._front_loss = loss[order]


_TALLIES_LOCK = threading.Lock()
_TALLIES: weakref.WeakKeyDictionary[optuna.Study, StudyTally] = weakref.WeakKeyDictionary()


def tally_of(study: optuna.Study) -> StudyTally:
    """This process's one tally of `study`: the progress line and Pareto-aware stopping share it, so each
    finished trial is read once per worker, not once per reader."""
    with _TALLIES_LOCK:
        tally = _TALLIES.get(study)
        if tally is None:
            tally = _TALLIES[study] = StudyTally(study)
        return tally

"""A stored trial read back, live or frozen: its attributes typed (`stored`), single ones read without copying
(the `*_of` readers, for decisions over every trial of a study), and the trial as reports and exports see it
(`TrialRecord`, `record_from_trial`, `load_records`).

The keys, their meaning and the writers are in `nas.search.results.records`; this module only reads them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.search.results import optuna_internals
from nas.search.results.records import (
    ABLATION,
    ACCURACY_HIGH,
    ACCURACY_LOW,
    ARCH,
    ARCH_HASH,
    BASELINE,
    CARRIED_FROM,
    CONNECTIVITY,
    CURVE,
    ENVIRONMENT,
    FAILED_TRIAL,
    GRID_ID,
    HEARTBEAT,
    HISTORY,
    MEMORY_CONSTRAINT,
    METRICS,
    NOTES,
    PRESCREEN,
    REASON,
    RECIPE_HASH,
    RETRY_HISTORY,
    REUSED_FROM,
    STATUS,
    TRAINS,
    VAL_IMAGES,
    WORKER,
    AnyTrial,
)
from nas.search.results.study_attrs import study_objectives, study_provenance
from nas.search.spec.objectives import ACCURACY, COSTS_BEFORE_TRAINING
from nas.stats import wilson_interval


@dataclass(frozen=True)
class Stored:
    """A trial's user attributes, typed (absent ones are None or empty)."""

    status: str | None
    reason: str | None
    arch: dict[str, Any]
    arch_hash: str | None
    connectivity: str | None
    recipe_hash: str | None
    baseline: str | None
    reused_from: int | None
    trains: bool | None
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    environment: dict[str, Any]
    notes: list[str]
    ablation: dict[str, Any] | None
    worker: dict[str, Any]
    heartbeat: float | None
    prescreen: dict[str, Any] | None = None  # how a pre-screen picked its network (records.PRESCREEN)


def stored(trial: AnyTrial) -> Stored:
    attrs = trial.user_attrs
    beat = attrs.get(HEARTBEAT)
    return Stored(
        status=attrs.get(STATUS),
        reason=attrs.get(REASON),
        arch=dict(attrs.get(ARCH) or {}),
        arch_hash=attrs.get(ARCH_HASH),
        connectivity=attrs.get(CONNECTIVITY),
        recipe_hash=attrs.get(RECIPE_HASH),
        baseline=attrs.get(BASELINE),
        reused_from=attrs.get(REUSED_FROM),
        trains=attrs.get(TRAINS),
        metrics=dict(attrs.get(METRICS) or {}),
        history=list(attrs.get(HISTORY) or []),
        environment=dict(attrs.get(ENVIRONMENT) or {}),
        notes=list(attrs.get(NOTES) or []),
        ablation=attrs.get(ABLATION),
        worker=dict(attrs.get(WORKER) or {}),
        heartbeat=float(beat) if beat is not None else None,
        prescreen=attrs.get(PRESCREEN),
    )


# Single attributes, read without copying anything: for decisions that look at every trial of a study
# (twins, baselines, the front), where `stored` would copy each trial's history and settings.


def metrics_of(trial: AnyTrial) -> Mapping[str, Any]:
    """The trial's stored metrics, shared with the trial: read them, never change them."""
    metrics: Mapping[str, Any] = trial.user_attrs.get(METRICS) or {}
    return metrics


def baseline_of(trial: AnyTrial) -> str | None:
    baseline: str | None = trial.user_attrs.get(BASELINE)
    return baseline


def status_of(trial: AnyTrial) -> str | None:
    status: str | None = trial.user_attrs.get(STATUS)
    return status


def trains_of(trial: AnyTrial) -> bool | None:
    """True on the twin that trains the network, False on one that waits, None before either was decided."""
    trains: bool | None = trial.user_attrs.get(TRAINS)
    return trains


def reused_from_of(trial: AnyTrial) -> int | None:
    """The trial whose result this twin copied; None for one that trained (or never ran)."""
    source = trial.user_attrs.get(REUSED_FROM)
    return int(source) if source is not None else None


def curve_of(trial: AnyTrial) -> list[float]:
    """Validation accuracy after epoch 1, 2, ...: from the history once finished, else as last written (write_curve)."""
    history = trial.user_attrs.get(HISTORY)
    if history:
        return [float(h["val_accuracy"]) for h in history]
    return [float(a) for a in (trial.user_attrs.get(CURVE) or {}).get("val_accuracy", [])]


def costs_of(trial: AnyTrial) -> dict[str, float]:
    """The stored costs known before training: from the metrics once finished, else as written with the curve."""
    metrics = trial.user_attrs.get(METRICS) or (trial.user_attrs.get(CURVE) or {}).get("costs") or {}
    return {name: float(metrics[name]) for name in COSTS_BEFORE_TRAINING if name in metrics}


def network_of(trial: AnyTrial) -> tuple[str | None, str | None]:
    """(arch hash, recipe hash): two trials with the same pair train the same network the same way."""
    attrs = trial.user_attrs
    return attrs.get(ARCH_HASH), attrs.get(RECIPE_HASH)


def replaces(trial: FrozenTrial) -> list[int]:
    """The trials lost with their worker that this trial re-runs (none for a first run)."""
    attrs = trial.system_attrs
    return [int(n) for n in [*attrs.get(RETRY_HISTORY, []), attrs.get(FAILED_TRIAL)] if n is not None]


@dataclass(frozen=True)
class TrialRecord:
    """One trial as reports and exports see it: plain values only."""

    number: int
    status: str  # one of STATUSES
    feasible: bool  # complete or reused, and every constraint satisfied
    reason: str | None
    connectivity: str | None
    baseline: str | None
    reused_from: int | None
    arch_hash: str | None
    arch: dict[str, Any]
    values: dict[str, float]  # objective name -> value, for COMPLETE trials
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    params: dict[str, Any]  # the sampled search-space parameters
    constraints: dict[str, float]  # by name (params, flops, memory): > 0 is over; each once
    duration_s: float | None
    datetime_start: str | None = None
    notes: list[str] = field(default_factory=list)
    val_images: int | None = None  # the validation split's size, for a trial that measured an accuracy
    val_accuracy_low: float | None = None  # its accuracy's 95% Wilson interval
    val_accuracy_high: float | None = None
    recipe_hash: str | None = None  # trials with equal ones trained the same way (None: not trained here)
    generation: int | None = None  # the study generation it ran in, when carried into a later one (None: this one)
    prescreen: dict[str, Any] | None = None  # how a pre-screen picked its network among proposals (records.PRESCREEN)

    @property
    def over_budgets(self) -> tuple[str, ...]:
        """The study's budgets (max_params, max_flops) a trained baseline exceeds. Baselines are references,
        trained whatever the budgets say, so they are shown as over them, never left out like an infeasible
        candidate; () for every other trial, and for a baseline that did not fit the device's memory."""
        trained = self.baseline is not None and self.status in ("complete", "reused")
        if not trained or self.constraints.get(MEMORY_CONSTRAINT, -1.0) > 0:
            return ()
        return tuple(f"max_{k}" for k, v in sorted(self.constraints.items()) if v > 0 and k != MEMORY_CONSTRAINT)


def grid_point(trial: FrozenTrial) -> int | None:
    """The grid point of a grid study's trial (None for other trials)."""
    point = trial.system_attrs.get(GRID_ID)
    return int(point) if point is not None else None


def replaced_trials(trials: list[FrozenTrial]) -> dict[int, int]:
    """Trials lost with their worker and re-queued under a new number: lost number -> its re-run."""
    return {lost: t.number for t in trials for lost in replaces(t)}


def _interval(metrics: dict[str, Any], trained: bool, val_images: int | None) -> tuple[Any, ...]:
    """(split size, low, high) as stored, or computed from `val_images` for a trained trial stored
    without them (before they were); (None, None, None) when either the accuracy or the size is unknown."""
    acc, n = metrics.get(ACCURACY), metrics.get(VAL_IMAGES, val_images if trained else None)
    if isinstance(acc, bool) or not isinstance(acc, int | float) or not isinstance(n, int) or n < 1:
        return None, None, None
    low, high = metrics.get(ACCURACY_LOW), metrics.get(ACCURACY_HIGH)
    if low is None or high is None:
        low, high = wilson_interval(accuracy=float(acc), n=n)
    return n, float(low), float(high)


def record_from_trial(
    trial: FrozenTrial, objectives: list[str] | None = None, *, val_images: int | None = None
) -> TrialRecord:
    """The trial as reports and exports see it; `values` stay empty unless the objectives are given.

    `val_images`: the split size for a trial stored without one (the study provenance's); it gives
    an interval only to a trial that trained (one with a learning curve), never to a rejected one."""
    attrs = stored(trial)
    if trial.state == TrialState.RUNNING:
        status = "running"
    elif trial.state == TrialState.WAITING:  # re-queued or a baseline: nothing runs it yet
        status = "queued"
    else:
        status = attrs.status or {
            TrialState.COMPLETE: "complete",
            TrialState.PRUNED: "pruned",
            TrialState.FAIL: "failed",
        }.get(trial.state, "failed")
    constraints = optuna_internals.named_constraints(trial)  # each once, by name
    values = (
        dict(zip(objectives, trial.values, strict=True))
        if objectives is not None and trial.state == TrialState.COMPLETE and trial.values
        else {}
    )
    feasible = status in ("complete", "reused") and all(v <= 0 for v in constraints.values())
    n, low, high = _interval(attrs.metrics, bool(attrs.history), val_images)
    return TrialRecord(
        number=trial.number,
        status=status,
        feasible=feasible,
        reason=attrs.reason,
        connectivity=attrs.connectivity,
        baseline=attrs.baseline,
        reused_from=attrs.reused_from,
        arch_hash=attrs.arch_hash,
        arch=attrs.arch,
        values=values,
        metrics=attrs.metrics,
        history=attrs.history,
        params=dict(trial.params),
        constraints=constraints,
        duration_s=trial.duration.total_seconds() if trial.duration is not None else None,
        datetime_start=trial.datetime_start.isoformat() if trial.datetime_start else None,
        notes=attrs.notes,
        val_images=n,
        val_accuracy_low=low,
        val_accuracy_high=high,
        recipe_hash=attrs.recipe_hash,
        generation=carried["generation"] if isinstance(carried := trial.user_attrs.get(CARRIED_FROM), dict) else None,
        prescreen=attrs.prescreen,
    )


def load_records(study: optuna.Study) -> list[TrialRecord]:
    """Every trial; one stored before trials kept their split size takes the study provenance's."""
    objectives = study_objectives(study)
    split = study_provenance(study).get(VAL_IMAGES)
    trials = study.get_trials(deepcopy=False)
    rerun_as = replaced_trials(trials)
    records = []
    for t in trials:
        record = record_from_trial(t, objectives, val_images=split)
        if record.reason is None and t.number in rerun_as:  # a database heartbeat failed it: no attrs then
            why = f"its worker stopped (no heartbeat); re-run as trial {rerun_as[t.number]} with the same parameters"
            record = dataclasses.replace(record, reason=why)
        records.append(record)
    return records

"""How a trial's outcome is stored in an Optuna study, and read back for reports and exports.

Storage is the contract between the study runner (which writes) and reports and exports
(which read), possibly on other machines and other versions. Everything a trial knows goes into
its user attributes under the keys below; its Optuna values are the study's objectives, in the
order the study lists them (study user attribute `objectives`).

Optuna states: `complete` and `reused` trials are COMPLETE and feasible; `rejected` (over a
budget constraint, never trained) and `infeasible` (out of memory) trials are COMPLETE with a
violated constraint, so samplers learn to avoid them and `study.best_trials` leaves them out, as it leaves
out a baseline over a budget (trained all the same, `complete`, its notes naming the constraint it is over);
`pruned` trials are PRUNED; `failed` trials (non-finite loss, an error) are FAIL.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.search.results import optuna_internals
from nas.search.results.study_attrs import study_objectives, study_provenance
from nas.search.spec.objectives import ACCURACY, COSTS_BEFORE_TRAINING, objective_values
from nas.stats import wilson_interval
from nas.train.results import TrialResult

AnyTrial = optuna.Trial | FrozenTrial

# Trial user-attribute keys. Only this module reads or writes them: everything else goes through
# the typed functions below (writers take a live trial; readers any trial, live or frozen).
STATUS = "status"  # complete | reused | pruned | failed | infeasible | rejected
REASON = "reason"  # why a trial is not complete, or what it reused
ARCH = "arch"  # ArchConfig.to_dict() of the trained network (or the baseline's description)
ARCH_HASH = "arch_hash"
CONNECTIVITY = "connectivity"  # mode, or "baseline" family name for torchvision baselines
RECIPE_HASH = "recipe_hash"
BASELINE = "baseline"  # the baseline's name for fixed baseline trials
REUSED_FROM = "reused_from"  # trial number whose result was reused
TRAINS = "trains"  # True on the one running trial that trains its network; its twins wait for it
METRICS = "metrics"  # dict: every objective that was measured, and more (see result_metrics)
HISTORY = "history"  # list of per-epoch dicts (epoch, train_loss, ..., val_accuracy)
CURVE = "curve"  # {"val_accuracy": [...], "costs": {...}}: a running trial's curve so far, at each MO-ASHA rung
ENVIRONMENT = "environment"  # device and versions
NOTES = "notes"  # automatic decisions (memory-efficient mode, retries, compile)
ABLATION = "ablation"  # {"mode", "seed", "match", "target"} on the runs of `nas ablate`
WORKER = "worker"  # {"host": ..., "pid": ..., "trial": its trial number}: who runs the trial
HEARTBEAT = "heartbeat"  # time.time() of the last beat (journal storage only)

# Metric keys beside the objectives, on every trial that measured an accuracy: the split's size and the
# accuracy's 95% Wilson interval (nas.stats), so a reader sees how far apart two trials must be to differ.
VAL_IMAGES = "val_images"
ACCURACY_LOW = f"{ACCURACY}_low"
ACCURACY_HIGH = f"{ACCURACY}_high"
INTERVAL_KEYS = (VAL_IMAGES, ACCURACY_LOW, ACCURACY_HIGH)  # also the names of TrialRecord's fields for them

# Trial system-attribute keys Optuna's retry callback writes on a re-run of a trial whose worker died.
CARRIED_FROM = "carried_from"  # {"study", "trial", "generation"}: a trial copied into a later generation of its study
FAILED_TRIAL = "failed_trial"  # the number of the first trial this re-run replaces
RETRY_HISTORY = "retry_history"  # every number it replaces
GRID_ID = "grid_id"  # the grid point Optuna's GridSampler gave a trial

STATUSES = ("complete", "reused", "pruned", "failed", "infeasible", "rejected", "running", "queued")
UNFINISHED = ("running", "queued")  # a worker trains it now; it waits for one (a baseline, a re-run)


# ----- writing: a live trial ------------------------------------------------------------------


def write_network(
    trial: optuna.Trial, *, arch: dict[str, Any], arch_hash: str, connectivity: str, recipe_hash: str
) -> None:
    """What the trial trains, so a twin drawn later (or elsewhere) can find it."""
    trial.set_user_attr(ARCH, arch)
    trial.set_user_attr(ARCH_HASH, arch_hash)
    trial.set_user_attr(CONNECTIVITY, connectivity)
    trial.set_user_attr(RECIPE_HASH, recipe_hash)


def write_outcome(trial: optuna.Trial, status: str, reason: str | None = None) -> None:
    """How the trial ended (one of STATUSES) and why, when it did not simply complete."""
    trial.set_user_attr(STATUS, status)
    if reason:
        trial.set_user_attr(REASON, reason)


def result_metrics(result: TrialResult) -> dict[str, Any]:
    """Every measured objective and the numbers a reader needs beside them.

    The interval is the Wilson interval of the best epoch's accuracy as a proportion of the split; it
    does not widen for having picked the best of several epochs."""
    acc, n = result.best_val_accuracy, result.val_images
    low, high = wilson_interval(accuracy=acc, n=n) if acc is not None and n else (None, None)
    extra = {
        VAL_IMAGES: n if low is not None else None,
        ACCURACY_LOW: low,
        ACCURACY_HIGH: high,
        "latency_ms_large_batch": result.latency_ms_large_batch,
        "process_peak_rss": result.peak_memory_bytes if result.peak_memory_kind == "process_peak_rss" else None,
        "train_images_per_second": result.train_images_per_second,
        "best_epoch": result.best_epoch,
        "batch_size": result.batch_size,
        "memory_efficient": result.memory_efficient,
        "compiled": result.compiled,
    }
    return {**objective_values(result), **{k: v for k, v in extra.items() if v is not None}}


def write_result(trial: optuna.Trial, result: TrialResult) -> dict[str, Any]:
    """A trained trial's metrics, learning curve, environment and notes; returns the metrics."""
    metrics = result_metrics(result)
    trial.set_user_attr(METRICS, metrics)
    trial.set_user_attr(HISTORY, [asdict(h) for h in result.history])
    trial.set_user_attr(ENVIRONMENT, result.environment)
    trial.set_user_attr(NOTES, result.notes)
    write_outcome(trial, result.status, result.reason)
    return metrics


def write_rejected(trial: optuna.Trial, costs: dict[str, float], reason: str) -> dict[str, Any]:
    """A candidate over a budget, never trained: its costs and no accuracy; returns the metrics."""
    metrics = {ACCURACY: 0.0, **costs}
    trial.set_user_attr(METRICS, metrics)
    write_outcome(trial, "rejected", f"over budget before training: {reason}")
    return metrics


def copy_result(trial: optuna.Trial, twin: FrozenTrial) -> int:
    """The twin's stored result as this trial's; returns the trial that trained it."""
    source: int = twin.user_attrs.get(REUSED_FROM, twin.number)
    for key in (METRICS, HISTORY, ENVIRONMENT, NOTES):
        if key in twin.user_attrs:
            trial.set_user_attr(key, twin.user_attrs[key])
    trial.set_user_attr(REUSED_FROM, source)
    return source


def write_curve(trial: optuna.Trial, *, curve: Sequence[float], costs: Mapping[str, float]) -> None:
    """A running trial's accuracy after each epoch so far and its costs known before training, for other workers."""
    trial.set_user_attr(CURVE, {"val_accuracy": [float(a) for a in curve], "costs": dict(costs)})


def claim_training(trial: optuna.Trial, trains: bool) -> None:
    """Mark (or unmark) the trial as the one that trains its network; its twins wait for it."""
    trial.set_user_attr(TRAINS, trains)


def write_ablation(trial: optuna.Trial, key: dict[str, Any]) -> None:
    trial.set_user_attr(ABLATION, key)


def write_worker(trial: optuna.Trial) -> None:
    """This process runs the trial (a dead worker is recognised by its host and pid)."""
    trial.set_user_attr(WORKER, {"host": socket.gethostname(), "pid": os.getpid(), "trial": trial.number})


def write_heartbeat(study: optuna.Study, trial: AnyTrial) -> None:
    """A journal trial's beat: the time now, in its user attributes."""
    storage = optuna_internals.storage_of(study)
    storage.set_trial_user_attr(optuna_internals.trial_id_of(trial), HEARTBEAT, time.time())


def fail_lost_trial(study: optuna.Study, trial: FrozenTrial, why: str) -> bool:
    """Record a trial whose worker died as failed, with why; False when another worker got there first."""
    storage = optuna_internals.storage_of(study)
    trial_id = optuna_internals.trial_id_of(trial)
    try:
        storage.set_trial_user_attr(trial_id, STATUS, "failed")
        storage.set_trial_user_attr(trial_id, REASON, why)
        return bool(storage.set_trial_state_values(trial_id, state=TrialState.FAIL))
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


def baseline_attrs(name: str) -> dict[str, Any]:
    """User attributes of an enqueued baseline trial."""
    return {BASELINE: name}


def requeued_attrs(trial: FrozenTrial) -> dict[str, Any]:
    """What a re-queued trial keeps of the lost one: which baseline it was, if any."""
    return {k: v for k, v in trial.user_attrs.items() if k == BASELINE}


def rerun_system_attrs(trial: FrozenTrial) -> dict[str, Any]:
    """System attributes of the re-run of a lost trial, as Optuna's retry callback writes them: the first
    lost trial and every lost trial of the chain, this one included."""
    history = [*trial.system_attrs.get(RETRY_HISTORY, []), trial.number]
    return {FAILED_TRIAL: trial.system_attrs.get(FAILED_TRIAL, trial.number), RETRY_HISTORY: history}


# ----- reading: any trial ---------------------------------------------------------------------


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

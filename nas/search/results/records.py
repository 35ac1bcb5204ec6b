"""How a trial's outcome is stored in an Optuna study: the attribute keys and the writers of a live trial.

A stored trial is read back, for reports, exports and the workers' decisions, by `nas.search.results.trial_record`.
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

import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.search.results import optuna_internals
from nas.search.spec.objectives import ACCURACY, objective_values
from nas.stats import wilson_interval
from nas.train.results import TrialResult

AnyTrial = optuna.Trial | FrozenTrial

# Trial user-attribute keys. Only this module (writing) and trial_record.py (reading) use them: everything else
# goes through the typed functions there (writers here take a live trial; readers there any trial, live or frozen).
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
# A trial's constraints, by name: PARAMS and FLOPS (value minus the study's max_params / max_flops) and this one
# (1 when the network did not fit the device's memory, else -1). Over 0 is infeasible.
MEMORY_CONSTRAINT = "memory"
ABLATION = "ablation"  # {"mode", "seed", "match", "target"} on the runs of `nas ablate`
# Columns of the ablation table `nas ablate` writes and the report reads (nas.search.run.ablate, nas.report.forest).
ABLATION_MEAN_COLUMN = f"{ACCURACY}_mean"  # the mean validation accuracy over seeds
ABLATION_INTERVAL_COLUMNS = ("ci95_low", "ci95_high")  # its 95% interval
# {"proxy", "select", "score", "rank", "proposals", "scored", "score_seconds", "seconds"}: how a pre-screened
# trial's network was picked among the sampler's proposals (nas.search.run.prescreen.Choice.record)
PRESCREEN = "prescreen"
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


def prescreen_attrs(pick: dict[str, Any]) -> dict[str, Any]:
    """User attributes of a trial enqueued by a pre-screen: how its network was picked."""
    return {PRESCREEN: pick}


def requeued_attrs(trial: FrozenTrial) -> dict[str, Any]:
    """What a re-queued trial keeps of the lost one: which baseline it was, or how its pre-screen picked it."""
    return {k: v for k, v in trial.user_attrs.items() if k in (BASELINE, PRESCREEN)}


def rerun_system_attrs(trial: FrozenTrial) -> dict[str, Any]:
    """System attributes of the re-run of a lost trial, as Optuna's retry callback writes them: the first
    lost trial and every lost trial of the chain, this one included."""
    history = [*trial.system_attrs.get(RETRY_HISTORY, []), trial.number]
    return {FAILED_TRIAL: trial.system_attrs.get(FAILED_TRIAL, trial.number), RETRY_HISTORY: history}

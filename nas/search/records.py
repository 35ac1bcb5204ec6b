"""How a trial's outcome is stored in an Optuna study, and read back for reports and exports.

Storage is the contract between the study runner (which writes) and reports and exports
(which read), possibly on other machines and other versions. Everything a trial knows goes into
its user attributes under the keys below; its Optuna values are the study's objectives, in the
order the study lists them (study user attribute `objectives`).

Optuna states: `complete` and `reused` trials are COMPLETE and feasible; `rejected` (over a
budget constraint, never trained) and `infeasible` (out of memory) trials are COMPLETE with a
violated constraint, so samplers learn to avoid them and `study.best_trials` leaves them out;
`pruned` trials are PRUNED; `failed` trials (non-finite loss, an error) are FAIL.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.errors import UsageError

# Objective name -> direction. Values are per trial: accuracy on the validation split, counted
# FLOPs (fvcore convention) and parameters, batch-1 latency in ms, peak training memory in
# bytes, training wall time in seconds.
OBJECTIVES: dict[str, str] = {
    "val_accuracy": "maximize",
    "flops": "minimize",
    "params": "minimize",
    "latency_ms": "minimize",
    "peak_memory": "minimize",
    "train_time": "minimize",
}

# Trial user-attribute keys.
STATUS = "status"  # complete | reused | pruned | failed | infeasible | rejected
REASON = "reason"  # why a trial is not complete, or what it reused
ARCH = "arch"  # ArchConfig.to_dict() of the trained network (or the baseline's description)
ARCH_HASH = "arch_hash"
CONNECTIVITY = "connectivity"  # mode, or "baseline" family name for torchvision baselines
RECIPE_HASH = "recipe_hash"
BASELINE = "baseline"  # the baseline's name for fixed baseline trials
REUSED_FROM = "reused_from"  # trial number whose result was reused
TRAINS = "trains"  # True on the one running trial that trains its network; its twins wait for it
METRICS = "metrics"  # dict: every objective name above that was measured, and more
HISTORY = "history"  # list of per-epoch dicts (epoch, train_loss, ..., val_accuracy)
ENVIRONMENT = "environment"  # device and versions
NOTES = "notes"  # automatic decisions (memory-efficient mode, retries, compile)

# Trial system-attribute keys Optuna's retry callback writes on a re-run of a trial whose worker died.
FAILED_TRIAL = "failed_trial"  # the number of the first trial this re-run replaces
RETRY_HISTORY = "retry_history"  # every number it replaces

# Study user-attribute keys.
STUDY_OBJECTIVES = "objectives"  # list of objective names, the order of trial values
STUDY_PROVENANCE = "provenance"  # dict: dataset and split, budget, device, versions, commit, study file

STATUSES = ("complete", "reused", "pruned", "failed", "infeasible", "rejected", "running")


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
    constraints: dict[str, float]
    duration_s: float | None
    datetime_start: str | None = None
    notes: list[str] = field(default_factory=list)


def study_objectives(study: optuna.Study) -> list[str]:
    names = study.user_attrs.get(STUDY_OBJECTIVES)
    if not names:
        raise UsageError(
            f"study {study.study_name!r} was not made by densenas: it has no '{STUDY_OBJECTIVES}'",
            field="study",
            value=study.study_name,
            allowed="a study that nas run created",
        )
    return list(names)


def record_from_trial(trial: FrozenTrial, objectives: list[str]) -> TrialRecord:
    attrs = trial.user_attrs
    if trial.state == TrialState.RUNNING or trial.state == TrialState.WAITING:
        status = "running"
    else:
        status = attrs.get(STATUS) or {
            TrialState.COMPLETE: "complete",
            TrialState.PRUNED: "pruned",
            TrialState.FAIL: "failed",
        }.get(trial.state, "failed")
    constraints = dict(trial.constraints) if trial.constraints else {}
    values = (
        dict(zip(objectives, trial.values, strict=True)) if trial.state == TrialState.COMPLETE and trial.values else {}
    )
    feasible = status in ("complete", "reused") and all(v <= 0 for v in constraints.values())
    return TrialRecord(
        number=trial.number,
        status=status,
        feasible=feasible,
        reason=attrs.get(REASON),
        connectivity=attrs.get(CONNECTIVITY),
        baseline=attrs.get(BASELINE),
        reused_from=attrs.get(REUSED_FROM),
        arch_hash=attrs.get(ARCH_HASH),
        arch=dict(attrs.get(ARCH) or {}),
        values=values,
        metrics=dict(attrs.get(METRICS) or {}),
        history=list(attrs.get(HISTORY) or []),
        params=dict(trial.params),
        constraints=constraints,
        duration_s=trial.duration.total_seconds() if trial.duration is not None else None,
        datetime_start=trial.datetime_start.isoformat() if trial.datetime_start else None,
        notes=list(attrs.get(NOTES) or []),
    )


def load_records(study: optuna.Study) -> list[TrialRecord]:
    objectives = study_objectives(study)
    trials = study.get_trials(deepcopy=False)
    rerun_as: dict[int, int] = {}  # a trial lost with its worker -> the trial that re-ran it
    for t in trials:
        for lost in [*t.system_attrs.get(RETRY_HISTORY, []), t.system_attrs.get(FAILED_TRIAL)]:
            if lost is not None:
                rerun_as[int(lost)] = t.number
    records = []
    for t in trials:
        record = record_from_trial(t, objectives)
        if record.reason is None and t.number in rerun_as:  # a database heartbeat failed it: no attrs then
            why = f"its worker stopped (no heartbeat); re-run as trial {rerun_as[t.number]} with the same parameters"
            record = dataclasses.replace(record, reason=why)
        records.append(record)
    return records

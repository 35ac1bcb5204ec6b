"""Every use of Optuna's private API, in one module (docs/architecture.md).

Each function names what it reaches into. CHECKED_AGAINST lists the Optuna releases every function
here was checked against (by tests/search/results/test_optuna_internals.py, which fails here, with the name,
instead of a study failing somewhere deep inside a worker); pyproject.toml admits exactly their minor
versions, and requirements.lock pins the newest. A new Optuna minor release: run those tests on it,
read each function's target in its source, then add it here and widen pyproject.toml's bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial

CHECKED_AGAINST = ("5.0.0", "5.1.0")


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage Optuna opened for the study.

    `Study._storage` (Optuna 5.0.0, 5.1.0): a study has no public accessor for its storage; the heartbeat,
    lost-trial detection and the journal heartbeat attribute need the storage itself.
    """
    storage: optuna.storages.BaseStorage = study._storage
    return storage


def trial_id_of(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of a trial (not its number).

    `Trial._trial_id` and `FrozenTrial._trial_id` (Optuna 5.0.0, 5.1.0): storage methods take ids, which no
    public attribute exposes.
    """
    trial_id: int = trial._trial_id
    return trial_id


def heartbeat_storage(storage: optuna.storages.BaseStorage) -> Any | None:
    """The storage as Optuna's heartbeat interface when its heartbeat is on (databases), else None.

    `optuna.storages._heartbeat.BaseHeartbeat` and `is_heartbeat_enabled` (Optuna 5.0.0, 5.1.0): Optuna beats
    only inside `Study.optimize`; our runner asks for trials itself, so it records beats itself.
    """
    from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled

    if isinstance(storage, BaseHeartbeat) and is_heartbeat_enabled(storage):
        return storage
    return None


def grid_size(sampler: optuna.samplers.GridSampler) -> int:
    """How many points the grid sampler's grid has.

    `GridSampler._all_grids` (Optuna 5.0.0, 5.1.0): the sampler keeps its grid private; a worker needs its
    size to stop claiming trials at the end of the grid.
    """
    return len(sampler._all_grids)


def hypervolume(front: np.ndarray, reference: np.ndarray) -> float:
    """Exact hypervolume of a Pareto front (minimisation) in three or more dimensions.

    `optuna._hypervolume.compute_hypervolume` (Optuna 5.0.0, 5.1.0): the WFG algorithm Optuna's own
    hypervolume plots use; Optuna has no public function for it.
    """
    from optuna._hypervolume import compute_hypervolume

    return float(compute_hypervolume(front, reference, assume_pareto=True))


def on_front(loss: np.ndarray) -> np.ndarray:
    """Mask of the rows of `loss` (minimised, one row per trial) that no other row dominates; equal rows
    both stay.

    `optuna.study._multi_objective._is_pareto_front` (Optuna 5.0.0, 5.1.0): the function `Study.best_trials`
    applies to every trial of the study; calling it on the trials a front is made of gives exactly
    Optuna's front without Optuna deep-copying the whole study first.
    """
    from optuna.study._multi_objective import _is_pareto_front

    mask: np.ndarray = _is_pareto_front(loss, assume_unique_lexsorted=False)
    return mask


# The system attribute Optuna kept a trial's constraints in before `Trial.set_constraint` (a list of values), and
# still reads: `optuna.study._constrained_optimization._CONSTRAINTS_KEY` (Optuna 5.0.0, 5.1.0), which Optuna's own
# `constraints_func` path writes (`samplers._base._process_constraints_after_trial`). optuna-dashboard (0.21) reads
# only this list: its Pareto-front and history plots draw a trial with a positive value in it as infeasible.
CONSTRAINT_LIST = "constraints"
# Ours: the names of the list's values, in order, so that a trial stored as the list alone keeps them.
CONSTRAINT_NAMES = "nas_constraint_names"
# How `Trial.set_constraint` keys one named constraint (Optuna 5.0.0, 5.1.0: "constraints:<name>").
_NAMED = CONSTRAINT_LIST + ":"


def constraint_list_attrs(constraints: Mapping[str, float]) -> dict[str, Any]:
    """The system attributes of a trial whose constraints are stored as Optuna's old-format list (which
    optuna-dashboard reads) in the order of their names, and those names (none for no constraints)."""
    if not constraints:
        return {}
    names = sorted(constraints)
    return {CONSTRAINT_LIST: [float(constraints[n]) for n in names], CONSTRAINT_NAMES: names}


def set_constraints(trial: optuna.Trial, constraints: Mapping[str, float], *, as_list: bool) -> None:
    """The trial's constraints, where Optuna's `best_trials` and samplers read them: with `as_list`, once, as the
    old-format list optuna-dashboard reads too (their names beside it, `CONSTRAINT_NAMES`); otherwise each through
    Optuna's public `Trial.set_constraint`, by name, as studies created before the list was stored keep doing.

    Never both: Optuna reads both forms (the list's values under "0", "1", ...), so each constraint would count
    twice, and its GP sampler would model each twice. A study's trials all take one form, since the GP sampler
    refuses a study whose trials' constraint keys differ."""
    if not as_list:
        for key, value in constraints.items():
            trial.set_constraint(key, float(value))
        return
    storage, trial_id = storage_of(trial.study), trial_id_of(trial)
    for key, value in constraint_list_attrs(constraints).items():
        storage.set_trial_system_attr(trial_id, key, value)


def named_constraints(trial: FrozenTrial) -> dict[str, float]:
    """The trial's constraints by name, whichever form stored them; a list with no names beside it (a study
    made by other code) keeps Optuna's keys "0", "1", ..."""
    names, listed = trial.system_attrs.get(CONSTRAINT_NAMES), trial.system_attrs.get(CONSTRAINT_LIST)
    if isinstance(names, list) and isinstance(listed, list) and len(names) == len(listed):
        return {str(n): float(v) for n, v in zip(names, listed, strict=True)}
    return dict(trial.constraints)


def as_constraint_list(system_attrs: Mapping[str, Any], constraints: Mapping[str, float]) -> dict[str, Any]:
    """A trial's system attributes with its `constraints` (`named_constraints`) in the list form only
    (`set_constraints` with `as_list`), for a copy of it in a study that stores them so (a new generation of an
    older study)."""
    system = {k: v for k, v in system_attrs.items() if not k.startswith(_NAMED)}
    system.update(constraint_list_attrs(constraints))
    return system


__all__ = [
    "CHECKED_AGAINST",
    "CONSTRAINT_LIST",
    "CONSTRAINT_NAMES",
    "as_constraint_list",
    "constraint_list_attrs",
    "grid_size",
    "heartbeat_storage",
    "hypervolume",
    "journal_create_trial_op",
    "named_constraints",
    "on_front",
    "set_constraints",
    "storage_of",
    "trial_id_of",
]


def journal_create_trial_op() -> int:
    """The op_code of a journal line that creates a trial.

    `optuna.storages.journal._storage.JournalOperation.CREATE_TRIAL` (Optuna 5.0.0, 5.1.0): the journal's record
    format has no public description; the integrity check (nas.search.run.journal) finds a line repeating one.
    """
    from optuna.storages.journal._storage import JournalOperation

    return int(JournalOperation.CREATE_TRIAL)

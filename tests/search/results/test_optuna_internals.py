"""Optuna's private API, used only through nas.search.results.optuna_internals: these fail loudly when Optuna
moves it."""

from __future__ import annotations

import ast
import json
import tomllib
from pathlib import Path

import numpy as np
import optuna
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from nas.search.results import optuna_internals
from nas.search.run.storage import open_storage


def _minor(version: str) -> tuple[int, int]:
    release = Version(version).release
    return release[0], release[1]


def test_the_installed_optuna_is_a_minor_release_the_internals_were_checked_against() -> None:
    """A new Optuna minor release: run this file on it, re-check every function, then add it to CHECKED_AGAINST
    and widen pyproject.toml's bound (README, 'Refreshing the lock')."""
    checked = {_minor(v) for v in optuna_internals.CHECKED_AGAINST}
    assert _minor(optuna.__version__) in checked, (optuna.__version__, optuna_internals.CHECKED_AGAINST)


def test_pyproject_admits_exactly_the_checked_minor_releases() -> None:
    project = tomllib.loads((Path(__file__).resolve().parents[3] / "pyproject.toml").read_text())["project"]
    declared = next(Requirement(r) for r in project["dependencies"] if Requirement(r).name == "optuna").specifier
    oldest = min(_minor(v) for v in optuna_internals.CHECKED_AGAINST)
    newest = max(_minor(v) for v in optuna_internals.CHECKED_AGAINST)
    assert all(v in declared for v in optuna_internals.CHECKED_AGAINST)
    assert f"{newest[0]}.{newest[1]}.99" in declared and f"{newest[0]}.{newest[1] + 1}.0" not in declared
    before_oldest = f"{oldest[0]}.{oldest[1] - 1}.99" if oldest[1] else f"{oldest[0] - 1}.99.99"
    assert f"{oldest[0]}.{oldest[1]}.0" in declared and before_oldest not in declared


def test_every_internal_function_has_a_behaviour_test_here() -> None:
    """Each function that reaches into Optuna is called by a test in this file, so a move shows by name."""
    called = {
        node.attr
        for node in ast.walk(ast.parse(Path(__file__).read_text()))
        if isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "optuna_internals"
    }
    functions = {name for name in optuna_internals.__all__ if callable(getattr(optuna_internals, name))}
    assert functions and functions <= called, functions - called


def test_storage_and_trial_id_reach_the_storage_the_study_uses(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "journal.log"))
    study = optuna.create_study(storage=storage, study_name="s")
    study.ask()
    trial = study.ask()
    assert optuna_internals.storage_of(study) is storage
    trial_id = optuna_internals.trial_id_of(trial)
    storage.set_trial_user_attr(trial_id, "k", 7)
    assert study.trials[1].user_attrs == {"k": 7} and study.trials[0].user_attrs == {}
    assert optuna_internals.trial_id_of(study.trials[1]) == trial_id


def test_heartbeat_storage_only_for_databases_with_a_heartbeat(tmp_path: Path) -> None:
    assert optuna_internals.heartbeat_storage(open_storage(str(tmp_path / "journal.log"))) is None
    plain = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'a.db'}")
    assert optuna_internals.heartbeat_storage(plain) is None
    beating = open_storage(f"sqlite:///{tmp_path / 'b.db'}", heartbeat_seconds=5)
    assert optuna_internals.heartbeat_storage(beating) is beating


def test_hypervolume_of_a_three_dimensional_front() -> None:
    # Two boxes of volume 1*2*3 = 6 and 2*1*1 = 2 overlapping in 1*1*1: 7.
    front = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    assert optuna_internals.hypervolume(front, np.array([2.0, 2.0, 4.0])) == pytest.approx(2 * 2 * 3 + 1 * 1 * 1)


def test_grid_size_counts_every_combination() -> None:
    sampler = optuna.samplers.GridSampler({"a": [1, 2, 3], "b": ["x", "y"]})
    assert optuna_internals.grid_size(sampler) == 6


def test_on_front_keeps_equal_rows_and_drops_dominated_ones() -> None:
    loss = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5], [0.5, 2.0]])
    assert optuna_internals.on_front(loss).tolist() == [True, True, True, False, True, False]


def test_journal_create_trial_op_is_the_op_code_of_the_lines_that_create_trials(tmp_path: Path) -> None:
    journal = tmp_path / "journal.log"
    study = optuna.create_study(storage=open_storage(str(journal)))
    study.ask()
    study.ask()
    ops = [json.loads(line)["op_code"] for line in journal.read_text().splitlines()]
    assert ops.count(optuna_internals.journal_create_trial_op()) == 2 == len(study.trials)


def test_constraints_stored_by_name_or_as_a_list_read_the_same_and_count_once_to_optuna(tmp_path: Path) -> None:
    study = optuna.create_study(
        storage=open_storage(str(tmp_path / "journal.log")), directions=["maximize", "minimize"]
    )
    named = {"params": 5.0, "memory": -1.0, "flops": -3.0}
    with_list, without = study.ask(), study.ask()
    optuna_internals.set_constraints(with_list, named, as_list=True)
    optuna_internals.set_constraints(without, named, as_list=False)  # a study created before the list was stored
    for trial in (with_list, without):
        study.tell(trial, [0.9, 1.0])
    stored_with, stored_without = study.trials
    # optuna-dashboard reads the list, in the order of the names (flops, memory, params); Optuna reads each value
    # once (stored both ways, Optuna counted each twice and its GP sampler modelled each twice).
    assert stored_with.system_attrs[optuna_internals.CONSTRAINT_LIST] == [-3.0, -1.0, 5.0]
    assert stored_with.system_attrs[optuna_internals.CONSTRAINT_NAMES] == ["flops", "memory", "params"]
    assert optuna_internals.CONSTRAINT_LIST not in stored_without.system_attrs
    assert stored_with.constraints == {"0": -3.0, "1": -1.0, "2": 5.0}
    assert stored_without.constraints == named
    assert (
        optuna_internals.named_constraints(stored_with) == named == optuna_internals.named_constraints(stored_without)
    )
    assert study.best_trials == []  # both infeasible (params > 0), to Optuna as before
    assert optuna_internals.constraint_list_attrs({}) == {}


def test_a_trial_with_nothing_but_the_list_keeps_its_numbered_constraints() -> None:
    trial = optuna.trial.create_trial(
        values=[1.0],
        system_attrs={optuna_internals.CONSTRAINT_LIST: [0.5, -1.0]},
        state=optuna.trial.TrialState.COMPLETE,
    )
    assert optuna_internals.named_constraints(trial) == {"0": 0.5, "1": -1.0}


def test_a_trial_copied_into_a_list_study_keeps_one_form_and_its_other_attributes() -> None:
    """A new generation of an older study converts the named constraints of the trials it carries to the list."""
    system = {"constraints:params": 5.0, "constraints:memory": -1.0, "fail_trial": 3}
    converted = optuna_internals.as_constraint_list(system, {"params": 5.0, "memory": -1.0})
    assert converted == {
        "fail_trial": 3,
        optuna_internals.CONSTRAINT_LIST: [-1.0, 5.0],
        optuna_internals.CONSTRAINT_NAMES: ["memory", "params"],
    }
    copy = optuna.trial.create_trial(values=[1.0], system_attrs=converted, state=optuna.trial.TrialState.COMPLETE)
    assert optuna_internals.named_constraints(copy) == {"memory": -1.0, "params": 5.0}
    assert copy.constraints == {"0": -1.0, "1": 5.0}

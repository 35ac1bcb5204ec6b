"""Baselines are references, not candidates: trained whatever the budget constraints say, recorded over them (off the
front, with a note saying which), and only a baseline that does not fit the device's memory goes untrained, saying
so. Searched networks over the budget are still rejected before training."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from nas.cli.main import main
from nas.search.results import optuna_internals, study_attrs
from nas.search.results import records as R
from nas.search.results.trial_record import load_records
from nas.search.run import preflight
from nas.search.run.runner import run_worker
from nas.search.run.storage import open_storage
from nas.search.spec.studyfile_reader import load_study_file
from tests.search.run.test_study import finished, write_study

PLAIN20_PARAMS = 295_226  # the preset with one input channel and 10 classes (digits)
TINY_BUDGET = "[constraints]\nmax_params = 100\n"  # every network is over it


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def main_output(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_a_preset_baseline_over_max_params_is_trained_and_kept_off_the_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sf = load_study_file(write_study(tmp_path, trials=3, baselines='["plain20"]', epochs=1, extra=TINY_BUDGET))
    study = run_worker(sf)
    trials = sorted(finished(study), key=lambda t: t.number)
    baseline, searched = trials[0], trials[1:]
    assert baseline.user_attrs[R.BASELINE] == "plain20"
    assert baseline.user_attrs[R.STATUS] == "complete"
    assert [h["epoch"] for h in baseline.user_attrs[R.HISTORY]] == [1]  # trained
    assert baseline.user_attrs[R.METRICS]["params"] == PLAIN20_PARAMS
    assert 0.0 < baseline.user_attrs[R.METRICS]["val_accuracy"] <= 1.0
    assert optuna_internals.named_constraints(baseline)["params"] == PLAIN20_PARAMS - 100 > 0
    assert f"over max_params: {PLAIN20_PARAMS:,} parameters > 100" in baseline.user_attrs[R.NOTES]
    assert study.best_trials == []  # over the budget: never on the front
    record = next(r for r in load_records(study) if r.number == baseline.number)
    assert record.baseline == "plain20" and not record.feasible
    assert record.constraints == {"params": PLAIN20_PARAMS - 100.0, "memory": -1.0}  # each once, by name
    assert any(note.startswith("over max_params") for note in record.notes)
    assert record.over_budgets == ("max_params",)
    # Every place a reader meets it says so: the status listing, `nas show`, the report's status cell.
    status = main_output(capsys, "status", sf.path)
    assert (
        f"  over budget: trial {baseline.number} plain20 is over the study's max_params (a reference, on no front)"
        in (status.splitlines())
    )
    show = main_output(capsys, "show", sf.path, "--trial", str(baseline.number)).splitlines()[0]
    assert show.endswith("; over the study's max_params, so on no front")
    assert searched  # the searched networks, all over the budget, are still rejected before training
    for t in searched:
        assert t.user_attrs[R.STATUS] == "rejected" and R.HISTORY not in t.user_attrs
        assert t.user_attrs[R.REASON].startswith("over budget before training: ")
        assert "parameters > max_params 100" in t.user_attrs[R.REASON]
        assert optuna_internals.named_constraints(t)["params"] > 0


def test_a_baseline_that_does_not_fit_the_memory_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAS_INJECT_FAULTS", "0:oom")  # trial 0, the baseline, runs out of memory at every step
    sf = load_study_file(write_study(tmp_path, trials=1, baselines='["plain20"]', epochs=1))
    study = run_worker(sf)
    baseline = study.trials[0]
    assert baseline.user_attrs[R.BASELINE] == "plain20"
    assert baseline.user_attrs[R.STATUS] == "infeasible"
    assert baseline.user_attrs[R.REASON].startswith("baseline plain20 did not fit the device's memory: out of memory")
    assert optuna_internals.named_constraints(baseline)["memory"] > 0 and study.best_trials == []


def test_constraints_reach_optuna_dashboard_as_a_list_only_in_studies_created_with_it(tmp_path: Path) -> None:
    """New studies store the list optuna-dashboard reads; a study made before resumes without it, so every trial of
    a study has the same constraint keys (Optuna's GP sampler refuses a study whose trials' keys differ)."""
    new = load_study_file(write_study(tmp_path, name="new", trials=2, extra=TINY_BUDGET))
    for t in finished(run_worker(new)):
        named = optuna_internals.named_constraints(t)
        assert t.system_attrs[optuna_internals.CONSTRAINT_LIST] == [-1.0, named["params"]]  # memory, params
        assert list(t.constraints.values()) == [-1.0, named["params"]]  # Optuna counts each once
    old = load_study_file(write_study(tmp_path, name="old", trials=2, extra=TINY_BUDGET))
    made_before = optuna.create_study(
        storage=open_storage(old.storage_url()), study_name=old.name, directions=["maximize", "minimize"]
    )
    study_attrs.write_study_objectives(made_before, list(old.objectives))
    study_attrs.write_study_settings(made_before, preflight.settings(old))
    study = run_worker(old)
    assert not study_attrs.stores_constraint_list(study)
    assert len(finished(study)) == 2
    for t in finished(study):
        assert optuna_internals.CONSTRAINT_LIST not in t.system_attrs and set(t.constraints) == {"params", "memory"}
    assert all(set(r.constraints) == {"params", "memory"} for r in load_records(study))

"""A search space that grows: a resumed study whose categorical choices changed continues as a new generation,
its trials carried over, nothing retrained, no trial failed (it failed every trial with Optuna's "dynamic value
space" error)."""

from __future__ import annotations

import csv as csv_module
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nas.report.data import compute_report_data
from nas.search.results import optuna_internals
from nas.search.results.generations import carry_trials
from nas.search.results.records import CARRIED_FROM
from nas.search.results.trial_record import load_records
from nas.search.run.storage import open_storage
from nas.search.spec.space_file import load_space
from tests.commands import nas_here
from tests.search.run.test_storage import storage

__all__ = ["storage"]  # the journal/PostgreSQL fixture, shared with test_storage.py

SPACE = """
name = "g"
[fixed]
stem = "cifar"
block_config = [1, 1]
bn_size = 0
[knobs.connectivity]
choices = {modes}
[knobs.growth_rate]
choices = [4, 8]
[knobs.init_features]
type = "int"
low = 4
high = 16
"""
STUDY = """
[study]
name = "gen"
space = "s.toml"
objectives = ["val_accuracy", "flops"]
sampler = "tpe"
trials = 10
device = "cpu"
[data]
name = "digits"
[recipe]
epochs = 1
batch_size = 128
measure_latency = false
"""


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A 10-trial study, then its space grown by a mode and the study resumed for 4 more trials:
    (folder, what the second run printed, the first run's journal before the second)."""
    folder = tmp_path_factory.mktemp("grown")
    (folder / "s.toml").write_text(SPACE.format(modes='["plain", "residual"]'))
    (folder / "st.toml").write_text(STUDY)
    first = nas_here("run", "st.toml", "--no-report", cwd=folder)
    assert first.returncode == 0, first.stderr
    before = (folder / "runs" / "gen" / "journal.log").read_text()
    (folder / "s.toml").write_text(SPACE.format(modes='["plain", "residual", "dense"]'))
    refused = nas_here("run", "st.toml", "--trials", "14", "--no-report", cwd=folder)
    assert refused.returncode == 2 and "--allow-changed" in refused.stderr  # a changed space still needs a yes
    second = nas_here("run", "st.toml", "--trials", "14", "--allow-changed", "space", "--out", "reports", cwd=folder)
    assert second.returncode == 0, second.stderr
    return folder, second.stdout, before


def studies(folder: Path) -> dict[str, optuna.Study]:
    storage = open_storage(str(folder / "runs" / "gen" / "journal.log"))
    return {
        s.study_name: optuna.load_study(study_name=s.study_name, storage=storage)
        for s in optuna.get_all_study_summaries(storage)
    }


def test_a_grown_space_continues_as_a_new_generation_with_every_trial_carried(grown: tuple[Path, str, str]) -> None:
    folder, printed, _ = grown
    assert printed.splitlines()[0] == (
        "study 'gen': the space changed connectivity in a way Optuna cannot resume; it continues as generation 2 "
        "(gen@2) with 10 trials of gen carried over (nothing retrained)"
    )
    both = studies(folder)
    assert sorted(both) == ["gen", "gen@2"]
    old, new = both["gen"].trials, both["gen@2"].trials
    assert len(old) == 10 and len(new) == 14
    assert not [t for t in new if t.state != TrialState.COMPLETE]  # no failed trial
    space = load_space(str(folder / "s.toml")).distributions()
    for before, after in zip(old, new[:10], strict=True):  # the first 10 of the new generation, as they were
        assert (after.number, after.params, after.values) == (before.number, before.params, before.values)
        assert after.datetime_start == before.datetime_start and after.user_attrs[CARRIED_FROM] == {
            "study": "gen", "trial": before.number, "generation": 1,
        }  # fmt: skip
        assert after.distributions == {name: space[name] for name in after.params}  # what TPE reads: the new space
    assert all(CARRIED_FROM not in t.user_attrs for t in new[10:])  # trained in generation 2, after the 10
    assert {t.params["connectivity"] for t in new[10:]} <= {"plain", "residual", "dense"}


def test_the_generations_read_as_one_search(grown: tuple[Path, str, str]) -> None:
    folder, _, _ = grown
    status = nas_here("status", "st.toml", cwd=folder)
    assert status.stdout.splitlines()[:2] == [
        "study gen@2: 14 trials counted against the budget",
        "  generation 2: 10 trials from generation 1 carried over, not retrained",
    ]
    again = nas_here("run", "st.toml", "--trials", "14", "--no-report", cwd=folder)  # the newest generation resumes
    assert again.returncode == 0 and "generation" not in again.stdout
    new = studies(folder)["gen@2"]
    assert len(new.trials) == 14
    assert [r.generation for r in load_records(new)] == [1] * 10 + [None] * 4
    data = compute_report_data(study=new)
    assert any(note.startswith("generation 2 of this study: 10 trials of earlier generations") for note in data.notes)
    # one page per study, whichever its generation: the newest replaces the page of the one before
    page = (folder / "reports" / "gen.html").read_text()
    assert "<h1>Study gen@2</h1>" in page and not (folder / "reports" / "gen_2.html").exists()
    csv = nas_here("trials", "st.toml", "--csv", "t.csv", cwd=folder)
    assert csv.returncode == 0
    with (folder / "t.csv").open() as f:
        assert [row["generation"] for row in csv_module.DictReader(f)] == ["1"] * 10 + ["2"] * 4


def test_carrying_renumbers_what_points_at_trials_and_leaves_what_the_space_cannot_draw(tmp_path: Path) -> None:
    """A lost trial and its waiting re-run keep pointing at each other under their new numbers; a trial whose
    growth rate the new space lacks stays behind."""
    (tmp_path / "s.toml").write_text(SPACE.format(modes='["plain", "dense"]'))
    space = load_space(str(tmp_path / "s.toml"))
    old_dists = {**space.distributions(), "growth_rate": optuna.distributions.CategoricalDistribution([4, 8, 16])}
    previous = optuna.create_study(study_name="x", directions=["maximize", "minimize"])
    params: dict[str, object] = {"connectivity": "plain", "growth_rate": 4, "init_features": 8}

    def add(
        state: TrialState,
        params: dict[str, object],
        system: dict[str, object] | None = None,
        constraints: dict[str, float] | None = None,
    ) -> None:
        values = [0.5, 1.0] if state == TrialState.COMPLETE else None
        dists = {k: old_dists[k] for k in params}
        trial = optuna.trial.create_trial(
            state=state,
            values=values,
            params=params,
            distributions=dists,
            system_attrs=system or {},
            constraints=constraints,
        )
        previous.add_trial(trial)

    add(TrialState.COMPLETE, {**params, "growth_rate": 16})  # 0: not in the new space
    add(TrialState.FAIL, params)  # 1: lost with its worker
    add(TrialState.COMPLETE, params, constraints={"params": -5.0, "memory": -1.0})  # 2: stored before the list was
    add(TrialState.WAITING, params, {"failed_trial": 1, "retry_history": [1]})  # 3: its re-run, waiting
    new = optuna.create_study(study_name="x@2", directions=["maximize", "minimize"])
    carried = carry_trials(previous, new, space)
    assert (carried.carried, carried.left) == (3, 1)
    lost, done, rerun = new.trials
    assert [lost.state, done.state, rerun.state] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.WAITING]
    assert (rerun.system_attrs["failed_trial"], rerun.system_attrs["retry_history"]) == (lost.number, [lost.number])
    assert [t.user_attrs[CARRIED_FROM]["trial"] for t in new.trials] == [1, 2, 3]
    # The new generation stores constraints as optuna-dashboard reads them, for carried trials too.
    assert done.system_attrs[optuna_internals.CONSTRAINT_LIST] == [-1.0, -5.0]  # memory, params
    assert set(done.constraints) == {"0", "1"}  # the list only, as the new generation's own trials: one set of keys
    assert optuna_internals.named_constraints(done) == {"params": -5.0, "memory": -1.0}
    assert optuna_internals.CONSTRAINT_LIST not in lost.system_attrs  # failed: no constraints


def test_a_widened_range_resumes_the_same_study(tmp_path: Path) -> None:
    """Optuna follows a changed numeric range: no new generation, as before."""
    (tmp_path / "s.toml").write_text(SPACE.format(modes='["plain", "residual"]'))
    (tmp_path / "st.toml").write_text(STUDY.replace("trials = 10", "trials = 2"))
    assert nas_here("run", "st.toml", "--no-report", cwd=tmp_path).returncode == 0
    (tmp_path / "s.toml").write_text(SPACE.format(modes='["plain", "residual"]').replace("high = 16", "high = 32"))
    again = nas_here("run", "st.toml", "--trials", "3", "--allow-changed", "space", "--no-report", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0] == "study 'gen' resumes with changed space.knobs (--allow-changed)"
    assert sorted(studies(tmp_path)) == ["gen"] and len(studies(tmp_path)["gen"].trials) == 3


def test_a_worker_opened_on_an_older_generation_stops_claiming_and_says_why(
    grown: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A `nas worker` started before the space grew went on training into the old generation, off the new front."""
    import dataclasses

    from nas.search.results.generations import newer_generation
    from nas.search.run.runner import _Claiming, _Progress
    from nas.search.run.storage import ClaimLock
    from nas.search.spec.studyfile_reader import load_study_file

    folder, _, _ = grown
    old, new = studies(folder)["gen"], studies(folder)["gen@2"]
    assert newer_generation(old) == "gen@2" and newer_generation(new) is None
    sf = load_study_file(folder / "st.toml")
    url = str(folder / "runs" / "gen" / "journal.log")
    before = len(old.get_trials(deepcopy=False))
    claiming = _Claiming(
        sf=dataclasses.replace(sf, heartbeat_seconds=30),
        study=old,
        lock=ClaimLock(url, sf.name),
        budget=100,
        deadline=None,
        progress=_Progress(100, before, ""),
        label="",
    )
    capsys.readouterr()
    claiming.loop(objective=None, slot=None)  # type: ignore[arg-type]  # returns before any trial runs
    assert capsys.readouterr().out.strip() == (
        "study 'gen' has grown into generation 'gen@2' since this worker started (its search space changed): it "
        "claims no more trials here; start it again to work on the new one"
    )
    assert len(old.get_trials(deepcopy=False)) == before  # nothing claimed


def test_a_space_grows_into_a_new_generation_on_postgresql_as_on_the_journal(tmp_path: Path, storage: str) -> None:
    """The generations were tested on the journal only; workers on several machines share PostgreSQL."""
    from nas.search.results.generations import newer_generation

    (tmp_path / "s.toml").write_text(SPACE.format(modes='["plain", "residual"]'))
    name = f"g{uuid.uuid4().hex[:10]}"  # fresh in a shared database
    (tmp_path / "st.toml").write_text(
        STUDY.replace('name = "gen"', f'name = "{name}"').replace("trials = 10", "trials = 3")
    )
    assert nas_here("run", "st.toml", "--storage", storage, "--no-report", cwd=tmp_path).returncode == 0
    (tmp_path / "s.toml").write_text(SPACE.format(modes='["plain", "residual", "dense"]'))
    grow = nas_here(
        "run", "st.toml", "--storage", storage, "--trials", "5", "--allow-changed", "space", "--no-report", cwd=tmp_path
    )
    assert grow.returncode == 0, grow.stderr
    opened = open_storage(storage)
    first = optuna.load_study(study_name=name, storage=opened)
    second = optuna.load_study(study_name=f"{name}@2", storage=opened)
    assert newer_generation(first) == f"{name}@2" and newer_generation(second) is None
    carried = [t for t in second.trials if CARRIED_FROM in t.user_attrs]
    assert len(carried) == 3 and len(second.trials) == 5  # nothing retrained: 3 carried, 2 trained
    assert all(t.state == TrialState.COMPLETE for t in second.trials)

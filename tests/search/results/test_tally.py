"""StudyTally: front and count equal Optuna's full recount, whoever adds the trials; the stopping evidence."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nas.search.results import records as R
from nas.search.results.tally import StudyTally
from nas.search.run.storage import budget_used, open_storage
from nas.search.spec.stopping import Evidence

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def recount(study: optuna.Study) -> tuple[list[int], int]:
    """What the tally must equal: Optuna's front of the whole study, and the budget the finished trials use."""
    return [t.number for t in study.best_trials], budget_used(study.get_trials(deepcopy=False, states=FINISHED))


def tallied(tally: StudyTally) -> tuple[list[int], int]:
    tally.update()
    return [t.number for t in tally.front], tally.budget_used


def add_round(study: optuna.Study, rng: random.Random, size: int) -> list[optuna.Trial]:
    """Trials of every kind: on a coarse grid (so values tie), feasible with and without constraints,
    infeasible, pruned, failed, re-runs of lost trials, and some left running; returns the running ones."""
    n_obj = len(study.directions)
    running = []
    for _ in range(size):
        kind = rng.choice(["complete"] * 5 + ["unconstrained", "infeasible", "pruned", "failed", "rerun", "running"])
        values = [rng.randint(0, 4) / 4 for _ in range(n_obj)]
        if kind in ("complete", "infeasible"):
            bad = 1.0 if kind == "infeasible" else -1.0
            study.add_trial(optuna.trial.create_trial(values=values, constraints={"memory": bad}))
        elif kind == "unconstrained":  # feasible for Optuna: no constraint is violated
            study.add_trial(optuna.trial.create_trial(values=values))
        elif kind == "pruned":
            study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED))
        elif kind == "failed":
            study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
        elif kind == "rerun":  # a re-run of some earlier trial lost with its worker, finished or still to run
            lost = rng.randrange(max(len(study.get_trials(deepcopy=False)), 1))
            system_attrs = {R.FAILED_TRIAL: lost, R.RETRY_HISTORY: [lost]}
            state = rng.choice([TrialState.COMPLETE, TrialState.WAITING])
            study.add_trial(
                optuna.trial.create_trial(
                    state=state,
                    values=values if state == TrialState.COMPLETE else None,
                    system_attrs=system_attrs,
                )
            )
        else:
            running.append(study.ask())
    return running


@pytest.mark.parametrize(
    ("storage", "directions"),
    [
        ("journal.log", ["maximize", "minimize"]),
        ("journal.log", ["maximize"]),
        ("journal.log", ["maximize", "minimize", "minimize"]),
        ("sqlite", ["maximize", "minimize"]),  # a database, whose finished trials Optuna caches
    ],
)
def test_front_and_count_equal_a_full_recount_as_another_study_object_adds_trials(
    tmp_path: Path, directions: list[str], storage: str
) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}" if storage == "sqlite" else str(tmp_path / storage)
    mine = optuna.create_study(storage=open_storage(url), study_name="s", directions=directions)
    theirs = optuna.load_study(storage=open_storage(url), study_name="s")  # another worker's view
    tally = StudyTally(mine)
    assert tallied(tally) == ([], 0)
    rng = random.Random(0)
    running: list[optuna.Trial] = []
    for size in (1, 3, 40, 2, 25):
        for trial in running:  # trials seen running last time finish now, in every way
            state = rng.choice([TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL])
            values = [rng.randint(0, 4) / 4 for _ in directions] if state == TrialState.COMPLETE else None
            theirs.tell(trial, values, state=state)
        running = add_round(theirs, rng, size)
        assert tallied(tally) == recount(mine)
    for trial in running:
        theirs.tell(trial, [1.0] + [0.0] * (len(directions) - 1))  # dominates everything before it
    assert tallied(tally) == recount(mine)
    assert len(tally.front) >= 1 and tally.budget_used > 50


def test_front_and_count_follow_trials_another_process_adds(tmp_path: Path) -> None:
    url = str(tmp_path / "journal.log")
    mine = optuna.create_study(storage=open_storage(url), study_name="s", directions=["maximize", "minimize"])
    tally = StudyTally(mine)
    mine.add_trial(optuna.trial.create_trial(values=[0.5, 10.0]))
    assert tallied(tally) == ([0], 1)
    other = textwrap.dedent(f"""
        import optuna
        from optuna.trial import TrialState
        from nas.search.run.storage import open_storage
        study = optuna.load_study(storage=open_storage({url!r}), study_name="s")
        study.add_trial(optuna.trial.create_trial(values=[0.5, 10.0]))  # a tie: both stay on the front
        study.add_trial(optuna.trial.create_trial(values=[0.4, 20.0]))  # dominated
        study.add_trial(optuna.trial.create_trial(values=[0.9, 30.0]))
        study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED))
        study.add_trial(optuna.trial.create_trial(values=[0.95, 5.0], constraints={{"memory": 1.0}}))  # infeasible
    """)
    run = subprocess.run([sys.executable, "-c", other], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert tallied(tally) == recount(mine) == ([0, 1, 3], 6)
    mine.add_trial(optuna.trial.create_trial(values=[0.6, 10.0]))  # drops the two tied trials
    assert tallied(tally) == recount(mine) == ([3, 6], 7)


def test_stopping_evidence_finished_trials_once_running_ones_afresh_twins_left_out(tmp_path: Path) -> None:
    url = str(tmp_path / "journal.log")
    mine = optuna.create_study(storage=open_storage(url), study_name="s", directions=["maximize", "minimize"])
    theirs = optuna.load_study(storage=open_storage(url), study_name="s")  # another worker's view
    costs = {"flops": 100.0, "params": 10.0}

    def add(state: TrialState = TrialState.COMPLETE, *, memory: float = -1.0, **attrs: object) -> None:
        values = [0.5, 100.0] if state == TrialState.COMPLETE else None
        theirs.add_trial(
            optuna.trial.create_trial(state=state, values=values, constraints={"memory": memory}, user_attrs=attrs)
        )

    def history(*accuracies: float) -> list[dict[str, float]]:
        return [{"epoch": e, "val_accuracy": a} for e, a in enumerate(accuracies, 1)]

    add(**{R.STATUS: "complete", R.METRICS: {"val_accuracy": 0.9, **costs}, R.HISTORY: history(0.5, 0.9)})  # 0
    add(TrialState.PRUNED, **{R.STATUS: "pruned", R.METRICS: costs, R.HISTORY: history(0.3)})  # 1
    twin = {R.METRICS: {"val_accuracy": 0.9, **costs}, R.HISTORY: history(0.5, 0.9), R.REUSED_FROM: 0}
    add(**{R.STATUS: "reused", **twin})  # 2: would count trial 0 twice
    add(TrialState.PRUNED, **{R.STATUS: "pruned", R.METRICS: costs, R.HISTORY: history(0.3), R.REUSED_FROM: 1})  # 3
    add(**{R.STATUS: "complete", R.BASELINE: "plain20", R.METRICS: {"val_accuracy": 0.8}, R.HISTORY: history(0.8)})
    add(**{R.STATUS: "rejected", R.METRICS: {"val_accuracy": 0.0, **costs}})  # 5: never trained
    add(memory=1.0, **{R.STATUS: "infeasible", R.METRICS: costs, R.HISTORY: history(0.2)})  # 6: out of memory
    add(TrialState.FAIL, **{R.STATUS: "failed", R.METRICS: costs, R.HISTORY: history(0.1)})  # 7
    running, silent = theirs.ask(), theirs.ask()  # 8 wrote its curve at a rung, 9 has not reached one
    R.write_curve(running, curve=[0.4], costs=costs)
    tally = StudyTally(mine).update()
    assert tally.others(exclude=9) == [
        Evidence(number=0, costs=costs, curve=[0.5, 0.9], final=0.9),
        Evidence(number=1, costs=costs, curve=[0.3], final=None),
        Evidence(number=6, costs=costs, curve=[0.2], final=None),
        Evidence(number=8, costs=costs, curve=[0.4], final=None),
    ]
    assert [e.number for e in tally.others(exclude=8)] == [0, 1, 6]  # never the trial itself
    R.write_curve(running, curve=[0.4, 0.5, 0.6], costs=costs)  # its next rung
    assert tally.others(exclude=9)[-1].curve == [0.4]  # as the last update read it
    assert tally.update().others(exclude=9)[-1].curve == [0.4, 0.5, 0.6]
    running.set_user_attr(R.HISTORY, history(0.4, 0.5, 0.6, 0.65))
    theirs.tell(running, state=TrialState.PRUNED)
    assert tally.update().others(exclude=9)[-1] == Evidence(
        number=8, costs=costs, curve=[0.4, 0.5, 0.6, 0.65], final=None
    )
    assert len(tally.others(exclude=9)) == 4 and silent.number == 9

"""optuna-dashboard agrees with us on a constrained study we wrote: its own server, called in-process on the
journal a real study run left, serves constraints with which its Pareto-front plot's rule (feasible: every
constraint <= 0; then the non-dominated ones) picks exactly our front and Optuna's `best_trials`. Its "Best Trials"
list ignores constraints (optuna-dashboard issue #772): this says so, too."""

from __future__ import annotations

import json
import wsgiref.util
from pathlib import Path
from typing import Any

import numpy as np
import optuna_dashboard  # a dev dependency (pyproject.toml)
import pytest

from nas.data.datasets import DataConfig, load_data
from nas.search.results import optuna_internals
from nas.search.results import records as R
from nas.search.results.tally import tally_of
from nas.search.run.runner import run_worker
from nas.search.run.study import open_study
from nas.search.spec.studyfile_reader import load_study_file
from tests.search.run.test_study import write_study

TWO_WIDTHS = """
name = "two_widths"
[fixed]
stem = "cifar"
connectivity = "dense"
block_config = [2, 2]
init_features = 8
[knobs.growth_rate]
choices = [2, 8]
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def dashboard_get(storage: str, path: str) -> Any:
    """GET `path` from optuna-dashboard's own WSGI app on `storage`, in-process; the JSON it answers."""
    app = optuna_dashboard.wsgi(storage)
    environ: dict[str, Any] = {"PATH_INFO": path}
    wsgiref.util.setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    assert status == ["200 OK"], (path, status, body[:300])
    return json.loads(body)


def non_dominated(points: dict[int, list[float]], directions: list[str]) -> set[int]:
    """Trial numbers whose values no other's dominate (both kept when equal), as the dashboard's plot draws them."""
    numbers = sorted(points)
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    loss = np.array([points[n] for n in numbers], dtype=float).reshape(len(numbers), len(directions)) * signs
    return {n for n, kept in zip(numbers, optuna_internals.on_front(loss), strict=True) if kept} if numbers else set()


def test_the_dashboard_pareto_plot_marks_infeasible_trials_and_agrees_with_our_front(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Trial 0: the plain20 baseline, trained though over max_params (infeasible). Trial 1: the k=2 network, out of
    # memory (infeasible; accuracy 0 at the lowest FLOPs, so on the front when constraints are ignored). Trial 2:
    # the k=8 network, trained, the one feasible trial.
    (tmp_path / "two_widths.toml").write_text(TWO_WIDTHS)
    space = str(tmp_path / "two_widths.toml")
    budget = "[constraints]\nmax_params = 50_000\n"
    path = write_study(tmp_path, trials=3, space=space, baselines='["plain20"]', epochs=1, extra=budget)
    sf = load_study_file(path)
    study = open_study(sf, data=load_data(DataConfig(name="digits")))
    for growth_rate in (2, 8):
        study.enqueue_trial({"growth_rate": growth_rate})
    monkeypatch.setenv("NAS_INJECT_FAULTS", "1:oom")
    study = run_worker(sf)
    trials = {t.number: t for t in study.trials}
    assert [trials[n].user_attrs[R.STATUS] for n in range(3)] == ["complete", "infeasible", "complete"]

    storage = sf.storage_url()  # the journal's path: the dashboard opens it as `optuna-dashboard runs/t/journal.log`
    listed = dashboard_get(storage, "/api/studies")["study_summaries"]
    study_id = next(s["study_id"] for s in listed if s["study_name"] == sf.name)
    detail = dashboard_get(storage, f"/api/studies/{study_id}")
    served = {t["number"]: t for t in detail["trials"]}
    assert sorted(served) == [0, 1, 2]
    # The constraints it serves are ours, one value per named constraint (flops is not constrained here).
    for number, trial in trials.items():
        named = optuna_internals.named_constraints(trial)
        assert (
            served[number]["constraints"]
            == [named[key] for key in sorted(named)]
            == [
                named["memory"],
                named["params"],
            ]
        )
    assert served[0]["constraints"][1] == 295_226 - 50_000  # the baseline, over max_params
    assert served[1]["constraints"][0] == 1.0  # out of memory

    # Its Pareto-front (and history) plots: feasible = every constraint <= 0, the front among those.
    feasible = {
        n: t["values"] for n, t in served.items() if t["state"] == "Complete" and all(c <= 0 for c in t["constraints"])
    }
    dashboard_front = non_dominated(feasible, detail["directions"])
    ours = {t.number for t in tally_of(study).update().front}
    assert dashboard_front == ours == {t.number for t in study.best_trials} == {2}

    # Its "Best Trials" list ignores constraints (optuna-dashboard #772): the front of every complete trial,
    # with the out-of-memory trial 1 on it.
    complete = {n: t["values"] for n, t in served.items() if t["state"] == "Complete"}
    best_listed = {t["number"] for t in detail["best_trials"]}
    assert best_listed == non_dominated(complete, detail["directions"])
    assert 1 in best_listed and 1 not in ours

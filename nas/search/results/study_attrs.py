"""How a study's own attributes are stored: its objectives, provenance, settings and final runs.

The study-level half of the storage contract (`nas.search.results.records` holds the trials'): only this
module reads or writes these keys, through the typed functions below.
"""

from __future__ import annotations

import re
from typing import Any

import optuna

from nas.errors import UsageError

# Study user-attribute keys.
STUDY_OBJECTIVES = "objectives"  # list of objective names, the order of trial values
STUDY_PROVENANCE = "provenance"  # dict: dataset and split, budget, device, versions, commit, study file
STUDY_SETTINGS = "settings"  # dict: the space, recipe and data config a resumed study must keep
FINAL_RUN = (
    "final_run"  # "final_run:<trial>:<seed>:<recipe key>" -> one run of `nas finalize` (nas.search.results.finals)
)
# dict: the zero-cost proxy scores `nas proxies STUDY` measured for the study's trained networks (proxy_ranking)
PROXY_SCORES = "proxy_scores"
CONSTRAINT_LIST = "constraint_list"  # True: its trials store their constraints as Optuna's list too (optuna-dashboard)


def stored_objectives(study: optuna.Study) -> list[str] | None:
    """The study's objective names, or None for a study that has not recorded them (yet)."""
    names = study.user_attrs.get(STUDY_OBJECTIVES)
    return list(names) if names else None


def study_objectives(study: optuna.Study) -> list[str]:
    names = stored_objectives(study)
    if not names:
        raise UsageError(
            f"study {study.study_name!r} was not made by densenas: it has no '{STUDY_OBJECTIVES}'",
            field="study",
            value=study.study_name,
            allowed="a study that nas run created",
        )
    return list(names)


def write_study_objectives(study: optuna.Study, names: list[str]) -> None:
    """The order of trial values, for our readers and for Optuna's (optuna-dashboard labels its axes with it)."""
    study.set_user_attr(STUDY_OBJECTIVES, list(names))
    study.set_metric_names(list(names))


def study_provenance(study: optuna.Study) -> dict[str, Any]:
    return dict(study.user_attrs.get(STUDY_PROVENANCE) or {})


def write_study_provenance(study: optuna.Study, provenance: dict[str, Any]) -> None:
    study.set_user_attr(STUDY_PROVENANCE, provenance)


def study_settings(study: optuna.Study) -> dict[str, Any] | None:
    """The settings stored when the study was created (None for a study made before they were)."""
    value = study.user_attrs.get(STUDY_SETTINGS)
    return dict(value) if isinstance(value, dict) else None


def write_study_settings(study: optuna.Study, settings: dict[str, Any]) -> None:
    study.set_user_attr(STUDY_SETTINGS, settings)


def stores_constraint_list(study: optuna.Study) -> bool:
    """Whether the study's trials store their constraints as Optuna's list too, which optuna-dashboard reads
    (`optuna_internals.set_constraints`): studies created since it was; a study made before keeps its trials alike."""
    return study.user_attrs.get(CONSTRAINT_LIST) is True


def write_stores_constraint_list(study: optuna.Study) -> None:
    """Said once, when the study is created."""
    study.set_user_attr(CONSTRAINT_LIST, True)


def write_proxy_scores(study: optuna.Study, scores: dict[str, Any]) -> None:
    """The latest `nas proxies STUDY` scores (a later run replaces them): nas.search.results.proxy_ranking."""
    study.set_user_attr(PROXY_SCORES, scores)


def proxy_scores(study: optuna.Study) -> dict[str, Any] | None:
    value = study.user_attrs.get(PROXY_SCORES)
    return dict(value) if isinstance(value, dict) else None


def write_final_run(study: optuna.Study, *, trial: int, seed: int, recipe_key: str, run: dict[str, Any]) -> None:
    """One finished final training and test run, stored as it finishes: a stopped `nas finalize` keeps it."""
    study.set_user_attr(f"{FINAL_RUN}:{trial}:{seed}:{recipe_key}", run)


def final_runs(study: optuna.Study) -> list[dict[str, Any]]:
    """Every stored run of `nas finalize`, as written."""
    return [dict(v) for k, v in study.user_attrs.items() if k.startswith(f"{FINAL_RUN}:") and isinstance(v, dict)]


# A later generation of a study (nas.search.results.generations) is an Optuna study named `<study>@<n>`.
def generation_name(base: str, number: int) -> str:
    return base if number == 1 else f"{base}@{number}"


def generation_number(name: str) -> int:
    """1 for `study`, n for `study@n`."""
    match = re.fullmatch(r".+@(\d+)", name)
    return int(match[1]) if match else 1

"""Opening a search study: create it, or resume it as it was created, with its baselines enqueued once.

A study file names the dataset, search space, objectives, budget and storage. Every worker of one study
(processes on one machine, or machines sharing a storage URL) opens it here before its loop (`nas.search.run.runner`)
runs trials through the objective (`nas.search.run.trial_objective`). A new study stores its objectives, settings
and provenance (`nas.search.results.study_attrs`); running a study again resumes it, refusing a changed study file
(`nas.search.run.preflight.check_resume`) unless `--allow-changed` names the change, and a space grown in a way
Optuna cannot resume continues as the study's next generation (`nas.search.results.generations`).
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.study import StudyDirection
from optuna.trial import TrialState

from nas.data.datasets import LoadedData
from nas.errors import UsageError
from nas.search.results import generations, optuna_internals, records, study_attrs, trial_record
from nas.search.run import preflight
from nas.search.run.storage import ClaimLock, StorageError, open_storage
from nas.search.spec.samplers import make_sampler
from nas.search.spec.studyfile import StudyFile
from nas.text import plural


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(sf: StudyFile, data: LoadedData) -> dict[str, Any]:
    prescreen = {"prescreen": asdict(sf.prescreen)} if sf.prescreen is not None else {}  # as it was created with
    return {
        "study_file": sf.path,
        "dataset": data.name,
        "split": "val (searches never read the test split)",
        "train_images": len(data.train),
        records.VAL_IMAGES: len(data.val),  # what intervals of trials stored without one are computed from
        "input_size": list(data.input_size),  # C, H, W: what `nas show` prices a trial's network at
        "space": sf.space.name,
        "objectives": list(sf.objectives),
        "sampler": sf.sampler,
        "budget_trials": sf.trials,
        "time_limit_minutes": sf.time_limit_minutes,
        "device": sf.device,
        "recipe": asdict(sf.recipe),
        "pruning": asdict(sf.pruning),  # which early stopping the study was created with
        **prescreen,
        "torch": torch.__version__,
        "optuna": optuna.__version__,
        "commit": _commit(),
    }


def open_study(
    sf: StudyFile, *, storage: str | None = None, data: LoadedData | None = None, allow_changed: tuple[str, ...] = ()
) -> optuna.Study:
    """Create the study or load it if it exists (resuming), with its baselines enqueued once.

    A resumed study keeps the space, recipe and data it was created with, but for the dotted keys
    in `allow_changed` (nas run --allow-changed)."""
    url = storage or sf.storage_url()
    try:
        opened = open_storage(url, heartbeat_seconds=sf.heartbeat_seconds)
        study = _create_or_load(sf, opened, generations.current_name(opened, sf.name))
    except UsageError:  # already says what is wrong with the storage (StorageError, JournalDamaged)
        raise
    except Exception as err:
        raise StorageError(f"cannot open study {sf.name!r} in {url}: {type(err).__name__}: {err}") from err
    existing = study_attrs.stored_objectives(study)
    if existing is None:
        _write_new_study_attrs(study, sf, data)
    elif list(existing) != list(sf.objectives):
        raise UsageError(
            f"study {sf.name!r} in {url} optimises {existing}, but {sf.path} asks for {list(sf.objectives)}; "
            "use a new study name",
            owner=sf.path,
            field="study.objectives",
            value=list(sf.objectives),
            allowed=f"the stored study's objectives {list(existing)}, or a new study name",
        )
    else:
        changed = preflight.check_resume(sf, study_attrs.study_settings(study), allow_changed=allow_changed)
        knobs = generations.incompatible_knobs(study, sf.space) if changed else []
        if knobs:
            study = _next_generation(sf, study, url, knobs, data)
        elif changed:
            print(f"study {sf.name!r} resumes with changed {', '.join(changed)} (--allow-changed)", flush=True)
    with ClaimLock(url, sf.name).hold():  # workers starting together enqueue each baseline once
        # A baseline whose every trial failed is queued again on the next run: it is a reference point
        # of the chart, not a sample of the space (a queued trial runs even once the budget is spent).
        queued = {trial_record.baseline_of(t) for t in study.get_trials(deepcopy=False) if t.state != TrialState.FAIL}
        for name in sf.baselines:
            if name not in queued:
                study.enqueue_trial({}, user_attrs=records.baseline_attrs(name), skip_if_exists=False)
    return study


def _create_or_load(sf: StudyFile, storage: optuna.storages.BaseStorage, name: str) -> optuna.Study:
    return optuna.create_study(
        storage=storage,
        study_name=name,
        directions=[StudyDirection[d.upper()] for d in sf.directions()],
        sampler=make_sampler(sf),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=sf.pruning.min_epochs),
        load_if_exists=True,
    )


def _write_new_study_attrs(study: optuna.Study, sf: StudyFile, data: LoadedData | None) -> None:
    study_attrs.write_study_objectives(study, list(sf.objectives))
    study_attrs.write_stores_constraint_list(study)  # its trials' constraints reach optuna-dashboard too
    study_attrs.write_study_settings(study, preflight.settings(sf))
    if data is not None:
        study_attrs.write_study_provenance(study, provenance(sf, data))


def _next_generation(
    sf: StudyFile, study: optuna.Study, url: str, knobs: list[str], data: LoadedData | None
) -> optuna.Study:
    """The study's next generation (nas.search.results.generations), its trials carried over; made once under the claim
    lock, so that workers starting together find it made."""
    storage = optuna_internals.storage_of(study)
    with ClaimLock(url, sf.name).hold():
        name = generations.current_name(storage, sf.name)
        if name != study.study_name:  # another worker made it meanwhile
            return _create_or_load(sf, storage, name)
        name = study_attrs.generation_name(sf.name, study_attrs.generation_number(study.study_name) + 1)
        new = _create_or_load(sf, storage, name)
        _write_new_study_attrs(new, sf, data)
        carried = generations.carry_trials(study, new, sf.space)
    print(
        f"study {sf.name!r}: the space changed {', '.join(knobs)} in a way Optuna cannot resume; it continues as "
        f"generation {study_attrs.generation_number(name)} ({name}) with {plural(carried.carried, 'trial')} of "
        f"{carried.previous} carried over (nothing retrained)"
        + (f", {carried.left} whose networks the new space cannot express left there" if carried.left else ""),
        flush=True,
    )
    return new

"""Search studies: create or resume, run trials in one or many workers, never train twice.

A study file names the dataset, search space, objectives, budget and storage. Every worker of
one study (processes on one machine, or machines sharing a storage URL) runs the same loop:
claim a trial, build its network, reject it from the closed-form cost if it breaks a budget
constraint (baselines, references rather than candidates, are trained all the same), reuse the
result of an identical network trained with the same recipe, otherwise train it and store
everything (`nas.search.results.records`). Running a study again resumes it.

Early stopping (`[pruning] method`, rules in `nas.search.spec.stopping`, pure so replays reuse them): after
each epoch the trial's curve and costs known before training (FLOPs, parameters) are judged against
the evidence of the study's other trials (`nas.search.results.tally.StudyTally.others`: finished trials read
once, running ones afresh). `pareto_stop` stops a trial that a finished trial costing no more already
beat by more than this trial can plausibly gain; `mo_asha` (Schmucker et al. 2021) keeps only the top
1/eta of each successive-halving rung by non-dominated sorting, and writes the curve of a trial that
reaches a rung to the trial (`records.write_curve`) so other workers rank against it while it runs.
Reused twins are not evidence and baselines are never stopped. Single-objective studies use Optuna's
median pruner (unless the method is `none`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from nas.arch import ArchConfig
from nas.arch.cost import estimate
from nas.arch.external import ExternalNet, resolve_baseline
from nas.data.datasets import LoadedData
from nas.errors import UsageError
from nas.search.results import generations, optuna_internals, records, study_attrs
from nas.search.results.records import stored
from nas.search.results.tally import tally_of
from nas.search.run import preflight
from nas.search.run.faults import injected_fault, step_hook
from nas.search.run.storage import ClaimLock, StorageError, fail_stale_trials, open_storage
from nas.search.spec.objectives import COSTS_BEFORE_TRAINING, FLOPS, PARAMS
from nas.search.spec.samplers import make_sampler
from nas.search.spec.stopping import judges_at, stop_reason
from nas.search.spec.studyfile import StudyFile
from nas.text import plural
from nas.train.loop import StepHook
from nas.train.results import EpochMetrics, TrialResult
from nas.train.sharing import ALONE, DeviceShare
from nas.train.trainer import train_trial

WAIT_POLL_SECONDS = 1.0  # how often a trial waiting for its network's twin looks again


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
        queued = {records.baseline_of(t) for t in study.get_trials(deepcopy=False) if t.state != TrialState.FAIL}
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


def recipe_hash(sf: StudyFile) -> str:
    """What makes two trainings of one network the same: recipe, dataset and split."""
    key = {"recipe": asdict(sf.recipe), "data": asdict(sf.data)}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]


class Objective:
    """The trial function every worker runs."""

    def __init__(
        self,
        sf: StudyFile,
        data: LoadedData,
        *,
        device: str,
        lock: ClaimLock,
        progress: bool = False,
        share: DeviceShare = ALONE,
        check: StepHook | None = None,
    ) -> None:
        self.sf, self.data, self.device, self.progress = sf, data, device, progress
        self.lock = lock  # the study's claim lock: deciding who trains a network is one step across workers
        self.share = share  # the trials training at once in this process (nas.train.sharing)
        self.check = check  # called before every training step: a trial thread's stop and time limit
        self.recipe_hash = recipe_hash(sf)
        self.multi = len(sf.objectives) > 1

    # ----- building the candidate ---------------------------------------------------------

    def _network(self, trial: optuna.Trial) -> ArchConfig | ExternalNet:
        c, _, _ = self.data.input_size
        baseline = stored(trial).baseline
        if baseline:
            return resolve_baseline(baseline, in_channels=c, num_classes=self.data.num_classes)
        fields = self.sf.space.suggest(trial)
        fields.update(in_channels=c, num_classes=self.data.num_classes)
        return ArchConfig(**fields)

    def _values(self, metrics: dict[str, Any]) -> tuple[float, ...]:
        return tuple(float(metrics.get(name, math.inf)) for name in self.sf.objectives)

    def _constraints(self, trial: optuna.Trial, params: int, flops: int, memory_ok: bool) -> None:
        c = self.sf.constraints
        named: dict[str, float] = {}
        if c.max_params is not None:
            named[PARAMS] = float(params - c.max_params)
        if c.max_flops is not None:
            named[FLOPS] = float(flops - c.max_flops)
        named["memory"] = -1.0 if memory_ok else 1.0
        self._set_constraints(trial, named)

    def _set_constraints(self, trial: optuna.Trial, named: dict[str, float]) -> None:
        """Where Optuna's `best_trials` and samplers read them, and optuna-dashboard too (optuna_internals)."""
        as_list = study_attrs.stores_constraint_list(trial.study)
        optuna_internals.set_constraints(trial, named, as_list=as_list)

    # ----- the trial ------------------------------------------------------------------------

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        try:
            return self._run(trial)
        except (optuna.TrialPruned, TrialFailed):
            raise
        except Exception as err:  # user code, data, a bug: record why, let the worker go on
            records.write_outcome(trial, "failed", f"{type(err).__name__}: {str(err)[:500]}")
            raise

    def _run(self, trial: optuna.Trial) -> tuple[float, ...]:
        return self.run_network(trial, self._network(trial))

    def run_network(self, trial: optuna.Trial, net: ArchConfig | ExternalNet) -> tuple[float, ...]:
        """Reject, reuse or train `net` as this trial (ablations call this with fixed networks).

        A baseline is a reference, not a candidate: it is trained whatever the budget constraints say (its
        constraints record by how much it is over, which keeps it off the front, and a note says so) and never
        stopped early."""
        records.write_network(
            trial,
            arch=net.to_dict(),
            arch_hash=net.arch_hash(),
            connectivity=net.connectivity,
            recipe_hash=self.recipe_hash,
        )
        costs: dict[str, float] = {}  # baselines have none here: they are never stopped early
        if isinstance(net, ArchConfig) and records.baseline_of(trial) is None:
            est = estimate(net, input_size=self.data.input_size)
            costs = {name: float(getattr(est, name)) for name in COSTS_BEFORE_TRAINING}
            over = self._over_budget(est.params, est.flops)
            if over:
                why = "; ".join(f"{have} > {name} {limit}" for name, (have, limit) in over.items())
                return self._finish_rejected(trial, est.params, est.flops, why)
        done = self._wait_for_twin(trial, net.arch_hash())
        if done is not None:
            return self._reuse(trial, done)
        seen: list[float] = []
        fault = injected_fault(trial.number)
        recipe = self.sf.recipe
        if fault == "nan":
            recipe = dataclasses.replace(recipe, lr=1e12, warmup_fraction=0.0)
        result = train_trial(
            config=net,
            data=self.data,
            recipe=recipe,
            device=self.device,
            progress=self.progress,
            on_epoch=lambda m: self._should_stop(trial, m, costs, seen),
            on_step=step_hook(fault, check=self.check),
            share=self.share,
        )
        return self._store(trial, result)

    def _over_budget(self, params: int, flops: int) -> dict[str, tuple[str, str]]:
        """Each budget constraint the network breaks -> (what it has, the limit): max_params -> ('769,162
        parameters', '50,000')."""
        c, over = self.sf.constraints, dict[str, tuple[str, str]]()
        if c.max_params is not None and params > c.max_params:
            over["max_params"] = (f"{params:,} parameters", f"{c.max_params:,}")
        if c.max_flops is not None and flops > c.max_flops:
            over["max_flops"] = (f"{flops:,} FLOPs", f"{c.max_flops:,.0f}")
        return over

    def _finish_rejected(self, trial: optuna.Trial, params: int, flops: int, reason: str) -> tuple[float, ...]:
        metrics = records.write_rejected(trial, {PARAMS: params, FLOPS: flops}, reason)
        self._constraints(trial, params, flops, memory_ok=True)
        return self._values(metrics)

    def _wait_for_twin(self, trial: optuna.Trial, arch_hash: str) -> FrozenTrial | None:
        """A finished trial of the same network and recipe, or None once this trial is the one to train it.

        Looking for twins and claiming the training is one step under the study's claim lock, so of
        twins drawn at once by several workers exactly one trains; the others wait and reuse its
        result, and one of them takes over if it fails or its worker dies.
        """
        claimed = records.trains_of(trial)
        network = (arch_hash, self.recipe_hash)
        while True:
            with self.lock.hold():
                trials = trial.study.get_trials(deepcopy=False)
                twins = [t for t in trials if records.network_of(t) == network and t.number != trial.number]
                # A complete twin first; a pruned one would be stopped again against a front that only grew.
                finished = [
                    t for t in twins if t.state == TrialState.COMPLETE and records.status_of(t) != "rejected"
                ] or [t for t in twins if t.state == TrialState.PRUNED]
                if finished:
                    return min(finished, key=lambda t: t.number)
                trains = not any(t.state == TrialState.RUNNING and records.trains_of(t) for t in twins)
                if trains != claimed:  # written only when it changes: waiting polls, the storage need not hear it
                    records.claim_training(trial, trains)
                    claimed = trains
                if trains:
                    return None
            time.sleep(WAIT_POLL_SECONDS)
            if self.check is not None:  # a trial thread waiting for its twin stops with its worker, too
                self.check(0, 0)
            fail_stale_trials(trial.study, heartbeat_seconds=self.sf.heartbeat_seconds)  # a dead twin frees us

    def _reuse(self, trial: optuna.Trial, twin: FrozenTrial) -> tuple[float, ...]:
        source = records.copy_result(trial, twin)
        if twin.state == TrialState.PRUNED:
            why = f"same network and recipe as trial {source}, stopped early there: {stored(twin).reason}"
            records.write_outcome(trial, "pruned", why)
            raise optuna.TrialPruned(why)
        original = stored(twin).status or "complete"
        records.write_outcome(
            trial,
            "infeasible" if original == "infeasible" else "reused",
            f"same network and recipe as trial {source}: result reused, not retrained",
        )
        self._set_constraints(trial, optuna_internals.named_constraints(twin))
        return tuple(twin.values)

    def _should_stop(
        self, trial: optuna.Trial, m: EpochMetrics, costs: dict[str, float], seen: list[float]
    ) -> str | None:
        """Why the trial stops after epoch `m` (nas.search.spec.stopping), or None; `seen` is its curve so far."""
        pruning, epochs = self.sf.pruning, self.sf.recipe.epochs
        seen.append(m.val_accuracy)
        if pruning.method == "none" or not pruning.min_epochs <= m.epoch < epochs:
            return None
        if not self.multi:
            trial.report(m.val_accuracy, m.epoch)
            return f"median pruner after epoch {m.epoch}" if trial.should_prune() else None
        if not costs or not judges_at(pruning, epoch=m.epoch, max_epochs=epochs):
            return None
        if pruning.method == "mo_asha":  # other workers rank their trials against this curve at this rung
            records.write_curve(trial, curve=seen, costs=costs)
        return stop_reason(
            pruning,
            epoch=m.epoch,
            max_epochs=epochs,
            curve=seen,
            costs=costs,
            others=tally_of(trial.study).update().others(exclude=trial.number),
            val_images=len(self.data.val),
        )

    def _store(self, trial: optuna.Trial, result: TrialResult) -> tuple[float, ...]:
        baseline = records.baseline_of(trial)
        if baseline is not None:  # trained whatever the budget: its notes say which constraints it is over
            over = [
                f"over {name}: {have} > {limit}"
                for name, (have, limit) in self._over_budget(result.params, result.flops).items()
            ]
            result = dataclasses.replace(result, notes=[*result.notes, *over])
            if result.status == "infeasible":  # the one baseline not trained: it did not fit the device's memory
                why = f"baseline {baseline} did not fit the device's memory: {result.reason}"
                result = dataclasses.replace(result, reason=why)
        metrics = records.write_result(trial, result)
        if result.status == "pruned":
            raise optuna.TrialPruned(result.reason)
        if result.status == "failed":
            raise TrialFailed(result.reason or "failed")
        self._constraints(trial, result.params, result.flops, memory_ok=result.status != "infeasible")
        return self._values(metrics)


class TrialFailed(Exception):
    """The trial ended as failed (its reason is stored); the worker goes on."""

"""The objective every worker runs for each trial: reject, reuse or train its network, and store everything.

Each trial builds its network (a sampled one, or a baseline), rejects it from the closed-form cost if it breaks a
budget constraint (baselines, references rather than candidates, are trained all the same), reuses the result of
an identical network trained with the same recipe (of twins drawn at once, exactly one trains), otherwise trains it
and stores everything (`nas.search.results.records`).

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
import time
from dataclasses import asdict
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.arch import ArchConfig
from nas.arch.cost import estimate
from nas.arch.external import ExternalNet, resolve_baseline
from nas.data.datasets import LoadedData
from nas.search.results import optuna_internals, records, study_attrs, trial_record
from nas.search.results.tally import tally_of
from nas.search.results.trial_record import stored
from nas.search.run.faults import injected_fault, step_hook
from nas.search.run.storage import ClaimLock, fail_stale_trials
from nas.search.spec.objectives import COSTS_BEFORE_TRAINING, FLOPS, PARAMS
from nas.search.spec.stopping import judges_at, stop_reason
from nas.search.spec.studyfile import StudyFile
from nas.train.loop import StepHook
from nas.train.results import EpochMetrics, TrialResult
from nas.train.sharing import ALONE, DeviceShare
from nas.train.trainer import train_trial

WAIT_POLL_SECONDS = 1.0  # how often a trial waiting for its network's twin looks again


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
        named[records.MEMORY_CONSTRAINT] = -1.0 if memory_ok else 1.0
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
        if isinstance(net, ArchConfig) and trial_record.baseline_of(trial) is None:
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
        c = self.sf.constraints
        shown = {
            "max_params": (f"{params:,} parameters", f"{c.max_params or 0:,}"),
            "max_flops": (f"{flops:,} FLOPs", f"{c.max_flops or 0:,.0f}"),
        }
        return {name: shown[name] for name in c.broken(params=params, flops=flops)}

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
        claimed = trial_record.trains_of(trial)
        network = (arch_hash, self.recipe_hash)
        while True:
            with self.lock.hold():
                trials = trial.study.get_trials(deepcopy=False)
                twins = [t for t in trials if trial_record.network_of(t) == network and t.number != trial.number]
                # A complete twin first; a pruned one would be stopped again against a front that only grew.
                finished = [
                    t for t in twins if t.state == TrialState.COMPLETE and trial_record.status_of(t) != "rejected"
                ] or [t for t in twins if t.state == TrialState.PRUNED]
                if finished:
                    return min(finished, key=lambda t: t.number)
                trains = not any(t.state == TrialState.RUNNING and trial_record.trains_of(t) for t in twins)
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
        if not costs:  # a baseline, a reference: never stopped early, nor one of the curves the median compares
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
        baseline = trial_record.baseline_of(trial)
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

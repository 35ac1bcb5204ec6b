"""`nas finalize`: from a study's chosen networks to test accuracies that can stand beside published ones.

The search only ever read the validation split. Here each chosen network is trained again on
train+validation (`DataConfig.val_fraction = 0`, no training subset) with the study's recipe (or
more epochs), once per seed, and then measured exactly once on the test split; each run is stored
in the study as it finishes (`nas.search.results.finals`), so a stopped finalize keeps what it finished and
a rerun trains only the (network, seed) pairs missing under the same final recipe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import optuna
import torch
from optuna.trial import FrozenTrial
from torch import nn

from nas.arch import ArchConfig
from nas.arch.external import ExternalNet, resolve_baseline
from nas.data.datasets import DataConfig, LoadedData
from nas.errors import UsageError
from nas.search.results import study_attrs, trial_record
from nas.search.results.finals import FinalRun, recipe_key, stored_runs
from nas.search.results.tally import StudyTally
from nas.search.spec.objectives import ACCURACY
from nas.search.spec.studyfile import StudyFile
from nas.text import plural
from nas.train.evaluate import evaluate_split
from nas.train.loop import flip_applies
from nas.train.recipe import Recipe
from nas.train.trainer import train_trial

# Trials whose network was trained in the search (a pruned one for fewer epochs); the others were
# rejected before training, ran out of memory, failed or are still running.
TRAINED = ("complete", "reused", "pruned")


@dataclass(frozen=True)
class Chosen:
    """One network to finalize, named by the trial that trained it in the search."""

    trial: int
    label: str  # the connectivity mode, or the baseline's name
    network: ArchConfig | ExternalNet
    val_accuracy: float | None  # in the search
    folded: tuple[int, ...]  # the chosen trials it stands for: itself and its reused twins


def final_settings(sf: StudyFile, *, epochs: int | None) -> tuple[DataConfig, Recipe]:
    """The data and recipe of the final runs: the study's, on train+validation, latency measured."""
    data = dataclasses.replace(sf.data, val_fraction=0.0, train_subset=None)
    recipe = dataclasses.replace(sf.recipe, epochs=epochs or sf.recipe.epochs, measure_latency=True)
    return data, recipe


def check_final_data(sf: StudyFile, data: LoadedData) -> None:
    """Images to train on and a test split to measure: refused before anything trains."""
    for split in (data.train, data.test):
        if len(split) == 0:
            raise UsageError(
                f"{sf.path}: dataset {data.name!r} has an empty {split.name} split: nothing to finalize",
                owner=sf.path,
                field="data",
                value=data.name,
                allowed=f"a dataset with a non-empty {split.name} split",
            )


def numbering(study: optuna.Study, count: int) -> str:
    """The valid trial numbers, for an error about a trial that does not exist or cannot be used."""
    return f"its trials are numbered 0 to {count - 1}" if count else "it has no trials yet"


def _trained_trial(study: optuna.Study, trials: list[FrozenTrial], number: int) -> FrozenTrial:
    if not 0 <= number < len(trials):
        raise UsageError(
            f"study {study.study_name!r} has no trial {number}: {numbering(study, len(trials))}",
            owner="--trials",
            value=number,
            allowed=numbering(study, len(trials)),
        )
    record = trial_record.record_from_trial(trials[number])
    if record.status not in TRAINED or not record.arch:
        allowed = f"a trained trial ({', '.join(TRAINED)}) of study {study.study_name!r}"
        raise UsageError(
            f"study {study.study_name!r} trial {number} is {record.status}: nas finalize takes {allowed}",
            owner="--trials",
            value=number,
            allowed=allowed,
        )
    return trials[number]


def choose_networks(
    study: optuna.Study, *, trials: Sequence[int] | None, in_channels: int, num_classes: int
) -> list[Chosen]:
    """The networks of `trials` (None: the study's feasible Pareto front), one per network: a reused twin
    folds into the trial that trained the network, and twins chosen together into the lowest number."""
    every = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    if trials is None:
        picked = StudyTally(study).update().front
        if not picked:
            raise UsageError(
                f"study {study.study_name!r} has no feasible trial on its Pareto front yet: run `nas run` first",
                owner="--trials",
                value="front",
                allowed="a study with a feasible Pareto front",
            )
    else:
        picked = [_trained_trial(study, every, n) for n in trials]
    groups: dict[str, list[FrozenTrial]] = {}
    for t in picked:
        arch_hash, _ = trial_record.network_of(t)
        groups.setdefault(arch_hash or f"trial {t.number}", []).append(t)
    chosen = []
    for members in groups.values():
        number = min(trial_record.reused_from_of(t) or t.number for t in members)
        trained = trial_record.record_from_trial(every[number])
        net = _network(trained, in_channels=in_channels, num_classes=num_classes)
        accuracy = trained.metrics.get(ACCURACY)
        chosen.append(
            Chosen(
                trial=number,
                label=trained.baseline or trained.connectivity or "?",
                network=net,
                val_accuracy=float(accuracy) if isinstance(accuracy, int | float) else None,
                folded=tuple(sorted(t.number for t in members)),
            )
        )
    return sorted(chosen, key=lambda c: c.trial)


def _network(record: trial_record.TrialRecord, *, in_channels: int, num_classes: int) -> ArchConfig | ExternalNet:
    if record.baseline:  # a preset or a torchvision model, sized for the dataset as in the search
        return resolve_baseline(record.baseline, in_channels=in_channels, num_classes=num_classes)
    return ArchConfig.from_dict(record.arch)


@dataclass(frozen=True)
class FinalOutcome:
    """What one `nas finalize` did: the runs it trained and stored, the ones it found done, and failures."""

    trained: tuple[FinalRun, ...]
    skipped: int
    failures: tuple[str, ...]


def finalize(
    study: optuna.Study,
    networks: Sequence[Chosen],
    *,
    data: LoadedData,
    data_config: DataConfig,
    recipe: Recipe,
    seeds: int,
    device: torch.device,
    say: Callable[[str], None] = print,
) -> FinalOutcome:
    """Train every network with every seed on train+validation, measure each once on the test split and
    store it at once; (network, seed) pairs already stored under the same final recipe are skipped."""
    key = recipe_key(recipe, data_config)
    done = {(r.trial, r.seed) for r in stored_runs(study) if r.recipe_key == key}
    trained: list[FinalRun] = []
    failures: list[str] = []
    skipped = 0
    for net in networks:
        for seed in range(seeds):
            what = f"finalize trial {net.trial} ({net.label}), seed {seed + 1} of {seeds}"
            if (net.trial, seed) in done:
                say(f"{what}: done before with this recipe, skipped")
                skipped += 1
                continue
            say(f"{what}: {plural(recipe.epochs, 'epoch')} on {len(data.train):,} train+validation images")
            run = _final_run(net, seed, key=key, data=data, recipe=recipe, device=device)
            if isinstance(run, str):
                say(f"  {run}")
                failures.append(f"trial {net.trial} seed {seed}: {run}")
                continue
            study_attrs.write_final_run(study, trial=net.trial, seed=seed, recipe_key=key, run=run.to_dict())
            trained.append(run)
            say(f"  test accuracy {run.test_accuracy:.2%} on {run.test_images:,} test images, {run.seconds:.1f} s")
    return FinalOutcome(trained=tuple(trained), skipped=skipped, failures=tuple(failures))


def _final_run(
    net: Chosen, seed: int, *, key: str, data: LoadedData, recipe: Recipe, device: torch.device
) -> FinalRun | str:
    """One training and its one test measurement, or why the training did not complete."""
    tested: list[tuple[float, float]] = []

    def measure_test(model: nn.Module) -> None:  # the one place the test split is read here
        tested.append(
            evaluate_split(
                model,
                data.test,
                data,
                device=device,
                batch_size=recipe.eval_batch_size,
                amp=recipe.amp,
                tta_flip=flip_applies(recipe.tta_flip, data),
            )
        )

    seeded = dataclasses.replace(recipe, seed=recipe.seed + seed)
    result = train_trial(config=net.network, data=data, recipe=seeded, device=device, on_trained=measure_test)
    if result.status != "complete" or len(tested) != 1:
        return f"{result.status}: {result.reason or 'no test measurement'}"
    (loss, accuracy) = tested[0]
    name = result.environment.get("device_name")
    return FinalRun(
        trial=net.trial,
        network=net.label,
        seed=seed,
        recipe_key=key,
        epochs=recipe.epochs,
        dataset=data.name,
        train_images=len(data.train),
        test_images=len(data.test),
        test_accuracy=accuracy,
        test_loss=loss,
        params=result.params,
        flops=result.flops,
        latency_ms=result.latency_ms_batch1,
        seconds=result.wall_seconds,
        val_accuracy=net.val_accuracy,
        device=f"{device} ({name})" if name else str(device),
    )


__all__ = [
    "TRAINED",
    "Chosen",
    "FinalOutcome",
    "check_final_data",
    "choose_networks",
    "final_settings",
    "finalize",
    "numbering",
]

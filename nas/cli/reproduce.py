"""`nas train --from-study STUDY --trial N`: one trial's network trained the way its study trained it.

The study file gives the data (dataset, root, image size, split), the recipe and the device; the stored
trial gives the network (its ArchConfig, or the baseline it names, sized for the data as in the search)
and the seed (the recipe's, plus the run's seed for a run of `nas ablate`). Options given beside it still
apply; each one that changes how the network trains is named, so a run that is not the trial's says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from nas.arch import ArchConfig
from nas.arch.external import ExternalNet, resolve_baseline
from nas.data.datasets import DataConfig
from nas.errors import UsageError
from nas.search.spec.objectives import ACCURACY, FLOPS, PARAMS
from nas.text import command
from nas.train.recipe import Recipe


@dataclass(frozen=True)
class StudyTrial:
    """What `nas train --from-study` trains: one stored trial and its study's settings."""

    study: str  # the study file, as given on the command line
    storage: str | None  # --storage, as given (None: the study file's)
    number: int
    status: str  # as the study stored it (nas.search.results.records.STATUSES)
    baseline: str | None  # a preset or torchvision:<model>; None for a searched network
    arch: dict[str, Any]  # the network as the trial stored it (an ArchConfig's fields for a searched one)
    arch_hash: str | None
    data: DataConfig  # the study file's [data]
    recipe: Recipe  # the study file's [recipe], seeded as the trial was
    device: str  # the study file's
    recorded: dict[str, Any]  # what the trial stored: val_accuracy, params, flops (those it has)
    # The torch threads it trained with on a CPU (None: on a GPU, or not stored): a CPU's sums, and so the
    # accuracy, depend on how many threads share them.
    cpu_threads: int | None
    notes: tuple[str, ...]  # why this run may differ from the trial's (said before training)

    @property
    def label(self) -> str:
        return f"trial {self.number} of {self.study}"

    def command(self) -> str:
        """The command that trains it again, as a user types it."""
        return train_command(study=self.study, trial=self.number, storage=self.storage)


def train_command(*, study: str, trial: int, storage: str | None) -> str:
    """`nas train --from-study STUDY --trial N [--storage URL]`, quoted for a shell."""
    return command("nas", "train", "--from-study", study, "--trial", str(trial), storage=storage)


def _changed_settings(study: Any, sf: Any) -> list[str]:
    """Recipe and data keys the study file changed since the study was created (it resumes only with
    --allow-changed): a trial trained before the change trained otherwise."""
    from nas.search.results.study_attrs import study_settings
    from nas.search.run.preflight import check_resume

    changed = check_resume(sf, study_settings(study), allow_changed=("space", "recipe", "data"))
    return [key for key in changed if key.startswith(("recipe.", "data."))]


def trial_with_network(study: Any, number: int, *, to: str = "") -> tuple[Any, Any]:
    """Trial `number` of `study` (a FrozenTrial) and its TrialRecord, refused in one line when the study has no
    such trial or the trial no network (`to`: what the network was wanted for, in that line: " to train")."""
    from nas.search.results.records import UNFINISHED
    from nas.search.results.trial_record import record_from_trial
    from nas.search.run.finalize import numbering

    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    if not 0 <= number < len(trials):
        allowed = numbering(study, len(trials))
        message = f"study {study.study_name!r} has no trial {number}: {allowed}"
        raise UsageError(message, owner="--trial", value=number, allowed=allowed)
    record = record_from_trial(trials[number])
    if not record.arch:
        status = record.status + (f" (from trial {record.reused_from})" if record.reused_from is not None else "")
        why = f": {record.reason}" if record.reason else ""
        when = "has not built it yet" if record.status in UNFINISHED else "ended before its network was built"
        raise UsageError(
            f"study {study.study_name!r} trial {number} has no network{to}: it is {status}{why} and {when}; "
            f"{numbering(study, len(trials))}",
            owner="--trial",
            value=number,
        )
    return trials[number], record


def study_trial(*, path: str, storage: str | None, number: int) -> StudyTrial:
    """Trial `number` of the study in `path` (and `storage`), refused in one line when it does not exist or
    has no network to train."""
    from nas.cli.stored import _open_existing, _study_file
    from nas.search.results.trial_record import stored

    sf = _study_file(path)
    study = _open_existing(path, storage)
    trial, record = trial_with_network(study, number, to=" to train")
    ablation = stored(trial).ablation  # a run of `nas ablate` trained with the recipe's seed + its own
    seed = sf.recipe.seed + int(ablation["seed"]) if ablation else sf.recipe.seed
    notes = []
    changed = _changed_settings(study, sf)
    if changed:
        earlier = "trials that ran before the change trained with the earlier settings"
        notes.append(f"{path} changed {', '.join(changed)} since the study was created; {earlier}")
    if record.status == "rejected":
        notes.append(f"the study rejected this network before training it ({record.reason})")
    elif record.status == "pruned":
        notes.append(f"the study stopped this trial early ({record.reason}); here it trains every epoch")
    recorded = {name: record.metrics[name] for name in (ACCURACY, PARAMS, FLOPS) if name in record.metrics}
    env = stored(trial).environment
    threads = env.get("cpu_threads") if env.get("device") == "cpu" else None
    return StudyTrial(
        study=path,
        storage=storage,
        number=number,
        status=record.status,
        baseline=record.baseline,
        arch=record.arch,
        arch_hash=record.arch_hash,
        data=sf.data,
        recipe=dataclasses.replace(sf.recipe, seed=seed),
        device=sf.device,
        recorded=recorded,
        cpu_threads=int(threads) if isinstance(threads, int) and threads >= 1 else None,
        notes=tuple(notes),
    )


def network(
    trial: StudyTrial, *, in_channels: int, num_classes: int, overrides: dict[str, Any]
) -> ArchConfig | ExternalNet:
    """The trial's network: a baseline sized for the data as the search sized it, or its stored ArchConfig;
    `overrides` (--set) change an ArchConfig's knobs."""
    net = (
        resolve_baseline(trial.baseline, in_channels=in_channels, num_classes=num_classes)
        if trial.baseline
        else ArchConfig.from_dict(trial.arch)
    )
    if not overrides:
        return net
    if isinstance(net, ExternalNet):
        raise UsageError(
            f"{trial.label} is the torchvision baseline {trial.baseline}: --set changes ArchConfig knobs, "
            "and it has none",
            owner="--set",
            value=sorted(overrides),
            allowed="no --set with a torchvision baseline",
        )
    return ArchConfig.from_dict({**net.to_dict(), **overrides})


def _differences(section: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """`section.key before -> after` for each key that changes the numbers (not where or how fast it runs)."""
    from nas.search.spec.studyfile import EXECUTION_ONLY

    skip = EXECUTION_ONLY[section]
    return [
        f"{section}.{key} {before[key]!r} -> {after[key]!r}"
        for key in before
        if key not in skip and before[key] != after.get(key)
    ]


def departures(trial: StudyTrial, *, data: DataConfig, recipe: Recipe, net: ArchConfig | ExternalNet) -> list[str]:
    """How this run departs from the trial: its study's settings changed since, and each option given beside
    --from-study that changes the data, the recipe or the network (not those that only say where or how fast)."""
    changed = _differences("data", dataclasses.asdict(trial.data), dataclasses.asdict(data))
    changed += _differences("recipe", dataclasses.asdict(trial.recipe), dataclasses.asdict(recipe))
    if trial.arch_hash is not None and net.arch_hash() != trial.arch_hash:
        changed.append("the network (--set)")
    notes = list(trial.notes)
    if changed:
        notes.append(f"the options given change {', '.join(changed)}: this is not how the study trained it")
    return notes


def check_fits(trial: StudyTrial, net: ArchConfig | ExternalNet, *, channels: int, classes: int, name: str) -> None:
    """The trial's network takes the data's channels and classes (the data may be read from another --data-root)."""
    if (net.in_channels, net.num_classes) != (channels, classes):
        raise UsageError(
            f"{trial.label} is a network for {net.in_channels} channels and {net.num_classes} classes, but the "
            f"{name} data read here has {channels} and {classes}: give --data-root the data the study used",
            owner="--data-root",
            value=trial.data.root,
        )


def recorded_line(trial: StudyTrial) -> str:
    """What the study recorded for the trial, to set beside this run's result."""
    parts = []
    accuracy = trial.recorded.get(ACCURACY)
    if isinstance(accuracy, int | float) and trial.status != "rejected":
        parts.append(f"best validation accuracy {accuracy:.2%}")
    for name, unit in ((PARAMS, "parameters"), (FLOPS, "FLOPs")):
        value = trial.recorded.get(name)
        if isinstance(value, int | float):
            parts.append(f"{int(value):,} {unit}")
    shown = ", ".join(parts) if parts else "no result yet"
    return f"{trial.label} ({trial.status}) recorded: {shown}"

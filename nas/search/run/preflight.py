"""Checks before the first trial: a mistake that would fail every trial is refused in one line.

Without them a study on a machine without CUDA, a space whose deepest network cannot take the
input, a one-class dataset or a resumed study whose file changed would let every trial fail (or
train under other settings) and spend the trial budget; fixing the mistake and running again
would then train nothing. Each check raises `UsageError` naming the file, key and what is allowed.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict
from typing import Any

import optuna
import torch

from nas.arch import ArchConfig
from nas.arch.external import ExternalNet, resolve_baseline
from nas.data.datasets import DataConfig, LoadedData
from nas.errors import UsageError
from nas.search.spec.objectives import OBJECTIVES, PEAK_MEMORY
from nas.search.spec.studyfile import EXECUTION_ONLY, StudyFile
from nas.search.spec.tomlfile import jsonable
from nas.text import plural
from nas.train.measure import resolve_device
from nas.train.memory import GPU_SHARE, needed_bytes
from nas.train.recipe import Recipe
from nas.train.sharing import MAX_TRIALS_AT_ONCE


def check_device(sf: StudyFile, device: str) -> torch.device:
    """The device exists on this machine (`auto` always does) and can measure every objective."""
    resolved = resolve_device(device)
    for name in sf.objectives:
        if resolved.type != "cuda" and not OBJECTIVES[name].cpu:
            raise UsageError(
                f"{sf.path}: objective {name} needs a CUDA device ({OBJECTIVES[name].measured}); device is {device!r}",
                owner=sf.path,
                field="study.objectives",
                value=name,
                allowed=f"a CUDA device, for the objective {name}",
            )
    return resolved


def check_data(sf: StudyFile, data: LoadedData) -> None:
    """At least two classes and no empty split: with fewer, every accuracy is meaningless."""
    if data.num_classes < 2:
        raise UsageError(
            f"{sf.path}: dataset {data.name!r} has {plural(data.num_classes, 'class', 'classes')}: "
            "a search needs at least 2",
            owner=sf.path,
            field="data",
            value=data.name,
            allowed="a dataset with at least 2 classes",
        )
    for split in (data.train, data.val):
        if len(split) == 0:
            raise UsageError(
                f"{sf.path}: dataset {data.name!r} has an empty {split.name} split: "
                "give it more images or a smaller validation fraction",
                owner=sf.path,
                field="data",
                value=data.name,
                allowed=f"a non-empty {split.name} split",
            )


def check_prescreen(sf: StudyFile, data: LoadedData) -> None:
    """A pre-screen's minibatch fits in the training split (else every claim would fail to score)."""
    if sf.prescreen is not None and sf.prescreen.batch_size > len(data.train):
        have = plural(len(data.train), "training image")
        raise UsageError(
            f"{sf.path}: prescreen.batch_size = {sf.prescreen.batch_size} is more than dataset {data.name!r} has "
            f"({have}): give a smaller batch_size",
            owner=sf.path,
            field="prescreen.batch_size",
            value=sf.prescreen.batch_size,
            allowed=f"at most {len(data.train)}",
        )


def _spatial_variants(sf: StudyFile) -> list[dict[str, Any]]:
    """Every (stem, block_config) the space can draw: the two knobs that decide the spatial plan."""
    options: dict[str, list[Any]] = {}
    for field in ("stem", "block_config"):
        knob = next((k for k in sf.space.knobs if k.name == field), None)
        if knob is not None and knob.choices is not None:
            options[field] = list(knob.choices)
        elif field in sf.space.fixed:
            options[field] = [sf.space.fixed[field]]
    names = list(options)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*options.values())]


def check_networks_fit(sf: StudyFile, data: LoadedData) -> None:
    """Every stem and stage layout of the space, and every baseline, takes the dataset's input size."""
    c, h, w = data.input_size
    for variant in _spatial_variants(sf):
        config = ArchConfig(**{**variant, "in_channels": c, "num_classes": data.num_classes})
        try:
            config.stage_plan(data.input_size)
        except UsageError as err:
            shown = ", ".join(f"{k} = {jsonable(v)}" for k, v in variant.items())
            raise UsageError(
                f"{sf.path}: the space {sf.space.name!r} can draw networks with {shown}, which cannot take "
                f"{data.name}'s {h}x{w} input: {err}",
                owner=sf.path,
                field="study.space",
                value=sf.space.name,
                allowed=f"networks that take a {c}x{h}x{w} input",
            ) from None
    for name in sf.baselines:
        net = resolve_baseline(name, in_channels=c, num_classes=data.num_classes)
        _check_baseline(sf, name, net, data)


def _check_baseline(sf: StudyFile, name: str, net: ArchConfig | ExternalNet, data: LoadedData) -> None:
    c, h, w = data.input_size
    try:
        if isinstance(net, ArchConfig):
            net.stage_plan(data.input_size)
        else:  # no closed form: one image through the built model, on the CPU
            model = net.build().eval()
            with torch.no_grad():
                model(torch.zeros(1, c, h, w))
    except (UsageError, RuntimeError) as err:
        raise UsageError(
            f"{sf.path}: baseline {name!r} cannot take {data.name}'s {c}x{h}x{w} input: {str(err).splitlines()[0]}",
            owner=sf.path,
            field="study.baselines",
            value=name,
            allowed=f"baselines that take a {c}x{h}x{w} input",
        ) from None


def settings(sf: StudyFile) -> dict[str, Any]:
    """What a resumed study must share with the study file: trials trained under other settings
    would share one front without saying so."""
    space = sf.space.to_dict()
    space.pop("path", None)  # the same space may be read from another checkout
    sections = {"space": space, "recipe": asdict(sf.recipe), "data": asdict(sf.data)}
    for section, keys in EXECUTION_ONLY.items():
        for key in keys:
            sections[section].pop(key, None)
    result: dict[str, Any] = jsonable(sections)
    return result


def check_resume(sf: StudyFile, stored: dict[str, Any] | None, *, allow_changed: tuple[str, ...] = ()) -> list[str]:
    """A resumed study's stored settings equal the file's, but for the keys in `allow_changed` (a key or a
    whole section); otherwise the first other difference is named. Returns the allowed keys that differ."""
    if stored is None:  # a new study, or one made before settings were stored
        return []
    now = settings(sf)
    stored = {section: dict(values) if isinstance(values, dict) else values for section, values in stored.items()}
    # A field added to the recipe or the data config after the study was made: its trials trained as its default.
    for section, default in (("recipe", Recipe()), ("data", DataConfig())):
        if isinstance(stored.get(section), dict):
            stored[section] = {**jsonable(asdict(default)), **stored[section]}
    for section, keys in EXECUTION_ONLY.items():  # a study stored before a key was counted execution-only
        for key in keys:
            if isinstance(stored.get(section), dict):
                stored[section].pop(key, None)
    changed: list[str] = []
    for section in ("space", "recipe", "data"):
        for key in _differences(stored.get(section), now[section], section):
            if any(key == allowed or key.startswith(f"{allowed}.") for allowed in allow_changed):
                changed.append(key)
                continue
            raise UsageError(
                f"{sf.path}: study {sf.name!r} was created with another {section} ({key} differs: stored "
                f"{_short(_at(stored.get(section), key, section))}, file {_short(_at(now[section], key, section))}); "
                "its trials would share one front with trials trained otherwise: give the study a new name, "
                f"or resume with --allow-changed {key} to accept that",
                owner=sf.path,
                field=key,
                allowed=f"the stored study's settings, a new study name, or --allow-changed {key}",
            )
    return changed


def _differences(old: Any, new: Any, path: str) -> list[str]:
    """Dotted keys under `path` whose values differ (a whole value where it is not a table)."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new), key=str)
        return [
            d
            for key in keys
            if old.get(key) != new.get(key)
            for d in _differences(old.get(key), new.get(key), f"{path}.{key}")
        ]
    return [path] if old != new else []


def _at(value: Any, path: str, root: str) -> Any:
    for key in path.removeprefix(root).strip(".").split(".") if path != root else []:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["check_data", "check_device", "check_networks_fit", "check_prescreen", "check_resume", "settings"]


AUTO_TRIALS_AT_ONCE = 8  # `--trials-per-gpu auto` at most: beyond this, threads mostly wait on Python
AUTO_SAMPLES = 64  # networks drawn from the space to find the largest one `auto` must fit


def trials_at_once(sf: StudyFile, data: LoadedData, *, device: str, wanted: int | str) -> int:
    """K trials training side by side in one worker (`--trials-per-gpu`), refused when the study needs what
    sharing a device takes away; `auto`: as many as the largest network of the space (a seeded sample and the
    ArchConfig baselines, at the recipe's batch) fits into the GPU's memory, at most 8; 1 on a CPU."""
    if wanted == "auto":
        k = _auto_trials_at_once(sf, data, resolve_device(device))
    elif isinstance(wanted, bool) or not isinstance(wanted, int) or not 1 <= wanted <= MAX_TRIALS_AT_ONCE:
        raise UsageError(
            owner="--trials-per-gpu", value=wanted, allowed=f"an integer from 1 to {MAX_TRIALS_AT_ONCE}, or auto"
        )
    else:
        k = wanted
    if k > 1 and sf.recipe.compile == "on":
        _refuse_sharing(sf, k, "recipe.compile", "on", 'torch.compile is not thread-safe: use compile = "graphs"')
    if k > 1 and PEAK_MEMORY in sf.objectives:
        why = f"{PEAK_MEMORY} is each trial's own peak, which trials sharing a device cannot measure"
        _refuse_sharing(sf, k, "study.objectives", list(sf.objectives), why)
    return k


def _refuse_sharing(sf: StudyFile, k: int, field: str, value: Any, why: str) -> None:
    raise UsageError(
        f"--trials-per-gpu {k}: {sf.path} sets {field} = {json.dumps(jsonable(value))}, and {why}; "
        "use --trials-per-gpu 1 (several processes: --workers-per-gpu)",
        owner="--trials-per-gpu",
        value=k,
        allowed=f"1 while {field} = {json.dumps(jsonable(value))}",
    )


def sample_networks(sf: StudyFile, data: LoadedData, count: int = AUTO_SAMPLES) -> list[ArchConfig]:
    """`count` networks drawn from the space at random, the same for a study seed (an in-memory study draws them)."""
    c, _, _ = data.input_size
    probe = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=sf.seed))
    return [
        ArchConfig(**{**sf.space.suggest(probe.ask()), "in_channels": c, "num_classes": data.num_classes})
        for _ in range(count)
    ]


def ignored_knob_warnings(sf: StudyFile, data: LoadedData) -> list[str]:
    """A warning for each searched knob that no network of the space uses (a fixed `plain` connectivity has no
    place for `compression`): its trials are one network, trained once and then reused."""
    nets = sample_networks(sf, data)
    searched = [knob.name for knob in sf.space.knobs]
    return [
        f"warning: {sf.path}: the space searches {name}, which no network it draws uses "
        f"({', '.join(sorted({n.connectivity for n in nets}))} connectivity with this space's other knobs): "
        "trials that differ only in it are one network, trained once and reused"
        for name in searched
        if all(name in net.ignored_knobs() for net in nets)
    ]


def _auto_trials_at_once(sf: StudyFile, data: LoadedData, device: torch.device) -> int:
    if device.type != "cuda":
        return 1
    c, _, _ = data.input_size
    nets = sample_networks(sf, data)
    nets += [
        net
        for name in sf.baselines
        if isinstance(net := resolve_baseline(name, in_channels=c, num_classes=data.num_classes), ArchConfig)
    ]
    batch = min(sf.recipe.batch_size, len(data.train))
    need = max(needed_bytes(net, sf.recipe, data.input_size, batch) for net in nets)
    budget = GPU_SHARE * torch.cuda.get_device_properties(device).total_memory
    return max(1, min(AUTO_TRIALS_AT_ONCE, int(budget // need)))

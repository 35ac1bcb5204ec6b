"""Reading study files (TOML): checked completely before anything runs or anything is written.

A typo an hour into a search costs the hour, so every problem is a `StudyFileError` that starts
with the file's path and names the dotted key and what is allowed. See studies/*.toml.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from nas.arch.modes import MODES
from nas.checks import is_int, is_number
from nas.data.datasets import AugmentConfig, DataConfig
from nas.errors import UsageError
from nas.search.spec.objectives import ACCURACY
from nas.search.spec.prescreen import Prescreen
from nas.search.spec.space import SearchSpace
from nas.search.spec.space_file import load_space, resolve_space_path
from nas.search.spec.stopping import rung_epochs
from nas.search.spec.studyfile import ABLATION_MATCHES, SEARCH_VAL_FRACTION, Ablation, Constraints, Pruning, StudyFile
from nas.search.spec.tomlfile import check_keys, read_toml, show
from nas.train.proxies import PROXIES
from nas.train.recipe import BASE_KEY, Recipe, named_recipe

_TABLES = ("ablation", "constraints", "data", "prescreen", "pruning", "recipe", "study")
_STUDY_KEYS = (
    "baselines",
    "device",
    "heartbeat_seconds",
    "name",
    "objectives",
    "sampler",
    "seed",
    "space",
    "storage",
    "time_limit_minutes",
    "trial_timeout_minutes",
    "trials",
)
_REQUIRED = {"name": "a study name", "space": "a search-space name or path", "trials": "an integer >= 1"}
_ABLATION_REQUIRED = {
    "modes": f"a list of connectivity modes ({', '.join(MODES)})",
    "match": f"one of {', '.join(ABLATION_MATCHES)}",
    "target": "a number > 0",
}


class StudyFileError(UsageError):
    """A study file that cannot run; the message names the file and the key."""


def _relabel(exc: Exception, section: str, table: dict[str, Any], label: str) -> StudyFileError:
    """A dataclass's UsageError (field `f`, allowed `why`) as 'file: section.f = v is invalid: why'."""
    if not isinstance(exc, UsageError) or exc.field is None or exc.allowed is None:
        return StudyFileError(f"{label}: [{section}] {exc}", owner=label)
    field, why, key = exc.field, exc.allowed, f"{section}.{exc.field}"
    if "." in field and field.split(".")[0] in _TABLES and exc.has_value:  # another table's key: data.val_fraction
        return StudyFileError(
            f"{label}: {field} = {show(exc.value)} is invalid: {why}",
            owner=label,
            field=field,
            value=exc.value,
            allowed=why,
        )
    if field in table:
        value = table[field]
        return StudyFileError(
            f"{label}: {key} = {show(value)} is invalid: {why}", owner=label, field=key, value=value, allowed=why
        )
    return StudyFileError(f"{label}: {key} (not set) is invalid: {why}", owner=label, field=key, allowed=why)


def _type_problem(annotation: str, value: Any) -> str | None:
    """What a TOML value lacks for a field of `annotation` (TOML has no None: absent is the default)."""
    wanted = {
        "int": (is_int, "an integer"),
        "float": (is_number, "a number"),
        "bool": (lambda v: isinstance(v, bool), "true or false"),
        "str": (lambda v: isinstance(v, str), "a string"),
    }
    kinds = [part.strip() for part in annotation.split("|") if part.strip() != "None"]
    checks = [wanted[kind] for kind in kinds if kind in wanted]
    if len(checks) != len(kinds) or any(check(value) for check, _ in checks):
        return None
    return " or ".join(what for _, what in checks) + " is required"


def _build(cls: Any, table: dict[str, Any], section: str, label: str, **built: Any) -> Any:
    """cls(**table) with unknown keys and TOML types refused, and errors naming the file and key."""
    fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    check_keys(table, list(fields), prefix=f"{section}.", label=label, error=StudyFileError)
    values = dict(table)
    for key, value in table.items():
        if key in built:
            continue
        problem = _type_problem(fields[key], value)
        if problem:
            raise StudyFileError(
                f"{label}: {section}.{key} = {show(value)} is invalid: {problem}",
                owner=label,
                field=f"{section}.{key}",
                value=value,
                allowed=problem,
            )
        if fields[key].startswith("float") and is_int(value):
            values[key] = float(value)  # recipe hashes must not tell 1 from 1.0
    try:
        return cls(**{**values, **built})
    except (TypeError, ValueError) as exc:
        raise _relabel(exc, section, table, label) from None


def _table(data: dict[str, Any], name: str, label: str) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        allowed = f"a table [{name}] is required"
        raise StudyFileError(
            f"{label}: {name} = {show(table)} is invalid: {allowed}",
            owner=label,
            field=name,
            value=table,
            allowed=allowed,
        )
    return table


def _space(value: Any, key: str, folder: Path, label: str) -> tuple[Path, SearchSpace]:
    if not isinstance(value, str) or not value:
        allowed = "a search-space name or path is required"
        raise StudyFileError(
            f"{label}: {key} = {show(value)} is invalid: {allowed}",
            owner=label,
            field=key,
            value=value,
            allowed=allowed,
        )
    try:
        path = resolve_space_path(value, relative_to=folder)
        return path, load_space(path)
    except ValueError as exc:
        raise StudyFileError(
            f"{label}: {key} = {show(value)} is invalid: {exc}", owner=label, field=key, value=value, allowed=str(exc)
        ) from None


def _require(table: dict[str, Any], required: dict[str, str], section: str, label: str) -> None:
    """Refuse a table that lacks a required key: key -> what it must hold."""
    for key, wanted in required.items():
        if key not in table:
            raise StudyFileError(
                f"{label}: {section}.{key} is missing: {wanted} is required",
                owner=label,
                field=f"{section}.{key}",
                allowed=f"{wanted} is required",
            )


def _data_config(raw_data: dict[str, Any], label: str) -> DataConfig:
    augment = None
    if "augment" in raw_data:
        raw_augment = raw_data["augment"]
        if not isinstance(raw_augment, dict):
            raise StudyFileError(
                f"{label}: data.augment = {show(raw_augment)} is invalid: a table is required",
                owner=label,
                field="data.augment",
                value=raw_augment,
                allowed="a table is required",
            )
        augment = _build(AugmentConfig, raw_augment, "data.augment", label)
    config: DataConfig = _build(DataConfig, raw_data, "data", label, augment=augment)
    if config.val_fraction == 0:
        why = SEARCH_VAL_FRACTION
        raise StudyFileError(
            f"{label}: data.val_fraction = 0 is invalid: {why}",
            owner=label,
            field="data.val_fraction",
            value=0,
            allowed=why,
        )
    return config


def _recipe(raw_recipe: dict[str, Any], label: str) -> Recipe:
    """The [recipe] table over the recipe its `base` names (RECIPES; the defaults without one)."""
    names = [f.name for f in dataclasses.fields(Recipe)]
    check_keys(raw_recipe, [*names, BASE_KEY], prefix="recipe.", label=label, error=StudyFileError)
    table = dict(raw_recipe)
    try:
        base = named_recipe(table.pop(BASE_KEY, "default"))
    except UsageError as exc:
        raise _relabel(exc, "recipe", raw_recipe, label) from None
    recipe: Recipe = _build(Recipe, table, "recipe", label, **{k: v for k, v in base.items() if k not in table})
    return recipe


def _pruning(raw_pruning: dict[str, Any], label: str) -> Pruning:
    """The [pruning] table. `enabled`, from study files written before `method`, still reads: false is
    method "none", true "pareto_stop" (the only rule there was); a file whose `enabled` and `method` disagree is
    refused."""
    names = [f.name for f in dataclasses.fields(Pruning)]
    check_keys(raw_pruning, [*names, "enabled"], prefix="pruning.", label=label, error=StudyFileError)
    table = dict(raw_pruning)
    if "enabled" in table:
        enabled = table.pop("enabled")
        if not isinstance(enabled, bool):
            allowed = "true or false is required"
            raise StudyFileError(
                f"{label}: pruning.enabled = {show(enabled)} is invalid: {allowed}",
                owner=label,
                field="pruning.enabled",
                value=enabled,
                allowed=allowed,
            )
        method = table.get("method")
        if method is not None and (method == "none") == enabled:
            allowed = 'method alone (method = "none" turns early stopping off)'
            raise StudyFileError(
                f"{label}: pruning.enabled = {show(enabled)} contradicts pruning.method = {show(method)}: "
                f"set {allowed}",
                owner=label,
                field="pruning.enabled",
                value=enabled,
                allowed=allowed,
            )
        if not enabled:
            table["method"] = "none"
        elif method is None:
            table["method"] = "pareto_stop"
    pruning: Pruning = _build(Pruning, table, "pruning", label)
    return pruning


def _ablation(raw_ablation: dict[str, Any], folder: Path, label: str) -> Ablation:
    names = [f.name for f in dataclasses.fields(Ablation)]
    check_keys(raw_ablation, names, prefix="ablation.", label=label, error=StudyFileError)
    base = None
    if "base" in raw_ablation:
        base_path, _ = _space(raw_ablation["base"], "ablation.base", folder, label)
        base = str(base_path.resolve())
    _require(raw_ablation, _ABLATION_REQUIRED, "ablation", label)
    ablation: Ablation = _build(Ablation, raw_ablation, "ablation", label, base=base)
    return ablation


def _prescreen(raw: dict[str, Any], label: str) -> Prescreen:
    _require(raw, {"proxy": f"one of {', '.join(PROXIES)}"}, "prescreen", label)
    prescreen: Prescreen = _build(Prescreen, raw, "prescreen", label)
    return prescreen


def load_study_file(path: str | Path) -> StudyFile:
    """The study in a TOML file, fully validated; nothing is created on disk."""
    file, label = Path(path), str(path)
    try:
        data = read_toml(file, label=label, what="study file")
    except ValueError as exc:
        raise StudyFileError(str(exc), owner=label) from None
    for name in data:
        if name not in _TABLES:
            raise StudyFileError(
                f"{label}: unknown table [{name}] (valid tables: {', '.join(_TABLES)})",
                owner=label,
                field=name,
                allowed=f"valid tables: {', '.join(_TABLES)}",
            )
    study = _table(data, "study", label)
    if "study" not in data:
        raise StudyFileError(
            f"{label}: a [study] table is required (with {', '.join(_REQUIRED)})", owner=label, field="study"
        )
    check_keys(study, _STUDY_KEYS, prefix="study.", label=label, error=StudyFileError)
    _require(study, _REQUIRED, "study", label)
    folder = file.resolve().parent
    _, space = _space(study["space"], "study.space", folder, label)

    data_config = _data_config(_table(data, "data", label), label)
    recipe = _recipe(_table(data, "recipe", label), label)
    constraints = _build(Constraints, _table(data, "constraints", label), "constraints", label)
    pruning = _pruning(_table(data, "pruning", label), label)
    if pruning.method == "mo_asha" and not rung_epochs(
        min_epochs=pruning.min_epochs, eta=pruning.eta, max_epochs=recipe.epochs
    ):
        allowed = f"MO-ASHA's first rung must come before the last epoch: an integer < recipe.epochs = {recipe.epochs}"
        raise StudyFileError(
            f"{label}: pruning.min_epochs = {pruning.min_epochs} is invalid: {allowed}",
            owner=label,
            field="pruning.min_epochs",
            value=pruning.min_epochs,
            allowed=allowed,
        )
    ablation = _ablation(_table(data, "ablation", label), folder, label) if "ablation" in data else None
    prescreen = _prescreen(_table(data, "prescreen", label), label) if "prescreen" in data else None

    storage = study.get("storage", "")
    fields: dict[str, Any] = {
        "path": str(file.resolve()),
        "name": study["name"],
        "space": space,
        "objectives": study.get("objectives", [ACCURACY]),
        "sampler": study.get("sampler", "tpe"),
        "trials": study["trials"],
        "time_limit_minutes": study.get("time_limit_minutes"),
        "seed": study.get("seed", 0),
        "storage": None if storage == "" else storage,
        "device": study.get("device", "auto"),
        "baselines": study.get("baselines", []),
        "data": data_config,
        "recipe": recipe,
        "constraints": constraints,
        "pruning": pruning,
        "ablation": ablation,
        "prescreen": prescreen,
        "trial_timeout_minutes": study.get("trial_timeout_minutes"),
        "heartbeat_seconds": study.get("heartbeat_seconds", 30),
    }
    try:
        return StudyFile(**fields)
    except ValueError as exc:
        raise _relabel(exc, "study", study, label) from None


__all__ = ["StudyFileError", "load_study_file"]

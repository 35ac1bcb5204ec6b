"""Reading search-space TOML files: every knob, bound and condition checked against `ArchConfig`.

Parsing lives here and sampling in `nas.search.spec.space`, so the rules of the file format read in one place.
"""

from __future__ import annotations

import dataclasses
import site
import sys
from pathlib import Path
from typing import Any

from nas.arch.config import ArchConfig
from nas.checks import is_int, is_number
from nas.errors import UsageError
from nas.search.spec.space import (
    BLOCKS,
    DATASET_FIELDS,
    FIELD_KINDS,
    KNOB_TYPES,
    NOT_SEARCHABLE,
    Knob,
    SearchSpace,
    field_value,
)
from nas.search.spec.tomlfile import check_keys, invalid, read_toml, reason, same, show

_SOURCE_ROOT = Path(__file__).resolve().parents[3]


def shipped_dir(kind: str, *, source_root: Path = _SOURCE_ROOT, prefixes: tuple[str, ...] | None = None) -> Path:
    """`kind` (search_spaces, studies) of the source tree (a checkout, an editable install), else the
    copy an install puts under <prefix>/share/densenas/ (pyproject's data-files)."""
    source = source_root / kind
    if source.is_dir():
        return source
    for prefix in prefixes if prefixes is not None else (sys.prefix, site.getuserbase()):
        installed = Path(prefix) / "share" / "densenas" / kind
        if installed.is_dir():
            return installed
    return source  # none: errors name where the files belong


SPACE_DIR = shipped_dir("search_spaces")
_TOP_KEYS = ("description", "fixed", "knobs", "name")
_KNOB_KEYS = ("choices", "high", "log", "low", "step", "type", "when")
_RANGE_KEYS = ("high", "log", "low", "step", "type")


def _parse_choices(name: str, raw: Any, *, key: str, label: str) -> tuple[Any, ...]:
    if not isinstance(raw, list) or not raw:
        raise invalid(label, key, raw, "a non-empty list of values is required")
    choices: list[Any] = []
    for value in raw:
        if isinstance(value, list) and FIELD_KINDS[name] != BLOCKS:
            raise UsageError(
                f"{label}: {key} holds the list {show(value)}: only block_config choices may be lists",
                owner=label,
                field=key,
                value=value,
                allowed="only block_config choices may be lists",
            )
        try:
            choice = field_value(name, value, key=key, label=label)
        except ValueError as exc:
            raise UsageError(
                f"{label}: {key}: {show(value)} is invalid: {reason(exc)}",
                owner=label,
                field=key,
                value=value,
                allowed=reason(exc),
            ) from None
        if any(same(choice, c) for c in choices):
            raise UsageError(
                f"{label}: {key} lists {show(value)} twice: choices must be unique",
                owner=label,
                field=key,
                value=value,
                allowed="choices must be unique",
            )
        choices.append(choice)
    return tuple(choices)


def _parse_range(name: str, table: dict[str, Any], *, key: str, label: str) -> Knob:
    kind = FIELD_KINDS[name]
    if "type" not in table:
        raise UsageError(
            f'{label}: {key} needs choices = [...] or a range: type = "int" or "float", low, high',
            owner=label,
            field=key,
            allowed='choices = [...] or a range: type = "int" or "float", low, high',
        )
    typ = table["type"]
    if typ not in KNOB_TYPES:
        raise invalid(label, f"{key}.type", typ, f"choose one of {', '.join(map(show, sorted(KNOB_TYPES)))}")
    if kind not in KNOB_TYPES:
        raise invalid(label, f"{key}.type", typ, f"{name} is not a number: give choices = [...] instead")
    if typ != kind:
        raise invalid(label, f"{key}.type", typ, f'{name} is a {kind} field: use type = "{kind}"')
    check, wanted = (is_int, "an integer") if typ == "int" else (is_number, "a finite number")
    bounds: dict[str, Any] = {}
    for bound in ("low", "high"):
        if bound not in table:
            raise UsageError(
                f"{label}: {key}.{bound} is missing: a range needs low and high",
                owner=label,
                field=f"{key}.{bound}",
                allowed="a range needs low and high",
            )
        if not check(table[bound]):
            raise invalid(label, f"{key}.{bound}", table[bound], f"{wanted} is required")
        bounds[bound] = field_value(name, table[bound], key=f"{key}.{bound}", label=label)
    low, high = bounds["low"], bounds["high"]
    if low >= high:
        raise invalid(label, f"{key}.high", table["high"], f"it must be greater than low = {show(table['low'])}")
    log = table.get("log", False)
    if not isinstance(log, bool):
        raise invalid(label, f"{key}.log", log, "true or false is required")
    if log and low <= 0:
        raise invalid(label, f"{key}.low", table["low"], "a log range needs low > 0")
    step = table.get("step")
    if step is not None:
        if log:
            raise UsageError(
                f"{label}: {key} sets both step and log: Optuna cannot sample both; drop one",
                owner=label,
                field=key,
                allowed="step or log, not both",
            )
        if not check(step) or step <= 0:
            raise invalid(label, f"{key}.step", step, f"{wanted} > 0 is required")
        span = (high - low) / step
        if abs(span - round(span)) > 1e-9 * max(1.0, span):
            raise invalid(label, f"{key}.step", step, f"high - low = {show(high - low)} must be a multiple of it")
        step = float(step) if typ == "float" else step
    return Knob(name, type=typ, low=low, high=high, step=step, log=log)


def _parse_when(
    raw: Any, *, knob: str, earlier: dict[str, Knob], later: list[str], key: str, label: str
) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    if not isinstance(raw, dict) or not raw:
        raise invalid(label, key, raw, "a table { knob = [values], ... } naming earlier knobs is required")
    pairs = []
    for ref, allowed in raw.items():
        if ref == knob:
            raise UsageError(
                f"{label}: {key}.{ref}: a knob cannot depend on itself",
                owner=label,
                field=f"{key}.{ref}",
                allowed="a knob declared earlier",
            )
        if ref in later:
            raise UsageError(
                f"{label}: {key}.{ref}: knob {ref!r} is declared after {knob!r}; a condition may only name "
                f"knobs declared earlier (move [knobs.{ref}] above [knobs.{knob}])",
                owner=label,
                field=f"{key}.{ref}",
                allowed="a knob declared earlier",
            )
        if ref not in earlier:
            raise UsageError(
                f"{label}: {key}.{ref}: {ref!r} is not a knob of this space (earlier knobs: "
                f"{', '.join(earlier) or 'none'})",
                owner=label,
                field=f"{key}.{ref}",
                allowed=f"earlier knobs: {', '.join(earlier) or 'none'}",
            )
        if not isinstance(allowed, list) or not allowed:
            raise invalid(label, f"{key}.{ref}", allowed, f"a non-empty list of values of knob {ref!r} is required")
        values = []
        for value in allowed:
            if not earlier[ref].can_take(value):
                raise UsageError(
                    f"{label}: {key}.{ref}: {show(value)} is not a value knob {ref!r} can take "
                    f"({earlier[ref].describe()})",
                    owner=label,
                    field=f"{key}.{ref}",
                    value=value,
                    allowed=earlier[ref].describe(),
                )
            values.append(earlier[ref].decode(value))
        pairs.append((ref, tuple(values)))
    return tuple(pairs)


def _parse_knob(
    name: str, table: Any, *, fixed: dict[str, Any], earlier: dict[str, Knob], later: list[str], label: str
) -> Knob:
    key = f"knobs.{name}"
    if name in DATASET_FIELDS:
        raise UsageError(
            f"{label}: {key} cannot be searched: in_channels and num_classes come from the dataset",
            owner=label,
            field=key,
            allowed="in_channels and num_classes come from the dataset",
        )
    if name in NOT_SEARCHABLE:
        raise UsageError(
            f"{label}: {key} cannot be searched: {NOT_SEARCHABLE[name]}",
            owner=label,
            field=key,
            allowed=NOT_SEARCHABLE[name],
        )
    if name not in FIELD_KINDS:
        valid = sorted(set(FIELD_KINDS) - DATASET_FIELDS - set(NOT_SEARCHABLE))
        raise UsageError(
            f"{label}: unknown knob {key}: not a searchable ArchConfig field (valid: {', '.join(valid)})",
            owner=label,
            field=key,
            allowed=f"a searchable ArchConfig field: {', '.join(valid)}",
        )
    if not isinstance(table, dict):
        raise invalid(label, key, table, "a table with choices = [...] or type, low and high is required")
    check_keys(table, _KNOB_KEYS, prefix=f"{key}.", label=label)
    if "choices" in table:
        mixed = sorted(set(table) & set(_RANGE_KEYS))
        if mixed:
            raise UsageError(
                f"{label}: {key} sets choices and {', '.join(mixed)}: a knob is either choices = [...] "
                "or a range (type, low, high, optional step or log)",
                owner=label,
                field=key,
                allowed="either choices = [...] or a range (type, low, high, optional step or log)",
            )
        knob = Knob(name, choices=_parse_choices(name, table["choices"], key=f"{key}.choices", label=label))
    else:
        knob = _parse_range(name, table, key=key, label=label)
    if "when" in table:
        when = _parse_when(table["when"], knob=name, earlier=earlier, later=later, key=f"{key}.when", label=label)
        knob = dataclasses.replace(knob, when=when)
    if name in fixed and not knob.when:
        raise UsageError(
            f"{label}: {key} is also in [fixed]: a knob without `when` is always sampled, so the fixed value "
            "would never be used; remove one (a conditional knob may keep a fixed fallback)",
            owner=label,
            field=key,
            allowed="a knob or a fixed value, not both (unless the knob has `when`)",
        )
    return knob


def load_space(path: str | Path) -> SearchSpace:
    """The search space in a TOML file; every problem is a ValueError naming the file and key."""
    file, label = Path(path), str(path)
    data = read_toml(file, label=label, what="search space file")
    check_keys(data, _TOP_KEYS, prefix="", label=label)
    name = data.get("name", file.stem)
    if not isinstance(name, str) or not name.strip():
        raise invalid(label, "name", name, "a non-empty string is required")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise invalid(label, "description", description, "a string is required")
    raw_fixed = data.get("fixed", {})
    if not isinstance(raw_fixed, dict):
        raise invalid(label, "fixed", raw_fixed, "a table of ArchConfig fields is required")
    fixed: dict[str, Any] = {}
    for field, value in raw_fixed.items():
        if field in DATASET_FIELDS:
            raise UsageError(
                f"{label}: fixed.{field} cannot be set: in_channels and num_classes come from the dataset",
                owner=label,
                field=f"fixed.{field}",
                value=value,
                allowed="in_channels and num_classes come from the dataset",
            )
        check_keys({field: value}, sorted(set(FIELD_KINDS) - DATASET_FIELDS), prefix="fixed.", label=label)
        fixed[field] = field_value(field, value, key=f"fixed.{field}", label=label)
    try:
        ArchConfig(**fixed)
    except ValueError as exc:
        raise UsageError(
            f"{label}: [fixed] is not a valid ArchConfig together: {exc}", owner=label, field="fixed", allowed=str(exc)
        ) from None
    raw_knobs = data.get("knobs", {})
    if not isinstance(raw_knobs, dict):
        raise invalid(label, "knobs", raw_knobs, "tables [knobs.<ArchConfig field>] are required")
    knobs: dict[str, Knob] = {}
    order = list(raw_knobs)
    for i, (knob_name, table) in enumerate(raw_knobs.items()):
        knobs[knob_name] = _parse_knob(
            knob_name, table, fixed=fixed, earlier=dict(knobs), later=order[i + 1 :], label=label
        )
    return SearchSpace(name, description, tuple(knobs.values()), fixed, str(file.resolve()))


def shipped_spaces() -> list[str]:
    """Names of the spaces in SPACE_DIR."""
    return sorted(p.stem for p in SPACE_DIR.glob("*.toml"))


def resolve_space_path(name_or_path: str, *, relative_to: Path | None = None) -> Path:
    """A shipped space by bare name ("densenet_family"), or a .toml path (relative to `relative_to`)."""
    if not isinstance(name_or_path, str) or not name_or_path:
        raise UsageError(
            f"search space {name_or_path!r} is invalid: a name or a path is required",
            field="search space",
            value=name_or_path,
            allowed="a name or a path is required",
        )
    shipped = ", ".join(shipped_spaces())
    if "/" in name_or_path or "\\" in name_or_path or name_or_path.endswith(".toml"):
        path = Path(name_or_path).expanduser()
        if not path.is_absolute() and relative_to is not None:
            path = relative_to / path
        if not path.is_file():
            raise UsageError(
                f"search space file {path} does not exist (shipped spaces: {shipped})",
                field="search space",
                value=name_or_path,
                allowed=f"an existing .toml file or a shipped space: {shipped}",
            )
        return path
    path = SPACE_DIR / f"{name_or_path}.toml"
    if name_or_path.startswith(".") or not path.is_file():
        raise UsageError(
            f"unknown search space {name_or_path!r}: shipped spaces are {shipped}, or give a .toml path",
            field="search space",
            value=name_or_path,
            allowed=f"shipped spaces are {shipped}, or give a .toml path",
        )
    return path


__all__ = ["SPACE_DIR", "load_space", "resolve_space_path", "shipped_dir", "shipped_spaces"]

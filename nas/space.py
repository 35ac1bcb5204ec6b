"""Search spaces: which `ArchConfig` fields a study samples, declared in commented TOML files.

A space is data, not code, so it can be reviewed, diffed and recorded with a study's results.
It is validated completely on load, each bound and choice against `ArchConfig` itself, so a
typo fails with the file and key named before any trial trains. See search_spaces/*.toml for
the format.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from nas.arch.config import ArchConfig
from nas.checks import is_int, is_number
from nas.tomlfile import check_keys, invalid, jsonable, read_toml, reason, same, show

SPACE_DIR = Path(__file__).resolve().parent.parent / "search_spaces"

# Range knob types: name -> how it is sampled.
KNOB_TYPES: dict[str, str] = {"int": "an integer range (suggest_int)", "float": "a real range (suggest_float)"}
# Fields the dataset decides: a space may neither search nor fix them.
DATASET_FIELDS = frozenset({"in_channels", "num_classes"})
# Fields that may be fixed but not searched: name -> why.
NOT_SEARCHABLE: dict[str, str] = {
    "memory_efficient": "it is an execution choice (same network, less memory) that the trainer makes",
}
# ArchConfig field -> its annotation ("int", "float", "str", "bool", "tuple[int, ...]").
FIELD_KINDS: dict[str, str] = {f.name: str(f.type) for f in dataclasses.fields(ArchConfig)}
_BLOCKS = "tuple[int, ...]"
_TOP_KEYS = ("description", "fixed", "knobs", "name")
_KNOB_KEYS = ("choices", "high", "log", "low", "step", "type", "when")
_RANGE_KEYS = ("high", "log", "low", "step", "type")


def field_value(field: str, value: Any, *, key: str, label: str) -> Any:
    """`value` for ArchConfig.`field` as the config stores it, refused unless a config accepts it."""
    kind, original = FIELD_KINDS[field], value
    if kind == _BLOCKS:
        if not isinstance(value, list) or not value or not all(is_int(v) and v >= 1 for v in value):
            raise invalid(label, key, value, "a non-empty list of positive layer counts is required, e.g. [3, 3]")
        value = tuple(value)
    elif kind == "int" and not is_int(value):
        raise invalid(label, key, value, "an integer is required")
    elif kind == "float":
        if not is_number(value):
            raise invalid(label, key, value, "a finite number is required")
        value = float(value)  # 1 and 1.0 must hash alike
    elif kind == "bool" and not isinstance(value, bool):
        raise invalid(label, key, value, "true or false is required")
    elif kind == "str" and not isinstance(value, str):
        raise invalid(label, key, value, "a string is required")
    try:
        ArchConfig(**{field: value})
    except ValueError as exc:
        raise invalid(label, key, original, reason(exc)) from None
    return value


@dataclass(frozen=True)
class Knob:
    """One sampled ArchConfig field: a list of choices, or an int or float range."""

    name: str
    choices: tuple[Any, ...] | None = None  # block_config choices as tuples of ints
    type: str | None = None  # one of KNOB_TYPES, for ranges
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # (earlier knob, values it must take) pairs

    def __post_init__(self) -> None:
        if self.name not in FIELD_KINDS or self.name in DATASET_FIELDS:
            raise ValueError(f"Knob.name = {self.name!r} is invalid: choose an ArchConfig field")
        if (self.choices is None) == (self.type is None):
            raise ValueError(f"Knob {self.name!r}: give either choices or a range type, not both or neither")
        if self.type is not None and (self.type not in KNOB_TYPES or self.low is None or self.high is None):
            raise ValueError(f"Knob {self.name!r}: a range needs type in {sorted(KNOB_TYPES)}, low and high")

    def encode(self, value: Any) -> Any:
        """The Optuna form of a value: block_config (2, 2, 2) -> "2,2,2"."""
        return ",".join(map(str, value)) if FIELD_KINDS[self.name] == _BLOCKS else value

    def decode(self, value: Any) -> Any:
        """The ArchConfig form of an Optuna (or TOML) value."""
        kind = FIELD_KINDS[self.name]
        if kind == _BLOCKS:
            if isinstance(value, str):
                return tuple(int(part) for part in value.split(","))
            return tuple(value)
        return float(value) if kind == "float" and is_number(value) else value

    def can_take(self, value: Any) -> bool:
        if self.choices is not None:
            try:
                decoded = self.decode(value)
            except (TypeError, ValueError):
                return False
            return any(same(decoded, choice) for choice in self.choices)
        assert self.low is not None and self.high is not None
        if not is_number(value) or not self.low <= value <= self.high:
            return False
        if self.type == "int" and not is_int(value):
            return False
        step = self.step or (1 if self.type == "int" else None)
        if step is None or self.log:
            return True
        offset = (value - self.low) / step
        return bool(abs(offset - round(offset)) < 1e-9)

    def active(self, values: dict[str, Any]) -> bool:
        """Whether every condition holds for the values sampled so far (an unsampled knob fails)."""
        return all(ref in values and any(same(values[ref], v) for v in allowed) for ref, allowed in self.when)

    def describe(self) -> str:
        if self.choices is not None:
            return f"choices {show(self.choices)}"
        extra = f" step {show(self.step)}" if self.step is not None else " log" if self.log else ""
        return f"{self.type} range {show(self.low)}..{show(self.high)}{extra}"

    def distribution(self) -> BaseDistribution:
        if self.choices is not None:
            return CategoricalDistribution([self.encode(c) for c in self.choices])
        assert self.low is not None and self.high is not None
        if self.type == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def sample(self, trial: optuna.trial.BaseTrial) -> Any:
        if self.choices is not None:
            return self.decode(trial.suggest_categorical(self.name, [self.encode(c) for c in self.choices]))
        assert self.low is not None and self.high is not None
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def to_dict(self) -> dict[str, Any]:
        """The knob as its TOML table says it."""
        data: dict[str, Any] = {"name": self.name}
        if self.choices is not None:
            data["choices"] = jsonable(self.choices)
        else:
            data.update(type=self.type, low=self.low, high=self.high, step=self.step, log=self.log)
        if self.when:
            data["when"] = {ref: jsonable(allowed) for ref, allowed in self.when}
        return data


@dataclass(frozen=True)
class SearchSpace:
    """Knobs sampled in file order, each active only when its conditions hold, over fixed fields."""

    name: str
    description: str
    knobs: tuple[Knob, ...]
    fixed: dict[str, Any]  # ArchConfig field -> value (block_config as a tuple); never mutated
    path: str | None = None  # the file it came from, absolute

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for knob in self.knobs:
            if knob.name in seen:
                raise ValueError(f"SearchSpace.knobs is invalid: knob {knob.name!r} appears twice")
            late = [ref for ref, _ in knob.when if ref not in seen]
            if late:
                raise ValueError(f"SearchSpace.knobs is invalid: {knob.name!r} depends on {late}, not earlier knobs")
            seen.add(knob.name)
        bad = sorted(set(self.fixed) - set(FIELD_KINDS) | (set(self.fixed) & DATASET_FIELDS))
        if bad:
            raise ValueError(f"SearchSpace.fixed = {bad} is invalid: ArchConfig fields but in_channels/num_classes")

    def suggest(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        """ArchConfig field values for `trial`: the fixed ones and every active knob, sampled in order."""
        sampled: dict[str, Any] = {}
        for knob in self.knobs:
            if knob.active(sampled):
                sampled[knob.name] = knob.sample(trial)
        return {**self.fixed, **sampled}

    def config(self, params: dict[str, Any], *, in_channels: int, num_classes: int) -> ArchConfig:
        """The ArchConfig of a trial's params (trial.params or suggest's dict), conditions re-applied.

        Lets reports and re-runs rebuild a network from storage alone, without a live trial.
        """
        names = {knob.name for knob in self.knobs}
        unknown = sorted(set(params) - names - set(self.fixed))
        if unknown:
            raise ValueError(f"search space {self.name!r}: params {unknown} are not knobs (knobs: {sorted(names)})")
        sampled: dict[str, Any] = {}
        for knob in self.knobs:
            if not knob.active(sampled):
                continue
            if knob.name not in params:
                raise ValueError(f"search space {self.name!r}: params lack the active knob {knob.name!r}")
            sampled[knob.name] = knob.decode(params[knob.name])
        return ArchConfig(**{**self.fixed, **sampled, "in_channels": in_channels, "num_classes": num_classes})

    def grid(self) -> dict[str, list[Any]]:
        """The search space of optuna.samplers.GridSampler: every value of every knob."""
        grid: dict[str, list[Any]] = {}
        for knob in self.knobs:
            if knob.when:
                raise ValueError(
                    f"search space {self.name!r}: knob {knob.name!r} is conditional (when), which GridSampler "
                    "cannot express: use another sampler (tpe, random, nsga2, gp)"
                )
            if knob.choices is not None:
                grid[knob.name] = [knob.encode(c) for c in knob.choices]
            elif knob.type == "int" and knob.step is not None and knob.low is not None and knob.high is not None:
                grid[knob.name] = list(range(int(knob.low), int(knob.high) + 1, int(knob.step)))
            else:
                raise ValueError(
                    f"search space {self.name!r}: knob {knob.name!r} is a {knob.describe()}; GridSampler needs "
                    "choices or an int range with a step: use another sampler (tpe, random, nsga2, gp)"
                )
        return grid

    def distributions(self) -> dict[str, BaseDistribution]:
        """Every knob's Optuna distribution, active or not (enqueueing trials, importance)."""
        return {knob.name: knob.distribution() for knob in self.knobs}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "path": self.path,
            "fixed": jsonable(self.fixed),
            "knobs": [knob.to_dict() for knob in self.knobs],
        }


def _parse_choices(name: str, raw: Any, *, key: str, label: str) -> tuple[Any, ...]:
    if not isinstance(raw, list) or not raw:
        raise invalid(label, key, raw, "a non-empty list of values is required")
    choices: list[Any] = []
    for value in raw:
        if isinstance(value, list) and FIELD_KINDS[name] != _BLOCKS:
            raise ValueError(f"{label}: {key} holds the list {show(value)}: only block_config choices may be lists")
        try:
            choice = field_value(name, value, key=key, label=label)
        except ValueError as exc:
            raise ValueError(f"{label}: {key}: {show(value)} is invalid: {reason(exc)}") from None
        if any(same(choice, c) for c in choices):
            raise ValueError(f"{label}: {key} lists {show(value)} twice: choices must be unique")
        choices.append(choice)
    return tuple(choices)


def _parse_range(name: str, table: dict[str, Any], *, key: str, label: str) -> Knob:
    kind = FIELD_KINDS[name]
    if "type" not in table:
        raise ValueError(f'{label}: {key} needs choices = [...] or a range: type = "int" or "float", low, high')
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
            raise ValueError(f"{label}: {key}.{bound} is missing: a range needs low and high")
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
            raise ValueError(f"{label}: {key} sets both step and log: Optuna cannot sample both; drop one")
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
            raise ValueError(f"{label}: {key}.{ref}: a knob cannot depend on itself")
        if ref in later:
            raise ValueError(
                f"{label}: {key}.{ref}: knob {ref!r} is declared after {knob!r}; a condition may only name "
                f"knobs declared earlier (move [knobs.{ref}] above [knobs.{knob}])"
            )
        if ref not in earlier:
            raise ValueError(
                f"{label}: {key}.{ref}: {ref!r} is not a knob of this space (earlier knobs: "
                f"{', '.join(earlier) or 'none'})"
            )
        if not isinstance(allowed, list) or not allowed:
            raise invalid(label, f"{key}.{ref}", allowed, f"a non-empty list of values of knob {ref!r} is required")
        values = []
        for value in allowed:
            if not earlier[ref].can_take(value):
                raise ValueError(
                    f"{label}: {key}.{ref}: {show(value)} is not a value knob {ref!r} can take "
                    f"({earlier[ref].describe()})"
                )
            values.append(earlier[ref].decode(value))
        pairs.append((ref, tuple(values)))
    return tuple(pairs)


def _parse_knob(
    name: str, table: Any, *, fixed: dict[str, Any], earlier: dict[str, Knob], later: list[str], label: str
) -> Knob:
    key = f"knobs.{name}"
    if name in DATASET_FIELDS:
        raise ValueError(f"{label}: {key} cannot be searched: in_channels and num_classes come from the dataset")
    if name in NOT_SEARCHABLE:
        raise ValueError(f"{label}: {key} cannot be searched: {NOT_SEARCHABLE[name]}")
    if name not in FIELD_KINDS:
        valid = sorted(set(FIELD_KINDS) - DATASET_FIELDS - set(NOT_SEARCHABLE))
        raise ValueError(f"{label}: unknown knob {key}: not a searchable ArchConfig field (valid: {', '.join(valid)})")
    if not isinstance(table, dict):
        raise invalid(label, key, table, "a table with choices = [...] or type, low and high is required")
    check_keys(table, _KNOB_KEYS, prefix=f"{key}.", label=label)
    if "choices" in table:
        mixed = sorted(set(table) & set(_RANGE_KEYS))
        if mixed:
            raise ValueError(
                f"{label}: {key} sets choices and {', '.join(mixed)}: a knob is either choices = [...] "
                "or a range (type, low, high, optional step or log)"
            )
        knob = Knob(name, choices=_parse_choices(name, table["choices"], key=f"{key}.choices", label=label))
    else:
        knob = _parse_range(name, table, key=key, label=label)
    if "when" in table:
        when = _parse_when(table["when"], knob=name, earlier=earlier, later=later, key=f"{key}.when", label=label)
        knob = dataclasses.replace(knob, when=when)
    if name in fixed and not knob.when:
        raise ValueError(
            f"{label}: {key} is also in [fixed]: a knob without `when` is always sampled, so the fixed value "
            "would never be used; remove one (a conditional knob may keep a fixed fallback)"
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
            raise ValueError(f"{label}: fixed.{field} cannot be set: in_channels and num_classes come from the dataset")
        check_keys({field: value}, sorted(set(FIELD_KINDS) - DATASET_FIELDS), prefix="fixed.", label=label)
        fixed[field] = field_value(field, value, key=f"fixed.{field}", label=label)
    try:
        ArchConfig(**fixed)
    except ValueError as exc:
        raise ValueError(f"{label}: [fixed] is not a valid ArchConfig together: {exc}") from None
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
        raise ValueError(f"search space {name_or_path!r} is invalid: a name or a path is required")
    shipped = ", ".join(shipped_spaces())
    if "/" in name_or_path or "\\" in name_or_path or name_or_path.endswith(".toml"):
        path = Path(name_or_path).expanduser()
        if not path.is_absolute() and relative_to is not None:
            path = relative_to / path
        if not path.is_file():
            raise ValueError(f"search space file {path} does not exist (shipped spaces: {shipped})")
        return path
    path = SPACE_DIR / f"{name_or_path}.toml"
    if name_or_path.startswith(".") or not path.is_file():
        raise ValueError(f"unknown search space {name_or_path!r}: shipped spaces are {shipped}, or give a .toml path")
    return path


__all__ = [
    "DATASET_FIELDS",
    "KNOB_TYPES",
    "NOT_SEARCHABLE",
    "SPACE_DIR",
    "Knob",
    "SearchSpace",
    "load_space",
    "resolve_space_path",
    "shipped_spaces",
]

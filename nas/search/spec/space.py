"""Search spaces: which `ArchConfig` fields a study samples, declared in commented TOML files.

A space is data, not code, so it can be reviewed, diffed and recorded with a study's results.
It is validated completely on load (`nas.search.spec.space_file`), each bound and choice against
`ArchConfig` itself, so a typo fails with the file and key named before any trial trains. This
module holds the loaded space and how it is sampled. See search_spaces/*.toml for the format.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from nas.arch.config import ArchConfig
from nas.checks import is_int, is_number
from nas.errors import UsageError
from nas.search.spec.tomlfile import invalid, jsonable, reason, same, show

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
BLOCKS = "tuple[int, ...]"  # the annotation of block_config, the one list-valued field


def field_value(field: str, value: Any, *, key: str, label: str) -> Any:
    """`value` for ArchConfig.`field` as the config stores it, refused unless a config accepts it."""
    kind, original = FIELD_KINDS[field], value
    if kind == BLOCKS:
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
            raise UsageError(
                f"Knob.name = {self.name!r} is invalid: choose an ArchConfig field",
                owner="Knob",
                field="name",
                value=self.name,
                allowed="choose an ArchConfig field",
            )
        if (self.choices is None) == (self.type is None):
            raise UsageError(
                f"Knob {self.name!r}: give either choices or a range type, not both or neither",
                owner=f"Knob {self.name!r}",
                allowed="either choices or a range type, not both or neither",
            )
        if self.type is not None and (self.type not in KNOB_TYPES or self.low is None or self.high is None):
            raise UsageError(
                f"Knob {self.name!r}: a range needs type in {sorted(KNOB_TYPES)}, low and high",
                owner=f"Knob {self.name!r}",
                field="type",
                value=self.type,
                allowed=f"a range needs type in {sorted(KNOB_TYPES)}, low and high",
            )

    def encode(self, value: Any) -> Any:
        """The Optuna form of a value: block_config (2, 2, 2) -> "2,2,2"."""
        return ",".join(map(str, value)) if FIELD_KINDS[self.name] == BLOCKS else value

    def decode(self, value: Any) -> Any:
        """The ArchConfig form of an Optuna (or TOML) value."""
        kind = FIELD_KINDS[self.name]
        if kind == BLOCKS:
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
                raise UsageError(
                    f"SearchSpace.knobs is invalid: knob {knob.name!r} appears twice",
                    owner="SearchSpace",
                    field="knobs",
                    allowed=f"knob {knob.name!r} once",
                )
            late = [ref for ref, _ in knob.when if ref not in seen]
            if late:
                raise UsageError(
                    f"SearchSpace.knobs is invalid: {knob.name!r} depends on {late}, not earlier knobs",
                    owner="SearchSpace",
                    field="knobs",
                    allowed=f"{knob.name!r} may only depend on earlier knobs",
                )
            seen.add(knob.name)
        bad = sorted(set(self.fixed) - set(FIELD_KINDS) | (set(self.fixed) & DATASET_FIELDS))
        if bad:
            raise UsageError(
                f"SearchSpace.fixed = {bad} is invalid: ArchConfig fields but in_channels/num_classes",
                owner="SearchSpace",
                field="fixed",
                value=bad,
                allowed="ArchConfig fields but in_channels/num_classes",
            )

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
            raise UsageError(
                f"search space {self.name!r}: params {unknown} are not knobs (knobs: {sorted(names)})",
                owner=f"search space {self.name!r}",
                field="params",
                value=unknown,
                allowed=f"knobs: {sorted(names)}",
            )
        sampled: dict[str, Any] = {}
        for knob in self.knobs:
            if not knob.active(sampled):
                continue
            if knob.name not in params:
                raise UsageError(
                    f"search space {self.name!r}: params lack the active knob {knob.name!r}",
                    owner=f"search space {self.name!r}",
                    field="params",
                    allowed=f"a value for the active knob {knob.name!r}",
                )
            sampled[knob.name] = knob.decode(params[knob.name])
        return ArchConfig(**{**self.fixed, **sampled, "in_channels": in_channels, "num_classes": num_classes})

    def _values(self, knob: Knob, *, why: str) -> list[Any]:
        """Every value `knob` can take (ArchConfig form): choices, or an int range with a step."""
        if knob.choices is not None:
            return list(knob.choices)
        if knob.type == "int" and knob.step is not None and knob.low is not None and knob.high is not None:
            return list(range(int(knob.low), int(knob.high) + 1, int(knob.step)))
        raise UsageError(
            f"search space {self.name!r}: knob {knob.name!r} is a {knob.describe()}; {why} needs "
            "choices or an int range with a step: use another sampler (tpe, random, nsga2, gp)",
            owner=f"search space {self.name!r}",
            field=knob.name,
        )

    def grid(self) -> dict[str, list[Any]]:
        """The search space of optuna.samplers.GridSampler: every value of every knob."""
        grid: dict[str, list[Any]] = {}
        for knob in self.knobs:
            if knob.when:
                raise UsageError(
                    f"search space {self.name!r}: knob {knob.name!r} is conditional (when), which GridSampler "
                    "cannot express: use another sampler (tpe, random, nsga2, gp)",
                    owner=f"search space {self.name!r}",
                    field=knob.name,
                )
            grid[knob.name] = [knob.encode(v) for v in self._values(knob, why="GridSampler")]
        return grid

    def every_network(self, *, in_channels: int, num_classes: int) -> list[ArchConfig]:
        """Every distinct network of a finite space (conditions honoured), in enumeration order.

        Knobs a mode ignores collapse in the canonical form, so this is usually far fewer networks
        than the product of the choices; a recorded learning-curve table trains exactly these.
        """
        found: dict[str, ArchConfig] = {}

        def walk(index: int, sampled: dict[str, Any]) -> None:
            if index == len(self.knobs):
                cfg = ArchConfig(**{**self.fixed, **sampled, "in_channels": in_channels, "num_classes": num_classes})
                found.setdefault(cfg.arch_hash(), cfg)
                return
            knob = self.knobs[index]
            if not knob.active(sampled):
                walk(index + 1, sampled)
                return
            for value in self._values(knob, why="enumerating the networks"):
                walk(index + 1, {**sampled, knob.name: value})

        walk(0, {})
        return list(found.values())

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


def stored_modes(space: Any) -> tuple[str, ...] | None:
    """The connectivity modes a space stored by `SearchSpace.to_dict` can build (a knob's choices, or its
    fixed mode, or ArchConfig's default), or None when `space` is not such a dict (a study from before)."""
    if not isinstance(space, dict) or not isinstance(space.get("knobs"), list):
        return None
    for knob in space["knobs"]:
        if isinstance(knob, dict) and knob.get("name") == "connectivity":
            choices = knob.get("choices")
            return tuple(c for c in choices if isinstance(c, str)) if isinstance(choices, list) else None
    fixed = space.get("fixed")
    mode = fixed.get("connectivity") if isinstance(fixed, dict) else None
    if mode is None:
        mode = ArchConfig.__dataclass_fields__["connectivity"].default
    return (mode,) if isinstance(mode, str) else None


__all__ = [
    "DATASET_FIELDS",
    "FIELD_KINDS",
    "KNOB_TYPES",
    "NOT_SEARCHABLE",
    "Knob",
    "SearchSpace",
    "field_value",
    "stored_modes",
]

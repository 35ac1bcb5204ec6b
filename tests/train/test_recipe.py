"""The recipe: every field's type and range checked, `from_dict` refusing unknown keys, the resolved defaults."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from nas.errors import UsageError
from nas.train.recipe import Recipe

FIELDS = [f.name for f in dataclasses.fields(Recipe)]
POSITIVE = "a positive integer is required"
FRACTION = "a number in [0, 1) is required"
AMOUNT = "a finite number >= 0 (or None for the default) is required"
FLAG = "True or False is required"

INVALID: list[tuple[str, object, str]] = [
    ("epochs", 0, POSITIVE),
    ("epochs", 2.0, POSITIVE),
    ("epochs", True, POSITIVE),
    ("batch_size", -1, POSITIVE),
    ("batch_size", "64", POSITIVE),
    ("optimizer", "lamb", "choose one of ['adamw', 'sgd']"),
    ("optimizer", ["sgd"], "choose one of ['adamw', 'sgd']"),
    ("lr", -1.0, AMOUNT),
    ("lr", 0.0, "a number > 0 is required"),
    ("lr", 0, "a number > 0 is required"),
    ("lr", True, AMOUNT),
    ("lr", "0.1", AMOUNT),
    ("lr", float("inf"), AMOUNT),
    ("momentum", "x", FRACTION),
    ("momentum", 1.0, FRACTION),
    ("momentum", False, FRACTION),
    ("weight_decay", -0.1, AMOUNT),
    ("weight_decay", float("nan"), AMOUNT),
    ("schedule", "step", "choose one of ['constant', 'cosine', 'onecycle']"),
    ("warmup_fraction", 1.0, FRACTION),
    ("warmup_fraction", "x", FRACTION),
    ("label_smoothing", -0.1, FRACTION),
    ("label_smoothing", [1], FRACTION),
    ("amp", "maybe", FLAG),
    ("amp", 1, FLAG),
    ("channels_last", 7, FLAG),
    ("compile", "maybe", "choose one of ['auto', 'off', 'on']"),
    ("compile", True, "choose one of ['auto', 'off', 'on']"),
    ("memory_budget_gb", float("nan"), AMOUNT),
    ("memory_budget_gb", -2, AMOUNT),
    ("eval_batch_size", 0, POSITIVE),
    ("measure_latency", None, FLAG),
    ("latency_batch_size", 1.5, POSITIVE),
    ("latency_repeats", 0, POSITIVE),
    ("num_workers", -1, "an integer >= 0 is required"),
    ("num_workers", 2.0, "an integer >= 0 is required"),
    ("seed", 1.5, "an integer is required"),
    ("seed", None, "an integer is required"),
]


@pytest.mark.parametrize(("field", "value", "allowed"), INVALID)
def test_every_invalid_value_is_a_usage_error_naming_field_value_and_what_is_allowed(
    field: str, value: object, allowed: str
) -> None:
    with pytest.raises(UsageError) as err:
        Recipe(**{field: value})  # type: ignore[arg-type]
    assert str(err.value) == f"Recipe.{field} = {value!r} is invalid: {allowed}"
    assert (err.value.owner, err.value.field, err.value.allowed) == ("Recipe", field, allowed)
    assert err.value.value is value


def test_every_field_has_an_invalid_case_above() -> None:
    assert sorted({field for field, _, _ in INVALID}) == sorted(FIELDS)


@pytest.mark.parametrize(
    "fields",
    [
        {"lr": 1, "momentum": 0, "weight_decay": 0, "memory_budget_gb": 0.5},  # ints where numbers are asked
        {"lr": None, "weight_decay": None, "memory_budget_gb": None},
        {"amp": False, "channels_last": False, "measure_latency": False, "compile": "off"},
        {"num_workers": 0, "seed": -3, "warmup_fraction": 0.0, "label_smoothing": 0.0, "momentum": 0.0},
        {"optimizer": "adamw", "schedule": "onecycle", "epochs": 1, "batch_size": 1},
    ],
)
def test_valid_values_are_kept_as_given(fields: dict[str, Any]) -> None:
    recipe = Recipe(**fields)
    assert {name: getattr(recipe, name) for name in fields} == fields


def test_from_dict_round_trips_and_fills_defaults() -> None:
    recipe = Recipe(epochs=3, optimizer="adamw", lr=0.01, amp=False, seed=7)
    assert Recipe.from_dict(dataclasses.asdict(recipe)) == recipe
    assert Recipe.from_dict({"epochs": 3}) == Recipe(epochs=3)
    assert Recipe.from_dict({}) == Recipe()


def test_from_dict_refuses_an_unknown_key_and_lists_the_valid_ones() -> None:
    with pytest.raises(UsageError) as err:
        Recipe.from_dict({"epochs": 2, "nosuch": 1})
    valid = "valid keys are " + ", ".join(FIELDS)
    assert str(err.value) == f"Recipe.nosuch is unknown: {valid}"
    assert (err.value.owner, err.value.field, err.value.value, err.value.allowed) == ("Recipe", "nosuch", 1, valid)
    assert valid.startswith("valid keys are epochs, batch_size, optimizer, lr, momentum,")


def test_from_dict_checks_values_as_the_constructor_does() -> None:
    with pytest.raises(UsageError, match=r"^Recipe\.amp = 'maybe' is invalid: True or False is required$"):
        Recipe.from_dict({"amp": "maybe"})


def test_from_dict_wants_a_mapping() -> None:
    with pytest.raises(UsageError) as err:
        Recipe.from_dict([("epochs", 2)])  # type: ignore[arg-type]
    assert str(err.value) == "Recipe = [('epochs', 2)] is invalid: a mapping of field names to values is required"
    assert (err.value.owner, err.value.field) == ("Recipe", None)


@pytest.mark.parametrize(
    ("fields", "batch", "lr", "weight_decay"),
    [
        ({}, 64, 0.1, 5e-4),
        ({}, 256, 0.4, 5e-4),
        ({"optimizer": "adamw"}, 256, 2e-3, 0.05),
        ({"lr": 1, "weight_decay": 0}, 256, 1.0, 0.0),
    ],
)
def test_resolved_lr_and_weight_decay(fields: dict[str, Any], batch: int, lr: float, weight_decay: float) -> None:
    recipe = Recipe(**fields)
    assert recipe.resolved_lr(batch) == lr and recipe.resolved_weight_decay() == weight_decay
    assert type(recipe.resolved_lr(batch)) is float and type(recipe.resolved_weight_decay()) is float

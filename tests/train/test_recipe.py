"""The recipe: every field's type and range checked, `from_dict` refusing unknown keys, the resolved defaults,
the named recipes, and the optimizer's parameter groups."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch
from torch import nn

from nas.arch import build_model
from nas.errors import UsageError, shown_value
from nas.train.recipe import RECIPES, Recipe, make_optimizer, make_scheduler
from tests.conftest import digits_net

FIELDS = [f.name for f in dataclasses.fields(Recipe)]
POSITIVE = "a positive integer is required"
FRACTION = "a number in [0, 1) is required"
AMOUNT = "a finite number >= 0 (or None for the default) is required"
POSITIVE_AMOUNT = "a finite number > 0 (or None for the default) is required"
FLAG = "True or False is required"

INVALID: list[tuple[str, object, str]] = [
    ("epochs", 0, POSITIVE),
    ("epochs", 2.0, POSITIVE),
    ("epochs", True, POSITIVE),
    ("batch_size", -1, POSITIVE),
    ("batch_size", "64", POSITIVE),
    ("optimizer", "lamb", "choose one of ['adamw', 'sgd']"),
    ("optimizer", ["sgd"], "choose one of ['adamw', 'sgd']"),
    ("lr", -1.0, POSITIVE_AMOUNT),  # was ">= 0", then 0 was refused as well
    ("lr", 0.0, POSITIVE_AMOUNT),
    ("lr", 0, POSITIVE_AMOUNT),
    ("lr", True, POSITIVE_AMOUNT),
    ("lr", "0.1", POSITIVE_AMOUNT),
    ("lr", float("inf"), POSITIVE_AMOUNT),
    ("memory_budget_gb", 0, POSITIVE_AMOUNT),  # every network would be infeasible
    ("memory_budget_gb", -2.0, POSITIVE_AMOUNT),
    ("epochs", 10**400, POSITIVE),  # more than 64 bits: every trial failed with OverflowError
    ("memory_budget_gb", 10**400, POSITIVE_AMOUNT),
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
    ("ema_decay", 1.0, "a number in [0, 1) is required (0 = off)"),
    ("ema_decay", -0.5, "a number in [0, 1) is required (0 = off)"),
    ("ema_decay", True, "a number in [0, 1) is required (0 = off)"),
    ("tta_flip", "yes", FLAG),
    ("decay_norm_and_bias", 0, FLAG),
    ("norm_bias_lr_scale", 0.0, "a finite number > 0 is required"),
    ("norm_bias_lr_scale", float("inf"), "a finite number > 0 is required"),
    ("norm_bias_lr_scale", None, "a finite number > 0 is required"),
    ("alternate_flips", None, FLAG),
    ("amp", "maybe", FLAG),
    ("amp", 1, FLAG),
    ("channels_last", 7, FLAG),
    ("compile", "maybe", "choose one of ['auto', 'graphs', 'off', 'on']"),
    ("compile", True, "choose one of ['auto', 'graphs', 'off', 'on']"),
    ("memory_budget_gb", float("nan"), POSITIVE_AMOUNT),
    ("memory_budget_gb", -2, POSITIVE_AMOUNT),
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
    assert str(err.value) == f"Recipe.{field} = {shown_value(value)} is invalid: {allowed}"
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
    valid = "valid keys are " + ", ".join([*FIELDS, "base"])
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


def test_every_fast_training_key_is_off_in_the_default_recipe() -> None:
    default = Recipe()
    keys = ("ema_decay", "tta_flip", "decay_norm_and_bias", "norm_bias_lr_scale", "alternate_flips")
    assert [getattr(default, key) for key in keys] == [0.0, False, True, 1.0, False]


def test_from_dict_starts_from_the_named_base_and_keeps_no_base_key() -> None:
    assert sorted(RECIPES) == ["default", "fast"]
    assert Recipe.from_dict({"base": "default"}) == Recipe()
    fast = Recipe.from_dict({"base": "fast"})
    assert {key: getattr(fast, key) for key in RECIPES["fast"]} == RECIPES["fast"]
    assert fast.ema_decay > 0 and fast.tta_flip and fast.alternate_flips and not fast.decay_norm_and_bias
    overridden = Recipe.from_dict({"base": "fast", "epochs": 3, "ema_decay": 0.9})
    assert overridden == dataclasses.replace(fast, epochs=3, ema_decay=0.9)
    assert "base" not in dataclasses.asdict(overridden)
    assert Recipe.from_dict(dataclasses.asdict(overridden)) == overridden  # what a checkpoint stores round-trips


@pytest.mark.parametrize("base", ["fastest", 1, None])
def test_an_unknown_base_is_refused_listing_the_named_recipes(base: object) -> None:
    with pytest.raises(UsageError) as err:
        Recipe.from_dict({"base": base, "epochs": 2})
    assert str(err.value) == f"Recipe.base = {base!r} is invalid: choose one of ['default', 'fast']"
    assert (err.value.owner, err.value.field, err.value.value) == ("Recipe", "base", base)


def _small() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, bias=False),  # 0
        nn.BatchNorm2d(2),  # 1
        nn.Conv2d(2, 2, 1),  # 2: with a bias
        nn.Flatten(),
        nn.Linear(8, 3),  # 4
    )


def _group_names(model: nn.Module, opt: torch.optim.Optimizer) -> list[tuple[set[str], float, float]]:
    names = {id(p): n for n, p in model.named_parameters()}
    return [({names[id(p)] for p in g["params"]}, g["lr"], g["weight_decay"]) for g in opt.param_groups]


def test_default_recipe_puts_every_parameter_in_one_decayed_group() -> None:
    model = _small()
    groups = _group_names(model, make_optimizer(model, Recipe(lr=0.1, weight_decay=1e-3), 64))
    assert groups == [({n for n, _ in model.named_parameters()}, 0.1, 1e-3)]


def test_no_decay_group_holds_exactly_the_norm_parameters_and_the_biases() -> None:
    model = _small()
    opt = make_optimizer(model, Recipe(lr=0.1, weight_decay=1e-3, decay_norm_and_bias=False), 64)
    assert _group_names(model, opt) == [
        ({"0.weight", "2.weight", "4.weight"}, 0.1, 1e-3),
        ({"1.weight", "1.bias", "2.bias", "4.bias"}, 0.1, 0.0),
    ]


def test_no_decay_group_of_a_family_network_is_its_one_dimensional_parameters() -> None:
    model = build_model(digits_net("dense_residual"), input_size=(1, 8, 8))
    (decayed, _, wd), (free, _, no_wd) = _group_names(
        model, make_optimizer(model, Recipe(decay_norm_and_bias=False), 64)
    )
    one_d = {n for n, p in model.named_parameters() if p.dim() == 1}  # BatchNorm weights and biases, the head's bias
    assert free == one_d and decayed == {n for n, _ in model.named_parameters()} - one_d
    assert (wd, no_wd) == (5e-4, 0.0)


def test_norm_bias_learning_rate_multiplier_is_applied_and_follows_the_schedule() -> None:
    model = _small()
    recipe = Recipe(lr=0.1, weight_decay=1e-3, norm_bias_lr_scale=8.0, momentum=0.0)
    opt = make_optimizer(model, recipe, 64)
    assert _group_names(model, opt) == [
        ({"0.weight", "1.weight", "2.weight", "2.bias", "4.weight", "4.bias"}, 0.1, 1e-3),
        ({"1.bias"}, pytest.approx(0.8), pytest.approx(1e-3 / 8)),  # the decay per step (lr x wd) is unchanged
    ]
    sched = make_scheduler(opt, recipe, total_steps=100)
    for _ in range(30):
        opt.step()
        sched.step()
    assert opt.param_groups[1]["lr"] == pytest.approx(8 * opt.param_groups[0]["lr"]) and opt.param_groups[0]["lr"] < 0.1
    with torch.no_grad():  # one plain SGD step on gradients of ones: the BatchNorm bias moves 8 times as far
        before = {n: p.clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt = make_optimizer(model, dataclasses.replace(recipe, weight_decay=0), 64)
    opt.step()
    moved = {n: (before[n] - p.detach()) for n, p in model.named_parameters()}
    torch.testing.assert_close(moved["1.bias"], torch.full((2,), 0.8))
    torch.testing.assert_close(moved["2.bias"], torch.full((2,), 0.1))
    torch.testing.assert_close(moved["1.weight"], torch.full((2,), 0.1))


def test_both_keys_together_give_three_groups() -> None:
    model = _small()
    recipe = Recipe(lr=0.1, weight_decay=1e-3, norm_bias_lr_scale=4.0, decay_norm_and_bias=False, optimizer="adamw")
    opt = make_optimizer(model, recipe, 64)
    assert isinstance(opt, torch.optim.AdamW)
    assert _group_names(model, opt) == [
        ({"0.weight", "2.weight", "4.weight"}, 0.1, 1e-3),
        ({"1.weight", "2.bias", "4.bias"}, 0.1, 0.0),
        ({"1.bias"}, 0.4, 0.0),
    ]

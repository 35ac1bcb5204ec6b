"""How a trial trains: the recipe, the named recipes users start from, and the optimizer and schedule it
stands for."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nas.checks import bad_value, is_int, is_number
from nas.errors import UsageError

OPTIMIZERS: dict[str, str] = {"sgd": "SGD with Nesterov momentum", "adamw": "AdamW"}
SCHEDULES: dict[str, str] = {
    "cosine": "linear warm-up, then cosine decay to zero",
    "onecycle": "one-cycle: warm-up to the peak, then cosine annealing (torch OneCycleLR)",
    "constant": "linear warm-up, then constant",
}
COMPILE_MODES: dict[str, str] = {
    "off": "eager",
    "on": "torch.compile from the start (CUDA graphs on CUDA)",
    "auto": "compile after epoch 1 when the remaining epochs repay the compile time (CUDA only)",
    "graphs": "capture the whole training step as one CUDA graph after 3 eager steps and replay it, no compiler "
    "(CUDA, data on the GPU, SGD without one-cycle; otherwise eager, with a note)",
}


_Rule = tuple[Callable[[Any], bool], str]  # (is the value valid, what is allowed)


def _positive_int(value: Any) -> bool:
    return is_int(value) and value >= 1


def _fraction(value: Any) -> bool:
    return is_number(value) and 0 <= value < 1


def _optional_amount(value: Any) -> bool:
    return value is None or (is_number(value) and value >= 0)


def _optional_positive(value: Any) -> bool:
    return value is None or (is_number(value) and value > 0)


def _flag(value: Any) -> bool:
    return isinstance(value, bool)


def _positive_number(value: Any) -> bool:
    return is_number(value) and value > 0


def _choice(table: dict[str, str]) -> _Rule:
    return (lambda value: isinstance(value, str) and value in table), f"choose one of {sorted(table)}"


_POSITIVE_INT: _Rule = (_positive_int, "a positive integer is required")
_FRACTION: _Rule = (_fraction, "a number in [0, 1) is required")
_OPTIONAL_AMOUNT: _Rule = (_optional_amount, "a finite number >= 0 (or None for the default) is required")
# One rule, so that the message of a negative value never suggests 0, which a second rule would then refuse.
_OPTIONAL_POSITIVE: _Rule = (_optional_positive, "a finite number > 0 (or None for the default) is required")
_FLAG: _Rule = (_flag, "True or False is required")

# Every field's checks, in order; the first one a value fails names what is allowed.
_RULES: dict[str, list[_Rule]] = {
    "epochs": [_POSITIVE_INT],
    "batch_size": [_POSITIVE_INT],
    "optimizer": [_choice(OPTIMIZERS)],
    "lr": [_OPTIONAL_POSITIVE],
    "momentum": [_FRACTION],
    "weight_decay": [_OPTIONAL_AMOUNT],
    "schedule": [_choice(SCHEDULES)],
    "warmup_fraction": [_FRACTION],
    "label_smoothing": [_FRACTION],
    "ema_decay": [(_fraction, "a number in [0, 1) is required (0 = off)")],
    "tta_flip": [_FLAG],
    "decay_norm_and_bias": [_FLAG],
    "norm_bias_lr_scale": [(_positive_number, "a finite number > 0 is required")],
    "alternate_flips": [_FLAG],
    "amp": [_FLAG],
    "channels_last": [_FLAG],
    "compile": [_choice(COMPILE_MODES)],
    "memory_budget_gb": [_OPTIONAL_POSITIVE],  # 0 would make every network infeasible
    "eval_batch_size": [_POSITIVE_INT],
    "measure_latency": [_FLAG],
    "latency_batch_size": [_POSITIVE_INT],
    "latency_repeats": [_POSITIVE_INT],
    "num_workers": [(lambda value: is_int(value) and value >= 0, "an integer >= 0 is required")],
    "seed": [(is_int, "an integer is required")],
}


@dataclass(frozen=True)
class Recipe:
    """How a trial trains; the defaults train the family well on the offline datasets."""

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"  # one of OPTIMIZERS
    lr: float | None = None  # None: SGD 0.1 x batch/64 (the DenseNet paper's rate, scaled), AdamW 2e-3
    momentum: float = 0.9
    weight_decay: float | None = None  # None: SGD 5e-4, AdamW 0.05
    schedule: str = "cosine"  # one of SCHEDULES
    warmup_fraction: float = 0.05  # share of all steps spent warming up linearly
    label_smoothing: float = 0.1
    # The cheap wins of airbench-style fast training; each works for every connectivity mode, each off here.
    ema_decay: float = 0.0  # > 0: validate, test and save an exponential moving average of the weights
    tta_flip: bool = False  # evaluate each image and its mirror, averaging the logits (datasets that flip)
    decay_norm_and_bias: bool = True  # False: no weight decay on normalisation weights and on any bias
    norm_bias_lr_scale: float = 1.0  # learning-rate multiplier of normalisation biases (airbench: 64)
    alternate_flips: bool = False  # mirror each image in every other epoch instead of at random (datasets that flip)
    amp: bool = True  # bf16 autocast on CUDA; CPU always trains in fp32
    channels_last: bool = True  # on CUDA
    compile: str = "auto"  # one of COMPILE_MODES
    memory_budget_gb: float | None = None  # None: 90% of the GPU's memory; no limit on CPU
    eval_batch_size: int = 512
    measure_latency: bool = True
    latency_batch_size: int = 256  # the "large batch" latency; batch 1 is always measured
    latency_repeats: int = 10
    num_workers: int = 4  # DataLoader workers, only for datasets too large to keep resident
    seed: int = 0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            for ok, allowed in _RULES[f.name]:
                if not ok(value):
                    raise bad_value("Recipe", f.name, value, allowed)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        """A recipe from plain data (a parsed file, a checkpoint's copy, `--recipe` pairs).

        `base` names a recipe of RECIPES and the other keys override its values; unknown keys are
        refused, each value is checked as the constructor checks it, absent keys keep the base's values
        (the defaults without a base). The result holds every field resolved: no record keeps `base`.
        """
        if not isinstance(data, Mapping):
            allowed = "a mapping of field names to values is required"
            raise UsageError(f"Recipe = {data!r} is invalid: {allowed}", owner="Recipe", value=data, allowed=allowed)
        names = [f.name for f in dataclasses.fields(cls)]
        for key, value in data.items():
            if key not in names and key != BASE_KEY:
                allowed = f"valid keys are {', '.join([*names, BASE_KEY])}"
                raise UsageError(
                    f"Recipe.{key} is unknown: {allowed}", owner="Recipe", field=str(key), value=value, allowed=allowed
                )
        fields = dict(data)
        base = named_recipe(fields.pop(BASE_KEY, "default"))
        return cls(**{**base, **fields})

    def resolved_lr(self, batch_size: int) -> float:
        if self.lr is not None:
            return float(self.lr)
        return 0.1 * batch_size / 64 if self.optimizer == "sgd" else 2e-3

    def resolved_weight_decay(self) -> float:
        if self.weight_decay is not None:
            return float(self.weight_decay)
        return 5e-4 if self.optimizer == "sgd" else 0.05


BASE_KEY = "base"  # names the recipe of RECIPES that a study file's [recipe] table or --recipe pairs start from

# Named recipes: field values over the defaults. "fast" adds the cheap wins of airbench-style training
# (README, "Named recipes"); benchmarks/time_to_accuracy.py measures what they buy.
RECIPES: dict[str, dict[str, Any]] = {
    "default": {},
    "fast": {
        "label_smoothing": 0.2,
        "ema_decay": 0.99,
        "tta_flip": True,
        "decay_norm_and_bias": False,
        "norm_bias_lr_scale": 8.0,
        "alternate_flips": True,
    },
}


def named_recipe(name: Any) -> dict[str, Any]:
    """The field values of the recipe RECIPES names; an unknown name lists the valid ones."""
    if not isinstance(name, str) or name not in RECIPES:
        raise bad_value("Recipe", BASE_KEY, name, f"choose one of {sorted(RECIPES)}")
    return dict(RECIPES[name])


# Normalisation layers: their weights and biases are what `decay_norm_and_bias` and `norm_bias_lr_scale` mean.
NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
)


def param_groups(model: nn.Module, recipe: Recipe, *, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: one per (learning rate, weight decay), the main group first.

    With `decay_norm_and_bias` off, normalisation weights and biases and every other bias take no
    weight decay (decaying a scale or a shift regularises nothing). Normalisation biases learn at
    `norm_bias_lr_scale` times the rate, their weight decay divided by the same factor so that the
    decay per step (rate x decay) stays what the recipe says.
    """
    groups: dict[tuple[float, float], list[nn.Parameter]] = {(lr, weight_decay): []}
    seen: set[int] = set()
    for module in model.modules():
        norm = isinstance(module, NORM_LAYERS)
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            bias = name == "bias"
            decay = weight_decay if recipe.decay_norm_and_bias or not (norm or bias) else 0.0
            scale = recipe.norm_bias_lr_scale if norm and bias else 1.0
            groups.setdefault((lr * scale, decay / scale), []).append(param)
    return [{"params": params, "lr": rate, "weight_decay": wd} for (rate, wd), params in groups.items() if params]


def make_optimizer(model: nn.Module, recipe: Recipe, batch: int) -> torch.optim.Optimizer:
    lr, wd = recipe.resolved_lr(batch), recipe.resolved_weight_decay()
    groups = param_groups(model, recipe, lr=lr, weight_decay=wd)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=recipe.momentum, nesterov=recipe.momentum > 0)
    return torch.optim.AdamW(groups, lr=lr)


def make_scheduler(
    opt: torch.optim.Optimizer, recipe: Recipe, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    warmup = int(recipe.warmup_fraction * total_steps)
    if recipe.schedule == "onecycle":
        peak = [group["lr"] for group in opt.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=peak, total_steps=total_steps, pct_start=max(recipe.warmup_fraction, 1e-3)
        )

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if recipe.schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(total_steps - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)

"""How a trial trains: the recipe and the optimizer and schedule it stands for."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from nas.checks import bad_value

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
        for name in ("epochs", "batch_size", "eval_batch_size", "latency_batch_size", "latency_repeats"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad_value("Recipe", name, value, "a positive integer is required")
        for name, table in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("compile", COMPILE_MODES)):
            if getattr(self, name) not in table:
                raise bad_value("Recipe", name, getattr(self, name), f"choose one of {sorted(table)}")
        for name in ("lr", "weight_decay", "memory_budget_gb"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0):
                raise bad_value("Recipe", name, value, "a finite number >= 0 (or None for the default) is required")
        if self.lr is not None and self.lr == 0:
            raise bad_value("Recipe", "lr", self.lr, "a number > 0 is required")
        if not 0 <= self.momentum < 1:
            raise bad_value("Recipe", "momentum", self.momentum, "a number in [0, 1) is required")
        if not 0 <= self.warmup_fraction < 1:
            raise bad_value("Recipe", "warmup_fraction", self.warmup_fraction, "a number in [0, 1) is required")
        if not 0 <= self.label_smoothing < 1:
            raise bad_value("Recipe", "label_smoothing", self.label_smoothing, "a number in [0, 1) is required")
        if not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise bad_value("Recipe", "num_workers", self.num_workers, "an integer >= 0 is required")

    def resolved_lr(self, batch_size: int) -> float:
        if self.lr is not None:
            return float(self.lr)
        return 0.1 * batch_size / 64 if self.optimizer == "sgd" else 2e-3

    def resolved_weight_decay(self) -> float:
        if self.weight_decay is not None:
            return float(self.weight_decay)
        return 5e-4 if self.optimizer == "sgd" else 0.05


def make_optimizer(model: nn.Module, recipe: Recipe, batch: int) -> torch.optim.Optimizer:
    lr, wd = recipe.resolved_lr(batch), recipe.resolved_weight_decay()
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=lr, momentum=recipe.momentum, nesterov=recipe.momentum > 0, weight_decay=wd
        )
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)


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

"""Memory: fit a trial into the budget before training, and decide what to do when it runs out anyway.

Before training, `plan_memory` fits the memory predicted from the config alone (`nas.arch.cost`)
into the budget: memory-efficient mode first, then smaller batches. When training still runs out of
memory, `after_out_of_memory` decides the one retry: memory-efficient mode, else half the batch,
else the trial is infeasible.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import torch

from nas.arch import ArchConfig
from nas.arch.cost import CostEstimate, estimate
from nas.arch.external import ExternalNet
from nas.data.datasets import LoadedData
from nas.train.recipe import Recipe

GIB = 2**30
GPU_SHARE = 0.9  # of a GPU's memory, the budget when the recipe sets none
OOM_MESSAGE_CHARS = 300  # an out-of-memory reason keeps the first line of the error, this long at most


def is_out_of_memory(err: BaseException) -> bool:
    if isinstance(err, torch.OutOfMemoryError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def out_of_memory_message(err: BaseException) -> str:
    """The first line of the error, short enough for a trial's reason."""
    lines = str(err).splitlines()
    return lines[0][:OOM_MESSAGE_CHARS] if lines else type(err).__name__


def release_memory(device: torch.device, *, cached: bool) -> None:
    """Free what the last attempt left; with `cached`, also hand the allocator's cached blocks back to the driver.

    Only after running out of memory is that worth it: otherwise the next trial of this worker would have to
    allocate it all again (part of what made every trial's first epoch about twice its later ones on an H200).
    """
    gc.collect()
    if cached and device.type == "cuda":
        torch.cuda.empty_cache()


def _can_go_memory_efficient(config: ArchConfig) -> bool:
    """Memory-efficient mode recomputes the bottleneck; without one (bn_size 0) it saves nothing."""
    return config.bn_size > 0 and not config.memory_efficient


def _per_image_bytes(config: ArchConfig, est: CostEstimate) -> int:
    return est.activation_bytes_efficient if config.memory_efficient else est.activation_bytes


def activation_bytes(config: ArchConfig, input_size: tuple[int, int, int], batch: int) -> int:
    """Predicted activation memory of one training batch, in the config's mode."""
    return batch * _per_image_bytes(config, estimate(config, input_size=input_size))


def needed_bytes(config: ArchConfig, recipe: Recipe, input_size: tuple[int, int, int], batch: int) -> int:
    """Predicted training memory: weights, gradients, optimiser state, the weight average, one batch's activations."""
    est = estimate(config, input_size=input_size)
    copies = 3 if recipe.optimizer == "sgd" else 4  # weights, gradients, optimizer state
    copies += recipe.ema_decay > 0  # the average of the weights
    return est.params * 4 * copies + batch * _per_image_bytes(config, est)


def _budget_bytes(recipe: Recipe, device: torch.device, sharing: int) -> float | None:
    """The recipe's budget (per trial); else a share of the GPU's memory split among the `sharing` trials
    that train on it at once; on CPU without one, no limit."""
    if recipe.memory_budget_gb is not None:
        return recipe.memory_budget_gb * GIB
    if device.type == "cuda":
        return GPU_SHARE * torch.cuda.get_device_properties(device).total_memory / sharing
    return None


def plan_memory(
    config: ArchConfig, recipe: Recipe, data: LoadedData, device: torch.device, *, sharing: int = 1
) -> tuple[ArchConfig, int, list[str]]:
    """Fit the predicted training memory into the budget: memory-efficient mode, then smaller
    batches. Raises MemoryError with the reason when even batch 1 does not fit."""
    budget = _budget_bytes(recipe, device, sharing)
    batch, notes = min(recipe.batch_size, len(data.train)), list[str]()
    if budget is None:
        return config, batch, notes
    need = needed_bytes(config, recipe, data.input_size, batch)
    if need <= budget:
        return config, batch, notes
    if _can_go_memory_efficient(config):
        config = config.replace(memory_efficient=True)
        notes.append(f"predicted {need / GIB:.2f} GiB > budget {budget / GIB:.2f} GiB: memory-efficient mode")
        need = needed_bytes(config, recipe, data.input_size, batch)
    while need > budget and batch > 1:
        batch //= 2
        need = needed_bytes(config, recipe, data.input_size, batch)
        notes.append(f"predicted memory over budget: batch {batch}")
    if need > budget:
        raise MemoryError(f"predicted {need / GIB:.2f} GiB at batch 1 exceeds the budget of {budget / GIB:.2f} GiB")
    return config, batch, notes


@dataclass(frozen=True)
class Retry:
    """Train again with this config and batch; `note` says why, for the trial's notes."""

    config: ArchConfig | ExternalNet
    batch: int
    note: str


@dataclass(frozen=True)
class GiveUp:
    """Do not train again: the trial is infeasible for `reason`."""

    reason: str


def after_out_of_memory(config: ArchConfig | ExternalNet, batch: int, message: str, *, retried: bool) -> Retry | GiveUp:
    """What follows an attempt that ran out of memory with `config` at `batch` (`message`: the error).

    One retry only: in memory-efficient mode when the network has a bottleneck to recompute, else at
    half the batch; after a retry, or at batch 1 with nothing left to try, the trial is infeasible.
    """
    if retried:
        return GiveUp(f"out of memory again after retrying: {message}")
    if isinstance(config, ArchConfig) and _can_go_memory_efficient(config):
        note = f"out of memory at batch {batch}; retried in memory-efficient mode"
        return Retry(config.replace(memory_efficient=True), batch, note)
    if batch > 1:
        return Retry(config, batch // 2, f"out of memory; retried with batch {batch // 2}")
    return GiveUp(f"out of memory at batch 1: {message}")

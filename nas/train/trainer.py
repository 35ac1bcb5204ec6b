"""Train one trial fast and report numbers that can be trusted.

Data stays on the device as uint8 and is augmented there (`nas.data.augment`); on CUDA the step runs
under bf16 autocast with channels_last and cuDNN autotuning, and `compile="auto"` compiles with
CUDA graphs once the first epoch shows the trial is long enough to repay the compile time.
A trial never takes its caller down: out-of-memory is retried once with memory-efficient mode
or half the batch and then reported as infeasible, a non-finite loss ends the trial as failed,
and either way the memory is released before returning.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nas.arch import ArchConfig, build_model
from nas.arch.cost import count_flops, count_params, estimate
from nas.arch.external import ExternalNet
from nas.data.augment import channel_tensor, prepare_batch
from nas.data.batches import batches
from nas.data.datasets import LoadedData, Split
from nas.train.checkpoint import save_checkpoint
from nas.train.measure import autocast, environment, latency_ms, peak_memory, resolve_device, synchronize
from nas.train.memory import (
    GiveUp,
    activation_bytes,
    after_out_of_memory,
    is_out_of_memory,
    out_of_memory_message,
    plan_memory,
    release_memory,
)
from nas.train.progress import Progress
from nas.train.recipe import Recipe, make_optimizer, make_scheduler
from nas.train.results import EpochMetrics, NonFiniteLoss, TrialResult

# DESIGN.md anchors (H200): ~70 s of compiling for a 1.67x faster step with CUDA graphs.
COMPILE_SECONDS = 75.0
COMPILE_SPEEDUP = 1.6
NAN_CHECK_EVERY = 50  # steps between loss checks; each check waits for the GPU


EpochCallback = Callable[[EpochMetrics], "str | None"]  # return a reason to stop the trial
StepHook = Callable[[int, int], None]  # called with (epoch, step) before every training step


@torch.no_grad()
def evaluate_split(
    model: nn.Module, split: Split, data: LoadedData, *, device: torch.device, batch_size: int = 512, amp: bool = True
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of the model on one split, without augmentation."""
    was_training = model.training
    model.eval()
    mean, std = channel_tensor(data.mean, device), channel_tensor(data.std, device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for xb, yb in batches(split, batch_size=batch_size, device=device, shuffle=False):
        x = prepare_batch(xb, mean=mean, std=std, augment=None)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp):
            out = model(x).float()
        loss_sum += nn.functional.cross_entropy(out, yb, reduction="sum")
        correct += (out.argmax(1) == yb).sum()
    model.train(was_training)
    n = max(len(split), 1)
    return loss_sum.item() / n, correct.item() / n


def _build(config: ArchConfig | ExternalNet, input_size: tuple[int, int, int]) -> nn.Module:
    if isinstance(config, ExternalNet):
        return config.build()
    return build_model(config, input_size=input_size)


def _train(
    config: ArchConfig | ExternalNet,
    batch: int,
    data: LoadedData,
    recipe: Recipe,
    device: torch.device,
    result: TrialResult,
    on_epoch: EpochCallback | None,
    on_step: StepHook | None,
    progress: bool | None,
) -> nn.Module:
    """One attempt; fills `result` as it goes, so a failure keeps the epochs already done."""
    torch.manual_seed(recipe.seed)
    cuda = device.type == "cuda"
    channels_last = cuda and recipe.channels_last
    model: nn.Module = _build(config, data.input_size).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    step_model: Callable[[Tensor], Tensor] = model
    if recipe.compile == "on":
        step_model = torch.compile(model, mode="reduce-overhead" if cuda else None)
        result.compiled = True
    n_train = len(data.train)
    steps = n_train // batch
    opt = make_optimizer(model, recipe, batch)
    sched = make_scheduler(opt, recipe, steps * recipe.epochs)
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    gen = torch.Generator(device=device).manual_seed(recipe.seed)
    mean, std = channel_tensor(data.mean, device), channel_tensor(data.std, device)
    bar = Progress(progress, recipe.epochs, steps, f"trial {result.arch_hash}")
    train_seconds, train_images = 0.0, 0
    try:
        for epoch in range(1, recipe.epochs + 1):
            model.train()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            synchronize(device)
            start = time.perf_counter()
            step = 0
            for step, (xb, yb) in enumerate(
                batches(
                    data.train,
                    batch_size=batch,
                    device=device,
                    shuffle=True,
                    generator=gen,
                    drop_last=True,
                    num_workers=recipe.num_workers,
                )
            ):
                if on_step is not None:
                    on_step(epoch, step)
                x = prepare_batch(xb, mean=mean, std=std, augment=data.augment, generator=gen)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast(device, recipe.amp):
                    out = step_model(x)
                loss = criterion(out.float(), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += loss.detach() * yb.shape[0]
                correct += (out.detach().argmax(1) == yb).sum()
                if (step + 1) % NAN_CHECK_EVERY == 0 and not torch.isfinite(loss_sum):
                    raise NonFiniteLoss(epoch, step, loss.item())
                bar.step()
            synchronize(device)
            seconds = time.perf_counter() - start
            seen = steps * batch
            train_loss = loss_sum.item() / seen
            if not math.isfinite(train_loss):
                raise NonFiniteLoss(epoch, step, train_loss)
            val_loss, val_acc = evaluate_split(
                model, data.val, data, device=device, batch_size=recipe.eval_batch_size, amp=recipe.amp
            )
            metrics = EpochMetrics(
                epoch,
                train_loss,
                correct.item() / seen,
                val_loss,
                val_acc,
                seconds,
                seen / seconds,
                opt.param_groups[0]["lr"],
            )
            result.history.append(metrics)
            train_seconds, train_images = train_seconds + seconds, train_images + seen
            result.train_images_per_second = train_images / train_seconds
            if result.best_val_accuracy is None or val_acc > result.best_val_accuracy:
                result.best_val_accuracy, result.best_epoch = val_acc, epoch
            bar.epoch(metrics, recipe.epochs)
            reason = on_epoch(metrics) if on_epoch is not None else None
            if reason:
                result.status, result.reason = "pruned", str(reason)
                break
            remaining = (recipe.epochs - epoch) * seconds
            repays = remaining * (1 - 1 / COMPILE_SPEEDUP) > COMPILE_SECONDS
            if recipe.compile == "auto" and cuda and not result.compiled and epoch == 1 and repays:
                step_model = torch.compile(model, mode="reduce-overhead")
                result.compiled = True
                result.notes.append(f"compiled after epoch 1: {remaining:.0f} s of eager epochs left")
    finally:
        bar.close()
    return model


def train_trial(
    *,
    config: ArchConfig | ExternalNet,
    data: LoadedData,
    recipe: Recipe | None = None,
    device: str | torch.device = "auto",
    on_epoch: EpochCallback | None = None,
    on_step: StepHook | None = None,
    progress: bool | None = None,
    checkpoint_path: Path | None = None,
    checkpoint_extra: dict[str, Any] | None = None,
) -> TrialResult:
    """Train `config` on `data` with `recipe`; never raises for out-of-memory or divergence.

    `on_epoch` may return a reason to stop early (the trial is then `pruned`). With
    `checkpoint_path` the trained weights, config and recipe are saved there atomically.
    """
    recipe = recipe if recipe is not None else Recipe()
    dev = resolve_device(device)
    c, _, _ = data.input_size
    if (config.in_channels, config.num_classes) != (c, data.num_classes):
        raise ValueError(
            f"config has in_channels={config.in_channels}, num_classes={config.num_classes} but dataset "
            f"{data.name!r} has {c} channels and {data.num_classes} classes"
        )
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    start = time.perf_counter()
    if isinstance(config, ExternalNet):
        probe = config.build()
        params, flops = count_params(probe), count_flops(probe, input_size=data.input_size).total
        del probe
    else:
        est = estimate(config, input_size=data.input_size)
        params, flops = est.params, est.flops
    result = TrialResult("complete", None, config.to_dict(), config.arch_hash(), params=params, flops=flops)
    result.environment = environment(dev)
    try:
        if isinstance(config, ExternalNet):  # no closed form: no memory plan, only the OOM retry
            batch, notes = min(recipe.batch_size, len(data.train)), list[str]()
        else:
            config, batch, notes = plan_memory(config, recipe, data, dev)
    except MemoryError as err:
        result.status, result.reason = "infeasible", str(err)
        result.wall_seconds = time.perf_counter() - start
        return result
    result.notes.extend(notes)
    for attempt in (1, 2):
        result.batch_size = batch
        result.memory_efficient = isinstance(config, ArchConfig) and config.memory_efficient
        result.status, result.reason, result.compiled = "complete", None, False
        result.history.clear()
        result.best_val_accuracy = result.best_epoch = None
        oom = None
        try:
            with peak_memory(dev) as peak:
                model = _train(config, batch, data, recipe, dev, result, on_epoch, on_step, progress)
            result.peak_memory_bytes, result.peak_memory_kind = peak["bytes"], peak["kind"]
            if isinstance(config, ArchConfig):
                result.predicted_activation_bytes = activation_bytes(config, data.input_size, batch)
            if recipe.measure_latency:
                _measure_latency(model, data, recipe, dev, result)
            if checkpoint_path is not None:
                if isinstance(config, ExternalNet):
                    raise ValueError("checkpoints hold ArchConfig networks only; torchvision baselines are not saved")
                save_checkpoint(checkpoint_path, model=model, config=config, recipe=recipe, extra=checkpoint_extra)
            del model
            break
        except NonFiniteLoss as err:
            result.status, result.reason = "failed", str(err)
            break
        except Exception as err:
            if not is_out_of_memory(err):
                raise
            oom = out_of_memory_message(err)
        finally:
            release_memory(dev)
        step = after_out_of_memory(config, batch, oom, retried=attempt == 2)
        if isinstance(step, GiveUp):
            result.status, result.reason = "infeasible", step.reason
            break
        config, batch = step.config, step.batch
        result.notes.append(step.note)
    result.wall_seconds = time.perf_counter() - start
    return result


def _measure_latency(
    model: nn.Module, data: LoadedData, recipe: Recipe, dev: torch.device, result: TrialResult
) -> None:
    channels_last = dev.type == "cuda" and recipe.channels_last
    for batch in (1, recipe.latency_batch_size):
        ms = latency_ms(
            model,
            input_size=data.input_size,
            batch_size=batch,
            device=dev,
            amp=recipe.amp,
            channels_last=channels_last,
            repeats=recipe.latency_repeats,
        )
        if batch == 1:
            result.latency_ms_batch1 = ms
        else:
            result.latency_ms_large_batch = ms
    result.latency_batch_size = recipe.latency_batch_size

"""Train one trial fast and report numbers that can be trusted.

A trial is planned (`nas.train.memory`), then trained (`nas.train.loop`) in one attempt, or two when
the first runs out of memory; each attempt fills a fresh `AttemptResult`, and the trial's
`TrialResult` is built from the last attempt with the notes of all of them. A trial never takes its
caller down: out-of-memory is retried once with memory-efficient mode or half the batch and then
reported as infeasible, a non-finite loss ends the trial as failed, and either way the memory is
released before returning.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.arch import ArchConfig
from nas.arch.cost import network_counts
from nas.arch.external import ExternalNet
from nas.data.datasets import LoadedData
from nas.errors import UsageError
from nas.train.checkpoint import save_checkpoint
from nas.train.loop import EpochCallback, StepHook, TrainingRun, skipped_flip_keys, train_epochs
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
from nas.train.recipe import Recipe, make_optimizer
from nas.train.results import OUT_OF_MEMORY, AttemptResult, NonFiniteLoss, TrialResult
from nas.train.sharing import ALONE, DeviceShare


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
    on_trained: Callable[[nn.Module], None] | None = None,
    share: DeviceShare = ALONE,
) -> TrialResult:
    """Train `config` on `data` with `recipe`; never raises for out-of-memory or divergence.

    `on_epoch` may return a reason to stop early (the trial is then `pruned`). With
    `checkpoint_path` the trained weights, config and recipe are saved there atomically.
    `on_trained` gets the trained model (the weight average with `ema_decay`) once, on the device,
    after a successful attempt: `nas finalize` measures it on the test split there. `share`: the trials
    training at once beside this one in this process (nas.train.sharing); each plans for its part of the memory.
    """
    recipe = recipe if recipe is not None else Recipe()
    dev = resolve_device(device)
    _check_matches(config, data)
    if checkpoint_path is not None and isinstance(config, ExternalNet):
        raise UsageError("checkpoints hold ArchConfig networks only; torchvision baselines are not saved")
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    trial = _Trial.start(config, data, dev)
    try:
        planned, batch, notes = _plan(config, recipe, data, dev, share.trials)
    except MemoryError as err:
        return trial.refused(str(err))
    notes = notes + skipped_flip_keys(recipe, data)
    if share.shared:
        notes.append(
            f"trained beside {share.trials - 1} other trial(s) in one process: its images/s is its share of the "
            "device, its peak memory is not measured (latency is, with the device to itself)"
        )
    run = TrainingRun(
        config=planned,
        batch=batch,
        data=data,
        recipe=recipe,
        device=dev,
        label=f"trial {trial.arch_hash}",
        on_epoch=on_epoch,
        on_step=on_step,
        progress=progress,
        share=share,
    )
    outcome = _train_with_retry(run, _Save(checkpoint_path, checkpoint_extra, on_trained))
    return trial.finished(outcome, notes=notes + outcome.notes)


def warm_up_device(device: torch.device, *, recipe: Recipe) -> float:
    """Three steps of a tiny network on random data, the way the recipe trains: what a process (cuBLAS and cuDNN
    handles are per thread, too) pays once on a GPU, the context, the libraries' handles and first kernels, the
    optimiser's import of torch._dynamo, is then not charged to its first trial's first epoch. Nothing on a CPU.
    Returns the seconds it took."""
    if device.type != "cuda":
        return 0.0
    start = time.perf_counter()
    torch.backends.cudnn.benchmark = True
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    ).to(device)
    memory_format = torch.channels_last if recipe.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    opt = make_optimizer(model, recipe, 64)
    x = torch.randn(64, 3, 8, 8, device=device).contiguous(memory_format=memory_format)
    y = torch.randint(0, 16, (64,), device=device)
    for _ in range(3):
        with autocast(device, recipe.amp):
            out = model(x)
        nn.functional.cross_entropy(out.float(), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    with torch.no_grad(), autocast(device, recipe.amp):
        model.eval()(x)
    synchronize(device)
    return time.perf_counter() - start


def _check_matches(config: ArchConfig | ExternalNet, data: LoadedData) -> None:
    c, _, _ = data.input_size
    if (config.in_channels, config.num_classes) != (c, data.num_classes):
        raise UsageError(
            f"config has in_channels={config.in_channels}, num_classes={config.num_classes} but dataset "
            f"{data.name!r} has {c} channels and {data.num_classes} classes"
        )


def _plan(
    config: ArchConfig | ExternalNet, recipe: Recipe, data: LoadedData, dev: torch.device, sharing: int
) -> tuple[ArchConfig | ExternalNet, int, list[str]]:
    if isinstance(config, ExternalNet):  # no closed form: no memory plan, only the OOM retry
        return config, min(recipe.batch_size, len(data.train)), []
    return plan_memory(config, recipe, data, dev, sharing=sharing)


@dataclass(frozen=True)
class _Save:
    """Where the trained weights go (nowhere when `path` is None), what is saved beside them, and who
    else is handed the trained model."""

    path: Path | None
    extra: dict[str, Any] | None
    on_trained: Callable[[nn.Module], None] | None = None


@dataclass(frozen=True)
class _Outcome:
    """How the trial ended: its status and reason, its last attempt, and the notes of every attempt."""

    status: str
    reason: str | None
    attempt: AttemptResult
    notes: list[str]


def _train_with_retry(run: TrainingRun, save: _Save) -> _Outcome:
    """The first attempt and, after one that ran out of memory, what `after_out_of_memory` decides."""
    notes: list[str] = []
    retried = False
    while True:
        attempt = _attempt(run, save)
        notes.extend(attempt.notes)
        if attempt.status != OUT_OF_MEMORY:
            return _Outcome(attempt.status, attempt.reason, attempt, notes)
        step = after_out_of_memory(run.config, run.batch, attempt.reason or "", retried=retried)
        if isinstance(step, GiveUp):
            return _Outcome("infeasible", step.reason, attempt, notes)
        notes.append(step.note)
        run, retried = dataclasses.replace(run, config=step.config, batch=step.batch), True


def _attempt(run: TrainingRun, save: _Save) -> AttemptResult:
    """Train once on a fresh AttemptResult; out-of-memory and a non-finite loss end up in its status."""
    config = run.config
    attempt = AttemptResult(
        batch_size=run.batch, memory_efficient=isinstance(config, ArchConfig) and config.memory_efficient
    )
    try:
        if run.share.shared:  # the device's peak is every trial's: none is this one's
            model = train_epochs(run, attempt)
        else:
            with peak_memory(run.device) as peak:
                model = train_epochs(run, attempt)
            attempt.peak_memory_bytes, attempt.peak_memory_kind = peak["bytes"], peak["kind"]
        if isinstance(config, ArchConfig):
            attempt.predicted_activation_bytes = activation_bytes(config, run.data.input_size, run.batch)
        if run.recipe.measure_latency:
            with run.share.exclusive(run.device):
                _measure_latency(model, run, attempt)
        if save.path is not None:
            assert isinstance(config, ArchConfig)  # train_trial refuses to save a baseline before training
            save_checkpoint(save.path, model=model, config=config, recipe=run.recipe, extra=save.extra)
        if save.on_trained is not None and attempt.status == "complete":
            save.on_trained(model)
        del model
    except NonFiniteLoss as err:
        attempt.status, attempt.reason = "failed", str(err)
    except Exception as err:
        if not is_out_of_memory(err):
            raise
        attempt.status, attempt.reason = OUT_OF_MEMORY, out_of_memory_message(err)
    finally:
        # The caching allocator keeps what this attempt freed for the next trial, unless memory ran out.
        with run.share.exclusive(run.device):
            release_memory(run.device, cached=attempt.status == OUT_OF_MEMORY)
    return attempt


def _measure_latency(model: nn.Module, run: TrainingRun, attempt: AttemptResult) -> None:
    recipe = run.recipe
    channels_last = run.device.type == "cuda" and recipe.channels_last
    for batch in (1, recipe.latency_batch_size):
        ms = latency_ms(
            model,
            input_size=run.data.input_size,
            batch_size=batch,
            device=run.device,
            amp=recipe.amp,
            channels_last=channels_last,
            repeats=recipe.latency_repeats,
        )
        if batch == 1:
            attempt.latency_ms_batch1 = ms
        else:
            attempt.latency_ms_large_batch = ms
    attempt.latency_batch_size = recipe.latency_batch_size


@dataclass(frozen=True)
class _Trial:
    """What a trial's result says whatever happens in training: the network, its counted costs, where
    it ran, and when it started."""

    config: dict[str, Any]
    arch_hash: str
    params: int
    flops: int
    environment: dict[str, Any]
    started: float  # time.perf_counter()
    val_images: int  # the validation split's size: what an accuracy's interval is computed from

    @classmethod
    def start(cls, config: ArchConfig | ExternalNet, data: LoadedData, dev: torch.device) -> _Trial:
        started = time.perf_counter()
        params, flops = network_counts(config, input_size=data.input_size)
        return cls(config.to_dict(), config.arch_hash(), params, flops, environment(dev), started, len(data.val))

    def _result(self, status: str, reason: str | None) -> TrialResult:
        return TrialResult(
            status,
            reason,
            self.config,
            self.arch_hash,
            params=self.params,
            flops=self.flops,
            environment=self.environment,
            wall_seconds=time.perf_counter() - self.started,
        )

    def refused(self, reason: str) -> TrialResult:
        """The memory plan found no batch that fits: infeasible before any training."""
        return self._result("infeasible", reason)

    def finished(self, outcome: _Outcome, *, notes: list[str]) -> TrialResult:
        """The result of the trial's last attempt, with `notes` from the plan and every attempt."""
        a = outcome.attempt
        return dataclasses.replace(
            self._result(outcome.status, outcome.reason),
            best_val_accuracy=a.best_val_accuracy,
            best_epoch=a.best_epoch,
            val_images=self.val_images,
            predicted_activation_bytes=a.predicted_activation_bytes,
            peak_memory_bytes=a.peak_memory_bytes,
            peak_memory_kind=a.peak_memory_kind,
            latency_ms_batch1=a.latency_ms_batch1,
            latency_ms_large_batch=a.latency_ms_large_batch,
            latency_batch_size=a.latency_batch_size,
            train_images_per_second=a.train_images_per_second,
            batch_size=a.batch_size,
            memory_efficient=a.memory_efficient,
            compiled=a.compiled,
            notes=notes,
            history=a.history,
        )

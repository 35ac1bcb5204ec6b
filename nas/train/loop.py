"""The epoch loop of one training attempt: build the model, train it epoch by epoch, validate after each.

Data stays on the device as uint8 and is augmented there (`nas.data.augment`); on CUDA the step runs
under bf16 autocast with channels_last, `compile="auto"` compiles with CUDA graphs once the first
epoch shows the trial is long enough to repay the compile time, and `compile="graphs"` captures the
whole step as one CUDA graph without the compiler (`nas.train.graphs`). With the recipe's `ema_decay` the
model validated and returned is the average of the weights (`nas.train.ema`). The loop fills the
attempt's `AttemptResult` as it goes, so an attempt that fails keeps the epochs it finished.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nas.arch import ArchConfig, build_model
from nas.arch.external import ExternalNet
from nas.data.augment import alternating_flips, channel_tensor, prepare_batch
from nas.data.batches import indexed_batches
from nas.data.datasets import LoadedData
from nas.train.ema import WeightAverage
from nas.train.evaluate import eval_forward, evaluate_split
from nas.train.graphs import (
    WARMUP_STEPS,
    GraphedForward,
    GraphedStep,
    TensorLrSGD,
    graphs_unsupported,
    warm_up_on_side_stream,
)
from nas.train.measure import autocast, synchronize
from nas.train.progress import Progress
from nas.train.recipe import Recipe, make_optimizer, make_scheduler
from nas.train.results import AttemptResult, EpochMetrics, NonFiniteLoss
from nas.train.sharing import ALONE, DeviceShare

# Speed anchors (docs/architecture.md, H200): ~70 s of compiling for a 1.67x faster step with CUDA graphs.
COMPILE_SECONDS = 75.0
COMPILE_SPEEDUP = 1.6
NAN_CHECK_EVERY = 50  # steps between loss checks; each check waits for the GPU

EpochCallback = Callable[[EpochMetrics], "str | None"]  # return a reason to stop the trial
StepHook = Callable[[int, int], None]  # called with (epoch, step) before every training step


@dataclass(frozen=True)
class TrainingRun:
    """What one attempt trains, at which batch, on which data, how and where."""

    config: ArchConfig | ExternalNet
    batch: int  # after the memory plan and any out-of-memory retry
    data: LoadedData
    recipe: Recipe
    device: torch.device
    label: str  # names the progress bar and the log lines
    on_epoch: EpochCallback | None = None
    on_step: StepHook | None = None
    progress: bool | None = None  # None: a bar on a terminal, nothing otherwise
    share: DeviceShare = ALONE  # the trials training beside this one in this process (nas.train.sharing)


def compile_repays(epoch_seconds: float, epochs_left: int) -> bool:
    """Whether compiling now saves more time over the epochs left than the compile takes."""
    return epochs_left * epoch_seconds * (1 - 1 / COMPILE_SPEEDUP) > COMPILE_SECONDS


def flip_applies(wanted: bool, data: LoadedData) -> bool:
    """Whether a recipe's flip key (tta_flip, alternate_flips) takes effect on `data`: only data whose
    augmentation mirrors images (not digits or MNIST) may be mirrored in training or evaluation."""
    return bool(wanted) and data.augment.flip


def skipped_flip_keys(recipe: Recipe, data: LoadedData) -> list[str]:
    """Notes for the recipe's flip keys that `data` leaves off."""
    keys = [key for key in ("tta_flip", "alternate_flips") if getattr(recipe, key) and not flip_applies(True, data)]
    return [f"recipe.{key} skipped: the augmentation of {data.name} does not flip images" for key in keys]


def train_epochs(run: TrainingRun, attempt: AttemptResult) -> nn.Module:
    """Train `run.config` for the recipe's epochs (fewer when `on_epoch` stops it) and return the model.

    Fills `attempt` as it goes; raises NonFiniteLoss when the loss diverges, and out-of-memory
    errors as torch raises them (the trainer turns both into the trial's outcome).
    """
    return _EpochLoop(run, attempt).train()


def _build(config: ArchConfig | ExternalNet, input_size: tuple[int, int, int]) -> nn.Module:
    if isinstance(config, ExternalNet):
        return config.build()
    return build_model(config, input_size=input_size)


class _EpochLoop:
    """The model, optimiser, schedule and random stream of one attempt."""

    def __init__(self, run: TrainingRun, attempt: AttemptResult) -> None:
        self.run, self.attempt = run, attempt
        recipe, device = run.recipe, run.device
        self.cuda = device.type == "cuda"
        self.channels_last = self.cuda and recipe.channels_last
        with run.share.global_rng, run.share.step():  # the initial weights come from the seed alone
            torch.manual_seed(recipe.seed)
            self.model: nn.Module = _build(run.config, run.data.input_size).to(device)
            if self.channels_last:
                self.model = self.model.to(memory_format=torch.channels_last)
        self.average = WeightAverage(self.model, decay=recipe.ema_decay) if recipe.ema_decay > 0 else None
        self.step_model: Callable[[Tensor], Tensor] = self.model
        if recipe.compile == "on":
            self.step_model = torch.compile(self.model, mode="reduce-overhead" if self.cuda else None)
            attempt.compiled = True
        self.steps = len(run.data.train) // run.batch
        self.opt = make_optimizer(self.model, recipe, run.batch)
        self.sched = make_scheduler(self.opt, recipe, self.steps * recipe.epochs)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
        self.gen = torch.Generator(device=device).manual_seed(recipe.seed)
        self.tta_flip = flip_applies(recipe.tta_flip, run.data)
        # Alternating flips: each training image's random draw for epoch 1, by its position in the split.
        self.first_flips = (
            torch.rand(len(run.data.train), generator=self.gen, device=device) < 0.5
            if flip_applies(recipe.alternate_flips, run.data)
            else None
        )
        self.mean, self.std = channel_tensor(run.data.mean, device), channel_tensor(run.data.std, device)
        self.train_seconds, self.train_images = 0.0, 0
        # compile="graphs": eager steps on a side stream until the capture, then replays (None: eager throughout).
        self.warmup_left: int | None = None
        self.graphed: GraphedStep | None = None
        self.graph_sgd: TensorLrSGD | None = None
        self.graph_ema_weight: Tensor | None = None
        self.graphed_eval: GraphedForward | None = None
        self.eval_graph_failed = False
        if recipe.compile == "graphs":
            why = graphs_unsupported(
                device=device, resident=run.data.resident, optimizer=recipe.optimizer, schedule=recipe.schedule
            )
            if why is None:
                self.warmup_left = WARMUP_STEPS
            else:
                attempt.notes.append(f"compile=graphs: trained eagerly: {why}")

    def train(self) -> nn.Module:
        epochs = self.run.recipe.epochs
        bar = Progress(self.run.progress, epochs, self.steps, self.run.label)
        try:
            for epoch in range(1, epochs + 1):
                metrics = self._epoch(epoch, bar)
                bar.epoch(metrics, epochs)
                reason = self.run.on_epoch(metrics) if self.run.on_epoch is not None else None
                if reason:
                    self.attempt.status, self.attempt.reason = "pruned", str(reason)
                    break
                self._maybe_compile(epoch, metrics.seconds)
        finally:
            bar.close()
        return self.eval_model

    @property
    def eval_model(self) -> nn.Module:
        """What validation measures and the attempt returns: the average of the weights, or the weights."""
        return self.average.model if self.average is not None else self.model

    def _epoch(self, epoch: int, bar: Progress) -> EpochMetrics:
        """Train one epoch, validate, and record the epoch in the attempt."""
        train_loss, train_accuracy, seconds = self._train_epoch(epoch, bar)
        run = self.run
        val_loss, val_accuracy = math.nan, math.nan  # no validation split (`nas finalize` trains on train+val)
        if len(run.data.val):
            forward = self._graphed_eval(epoch)
            with run.share.step():
                val_loss, val_accuracy = evaluate_split(
                    self.eval_model,
                    run.data.val,
                    run.data,
                    device=run.device,
                    batch_size=run.recipe.eval_batch_size,
                    amp=run.recipe.amp,
                    tta_flip=self.tta_flip,
                    forward=forward,
                )
        seen = self.steps * run.batch
        lr = self.opt.param_groups[0]["lr"]
        metrics = EpochMetrics(epoch, train_loss, train_accuracy, val_loss, val_accuracy, seconds, seen / seconds, lr)
        self.train_seconds, self.train_images = self.train_seconds + seconds, self.train_images + seen
        self.attempt.add_epoch(metrics, images_per_second=self.train_images / self.train_seconds)
        return metrics

    def _graphed_eval(self, epoch: int) -> GraphedForward | None:
        """With a captured training step: validation's forward pass, captured before the second validation (the
        first, eager, let cuDNN pick its kernels); None: validate eagerly."""
        if self.graphed is None or epoch < 2 or self.eval_graph_failed:
            return self.graphed_eval
        if self.graphed_eval is None:
            run, model = self.run, self.eval_model
            shape = (min(run.recipe.eval_batch_size, len(run.data.val)), *run.data.input_size)
            example = torch.zeros(shape, device=run.device).contiguous(memory_format=torch.channels_last)
            forward = functools.partial(
                eval_forward, model, device=run.device, amp=run.recipe.amp, tta_flip=self.tta_flip, cache=False
            )
            graphed = GraphedForward(forward)
            was_training = model.training
            model.eval()
            try:
                with run.share.exclusive(run.device):
                    seconds = graphed.capture(example)
            except Exception as err:  # validation stays eager; training goes on
                self.eval_graph_failed = True
                self.attempt.notes.append(
                    f"compile=graphs: validation eager: the capture failed ({type(err).__name__}: {err})"
                )
                return None
            finally:
                model.train(was_training)
            self.graphed_eval = graphed
            self.attempt.notes.append(f"compile=graphs: validation captured as a CUDA graph in {seconds:.2f} s")
        return self.graphed_eval

    def _train_epoch(self, epoch: int, bar: Progress) -> tuple[float, float, float]:
        """(mean training loss, training accuracy, seconds) of one pass over the training split."""
        self.model.train()
        device = self.run.device
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        synchronize(device)
        start = time.perf_counter()
        step = 0
        for step, (xb, yb, index) in enumerate(self._batches()):
            if self.run.on_step is not None:
                self.run.on_step(epoch, step)
            flips = None if self.first_flips is None else alternating_flips(self.first_flips[index], epoch=epoch)
            loss, out = self._train_step(xb, yb, flips)
            loss_sum += loss.detach() * yb.shape[0]
            correct += (out.detach().argmax(1) == yb).sum()
            if (step + 1) % NAN_CHECK_EVERY == 0 and not torch.isfinite(loss_sum):
                raise NonFiniteLoss(epoch, step, loss.item())
            bar.step()
        synchronize(device)
        seconds = time.perf_counter() - start
        seen = self.steps * self.run.batch
        train_loss = loss_sum.item() / seen
        if not math.isfinite(train_loss):
            raise NonFiniteLoss(epoch, step, train_loss)
        return train_loss, correct.item() / seen, seconds

    def _batches(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        run = self.run
        return indexed_batches(
            run.data.train,
            batch_size=run.batch,
            device=run.device,
            shuffle=True,
            generator=self.gen,
            drop_last=True,
            num_workers=run.recipe.num_workers,
        )

    def _forward_backward(
        self, xb: Tensor, yb: Tensor, flips: Tensor | None, *, cache: bool = True
    ) -> tuple[Tensor, Tensor]:
        """Augment a raw batch (`flips`: which images to mirror, None: at random), forward, loss, backward."""
        x = prepare_batch(
            xb, mean=self.mean, std=self.std, augment=self.run.data.augment, generator=self.gen, flips=flips
        )
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.run.device, self.run.recipe.amp, cache=cache):
            out = self.step_model(x)
        loss = self.criterion(out.float(), yb)
        loss.backward()
        return loss, out

    def _step(self, xb: Tensor, yb: Tensor, flips: Tensor | None) -> tuple[Tensor, Tensor]:
        """One eager optimiser step on a raw batch; (loss, logits)."""
        self.opt.zero_grad(set_to_none=True)
        loss, out = self._forward_backward(xb, yb, flips)
        self.opt.step()
        self.sched.step()
        if self.average is not None:
            self.average.update()
        return loss, out

    def _train_step(self, xb: Tensor, yb: Tensor, flips: Tensor | None) -> tuple[Tensor, Tensor]:
        """One step: eager, a warm-up step before the capture, or a replay of the captured step. The capture
        has the device to itself (other trials of this process wait); steps share it."""
        share = self.run.share
        if self.warmup_left == 0:
            self.warmup_left = None
            with share.exclusive(self.run.device):
                self._capture(xb, yb, flips)
        with share.step():
            if self.graphed is not None:
                return self._replay(xb, yb, flips)
            if self.warmup_left is None:
                return self._step(xb, yb, flips)
            self.warmup_left -= 1
            return warm_up_on_side_stream(lambda: self._step(xb, yb, flips))

    def _capture(self, xb: Tensor, yb: Tensor, flips: Tensor | None) -> None:
        """Capture the step (nothing is trained); when it cannot be captured, a note, and steps stay eager."""
        average, device = self.average, self.run.device
        try:
            sgd = TensorLrSGD(self.opt)  # type: ignore[arg-type]  # graphs_unsupported let only SGD through
            weight = torch.zeros((), device=device) if average is not None else None

            def body(images: Tensor, labels: Tensor, mirror: Tensor | None) -> tuple[Tensor, Tensor]:
                loss, out = self._forward_backward(images, labels, mirror, cache=False)
                sgd.step()
                if average is not None and weight is not None:
                    average.apply(weight)
                return loss, out

            graphed = GraphedStep(body, parameters=list(self.model.parameters()), generator=self.gen)
            seconds = graphed.capture(xb, yb, flips)
        except Exception as err:  # whatever the capture cannot take trains eagerly: the trial goes on
            self.opt.zero_grad(set_to_none=True)
            self.attempt.notes.append(
                f"compile=graphs: trained eagerly: the capture failed ({type(err).__name__}: {err})"
            )
            return
        self.graphed, self.graph_sgd, self.graph_ema_weight = graphed, sgd, weight
        self.attempt.notes.append(
            f"compile=graphs: training step captured as a CUDA graph in {seconds:.2f} s "
            f"after {WARMUP_STEPS} eager steps"
        )

    def _replay(self, xb: Tensor, yb: Tensor, flips: Tensor | None) -> tuple[Tensor, Tensor]:
        """The captured step on this batch, with this step's learning rates and weight-average weight."""
        graphed, sgd = self.graphed, self.graph_sgd
        if graphed is None or sgd is None:
            raise RuntimeError("_replay before a capture")
        sgd.load_lrs()
        if self.average is not None and self.graph_ema_weight is not None:
            self.graph_ema_weight.fill_(self.average.next_weight())
        loss, out = graphed(xb, yb, flips)
        self.sched.step()
        if self.average is not None:
            self.average.updates += 1
        return loss, out

    def _maybe_compile(self, epoch: int, seconds: float) -> None:
        """compile="auto": after epoch 1, on CUDA, when the epochs left repay the compile time."""
        recipe = self.run.recipe
        epochs_left = recipe.epochs - epoch
        if recipe.compile != "auto" or not self.cuda or self.attempt.compiled or epoch != 1:
            return
        if not compile_repays(seconds, epochs_left):
            return
        if self.run.share.shared:  # torch.compile is not thread-safe: trials training side by side stay eager
            self.attempt.notes.append(
                f"compile=auto: not compiled: {self.run.share.trials} trials train at once in this process"
            )
            return
        self.step_model = torch.compile(self.model, mode="reduce-overhead")
        self.attempt.compiled = True
        self.attempt.notes.append(f"compiled after epoch 1: {epochs_left * seconds:.0f} s of eager epochs left")

"""The epoch loop of one attempt, on digits on CPU: what it records, when it stops, how it fails."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from nas.data.augment import channel_tensor, prepare_batch
from nas.data.datasets import LoadedData
from nas.train.evaluate import evaluate_split
from nas.train.loop import COMPILE_SECONDS, COMPILE_SPEEDUP, TrainingRun, compile_repays, train_epochs
from nas.train.recipe import Recipe
from nas.train.results import AttemptResult, EpochMetrics, NonFiniteLoss
from tests.conftest import digits_net as net

CPU = torch.device("cpu")


def run_of(data: LoadedData, **fields: object) -> TrainingRun:
    recipe = Recipe(**{"epochs": 1, "batch_size": 64, "measure_latency": False, **fields})  # type: ignore[arg-type]
    return TrainingRun(config=net(), batch=recipe.batch_size, data=data, recipe=recipe, device=CPU, label="t")


def test_compile_repays_when_the_saved_time_exceeds_the_compile_time() -> None:
    # Each eager second compiled saves 1 - 1/1.6 = 0.375 s; 75 s of compiling needs 200 s of epochs left.
    assert (COMPILE_SECONDS, COMPILE_SPEEDUP) == (75.0, 1.6)
    assert not compile_repays(100.0, 2)  # saves exactly 75 s: not more than it costs
    assert compile_repays(100.0, 3)
    assert compile_repays(201.0, 1)
    assert not compile_repays(1000.0, 0)


def test_evaluate_split_of_a_constant_classifier(digits: LoadedData) -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    nn.init.zeros_(model[1].weight)
    with torch.no_grad():
        model[1].bias.copy_(torch.tensor([0.0, 0.0, 0.0, 1.0, 0, 0, 0, 0, 0, 0]))  # always predicts class 3
    labels = digits.val.labels.tolist()
    threes = labels.count(3)
    log_z = math.log(9 + math.e)
    loss, accuracy = evaluate_split(model, digits.val, digits, device=CPU, batch_size=7)
    assert accuracy == threes / len(labels)
    assert loss == pytest.approx(log_z - threes / len(labels), rel=1e-6)
    assert model.training  # its mode is given back
    assert evaluate_split(model, digits.val, digits, device=CPU, batch_size=512)[1] == accuracy


def test_tta_flip_averages_the_logits_of_each_image_and_its_mirror(digits: LoadedData) -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))  # no mirror symmetry: flipped logits differ
    assert digits.val.images is not None
    x = prepare_batch(
        digits.val.images, mean=channel_tensor(digits.mean, CPU), std=channel_tensor(digits.std, CPU), augment=None
    )
    with torch.no_grad():
        logits = (model(x) + model(x.flip(3))) / 2
    labels = digits.val.labels
    loss, accuracy = evaluate_split(model, digits.val, digits, device=CPU, batch_size=100, tta_flip=True)
    assert loss == pytest.approx(nn.functional.cross_entropy(logits, labels).item(), rel=1e-5)
    assert accuracy == (logits.argmax(1) == labels).sum().item() / len(labels)
    assert evaluate_split(model, digits.val, digits, device=CPU)[0] != pytest.approx(loss)


def test_train_epochs_records_every_epoch_in_the_attempt(digits: LoadedData) -> None:
    attempt = AttemptResult(batch_size=64, memory_efficient=False)
    model = train_epochs(run_of(digits, epochs=2), attempt)
    assert isinstance(model, nn.Module)
    assert (attempt.status, attempt.reason, attempt.compiled, attempt.notes) == ("complete", None, False, [])
    first, second = attempt.history
    assert (first.epoch, second.epoch) == (1, 2)
    seen = (len(digits.train) // 64) * 64
    assert first.images_per_second == seen / first.seconds
    assert attempt.train_images_per_second == 2 * seen / (first.seconds + second.seconds)
    best = max(attempt.history, key=lambda m: m.val_accuracy)
    assert (attempt.best_val_accuracy, attempt.best_epoch) == (best.val_accuracy, best.epoch)
    assert second.lr == 0.0  # the cosine schedule ends at zero
    _, accuracy = evaluate_split(model, digits.val, digits, device=CPU)
    assert accuracy == second.val_accuracy


def test_on_epoch_stops_the_attempt_as_pruned(digits: LoadedData) -> None:
    attempt = AttemptResult(batch_size=128, memory_efficient=False)
    steps: list[tuple[int, int]] = []
    run = TrainingRun(
        config=net(),
        batch=128,
        data=digits,
        recipe=Recipe(epochs=4, batch_size=128, measure_latency=False),
        device=CPU,
        label="t",
        on_epoch=lambda m: "enough" if m.epoch == 2 else None,
        on_step=lambda epoch, step: steps.append((epoch, step)),
    )
    train_epochs(run, attempt)
    assert (attempt.status, attempt.reason, len(attempt.history)) == ("pruned", "enough", 2)
    per_epoch = len(digits.train) // 128
    assert steps == [(e, s) for e in (1, 2) for s in range(per_epoch)]


def test_a_diverging_epoch_raises_and_the_attempt_keeps_the_epochs_before(
    digits: LoadedData, diverge: Callable[[EpochMetrics], str | None]
) -> None:
    attempt = AttemptResult(batch_size=64, memory_efficient=False)
    run = dataclasses.replace(run_of(digits, epochs=3), on_epoch=diverge)
    with pytest.raises(NonFiniteLoss, match=r"^non-finite training loss nan at epoch 2, step 19$"):
        train_epochs(run, attempt)
    assert [m.epoch for m in attempt.history] == [1] and attempt.best_epoch == 1
    assert attempt.status == "complete"  # the trainer, not the loop, turns the exception into the outcome

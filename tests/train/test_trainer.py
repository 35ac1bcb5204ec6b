"""The trainer on digits, on CPU: accuracy, determinism, failures that leave the process clean."""

from __future__ import annotations

import dataclasses
import gc
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from nas.arch import ArchConfig, ArchNet
from nas.arch.cost import estimate
from nas.data.datasets import AugmentConfig, DataConfig, LoadedData, load_data
from nas.train.checkpoint import load_checkpoint
from nas.train.evaluate import evaluate_split
from nas.train.recipe import Recipe
from nas.train.results import EpochMetrics, TrialResult
from nas.train.trainer import train_trial
from tests.conftest import digits_net

# Digits has 1,293 training images: small batches and a high rate give enough steps in 2 epochs.
DIGITS_RECIPE = Recipe(epochs=2, batch_size=32, lr=0.2, measure_latency=False)


net = digits_net


def cpu_trial(data: LoadedData, config: ArchConfig, recipe: Recipe | None = None, **kwargs: Any) -> TrialResult:
    """A quiet trial on CPU, by default one epoch at batch 64: the shape of most failure-path tests."""
    recipe = recipe or Recipe(epochs=1, batch_size=64, measure_latency=False)
    return train_trial(config=config, data=data, recipe=recipe, device="cpu", progress=False, **kwargs)


def live_models() -> int:
    gc.collect()
    return sum(type(o) is ArchNet for o in gc.get_objects())


@pytest.mark.parametrize("mode", ["dense", "residual"])
def test_two_epochs_on_digits_reach_90_percent(digits: LoadedData, mode: str) -> None:
    result = train_trial(config=net(mode), data=digits, recipe=DIGITS_RECIPE, device="cpu", progress=False)
    assert result.status == "complete", result.reason
    assert result.split == "val"
    assert len(result.history) == 2
    assert result.best_val_accuracy is not None and result.best_val_accuracy >= 0.90


def test_result_carries_costs_measurements_and_provenance(digits: LoadedData) -> None:
    recipe = Recipe(epochs=1, batch_size=64, latency_batch_size=16, latency_repeats=2)
    result = train_trial(config=net(), data=digits, recipe=recipe, device="cpu", progress=False)
    est = estimate(net(), input_size=(1, 8, 8))
    assert (result.params, result.flops) == (est.params, est.flops)
    assert result.predicted_activation_bytes == 64 * est.activation_bytes
    assert result.latency_ms_batch1 is not None and result.latency_ms_batch1 > 0
    assert result.latency_ms_large_batch is not None and result.latency_batch_size == 16
    assert result.peak_memory_bytes is not None and result.peak_memory_bytes > 0
    assert result.peak_memory_kind == "process_peak_rss"
    assert result.train_images_per_second is not None and result.train_images_per_second > 0
    assert result.environment["torch"] == torch.__version__ and result.environment["device"] == "cpu"
    assert result.arch_hash == net().arch_hash()
    epoch = result.history[0]
    assert epoch.images_per_second == pytest.approx((len(digits.train) // 64) * 64 / epoch.seconds)
    assert result.to_dict()["history"][0]["epoch"] == 1


def test_same_seed_same_metrics(digits: LoadedData) -> None:
    recipe = Recipe(epochs=1, batch_size=64, seed=3, measure_latency=False)
    runs = [train_trial(config=net(drop_rate=0.1), data=digits, recipe=recipe, device="cpu", progress=False)]
    runs.append(train_trial(config=net(drop_rate=0.1), data=digits, recipe=recipe, device="cpu", progress=False))
    strip = [[(m.train_loss, m.train_accuracy, m.val_loss, m.val_accuracy) for m in r.history] for r in runs]
    assert strip[0] == strip[1]
    other = train_trial(
        config=net(drop_rate=0.1),
        data=digits,
        recipe=Recipe(epochs=1, batch_size=64, seed=4, measure_latency=False),
        device="cpu",
        progress=False,
    )
    assert other.history[0].train_loss != runs[0].history[0].train_loss


INJECTED = "CUDA out of memory. Tried to allocate 2.00 GiB (injected)"
ME_RETRY = "out of memory at batch 64; retried in memory-efficient mode"


def untrained(result: TrialResult) -> dict[str, object]:
    """The fields that only a finished (complete or pruned) attempt fills."""
    return {
        "peak_memory_bytes": result.peak_memory_bytes,
        "peak_memory_kind": result.peak_memory_kind,
        "predicted_activation_bytes": result.predicted_activation_bytes,
        "latency_ms_batch1": result.latency_ms_batch1,
        "latency_batch_size": result.latency_batch_size,
        "compiled": result.compiled,
    }


NOTHING_MEASURED = {
    "peak_memory_bytes": None,
    "peak_memory_kind": None,
    "predicted_activation_bytes": 0,
    "latency_ms_batch1": None,
    "latency_batch_size": None,
    "compiled": False,
}


def test_non_finite_loss_fails_the_trial_and_frees_the_model(digits: LoadedData) -> None:
    before = live_models()
    recipe = Recipe(epochs=3, batch_size=32, lr=1e12, warmup_fraction=0.0, measure_latency=False)
    result = train_trial(config=net(), data=digits, recipe=recipe, device="cpu", progress=False)
    assert (result.status, result.reason) == ("failed", "non-finite training loss nan at epoch 1, step 39")
    assert (result.history, result.best_epoch, result.train_images_per_second, result.notes) == ([], None, None, [])
    assert (result.batch_size, result.memory_efficient) == (32, False)
    assert untrained(result) == NOTHING_MEASURED
    assert live_models() == before


def test_a_loss_that_diverges_later_keeps_the_epochs_before(
    digits: LoadedData, diverge: Callable[[EpochMetrics], str | None]
) -> None:
    result = cpu_trial(digits, net(), on_epoch=diverge, recipe=Recipe(epochs=3, batch_size=64, measure_latency=False))
    assert (result.status, result.reason) == ("failed", "non-finite training loss nan at epoch 2, step 19")
    assert [m.epoch for m in result.history] == [1] and result.best_epoch == 1
    assert result.best_val_accuracy == result.history[0].val_accuracy
    assert result.train_images_per_second == result.history[0].images_per_second
    assert untrained(result) == NOTHING_MEASURED


def _oom(times: int) -> tuple[list[tuple[int, int]], Callable[[int, int], None]]:
    calls: list[tuple[int, int]] = []

    def hook(epoch: int, step: int) -> None:
        calls.append((epoch, step))
        if step == 2 and len([c for c in calls if c[1] == 2]) <= times:
            raise torch.OutOfMemoryError(f"{INJECTED}\nmore lines of the allocator's report")

    return calls, hook


def test_out_of_memory_retries_in_memory_efficient_mode(digits: LoadedData) -> None:
    before = live_models()
    calls, hook = _oom(times=1)
    result = cpu_trial(digits, net(), on_step=hook)
    assert (result.status, result.reason, result.notes) == ("complete", None, [ME_RETRY])
    assert result.memory_efficient and result.batch_size == 64
    assert calls[:4] == [(1, 0), (1, 1), (1, 2), (1, 0)]  # the retry starts over
    assert [m.epoch for m in result.history] == [1] and result.best_epoch == 1
    efficient = estimate(net(memory_efficient=True), input_size=(1, 8, 8))
    assert result.predicted_activation_bytes == 64 * efficient.activation_bytes_efficient
    assert result.peak_memory_kind == "process_peak_rss" and result.train_images_per_second is not None
    assert result.config == net().to_dict()  # the config asked for, not the mode it ran in
    assert live_models() == before


def test_out_of_memory_without_bottleneck_halves_the_batch(digits: LoadedData) -> None:
    _, hook = _oom(times=1)
    result = cpu_trial(digits, net(bn_size=0), on_step=hook)
    assert (result.status, result.notes) == ("complete", ["out of memory; retried with batch 32"])
    assert result.batch_size == 32 and not result.memory_efficient
    assert result.history[0].images_per_second == pytest.approx(
        (len(digits.train) // 32) * 32 / result.history[0].seconds
    )


def test_out_of_memory_twice_is_infeasible(digits: LoadedData) -> None:
    before = live_models()
    calls, hook = _oom(times=2)
    result = cpu_trial(digits, net(), on_step=hook)
    assert (result.status, result.reason) == ("infeasible", f"out of memory again after retrying: {INJECTED}")
    assert result.notes == [ME_RETRY]
    assert (result.batch_size, result.memory_efficient, result.history, result.best_val_accuracy) == (
        64,
        True,
        [],
        None,
    )
    assert result.train_images_per_second is None and untrained(result) == NOTHING_MEASURED
    assert calls == [(1, 0), (1, 1), (1, 2)] * 2
    assert live_models() == before


def test_out_of_memory_at_batch_1_with_nothing_to_retry_is_infeasible_at_once(digits: LoadedData) -> None:
    calls, hook = _oom(times=1)
    recipe = Recipe(epochs=1, batch_size=1, measure_latency=False)
    result = cpu_trial(digits, net(bn_size=0), on_step=hook, recipe=recipe)
    assert (result.status, result.reason) == ("infeasible", f"out of memory at batch 1: {INJECTED}")
    assert (result.notes, result.batch_size, result.memory_efficient) == ([], 1, False)
    assert calls == [(1, 0), (1, 1), (1, 2)]  # one attempt only


def test_a_retry_that_diverges_fails_and_keeps_the_retry_note(digits: LoadedData) -> None:
    _, hook = _oom(times=1)
    recipe = Recipe(epochs=2, batch_size=64, lr=1e12, warmup_fraction=0.0, measure_latency=False)
    result = cpu_trial(digits, net(), on_step=hook, recipe=recipe)
    assert (result.status, result.reason) == ("failed", "non-finite training loss nan at epoch 1, step 19")
    assert (result.notes, result.batch_size, result.memory_efficient) == ([ME_RETRY], 64, True)


def test_memory_budget_switches_modes_before_training(digits: LoadedData) -> None:
    est = estimate(net(), input_size=(1, 8, 8))
    fixed = est.params * 4 * 3
    # Room for 64 images in memory-efficient mode but not in normal mode.
    budget = (fixed + 64 * (est.activation_bytes + est.activation_bytes_efficient) / 2) / 2**30
    result = train_trial(
        config=net(),
        data=digits,
        recipe=Recipe(epochs=1, batch_size=64, memory_budget_gb=budget, measure_latency=False),
        device="cpu",
        progress=False,
    )
    assert result.status == "complete"
    assert result.memory_efficient and result.batch_size == 64
    assert result.notes == ["predicted 0.01 GiB > budget 0.01 GiB: memory-efficient mode"]
    assert result.predicted_activation_bytes == 64 * est.activation_bytes_efficient


def test_a_budget_too_small_for_batch_1_refuses_before_training(digits: LoadedData) -> None:
    est = estimate(net(), input_size=(1, 8, 8))
    calls, hook = _oom(times=0)
    tiny_budget = Recipe(
        epochs=1, batch_size=64, memory_budget_gb=est.params * 4 * 3 / 2 / 2**30, measure_latency=False
    )
    refused = train_trial(config=net(), data=digits, recipe=tiny_budget, device="cpu", progress=False, on_step=hook)
    expected = TrialResult(
        "infeasible",
        "predicted 0.00 GiB at batch 1 exceeds the budget of 0.00 GiB",
        net().to_dict(),
        net().arch_hash(),
        params=est.params,
        flops=est.flops,
        wall_seconds=refused.wall_seconds,
        environment=refused.environment,
    )
    assert refused == expected  # nothing else is set: no batch, no notes, no history, no measurements
    assert refused.environment["device"] == "cpu" and refused.wall_seconds > 0
    assert calls == []  # nothing was trained


def test_epoch_callback_can_stop_a_trial(digits: LoadedData) -> None:
    seen: list[EpochMetrics] = []

    def stop_after_two(m: EpochMetrics) -> str | None:
        seen.append(m)
        return "cannot reach the front" if m.epoch == 2 else None

    result = train_trial(
        config=net(),
        data=digits,
        recipe=Recipe(epochs=5, batch_size=128, measure_latency=False),
        device="cpu",
        progress=False,
        on_epoch=stop_after_two,
    )
    assert result.status == "pruned" and result.reason == "cannot reach the front"
    assert [m.epoch for m in seen] == [1, 2] and len(result.history) == 2


def test_checkpoint_round_trip(digits: LoadedData, tmp_path: Path) -> None:
    path = tmp_path / "ckpt" / "model.pt"
    result = train_trial(
        config=net(),
        data=digits,
        recipe=Recipe(epochs=1, batch_size=64, measure_latency=False),
        device="cpu",
        progress=False,
        checkpoint_path=path,
        checkpoint_extra={"data": "digits"},
    )
    assert path.exists() and not list(path.parent.glob(".*tmp*"))
    model, config, payload = load_checkpoint(path)
    assert config.arch_hash() == result.arch_hash and payload["extra"] == {"data": "digits"}
    _, acc = evaluate_split(model, digits.val, digits, device=torch.device("cpu"))
    assert acc == pytest.approx(result.history[-1].val_accuracy)


def test_without_a_validation_split_the_trained_model_is_handed_over_once() -> None:
    """`nas finalize` trains on train+validation and measures the model it is handed on the test split."""
    whole = load_data(DataConfig(name="digits", val_fraction=0.0))
    handed: list[float] = []

    def on_trained(model: torch.nn.Module) -> None:
        handed.append(evaluate_split(model, whole.test, whole, device=torch.device("cpu"))[1])

    result = cpu_trial(whole, net(), Recipe(epochs=2, batch_size=64, measure_latency=False), on_trained=on_trained)
    assert result.status == "complete" and len(handed) == 1 and handed[0] > 0.1
    assert result.best_val_accuracy is None and result.best_epoch is None
    assert [math.isnan(h.val_accuracy) and math.isnan(h.val_loss) for h in result.history] == [True, True]
    assert all(math.isfinite(h.train_loss) for h in result.history)


def test_config_must_match_the_data(digits: LoadedData) -> None:
    with pytest.raises(ValueError, match="num_classes=7 but dataset 'digits' has 1 channels and 10 classes"):
        train_trial(config=net(num_classes=7), data=digits, recipe=DIGITS_RECIPE, device="cpu")


def test_plain_log_lines_when_not_on_a_terminal(digits: LoadedData, capsys: pytest.CaptureFixture[str]) -> None:
    train_trial(
        config=net(),
        data=digits,
        recipe=Recipe(epochs=2, batch_size=128, measure_latency=False),
        device="cpu",
        progress=True,
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"trial {net().arch_hash()}: epoch 1/2 loss")


def test_unknown_device_is_refused(digits: LoadedData) -> None:
    with pytest.raises(ValueError, match="device = 'tpu'"):
        train_trial(config=net(), data=digits, recipe=DIGITS_RECIPE, device="tpu")


def test_every_fast_recipe_key_on_trains_with_finite_metrics_and_saves_the_average(tmp_path: Path) -> None:
    flipping = load_data(DataConfig(name="digits", augment=AugmentConfig(crop_padding=1, flip=True)))
    recipe = Recipe.from_dict({"base": "fast", "epochs": 2, "batch_size": 32, "lr": 0.2, "measure_latency": False})
    assert recipe.ema_decay > 0 and recipe.tta_flip and recipe.alternate_flips
    assert not recipe.decay_norm_and_bias and recipe.norm_bias_lr_scale > 1
    path = tmp_path / "fast.pt"
    result = cpu_trial(flipping, net("osp"), recipe, checkpoint_path=path)
    assert (result.status, result.notes) == ("complete", [])
    for m in result.history:
        values = (m.train_loss, m.train_accuracy, m.val_loss, m.val_accuracy, m.lr)
        assert all(isinstance(v, float) and v == v and abs(v) != float("inf") for v in values), m
    assert result.best_val_accuracy is not None and result.best_val_accuracy >= 0.8
    model, _, payload = load_checkpoint(path)  # the checkpoint holds the average validation measured
    assert payload["recipe"] == dataclasses.asdict(recipe) and "base" not in payload["recipe"]
    last = result.history[-1]
    evaluated = evaluate_split(model, flipping.val, flipping, device=torch.device("cpu"), tta_flip=True)
    assert evaluated[1] == last.val_accuracy and evaluated[0] == pytest.approx(last.val_loss, rel=1e-5)


def test_flip_keys_on_data_that_never_flips_are_skipped_with_a_note(digits: LoadedData) -> None:
    recipe = Recipe(epochs=1, batch_size=64, measure_latency=False, tta_flip=True, alternate_flips=True)
    result = cpu_trial(digits, net(growth_rate=4, block_config=(1, 1)), recipe)
    assert result.status == "complete"
    assert result.notes == [
        "recipe.tta_flip skipped: the augmentation of digits does not flip images",
        "recipe.alternate_flips skipped: the augmentation of digits does not flip images",
    ]

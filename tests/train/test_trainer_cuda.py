"""The trainer's CUDA paths: bf16 autocast, channels_last, compile with CUDA graphs, memory back to baseline.

Skipped without a GPU (CI has none); `benchmarks/gpu_check.sh` runs them in a session lent one, with
the CUDA cases of tests/arch/test_builder.py (memory-efficient mode equals normal mode).
"""

from __future__ import annotations

import gc

import pytest
import torch

from nas.data.datasets import AugmentConfig, DataConfig, LoadedData, load_data
from nas.train.recipe import Recipe
from nas.train.trainer import train_trial
from tests.conftest import digits_net

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

DIGITS_RECIPE = Recipe(epochs=2, batch_size=32, lr=0.2, measure_latency=False)


@pytest.fixture(scope="module")
def digits() -> LoadedData:
    return load_data(DataConfig(name="digits"))


@pytest.mark.parametrize("mode", ["dense", "residual", "osp"])
def test_bf16_channels_last_trial_reaches_90_percent(digits: LoadedData, mode: str) -> None:
    result = train_trial(config=digits_net(mode), data=digits, recipe=DIGITS_RECIPE, device="cuda", progress=False)
    assert result.status == "complete", result.reason
    assert result.best_val_accuracy is not None and result.best_val_accuracy >= 0.90
    assert result.peak_memory_kind == "cuda_max_allocated" and (result.peak_memory_bytes or 0) > 0
    assert result.environment["device"].startswith("cuda")


@pytest.mark.parametrize("memory_efficient", [False, True])
def test_compiled_with_cuda_graphs_trains_and_measures(digits: LoadedData, memory_efficient: bool) -> None:
    recipe = Recipe(epochs=2, batch_size=32, lr=0.2, compile="on", latency_batch_size=64, latency_repeats=3)
    config = digits_net("dense", memory_efficient=memory_efficient)
    result = train_trial(config=config, data=digits, recipe=recipe, device="cuda", progress=False)
    assert result.status == "complete", result.reason
    assert result.compiled
    assert result.best_val_accuracy is not None and result.best_val_accuracy >= 0.85
    assert result.latency_ms_batch1 is not None and result.latency_ms_batch1 > 0


def test_fast_recipe_compiled_with_cuda_graphs_trains_the_average_and_flips_on_the_device() -> None:
    flipping = load_data(DataConfig(name="digits", augment=AugmentConfig(crop_padding=1, flip=True)))
    recipe = Recipe.from_dict({"base": "fast", "epochs": 2, "batch_size": 32, "lr": 0.2, "compile": "on"})
    result = train_trial(config=digits_net("osp"), data=flipping, recipe=recipe, device="cuda", progress=False)
    assert result.status == "complete", result.reason
    assert result.compiled and result.notes == []
    assert result.best_val_accuracy is not None and result.best_val_accuracy >= 0.85


def test_memory_is_back_to_baseline_after_a_trial(digits: LoadedData) -> None:
    gc.collect()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    train_trial(config=digits_net("dense"), data=digits, recipe=DIGITS_RECIPE, device="cuda", progress=False)
    gc.collect()
    torch.cuda.synchronize()
    # The splits' device copies stay cached for the next trial; the model and optimiser may not.
    cached = sum(s.images.numel() + 8 * s.labels.numel() for s in (digits.train, digits.val) if s.images is not None)
    assert torch.cuda.memory_allocated() - before <= cached + (1 << 20)

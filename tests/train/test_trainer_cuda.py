"""The trainer's CUDA paths: bf16 autocast, channels_last, compile with CUDA graphs, whole-step CUDA graphs without the
compiler (compile="graphs") and their fallback, two graphed trials at once on two streams, memory back to baseline.

Skipped without a GPU (CI has none); `benchmarks/gpu_check.sh` runs them in a session lent one, with
the CUDA cases of tests/arch/test_builder.py (memory-efficient mode equals normal mode).
"""

from __future__ import annotations

import dataclasses
import gc
import re
from typing import Any

import pytest
import torch
from torch import nn

from nas.arch import ArchNet, build_model
from nas.data.datasets import AugmentConfig, DataConfig, LoadedData, load_data
from nas.train.evaluate import evaluate_split
from nas.train.recipe import Recipe
from nas.train.sharing import ALONE, DeviceShare
from nas.train.trainer import train_trial, warm_up_device
from tests.conftest import digits_net
from tests.train.conftest import off_and_graphs
from tests.train.test_sharing import two_trials

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


GRAPHS_RECIPE = Recipe(epochs=2, batch_size=32, lr=0.2, ema_decay=0.9, measure_latency=False)


def test_graphed_steps_train_as_the_eager_steps_do(digits: LoadedData) -> None:
    """compile=graphs against compile=off, same seed: 2 epochs of ~36 steps (3 eager warm-up steps, a capture, then
    replays) through a warm-up and cosine learning rate and the weight average; bf16 keeps them close, not equal."""
    eager, graphed = off_and_graphs(digits, GRAPHS_RECIPE, device="cuda")
    assert graphed.status == "complete", graphed.reason
    step_note, eval_note = graphed.notes
    captured = re.fullmatch(
        r"compile=graphs: training step captured as a CUDA graph in ([0-9.]+) s after 3 eager steps", step_note
    )
    assert captured is not None, step_note
    assert float(captured[1]) < 5
    assert re.fullmatch(r"compile=graphs: validation captured as a CUDA graph in [0-9.]+ s", eval_note), eval_note
    for e, g in zip(eager.history, graphed.history, strict=True):
        assert g.train_loss == pytest.approx(e.train_loss, rel=0.05), (e, g)
        assert abs(g.val_accuracy - e.val_accuracy) <= 0.03, (e, g)
    assert graphed.best_val_accuracy is not None and graphed.best_val_accuracy >= 0.85


def test_graphs_with_the_fast_recipe_and_alternating_flips() -> None:
    flipping = load_data(DataConfig(name="digits", augment=AugmentConfig(crop_padding=1, flip=True)))
    recipe = Recipe.from_dict({"base": "fast", "epochs": 2, "batch_size": 32, "lr": 0.2, "compile": "graphs"})
    result = train_trial(config=digits_net("osp"), data=flipping, recipe=recipe, device="cuda", progress=False)
    assert result.status == "complete", result.reason
    assert [n.split(" in ")[0] for n in result.notes] == [
        "compile=graphs: training step captured as a CUDA graph",
        "compile=graphs: validation captured as a CUDA graph",
    ]
    assert result.best_val_accuracy is not None and result.best_val_accuracy >= 0.85


def test_a_step_the_capture_cannot_take_trains_eagerly_with_a_note(digits: LoadedData) -> None:
    """A forward pass that reads a value back to Python (`.item()`, which a capture refuses) in every training step."""

    def read_back(module: nn.Module, args: Any, output: torch.Tensor) -> None:
        if isinstance(module, ArchNet) and module.training:
            output.sum().item()

    handle = nn.modules.module.register_module_forward_hook(read_back)
    try:
        recipe = dataclasses.replace(GRAPHS_RECIPE, compile="graphs")
        result = train_trial(config=digits_net("dense"), data=digits, recipe=recipe, device="cuda", progress=False)
    finally:
        handle.remove()
    assert result.status == "complete", result.reason
    (note,) = result.notes
    assert note.startswith("compile=graphs: trained eagerly: the capture failed ("), note
    assert result.best_val_accuracy is not None and result.best_val_accuracy >= 0.85


def test_two_graphed_trials_on_two_streams_train_as_one_after_the_other(digits: LoadedData) -> None:
    """--trials-per-gpu 2: two threads, two streams, two captures (each with the device to itself), replays that
    overlap. cuDNN picks its kernels by timing them, which other work on the card disturbs: close, not equal."""
    alone = two_trials(digits, ALONE, at_once=False, device="cuda", compile_mode="graphs")
    together = two_trials(digits, DeviceShare(2), at_once=True, device="cuda", compile_mode="graphs")
    for a, b in zip(alone, together, strict=True):
        assert b.status == a.status == "complete", (a.reason, b.reason)
        assert any(n.startswith("compile=graphs: training step captured") for n in b.notes), b.notes
        for e, g in zip(a.history, b.history, strict=True):
            assert g.train_loss == pytest.approx(e.train_loss, rel=0.05), (e, g)
            assert abs(g.val_accuracy - e.val_accuracy) <= 0.03, (e, g)
        assert b.peak_memory_bytes is None and a.peak_memory_kind == "cuda_max_allocated"


def test_a_worker_warms_the_device_up_and_keeps_nothing(digits: LoadedData) -> None:
    """What a worker runs before its first trial (and each trial thread before its own): quick, and it leaves
    nothing allocated; the trial after it trains as usual."""
    gc.collect()
    before = torch.cuda.memory_allocated()
    seconds = warm_up_device(torch.device("cuda"), recipe=Recipe.from_dict({"base": "fast"}))
    gc.collect()
    assert 0 < seconds < 30 and torch.cuda.memory_allocated() == before
    result = train_trial(config=digits_net("dense"), data=digits, recipe=DIGITS_RECIPE, device="cuda", progress=False)
    assert result.status == "complete", result.reason


def test_a_padded_last_batch_evaluates_as_the_whole_split_at_once(digits: LoadedData) -> None:
    """On CUDA the last partial batch of a split is padded to the batch size (one shape for cuDNN and a capture);
    the padding changes nothing: 145 validation images at 64 a batch (the last 17 padded to 64) against one batch."""
    model = build_model(digits_net("dense"), input_size=digits.input_size).cuda().to(memory_format=torch.channels_last)
    batched = evaluate_split(model, digits.val, digits, device=torch.device("cuda"), batch_size=64)
    whole = evaluate_split(model, digits.val, digits, device=torch.device("cuda"), batch_size=len(digits.val))
    assert batched[0] == pytest.approx(whole[0], rel=1e-2) and abs(batched[1] - whole[1]) <= 2 / len(digits.val)

"""The memory plan before training and the decision after an out-of-memory attempt, without training."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

from nas.arch import ArchConfig
from nas.arch.cost import estimate
from nas.arch.external import ExternalNet
from nas.data.datasets import DataConfig, LoadedData, load_data
from nas.train.memory import (
    GIB,
    GiveUp,
    Retry,
    activation_bytes,
    after_out_of_memory,
    is_out_of_memory,
    needed_bytes,
    out_of_memory_message,
    plan_memory,
    release_memory,
)
from nas.train.recipe import Recipe
from tests.conftest import digits_net as net

CPU = torch.device("cpu")
DIGITS = (1, 8, 8)


@pytest.fixture(scope="module")
def digits() -> LoadedData:
    return load_data(DataConfig(name="digits"))


def budget_for(config: ArchConfig, batch: int, recipe: Recipe | None = None) -> float:
    """The budget in GiB that holds `config` at `batch` exactly (GIB is a power of two: no rounding)."""
    return needed_bytes(config, recipe or Recipe(), DIGITS, batch) / GIB


def testneeded_bytes_are_weights_gradients_optimizer_state_and_activations() -> None:
    est = estimate(net(), input_size=DIGITS)
    assert needed_bytes(net(), Recipe(optimizer="sgd"), DIGITS, 64) == est.params * 4 * 3 + 64 * est.activation_bytes
    assert needed_bytes(net(), Recipe(optimizer="adamw"), DIGITS, 64) == (
        est.params * 4 * 4 + 64 * est.activation_bytes
    )
    efficient = net(memory_efficient=True)
    assert needed_bytes(efficient, Recipe(), DIGITS, 8) == est.params * 4 * 3 + 8 * est.activation_bytes_efficient
    assert est.activation_bytes_efficient < est.activation_bytes


def test_activation_bytes_follow_the_mode() -> None:
    est = estimate(net(), input_size=DIGITS)
    assert activation_bytes(net(), DIGITS, 64) == 64 * est.activation_bytes
    assert activation_bytes(net(memory_efficient=True), DIGITS, 32) == 32 * est.activation_bytes_efficient


def test_no_budget_on_cpu_keeps_the_config_and_clips_the_batch_to_the_training_set(digits: LoadedData) -> None:
    assert len(digits.train) == 1293
    assert plan_memory(net(), Recipe(batch_size=64), digits, CPU) == (net(), 64, [])
    assert plan_memory(net(), Recipe(batch_size=4096), digits, CPU) == (net(), 1293, [])


def test_a_budget_that_fits_changes_nothing(digits: LoadedData) -> None:
    recipe = Recipe(batch_size=64, memory_budget_gb=budget_for(net(), 64))
    assert plan_memory(net(), recipe, digits, CPU) == (net(), 64, [])


def test_over_budget_switches_to_memory_efficient_mode_first(digits: LoadedData) -> None:
    budget = budget_for(net(memory_efficient=True), 64)
    need = needed_bytes(net(), Recipe(), DIGITS, 64)
    config, batch, notes = plan_memory(net(), Recipe(batch_size=64, memory_budget_gb=budget), digits, CPU)
    assert (config, batch) == (net(memory_efficient=True), 64)
    assert notes == [f"predicted {need / GIB:.2f} GiB > budget {budget:.2f} GiB: memory-efficient mode"]


def test_then_halves_the_batch_until_it_fits(digits: LoadedData) -> None:
    budget = budget_for(net(memory_efficient=True), 16)
    config, batch, notes = plan_memory(net(), Recipe(batch_size=64, memory_budget_gb=budget), digits, CPU)
    assert (config, batch) == (net(memory_efficient=True), 16)
    assert notes[1:] == ["predicted memory over budget: batch 32", "predicted memory over budget: batch 16"]
    assert notes[0].endswith("GiB: memory-efficient mode")


def test_without_a_bottleneck_only_the_batch_shrinks(digits: LoadedData) -> None:
    plain = net(bn_size=0)
    recipe = Recipe(batch_size=64, memory_budget_gb=budget_for(plain, 32))
    assert plan_memory(plain, recipe, digits, CPU) == (plain, 32, ["predicted memory over budget: batch 32"])


def test_when_batch_1_does_not_fit_the_plan_refuses(digits: LoadedData) -> None:
    weights_only = estimate(net(), input_size=DIGITS).params * 4 * 3 / GIB
    recipe = Recipe(batch_size=64, memory_budget_gb=weights_only)
    with pytest.raises(MemoryError, match=r"^predicted 0\.00 GiB at batch 1 exceeds the budget of 0\.00 GiB$"):
        plan_memory(net(), recipe, digits, CPU)


MESSAGE = "CUDA out of memory. Tried to allocate 2.00 GiB"
RESNET = ExternalNet(name="resnet18", in_channels=1, num_classes=10)


@pytest.mark.parametrize(
    ("config", "batch", "retried", "expected"),
    [
        (
            net(),
            64,
            False,
            Retry(net(memory_efficient=True), 64, "out of memory at batch 64; retried in memory-efficient mode"),
        ),
        (
            net(),
            1,
            False,
            Retry(net(memory_efficient=True), 1, "out of memory at batch 1; retried in memory-efficient mode"),
        ),
        (
            net(memory_efficient=True),
            64,
            False,
            Retry(net(memory_efficient=True), 32, "out of memory; retried with batch 32"),
        ),
        (net(bn_size=0), 5, False, Retry(net(bn_size=0), 2, "out of memory; retried with batch 2")),
        (RESNET, 128, False, Retry(RESNET, 64, "out of memory; retried with batch 64")),
        (net(bn_size=0), 1, False, GiveUp(f"out of memory at batch 1: {MESSAGE}")),
        (RESNET, 1, False, GiveUp(f"out of memory at batch 1: {MESSAGE}")),
        (net(), 64, True, GiveUp(f"out of memory again after retrying: {MESSAGE}")),
        (net(bn_size=0), 64, True, GiveUp(f"out of memory again after retrying: {MESSAGE}")),
    ],
)
def test_after_out_of_memory_retries_once_then_gives_up(
    config: ArchConfig | ExternalNet, batch: int, retried: bool, expected: Retry | GiveUp
) -> None:
    assert after_out_of_memory(config, batch, MESSAGE, retried=retried) == expected


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (torch.OutOfMemoryError("CUDA out of memory"), True),
        (torch.OutOfMemoryError(""), True),
        (RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"), True),
        (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"), True),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
        (ValueError("out of memory"), False),
        (MemoryError("predicted 3 GiB"), False),
    ],
)
def test_is_out_of_memory(err: BaseException, expected: bool) -> None:
    assert is_out_of_memory(err) is expected


def test_out_of_memory_message_is_the_first_line_cut_to_300_characters() -> None:
    assert out_of_memory_message(RuntimeError("CUDA out of memory.\nsecond line")) == "CUDA out of memory."
    assert out_of_memory_message(RuntimeError("out of memory " + "x" * 400)) == ("out of memory " + "x" * 400)[:300]
    assert out_of_memory_message(torch.OutOfMemoryError()) == "OutOfMemoryError"


def test_release_memory_collects_unreachable_cycles() -> None:
    class Node:
        other: object = None

    gc.disable()
    try:
        a, b = Node(), Node()
        a.other, b.other = b, a
        alive = weakref.ref(a)
        del a, b
        assert alive() is not None  # a cycle outlives its names until the collector runs
        release_memory(CPU, cached=True)
        assert alive() is None
    finally:
        gc.enable()

"""Fixtures of the training tests: the digits data, a network that diverges on demand, and one trial trained
with compile="off" and with compile="graphs"."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch import nn

from nas.arch import ArchNet
from nas.data.datasets import DataConfig, LoadedData, load_data
from nas.train.recipe import Recipe
from nas.train.results import EpochMetrics, TrialResult
from nas.train.trainer import train_trial
from tests.conftest import digits_net


@pytest.fixture(scope="module")
def digits() -> LoadedData:
    return load_data(DataConfig(name="digits"))


@pytest.fixture
def diverge() -> Iterator[Callable[[EpochMetrics], str | None]]:
    """An `on_epoch` callback; once it has been called, every training forward pass of an ArchNet
    returns NaN logits (validation is untouched), so the next epoch's loss is not finite."""
    armed: list[EpochMetrics] = []

    def poison(module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor | None:
        return output * float("nan") if armed and isinstance(module, ArchNet) and module.training else None

    def arm(metrics: EpochMetrics) -> str | None:
        armed.append(metrics)
        return None

    handle = torch.nn.modules.module.register_module_forward_hook(poison)
    try:
        yield arm
    finally:
        handle.remove()


def off_and_graphs(data: LoadedData, recipe: Recipe, *, device: str) -> tuple[TrialResult, TrialResult]:
    """The same dense digits network trained with compile="off" and with compile="graphs", same seed."""
    eager, graphs = (
        train_trial(
            config=digits_net("dense"),
            data=data,
            recipe=dataclasses.replace(recipe, compile=mode),
            device=device,
            progress=False,
        )
        for mode in ("off", "graphs")
    )
    return eager, graphs

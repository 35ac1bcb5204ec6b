"""Shared fixtures: small configs of every connectivity mode, cheap enough for CPU."""

from __future__ import annotations

import os

import pytest
import torch

from nas.arch import ArchConfig


def tiny(connectivity: str, **overrides: object) -> ArchConfig:
    """A two-stage network of a few thousand parameters."""
    fields: dict[str, object] = dict(
        connectivity=connectivity,
        growth_rate=4,
        bn_size=2,
        compression=0.5,
        block_config=(2, 3),
        init_features=6,
        stem="cifar",
        width_multiplier=1.5,
        num_classes=5,
    )
    fields.update(overrides)
    return ArchConfig(**fields)  # type: ignore[arg-type]


def digits_net(connectivity: str = "dense", **overrides: object) -> ArchConfig:
    """A small two-stage network for the 1x8x8, 10-class digits: about a second of training."""
    fields: dict[str, object] = dict(
        connectivity=connectivity,
        growth_rate=12,
        bn_size=4,
        block_config=(3, 3),
        init_features=16,
        stem="cifar",
        width_multiplier=2.0,
        in_channels=1,
        num_classes=10,
    )
    fields.update(overrides)
    return ArchConfig(**fields)  # type: ignore[arg-type]


# Variants that together exercise every knob each mode reads.
VARIANTS = [
    dict(),
    dict(bn_size=0),
    dict(stem="imagenet", conv_bias=True),
    dict(drop_rate=0.2, block_config=(1, 2, 1)),
]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`-n N`), each test process owns its own block of cores, as `nas run` gives each of
    its workers: pinned, with one torch/OpenMP thread per core, inherited by every `nas` process a test starts.
    Unpinned, two test processes that each start two-threaded trainers fight over 2 cores and spin."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if worker is None or count is None or not hasattr(os, "sched_setaffinity"):
        return
    from nas.search.run.shares import own_cores, plan_shares

    share = plan_shares(workers=int(count), gpus=[], cores=own_cores())[int(worker.removeprefix("gw"))]
    os.sched_setaffinity(0, share.cores)
    os.environ.update({key: value for key, value in share.env().items() if key != "CUDA_VISIBLE_DEVICES"})
    torch.set_num_threads(share.threads)

"""A small real digits study, and one torch thread for the tests that train in this process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

# Two tiny networks for the 8x8 digits: residual has the fewer FLOPs, so it is always on the Pareto front.
TWO_NETS_SPACE = """
name = "two_nets"
[fixed]
stem = "cifar"
block_config = [2, 2]
growth_rate = 8
init_features = 8
width_multiplier = 1.0
[knobs.connectivity]
choices = ["dense", "residual"]
"""


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny networks train ~10x faster on one torch thread than on two when other processes load both cores
    (measured: 0.5 s against 5.6 s for one epoch); the thread count is restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_digits_study(
    folder: Path, *, trials: int, baselines: str = "[]", name: str = "final", run_in: Path | None = None
) -> Path:
    """A quickstart-like study on digits, run in-process in `run_in` (default `folder`; its journal under
    runs/ there): a seeded random sampler over two tiny networks, 1 epoch per trial; returns the study file."""
    from nas.cli.main import main

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "two_nets.toml").write_text(TWO_NETS_SPACE)
    study = folder / "study.toml"
    study.write_text(f"""
[study]
name = "{name}"
space = "two_nets.toml"
objectives = ["val_accuracy", "flops"]
sampler = "random"
trials = {trials}
seed = 0
device = "cpu"
baselines = {baselines}

[data]
name = "digits"

[recipe]
epochs = 1
batch_size = 64
lr = 0.2
measure_latency = false
latency_batch_size = 16
latency_repeats = 2
""")
    here = Path.cwd()
    os.chdir(run_in or folder)
    try:
        assert main(["run", str(study), "--no-report"]) == 0
    finally:
        os.chdir(here)
    return study

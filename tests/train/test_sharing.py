"""Trials training at once in one process (nas.train.sharing), on CPU: the brackets, and results equal to
training one after the other (the CUDA case, on two streams: tests/train/test_trainer_cuda.py)."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
import torch

from nas.data.datasets import LoadedData
from nas.errors import UsageError
from nas.train.recipe import Recipe
from nas.train.results import TrialResult
from nas.train.sharing import ALONE, DeviceShare
from nas.train.trainer import train_trial
from tests.conftest import digits_net

CPU = torch.device("cpu")


@pytest.mark.parametrize("trials", [0, 17, True, 2.0, "2"])
def test_a_share_takes_1_to_16_trials(trials: object) -> None:
    with pytest.raises(UsageError) as err:
        DeviceShare(trials)  # type: ignore[arg-type]
    assert str(err.value) == f"--trials-per-gpu = {trials!r} is invalid: an integer from 1 to 16 is required"


def test_alone_every_bracket_is_free() -> None:
    assert not ALONE.shared
    with ALONE.step(), ALONE.step(), ALONE.exclusive(CPU):  # nested, even: nothing waits
        pass


def in_thread(target: object) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


def test_exclusive_waits_for_steps_and_holds_new_ones_back() -> None:
    share, events = DeviceShare(2), list[str]()
    inside, leave = threading.Event(), threading.Event()

    def stepping() -> None:
        with share.step():
            inside.set()
            leave.wait(10)
            events.append("step 1 done")

    def excluding() -> None:
        with share.exclusive(CPU):
            events.append("exclusive")
            time.sleep(0.2)
            events.append("exclusive done")

    def stepping_later() -> None:
        with share.step():
            events.append("step 2")

    first = in_thread(stepping)
    assert inside.wait(10)
    excl = in_thread(excluding)
    time.sleep(0.2)
    later = in_thread(stepping_later)  # asks after the exclusive: waits behind it
    time.sleep(0.2)
    assert events == []  # the exclusive waits for step 1; step 2 waits for the exclusive
    leave.set()
    for thread in (first, excl, later):
        thread.join(10)
    assert events == ["step 1 done", "exclusive", "exclusive done", "step 2"]


def test_steps_of_several_trials_run_together() -> None:
    share, both = DeviceShare(2), threading.Barrier(2, timeout=10)

    def stepping() -> None:
        with share.step():
            both.wait()  # would time out (BrokenBarrierError) if one step kept the other out

    threads = [in_thread(stepping) for _ in range(2)]
    for thread in threads:
        thread.join(10)
    assert not both.broken


def two_trials(
    data: LoadedData, share: DeviceShare, *, at_once: bool, device: str = "cpu", compile_mode: str = "off"
) -> list[TrialResult]:
    """A dense and a residual network (other seeds), trained at once in two threads, each on its own stream
    (as `--trials-per-gpu 2` does), or one after the other."""
    recipe = Recipe(epochs=2, batch_size=64, lr=0.2, measure_latency=False, compile=compile_mode)
    jobs = [(digits_net("dense"), recipe), (digits_net("residual"), dataclasses.replace(recipe, seed=7))]
    results: list[TrialResult | None] = [None, None]

    def train(i: int) -> None:
        config, rec = jobs[i]
        with share.trial_thread(torch.device(device)):
            results[i] = train_trial(config=config, data=data, recipe=rec, device=device, progress=False, share=share)

    if at_once:
        threads = [in_thread(lambda i=i: train(i)) for i in range(2)]
        for thread in threads:
            thread.join(300)
    else:
        for i in range(2):
            train(i)
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def test_two_trials_at_once_equal_the_same_trials_one_after_the_other(digits: LoadedData) -> None:
    """Each with the same number of CPU threads (a trial thread gets its part of the cores, and the thread count
    changes how sums are rounded)."""
    share, threads = DeviceShare(2), torch.get_num_threads()
    torch.set_num_threads(share.cpu_threads)
    try:
        alone = two_trials(digits, ALONE, at_once=False)
        together = two_trials(digits, share, at_once=True)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(alone, together, strict=True):
        assert b.status == a.status == "complete"
        assert [(m.train_loss, m.val_accuracy) for m in b.history] == [
            (m.train_loss, m.val_accuracy) for m in a.history
        ]
        assert a.peak_memory_bytes is not None and b.peak_memory_bytes is None  # no trial's own peak when shared
        assert any(note.startswith("trained beside 1 other trial(s) in one process") for note in b.notes)
        assert not any("trained beside" in note for note in a.notes)


def test_a_trial_thread_on_a_cpu_gets_its_part_of_the_cores() -> None:
    """K trials each using every core of the process only contend (quickstart, 2 cores: 2.1-2.6x slower at K = 2)."""
    threads, seen = torch.get_num_threads(), list[int]()

    def trial() -> None:
        with DeviceShare(2).trial_thread(CPU):
            seen.append(torch.get_num_threads())

    try:
        torch.set_num_threads(4)
        in_thread(trial).join(10)
        with ALONE.trial_thread(CPU):  # alone: the process's threads, untouched
            seen.append(torch.get_num_threads())
    finally:
        torch.set_num_threads(threads)
    assert seen == [2, 4]  # the thread's own setting: the main thread keeps its 4

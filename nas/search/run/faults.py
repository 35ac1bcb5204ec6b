"""Injected faults, for testing that a study survives them with real worker processes.

Set NAS_INJECT_FAULTS to `number:fault` pairs, e.g. `2:oom,3:nan,4:error,5:hang`, and trial
`number` meets that fault: `oom` raises CUDA's out-of-memory error at every training step (so
the network is infeasible), `nan` trains with a diverging learning rate (a real non-finite
loss), `error` raises an exception as faulty user code would, `hang` sleeps forever inside a
step (for the per-trial time limit, or for killing a worker mid-trial), `disk` raises the
operating system's "no space left on device" (a failure of the machine, not of the network).
Unset, nothing happens.
"""

from __future__ import annotations

import os
import time

import torch

from nas.errors import UsageError
from nas.train.loop import StepHook

ENV = "NAS_INJECT_FAULTS"
FAULTS = ("oom", "nan", "error", "hang", "disk")


def injected_fault(trial_number: int) -> str | None:
    spec = os.environ.get(ENV, "")
    for item in filter(None, (part.strip() for part in spec.split(","))):
        number, _, fault = item.partition(":")
        if fault not in FAULTS or not number.isdigit():
            raise UsageError(
                f"{ENV}={spec!r}: {item!r} is invalid: use NUMBER:FAULT with FAULT in {FAULTS}",
                owner=ENV,
                value=spec,
                allowed=f"use NUMBER:FAULT with FAULT in {FAULTS}",
            )
        if int(number) == trial_number:
            return fault
    return None


def step_hook(fault: str | None, *, check: StepHook | None = None) -> StepHook | None:
    """The trainer's on_step hook: `check` first (a thread's stop and time limit), then the fault (None: no hook).

    A hanging step keeps calling `check`, so a trial hanging in a thread still meets its time limit and stops
    with its worker."""
    if fault not in ("oom", "error", "hang", "disk"):
        return check

    def hook(epoch: int, step: int) -> None:
        if check is not None:
            check(epoch, step)
        if fault == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 64.00 GiB (injected)")
        if fault == "error":
            raise RuntimeError("injected failure in user code")
        if fault == "disk":
            raise OSError(28, "No space left on device (injected)")
        while True:  # hang
            time.sleep(0.1 if check is not None else 3600)
            if check is not None:
                check(epoch, step)

    return hook

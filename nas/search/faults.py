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


def step_hook(fault: str | None):  # type: ignore[no-untyped-def]
    """The trainer's on_step hook that plays the fault (None: no hook)."""
    if fault not in ("oom", "error", "hang", "disk"):
        return None

    def hook(epoch: int, step: int) -> None:
        if fault == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 64.00 GiB (injected)")
        if fault == "error":
            raise RuntimeError("injected failure in user code")
        if fault == "disk":
            raise OSError(28, "No space left on device (injected)")
        while True:  # hang
            time.sleep(3600)

    return hook

"""Several trials training at once in one process, on one device (`nas run --trials-per-gpu K`).

Separate processes on one GPU time-slice it (docs/architecture.md: 1 process 6,555 img/s, 2-8 processes
5,900-5,960 together); threads of one process, each on its own CUDA stream, let the kernels of small networks
overlap. What the trials share is made safe here, in one place:

- `step()` brackets each training step, validation and model build; `exclusive()` waits until no trial is
  inside one, waits for the device, and keeps them out while it runs: a CUDA graph capture (no other thread may
  touch the device's allocator then), freeing cached memory, and latency measurement (a latency taken while
  other trials run would be theirs too);
- `global_rng` guards torch's global random state, which a network's initialisation reads: seeding and building
  happen together, so a trial's initial weights do not depend on what else runs;
- `trial_thread()` gives the calling thread what a trial owns: its own CUDA stream, or on a CPU its part of the
  process's cores (torch's intra-op threads, else K trials would each use them all: the quickstart on 2 cores
  took 2.1-2.6x as long with 2 trials at once as one at a time, and 0.7x with one core each).

With one trial (the default) every bracket is a no-op, so training alone is unchanged.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

from nas.errors import UsageError

MAX_TRIALS_AT_ONCE = 16  # more threads than this only contend: a step's launches are serialised by Python


class DeviceShare:
    """The `trials` trials that train at once on one device in this process."""

    def __init__(self, trials: int = 1) -> None:
        if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= MAX_TRIALS_AT_ONCE:
            raise UsageError(
                owner="--trials-per-gpu", value=trials, allowed=f"an integer from 1 to {MAX_TRIALS_AT_ONCE} is required"
            )
        self.trials = trials
        self.cpu_threads = max(1, torch.get_num_threads() // trials)  # each trial's part of the process's cores
        self.global_rng = threading.Lock()
        self._cond = threading.Condition()
        self._inside = 0  # threads inside step()
        self._exclusive = False
        self._waiting = 0  # threads waiting for exclusive(): new steps wait behind them

    @property
    def shared(self) -> bool:
        return self.trials > 1

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        """One unit of a trial's work on the device; never held while asking for `exclusive()`."""
        if not self.shared:
            yield
            return
        with self._cond:
            while self._exclusive or self._waiting:
                self._cond.wait()
            self._inside += 1
        try:
            yield
        finally:
            with self._cond:
                self._inside -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self, device: torch.device) -> Iterator[None]:
        """The device to this thread alone: no other trial's step runs or is queued on it meanwhile."""
        if not self.shared:
            yield
            return
        with self._cond:
            self._waiting += 1
            while self._exclusive or self._inside:
                self._cond.wait()
            self._waiting -= 1
            self._exclusive = True
        try:
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # what the others queued before they stopped
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()

    @contextlib.contextmanager
    def trial_thread(self, device: torch.device) -> Iterator[None]:
        """What the calling trial thread owns: a new CUDA stream as its current one on CUDA; on a CPU, when
        trials share the process, its part of the cores."""
        if device.type == "cuda":
            with torch.cuda.stream(torch.cuda.Stream(device)):
                yield
            return
        if self.shared:
            torch.set_num_threads(self.cpu_threads)
        yield


ALONE = DeviceShare(1)  # a trial that has its device to itself: every bracket is a no-op

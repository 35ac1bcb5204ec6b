"""What each worker process of `nas run --workers` owns: its GPU, its cores and its threads.

Several workers that each use every core (torch starts one thread per core, a DataLoader one
process per requested worker) fight over the machine: on 2 cores three such workers were ten
times slower than one. So the work is divided up front: GPUs round robin through
CUDA_VISIBLE_DEVICES (a worker sees only its own), cores in disjoint blocks pinned with
sched_setaffinity, and the thread counts and DataLoader workers sized to those cores.
`plan_shares` is the pure rule; `apply_share` is what a worker does with its share at start.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from nas.checks import bad_value, is_int
from nas.errors import UsageError
from nas.search.spec.studyfile import StudyFile

AUTO = "auto"
Workers = int | Literal["auto"]


@dataclass(frozen=True)
class WorkerShare:
    """One worker's part of the machine."""

    gpu: str | None  # its one CUDA_VISIBLE_DEVICES entry; None: it sees no GPU
    cores: tuple[int, ...]  # the cores it is pinned to
    threads: int  # torch intra-op threads (and OMP/MKL threads): one per core it owns
    interop_threads: int  # torch inter-op threads: eager training runs one op at a time, so 1
    loader_workers: int  # most DataLoader processes it may start: its cores but the one it trains on
    cores_shared: bool = False  # more workers than cores: each runs on all of them with one thread

    def __post_init__(self) -> None:
        if self.gpu is not None and (not isinstance(self.gpu, str) or not self.gpu or "," in self.gpu):
            raise bad_value("WorkerShare", "gpu", self.gpu, "one CUDA_VISIBLE_DEVICES entry or None is required")
        if not isinstance(self.cores, tuple) or not self.cores or not all(is_int(c) and c >= 0 for c in self.cores):
            raise bad_value("WorkerShare", "cores", self.cores, "a non-empty tuple of core numbers is required")
        for name in ("threads", "interop_threads"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise bad_value("WorkerShare", name, getattr(self, name), "an integer >= 1 is required")
        if not is_int(self.loader_workers) or self.loader_workers < 0:
            raise bad_value("WorkerShare", "loader_workers", self.loader_workers, "an integer >= 0 is required")

    def env(self) -> dict[str, str]:
        """Environment of the worker process: read by CUDA and the thread pools when they start."""
        threads = str(self.threads)
        return {
            "CUDA_VISIBLE_DEVICES": self.gpu or "",
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
        }

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerShare:
        fields = json.loads(text)
        return cls(**{**fields, "cores": tuple(fields["cores"])})


def visible_gpus() -> list[str]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES entries when it is set, else CUDA's count."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [entry.strip() for entry in listed.split(",") if entry.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def own_cores() -> list[int]:
    """The cores this process may run on (its affinity, which a cgroup or taskset may narrow)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def worker_gpus(device: str, gpus: Sequence[str]) -> list[str]:
    """The GPUs workers on `device` spread over: none for cpu, the one named by cuda:N, else all."""
    if device == "cpu":
        return []
    if device.startswith("cuda:"):
        index = device.removeprefix("cuda:")
        if not index.isdigit() or int(index) >= len(gpus):
            raise UsageError(
                f"device = {device!r} is invalid: this machine shows {len(gpus)} GPU(s) "
                f"(CUDA_VISIBLE_DEVICES or CUDA's count), numbered from cuda:0",
                field="device",
                value=device,
                allowed=f"cuda:0 to cuda:{len(gpus) - 1}" if gpus else "cpu (no GPU is visible)",
            )
        return [gpus[int(index)]]
    return list(gpus)


def worker_device(device: str) -> str:
    """The device a worker names: it sees its one GPU as cuda:0, so cuda:N becomes cuda."""
    return "cuda" if device.startswith("cuda:") else device


def plan_shares(
    *, workers: Workers, gpus: Sequence[str], cores: Sequence[int], workers_per_gpu: int | None = None
) -> list[WorkerShare]:
    """Divide the machine between the workers: GPUs round robin, cores in disjoint blocks.

    `workers="auto"` is one per GPU (`workers_per_gpu` per GPU when given), or one without GPUs.
    More workers than cores run on all of them, one thread each, rather than two pinned to one
    core while another core idles. Refuses in one line what cannot be honoured.
    """
    auto = workers == AUTO
    count = 0 if isinstance(workers, str) else workers  # set below for auto
    if not auto and (not is_int(workers) or count < 1):
        raise UsageError(owner="--workers", value=workers, allowed="an integer >= 1 or auto is required")
    if workers_per_gpu is not None:
        if not is_int(workers_per_gpu) or workers_per_gpu < 1:
            raise UsageError(owner="--workers-per-gpu", value=workers_per_gpu, allowed="an integer >= 1 is required")
        if not gpus:
            raise UsageError(
                owner="--workers-per-gpu",
                value=workers_per_gpu,
                allowed="it needs GPUs, and the workers have none (the device is cpu, or no GPU is visible)",
            )
        if not auto and count > workers_per_gpu * len(gpus):
            raise UsageError(
                owner="--workers",
                value=workers,
                allowed=f"at most {workers_per_gpu * len(gpus)}: {workers_per_gpu} per GPU on {len(gpus)} GPU(s)",
            )
    if not cores:
        raise ValueError("no cores: a process always runs on at least one")
    if auto:
        count = len(gpus) * (workers_per_gpu or 1) or 1
    shares = []
    for i, block in enumerate(_core_blocks(list(cores), count)):
        shared = count > len(cores)
        shares.append(
            WorkerShare(
                gpu=gpus[i % len(gpus)] if gpus else None,
                cores=tuple(block),
                threads=1 if shared else len(block),
                interop_threads=1,
                loader_workers=0 if shared else len(block) - 1,
                cores_shared=shared,
            )
        )
    return shares


def _core_blocks(cores: list[int], count: int) -> list[list[int]]:
    """`count` contiguous blocks of `cores`, sizes differing by at most one; all of them for each
    worker when there are more workers than cores."""
    if count > len(cores):
        return [cores] * count
    size, extra = divmod(len(cores), count)
    blocks, start = [], 0
    for i in range(count):
        end = start + size + (i < extra)
        blocks.append(cores[start:end])
        start = end
    return blocks


def apply_share(share: WorkerShare) -> None:
    """Take the share at process start, before any parallel work (torch refuses inter-op changes after)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, share.cores)
    os.environ.update(share.env())  # for anything this process starts (DataLoader workers inherit it)
    torch.set_num_threads(share.threads)
    torch.set_num_interop_threads(share.interop_threads)


def cap_loader_workers(sf: StudyFile, share: WorkerShare) -> StudyFile:
    """The study file with its DataLoader workers (training and image decoding) capped by the share.

    Both are execution-only settings (nas.search.spec.studyfile.EXECUTION_ONLY): a resumed study is unchanged."""
    recipe = dataclasses.replace(sf.recipe, num_workers=min(sf.recipe.num_workers, share.loader_workers))
    data = dataclasses.replace(sf.data, num_workers=min(sf.data.num_workers, share.loader_workers))
    return dataclasses.replace(sf, recipe=recipe, data=data)


def ownership(label: str, share: WorkerShare | None) -> str:
    """One line naming what this process owns, read back from the process itself (not from its plan);
    without a share (a `nas worker` started alone) it owns what it was started with."""
    gpus = visible_gpus()
    gpu = f"GPU {gpus[0]}" if len(gpus) == 1 else f"GPUs {','.join(gpus)}" if gpus else "no GPU"
    cores = own_cores()
    shared = " (shared with the other workers)" if share is not None and share.cores_shared else ""
    threads = torch.get_num_threads()
    loaders = share.loader_workers if share is not None else len(cores)  # nas.data.sources.usable_workers
    return (
        f"{label}owns {gpu}, {'core' if len(cores) == 1 else 'cores'} {_ranges(cores)}{shared}, "
        f"{threads} torch thread{'s' if threads != 1 else ''} ({torch.get_num_interop_threads()} inter-op), "
        + (f"up to {loaders} DataLoader worker{'s' if loaders != 1 else ''}" if loaders else "no DataLoader workers")
    )


def _ranges(cores: Sequence[int]) -> str:
    """0-3,6 for cores 0, 1, 2, 3 and 6."""
    parts: list[str] = []
    run: list[int] = []
    for core in sorted(cores):
        if run and core != run[-1] + 1:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        run.append(core)
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)

"""Measured costs beside the counted ones: latency, peak memory, and where a number came from.

On GPUs dense connectivity is bound by memory traffic, so FLOPs alone mislead; these are the
numbers a report puts next to them.
"""

from __future__ import annotations

import platform
import resource
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import nn

from nas.errors import UsageError


def resolve_device(device: str | torch.device) -> torch.device:
    """`auto` picks CUDA when there is one; anything else must exist here."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise UsageError(
            f"device = {device!r} is invalid: choose auto, cpu, cuda or cuda:N",
            field="device",
            value=device,
            allowed="choose auto, cpu, cuda or cuda:N",
        )
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(
            f"device = {device!r} is invalid: CUDA is not available on this machine",
            field="device",
            value=device,
            allowed="CUDA is not available on this machine",
        )
    return torch.device(device)


def autocast(device: torch.device, enabled: bool, *, cache: bool = True) -> Any:
    """bf16 autocast on CUDA when enabled; nothing elsewhere. A step captured as a CUDA graph needs `cache=False`
    (autocast's cast cache would hold tensors made during the capture)."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16, cache_enabled=cache)
    return nullcontext()


def synchronize(device: torch.device) -> None:
    """Wait for the calling thread's work on `device`: trials training beside it in other threads go on."""
    if device.type == "cuda":
        torch.cuda.current_stream(device).synchronize()


@torch.no_grad()
def latency_ms(
    model: nn.Module,
    *,
    input_size: tuple[int, int, int],
    batch_size: int,
    device: torch.device,
    amp: bool,
    channels_last: bool,
    warmup: int = 3,
    repeats: int = 10,
) -> float:
    """Median wall time of one eval forward pass, after warm-up, in milliseconds."""
    was_training = model.training
    model.eval()
    x = torch.randn(batch_size, *input_size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    times = []
    try:
        for i in range(warmup + repeats):
            synchronize(device)
            start = time.perf_counter()
            with autocast(device, amp):
                model(x)
            synchronize(device)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000)
    finally:
        model.train(was_training)
    return statistics.median(times)


@contextmanager
def peak_memory(device: torch.device) -> Iterator[dict[str, Any]]:
    """Fills {'bytes': ..., 'kind': ...}: CUDA max allocated, or the process's peak RSS on CPU.

    The CPU figure is the whole process's high-water mark, which never goes down; it is an
    upper bound on the trial's own use.
    """
    record: dict[str, Any] = {}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        yield record
    finally:
        if device.type == "cuda":
            record.update(bytes=int(torch.cuda.max_memory_allocated(device)), kind="cuda_max_allocated")
        else:
            scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is KiB on Linux
            record.update(
                bytes=int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale), kind="process_peak_rss"
            )


def environment(device: torch.device) -> dict[str, Any]:
    """Device and versions, stored with every result so numbers can be compared honestly."""
    info: dict[str, Any] = {
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    else:
        info["device_name"] = platform.processor() or platform.machine()
    return info

"""One epoch of batches on the training device: resident splits sliced there, large ones streamed."""

from __future__ import annotations

from collections.abc import Iterator, Sized

import torch
from torch.utils.data import DataLoader, Dataset

from nas.checks import is_int
from nas.data.datasets import Split
from nas.data.sources import usable_workers
from nas.errors import UsageError


def _normalise_device(device: torch.device | str) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:  # tensors report cuda:N, never bare cuda
        return torch.device("cuda", torch.cuda.current_device())
    return device


def _on_device(split: Split, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The split's tensors on `device`, copied once and kept until the split or device changes."""
    assert split.images is not None
    cached = split._device_copy
    if cached is not None and cached[0] is split.images and cached[1] is split.labels and cached[2].device == device:
        return cached[2], cached[3]
    images, labels = split.images.to(device), split.labels.to(device)
    split._device_copy = (split.images, split.labels, images, labels)
    return images, labels


class _Indexed(Dataset[tuple[torch.Tensor, int, int]]):
    """A streaming source whose items carry their index, so a batch knows which images it holds."""

    def __init__(self, source: Dataset[tuple[torch.Tensor, int]]) -> None:
        self.source = source

    def __len__(self) -> int:
        assert isinstance(self.source, Sized)
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        image, label = self.source[index]
        return image, label, index


def batches(
    split: Split,
    *,
    batch_size: int,
    device: torch.device,
    shuffle: bool,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
    num_workers: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of (uint8 images (B,C,H,W), int64 labels) on `device`: `indexed_batches` without the indices."""
    indexed = indexed_batches(
        split,
        batch_size=batch_size,
        device=device,
        shuffle=shuffle,
        generator=generator,
        drop_last=drop_last,
        num_workers=num_workers,
    )
    return ((images, labels) for images, labels, _ in indexed)


def indexed_batches(
    split: Split,
    *,
    batch_size: int,
    device: torch.device,
    shuffle: bool,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
    num_workers: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One epoch of (uint8 images (B,C,H,W), int64 labels, int64 positions in the split) on `device`.

    The positions let per-image augmentation state (alternating flips) follow an image across
    epochs. A resident split is sliced on the device with a permutation drawn from `generator` (on
    its own device, CPU or CUDA); a streaming split goes through a DataLoader whose shuffle is
    seeded from `generator`. The random draw happens in this call, not at the first batch.
    """
    if not is_int(batch_size) or batch_size < 1:
        raise UsageError(
            f"batch_size = {batch_size!r} is invalid: a positive integer is required",
            field="batch_size",
            value=batch_size,
            allowed="a positive integer is required",
        )
    if not is_int(num_workers) or num_workers < 0:
        raise UsageError(
            f"num_workers = {num_workers!r} is invalid: an integer >= 0 is required",
            field="num_workers",
            value=num_workers,
            allowed="an integer >= 0 is required",
        )
    device = _normalise_device(device)
    draw_on = generator.device if generator is not None else torch.device("cpu")
    if split.images is None:
        assert split.source is not None
        loader_generator = None
        if shuffle:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=draw_on).item())
            loader_generator = torch.Generator().manual_seed(seed)
        loader = DataLoader(
            _Indexed(split.source),
            batch_size=batch_size,
            shuffle=shuffle,
            generator=loader_generator,
            drop_last=drop_last,
            num_workers=usable_workers(num_workers),
            pin_memory=device.type == "cuda",
        )
        return (
            (x.to(device, non_blocking=True), y.to(device, non_blocking=True), i.to(device, non_blocking=True))
            for x, y, i in loader
        )
    images, labels = _on_device(split, device)
    n = len(labels)
    order = torch.randperm(n, generator=generator, device=draw_on).to(device) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    return _slices(images, labels, order, batch_size=batch_size, stop=stop)


def _slices(
    images: torch.Tensor, labels: torch.Tensor, order: torch.Tensor | None, *, batch_size: int, stop: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    for start in range(0, stop, batch_size):
        if order is None:
            end = min(start + batch_size, stop)
            index = torch.arange(start, end, device=images.device)
            yield images[start:end], labels[start:end], index
        else:
            index = order[start : start + batch_size]
            yield images[index], labels[index], index

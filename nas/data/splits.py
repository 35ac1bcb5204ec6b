"""Seeded, stratified choices of images: the validation and carved test splits, and fixed training subsets.

Every class keeps its share, so a split or a subset has the class balance of the whole, and the
same seed always chooses the same images.
"""

from __future__ import annotations

import math

import torch


def stratified_split(labels: torch.Tensor, *, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, held out) sorted int64 indices: every class holds out round(fraction * n) of its n images.

    A class of at least 2 images holds out at least 1 and keeps at least 1; a single image is
    kept. Deterministic in `seed`, so one helper makes every validation and carved test split.
    """
    generator = torch.Generator().manual_seed(seed)
    held: list[torch.Tensor] = []
    for label in torch.unique(labels).tolist():
        members = torch.nonzero(labels == label).flatten()
        n = len(members)
        take = min(max(math.floor(fraction * n + 0.5), 1), n - 1) if n >= 2 else 0
        held.append(members[torch.randperm(n, generator=generator)[:take]])
    mask = torch.zeros(len(labels), dtype=torch.bool)
    if held:
        mask[torch.cat(held)] = True
    return torch.nonzero(~mask).flatten(), torch.nonzero(mask).flatten()


def subset_counts(class_counts: list[int], size: int) -> list[int]:
    """How many images of each class a subset of `size` takes: the largest-remainder shares of
    size x class share, each class at least one. Needs len(class_counts) <= size <= sum(class_counts)."""
    total = sum(class_counts)
    if not len(class_counts) <= size <= total:
        raise ValueError(f"a subset of {size} needs {len(class_counts)} to {total} images")
    quota = [size * n / total for n in class_counts]
    take = [min(max(math.floor(q), 1), n) for q, n in zip(quota, class_counts, strict=True)]
    while sum(take) < size:  # the largest remainder first; ties go to the first class
        i = max((c for c, n in enumerate(class_counts) if take[c] < n), key=lambda c: quota[c] - take[c])
        take[i] += 1
    while sum(take) > size:  # the minimum of one took too many: give back where furthest above the quota
        i = max((c for c in range(len(take)) if take[c] > 1), key=lambda c: take[c] - quota[c])
        take[i] -= 1
    return take


def stratified_subset(labels: torch.Tensor, *, size: int, seed: int) -> torch.Tensor:
    """Sorted int64 indices of `size` images, each class in proportion (`subset_counts`), drawn with `seed`.

    Each class's images are taken in one seeded order, so with a fixed seed a smaller subset is
    (up to the rounding of the shares) part of a larger one.
    """
    generator = torch.Generator().manual_seed(seed)
    classes = torch.unique(labels).tolist()
    members = [torch.nonzero(labels == label).flatten() for label in classes]
    take = subset_counts([len(m) for m in members], size)
    chosen = [m[torch.randperm(len(m), generator=generator)[:k]] for m, k in zip(members, take, strict=True)]
    return torch.cat(chosen).sort().values if chosen else torch.zeros(0, dtype=torch.int64)

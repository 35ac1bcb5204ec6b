"""Device augmentation, run on CPU tensors: the same code the GPU runs."""

from __future__ import annotations

import itertools

import torch

from nas.data.augment import (
    alternating_flips,
    channel_tensor,
    color_jitter,
    prepare_batch,
    random_crop,
    random_flip,
)
from nas.data.batches import indexed_batches
from nas.data.datasets import AugmentConfig, Split


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(b: int = 32, c: int = 3, h: int = 8, w: int = 6) -> torch.Tensor:
    return torch.randint(1, 256, (b, c, h, w), generator=_gen(1), dtype=torch.uint8)


def test_random_crop_takes_a_window_of_the_padded_image() -> None:
    x = _images()
    out = random_crop(x, padding=2, generator=_gen())
    assert out.dtype == torch.uint8 and out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    offsets = set()
    for i in range(x.shape[0]):
        matches = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(out[i], padded[i, :, dy : dy + x.shape[2], dx : dx + x.shape[3]])
        ]
        assert matches, f"image {i} is not a window of its padded input"
        offsets.update(matches)
    assert len(offsets) > 5  # offsets differ per sample
    assert torch.equal(random_crop(x, padding=0, generator=_gen()), x)


def test_random_flip_mirrors_about_half() -> None:
    x = _images(b=400)
    out = random_flip(x, generator=_gen())
    flipped = [torch.equal(out[i], x[i].flip(2)) for i in range(len(x))]
    kept = [torch.equal(out[i], x[i]) for i in range(len(x))]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 150 < sum(flipped) < 250


def test_same_seed_same_augmentation() -> None:
    x = _images()
    aug = AugmentConfig(crop_padding=3, flip=True, color_jitter=0.4)
    mean, std = channel_tensor((0.5, 0.5, 0.5), x.device), channel_tensor((0.25, 0.25, 0.25), x.device)
    a = prepare_batch(x, mean=mean, std=std, augment=aug, generator=_gen(5))
    b = prepare_batch(x, mean=mean, std=std, augment=aug, generator=_gen(5))
    c = prepare_batch(x, mean=mean, std=std, augment=aug, generator=_gen(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_color_jitter_stays_in_range_and_changes_images() -> None:
    x = _images().float() / 255
    out = color_jitter(x, strength=0.5, generator=_gen())
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out, x)
    assert torch.equal(color_jitter(x, strength=0.0, generator=_gen()), x)
    gray = color_jitter(x[:, :1], strength=0.5, generator=_gen())  # one channel: no saturation step
    assert gray.shape == x[:, :1].shape


def test_prepare_batch_normalises_exactly_without_augmentation() -> None:
    x = _images(c=2)
    mean, std = channel_tensor((0.2, 0.6), x.device), channel_tensor((0.5, 0.1), x.device)
    out = prepare_batch(x, mean=mean, std=std, augment=None)
    expected = (x.float() / 255 - torch.tensor([0.2, 0.6])[None, :, None, None]) / torch.tensor([0.5, 0.1])[
        None, :, None, None
    ]
    torch.testing.assert_close(out, expected)
    identity = AugmentConfig(crop_padding=0, flip=False, color_jitter=0.0)
    torch.testing.assert_close(prepare_batch(x, mean=mean, std=std, augment=identity, generator=_gen()), expected)


def test_alternating_flips_start_from_the_first_draw_and_then_alternate() -> None:
    first = torch.tensor([True, False, False, True])
    assert [alternating_flips(first, epoch=e).tolist() for e in (1, 2, 3, 4)] == [
        [True, False, False, True],
        [False, True, True, False],
        [True, False, False, True],
        [False, True, True, False],
    ]


def test_each_image_alternates_across_epochs_through_shuffled_batches() -> None:
    """The path the training loop takes: shuffled batches with positions, flips looked up by position."""
    n = 40
    images = torch.zeros(n, 1, 1, 2, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(1, n + 1, dtype=torch.uint8)  # image i shows i + 1 on its left, 0 on its right
    split = Split("train", torch.zeros(n, dtype=torch.int64), images=images)
    gen = _gen(3)
    first = torch.rand(n, generator=gen) < 0.5
    zero, one = channel_tensor((0.0,), split.labels.device), channel_tensor((1 / 255,), split.labels.device)
    seen: dict[int, list[bool]] = {i: [] for i in range(n)}
    for epoch in (1, 2, 3, 4, 5):
        for xb, _, index in indexed_batches(
            split, batch_size=7, device=torch.device("cpu"), shuffle=True, generator=gen
        ):
            flips = alternating_flips(first[index], epoch=epoch)
            x = prepare_batch(xb, mean=zero, std=one, augment=AugmentConfig(flip=True), generator=gen, flips=flips)
            for row in x[:, 0, 0]:  # back in pixel values
                left, right = round(float(row[0])), round(float(row[1]))
                seen[max(left, right) - 1].append(right > 0)
    assert all(len(flipped) == 5 for flipped in seen.values())
    assert all(flipped[0] == bool(first[i]) for i, flipped in seen.items())
    assert all(a != b for flipped in seen.values() for a, b in itertools.pairwise(flipped))
    assert 5 < sum(first.tolist()) < 35  # the first epoch's flips are drawn at random

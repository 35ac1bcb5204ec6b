"""Per-sample augmentation on whole uint8 batches, on whatever device the batch is on.

Keeping augmentation on the GPU removes the PIL/DataLoader bottleneck that caps the tutorial
loops (speed anchors in docs/architecture.md: 2,590 img/s with PIL workers against 4,760+ with
resident data). The same code runs on CPU tensors, which is how it is tested.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from nas.data.datasets import AugmentConfig

# ITU-R BT.601 luma weights, as torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device: torch.device) -> Tensor:
    return torch.rand(n, generator=generator, device=device) * (high - low) + low


def random_crop(images: Tensor, *, padding: int, generator: torch.Generator) -> Tensor:
    """Zero-pad by `padding` and cut a random window of the original size from each image."""
    if padding == 0:
        return images
    b, _, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    dev = images.device
    oy = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=dev)
    ox = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=dev)
    rows = (oy[:, None] + torch.arange(h, device=dev))[:, :, None]  # (B, H, 1)
    cols = (ox[:, None] + torch.arange(w, device=dev))[:, None, :]  # (B, 1, W)
    batch = torch.arange(b, device=dev)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows, cols]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def mirror(images: Tensor, flips: Tensor) -> Tensor:
    """Mirror left-right the images whose entry of the boolean `flips` (B,) is set."""
    return torch.where(flips[:, None, None, None], images.flip(3), images)


def random_flip(images: Tensor, *, generator: torch.Generator) -> Tensor:
    """Mirror each image left-right with probability 1/2."""
    return mirror(images, torch.rand(images.shape[0], generator=generator, device=images.device) < 0.5)


def alternating_flips(first: Tensor, *, epoch: int) -> Tensor:
    """Which images to mirror in `epoch` (counted from 1) under airbench's alternating flips.

    `first` holds each image's random draw for epoch 1; every later epoch mirrors the images the
    one before did not, so any two consecutive epochs show every image both ways (random flips
    leave a quarter of the images unmirrored, or mirrored, in both).
    """
    return first if epoch % 2 == 1 else ~first


def color_jitter(images: Tensor, *, strength: float, generator: torch.Generator) -> Tensor:
    """Brightness, contrast and (for RGB) saturation, each scaled by a factor in [1-s, 1+s].

    Takes and returns floats in [0, 1].
    """
    if strength == 0:
        return images
    b, c = images.shape[:2]
    dev = images.device

    def factor() -> Tensor:
        return _uniform(b, 1 - strength, 1 + strength, generator, dev)[:, None, None, None]

    out = images * factor()
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * factor() + mean
    if c == 3:
        gray = _LUMA[0] * out[:, 0:1] + _LUMA[1] * out[:, 1:2] + _LUMA[2] * out[:, 2:3]
        out = gray + (out - gray) * factor()
    return out.clamp_(0, 1)


def channel_tensor(values: tuple[float, ...], device: torch.device) -> Tensor:
    """Per-channel statistics shaped (1, C, 1, 1) for broadcasting; made once per trial."""
    return torch.tensor(values, device=device, dtype=torch.float32)[None, :, None, None]


def prepare_batch(
    images: Tensor,
    *,
    mean: Tensor,
    std: Tensor,
    augment: AugmentConfig | None,
    generator: torch.Generator | None = None,
    flips: Tensor | None = None,
) -> Tensor:
    """uint8 (B, C, H, W) -> normalised float32; augmented when `augment` is given (training).

    `mean` and `std` come from `channel_tensor`, in [0, 1] units. `flips` (boolean (B,), from
    `alternating_flips`) says which images to mirror; without it each image is mirrored at random
    when `augment.flip` is set.
    """
    if augment is not None:
        if generator is None:
            raise ValueError("prepare_batch: a generator is required when augmenting")
        images = random_crop(images, padding=augment.crop_padding, generator=generator)
        if flips is not None:
            images = mirror(images, flips)
        elif augment.flip:
            images = random_flip(images, generator=generator)
    x = images.float().div_(255)
    if augment is not None and augment.color_jitter > 0 and generator is not None:
        x = color_jitter(x, strength=augment.color_jitter, generator=generator)
    return (x - mean) / std

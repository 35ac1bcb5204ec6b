"""A model's loss and accuracy on one split, without augmentation: each epoch's validation, `nas finalize`'s test
and `nas evaluate`."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor, nn

from nas.data.augment import channel_tensor, prepare_batch
from nas.data.batches import batches
from nas.data.datasets import LoadedData, Split
from nas.train.measure import autocast


@torch.no_grad()
def evaluate_split(
    model: nn.Module,
    split: Split,
    data: LoadedData,
    *,
    device: torch.device,
    batch_size: int = 512,
    amp: bool = True,
    tta_flip: bool = False,
    forward: Callable[[Tensor], Tensor] | None = None,
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of the model on one split, without augmentation.

    With `tta_flip` the logits of each image are the mean of the model's logits for it and for its
    left-right mirror (test-time augmentation; only for data whose training flips). `forward`: what turns a
    batch into those logits instead (a captured one, `eval_forward` graphed). On CUDA a last partial batch is
    padded to the batch size, so that every batch has one shape: one set of cuDNN kernels, one capture.
    """
    was_training = model.training
    model.eval()
    logits = forward or functools.partial(eval_forward, model, device=device, amp=amp, tta_flip=tta_flip)
    mean, std = channel_tensor(data.mean, device), channel_tensor(data.std, device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    pad = device.type == "cuda" and len(split) > batch_size
    for xb, yb in batches(split, batch_size=batch_size, device=device, shuffle=False):
        x = prepare_batch(xb, mean=mean, std=std, augment=None)
        if pad and len(x) < batch_size:
            x = torch.cat([x, x.new_zeros((batch_size - len(x), *x.shape[1:]))])
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        out = logits(x)[: len(yb)]
        loss_sum += nn.functional.cross_entropy(out, yb, reduction="sum")
        correct += (out.argmax(1) == yb).sum()
    model.train(was_training)
    n = max(len(split), 1)
    return loss_sum.item() / n, correct.item() / n


def eval_forward(
    model: nn.Module, x: Tensor, *, device: torch.device, amp: bool, tta_flip: bool, cache: bool = True
) -> Tensor:
    """Float logits of a prepared batch in evaluation (with `tta_flip`, averaged with the mirror's); `cache=False`
    for a capture."""
    with autocast(device, amp, cache=cache):
        out: Tensor = model(x).float()
        if tta_flip:
            out = (out + model(x.flip(3)).float()) / 2
    return out

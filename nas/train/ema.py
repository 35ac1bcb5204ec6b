"""An exponential moving average of a model's weights (recipe `ema_decay`).

The average of the last few hundred steps generalises better than the weights of the last step,
so a trial reaches a given validation accuracy in fewer epochs (airbench averages its weights the
same way). Validation, the checkpoint and the test evaluation all use the average.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


def ema_decay_at(decay: float, updates: int) -> float:
    """The decay of the update after `updates` earlier ones: min(decay, (1 + n) / (10 + n)).

    The warm-up (TensorFlow's ExponentialMovingAverage with num_updates) lets the average follow the
    weights closely at first: without it, a 0.999 average after a 300-step trial would still be 74%
    the random initial weights.
    """
    return min(decay, (1 + updates) / (10 + updates))


class WeightAverage:
    """A copy of the model whose floating-point state follows the live model's after every step:
    avg = d * avg + (1 - d) * live with d = `ema_decay_at(decay, n)` at the n-th update (from 0).

    Weights and BatchNorm running statistics are averaged alike (the statistics then describe
    features of weights near the averaged ones); integer buffers (BatchNorm's batch counter) are
    copied. The copy stays in eval mode and never takes gradients.
    """

    def __init__(self, model: nn.Module, *, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"WeightAverage: decay must be in (0, 1), got {decay!r}")
        self.decay, self.updates = decay, 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        live, average = model.state_dict(), self.model.state_dict()
        floats = [name for name, tensor in live.items() if tensor.is_floating_point()]
        self._live: list[Tensor] = [live[name] for name in floats]  # the live tensors, updated in place
        self._average: list[Tensor] = [average[name] for name in floats]
        self._copies = [(average[name], tensor) for name, tensor in live.items() if not tensor.is_floating_point()]

    @torch.no_grad()
    def update(self) -> None:
        """Move the average toward the current state of the model it was made from (after each optimizer step)."""
        self.apply(self.next_weight())
        self.updates += 1

    def next_weight(self) -> float:
        """The weight of the live model in the next update: 1 - the decay after `updates` earlier ones."""
        return 1 - ema_decay_at(self.decay, self.updates)

    @torch.no_grad()
    def apply(self, weight: float | Tensor) -> None:
        """One update with this weight, without counting it: a captured CUDA graph (nas.train.graphs) passes a
        device tensor it fills with `next_weight()` before each replay, and counts the updates itself."""
        if self._average and isinstance(weight, Tensor):
            # average + weight * (live - average), as lerp computes it; foreach lerp has no tensor-weight form and
            # would read the weight back to Python, which a capture refuses.
            step = torch._foreach_sub(self._live, self._average)
            torch._foreach_mul_(step, weight)
            torch._foreach_add_(self._average, step)
        elif self._average and not isinstance(weight, Tensor):
            torch._foreach_lerp_(self._average, self._live, weight)
        for average, live in self._copies:
            average.copy_(live)

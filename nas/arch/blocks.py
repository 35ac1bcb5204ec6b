"""Layer units, stages (one class per connectivity mode, listed in nas.arch.modes), transitions and stems.

Module names follow torchvision's DenseNet (`denselayer1.norm1`, `transition1.conv`, ...) so
its state dicts load into dense mode unchanged. Modules never choose a device or dtype.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import Tensor, nn

if TYPE_CHECKING:
    from nas.arch.config import ArchConfig


def _conv(c_in: int, c_out: int, kernel: int, bias: bool, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=kernel, stride=stride, padding=kernel // 2, bias=bias)


class LayerUnit(nn.Module):
    """H(c_in -> c_out) = [BN-ReLU-Conv1x1(-> bn_size*k)] -> BN-ReLU-Conv3x3 -> dropout.

    Takes one tensor or a list of tensors that it concatenates first. With `memory_efficient`
    the concat-BN-ReLU-Conv1x1 entry is recomputed in backward instead of stored, which turns
    the quadratic memory of dense connectivity into linear memory. Without a bottleneck there
    is no entry to recompute and the flag changes nothing.
    """

    def __init__(self, c_in: int, c_out: int, config: ArchConfig) -> None:
        super().__init__()
        bias = config.conv_bias
        self.norm1 = nn.BatchNorm2d(c_in)
        self.relu1 = nn.ReLU(inplace=True)
        if config.bn_size > 0:
            width = config.bn_size * config.growth_rate
            self.conv1 = _conv(c_in, width, 1, bias)
            self.norm2 = nn.BatchNorm2d(width)
            self.relu2 = nn.ReLU(inplace=True)
            self.conv2 = _conv(width, c_out, 3, bias)
        else:
            self.conv1 = _conv(c_in, c_out, 3, bias)
        self.bottleneck = config.bn_size > 0
        self.drop_rate = float(config.drop_rate)
        self.memory_efficient = config.memory_efficient and self.bottleneck

    def _entry(self, *inputs: Tensor) -> Tensor:
        x = inputs[0] if len(inputs) == 1 else torch.cat(inputs, 1)
        out: Tensor = self.conv1(self.relu1(self.norm1(x)))
        return out

    def forward(self, inputs: Tensor | list[Tensor]) -> Tensor:
        tensors = [inputs] if isinstance(inputs, Tensor) else inputs
        recompute = self.memory_efficient and torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
        if recompute:
            # The entry draws no random numbers, so there is no RNG state to preserve.
            out: Tensor = cp.checkpoint(self._entry, *tensors, use_reentrant=False, preserve_rng_state=False)
        else:
            out = self._entry(*tensors)
        if self.bottleneck:
            out = self.conv2(self.relu2(self.norm2(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class DenseStage(nn.ModuleDict):
    """Layer l sees concat(x0..x(l-1)) and adds k channels; emits concat(x0..xL)."""

    def __init__(self, c_in: int, layers: int, config: ArchConfig) -> None:
        k = config.growth_rate
        super().__init__({f"denselayer{j + 1}": LayerUnit(c_in + j * k, k, config) for j in range(layers)})

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class OSPStage(nn.ModuleDict):
    """One-shot aggregation (VoVNet): a chain of layers whose outputs are concatenated once."""

    def __init__(self, c_in: int, layers: int, config: ArchConfig) -> None:
        k = config.growth_rate
        super().__init__({f"denselayer{j + 1}": LayerUnit(c_in if j == 0 else k, k, config) for j in range(layers)})

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features[-1]))
        return torch.cat(features, 1)


class DenseResidualStage(nn.Module):
    """ResDenseNet: a dense stage fused back to c channels and added to its input."""

    def __init__(self, c_in: int, layers: int, config: ArchConfig) -> None:
        super().__init__()
        concat_width = c_in + layers * config.growth_rate
        self.dense = DenseStage(c_in, layers, config)
        self.fusion = nn.Sequential(
            OrderedDict(
                norm=nn.BatchNorm2d(concat_width),
                relu=nn.ReLU(inplace=True),
                conv=_conv(concat_width, c_in, 1, config.conv_bias),
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = x + self.fusion(self.dense(x))
        return out


class CSPStage(nn.Module):
    """Cross Stage Partial DenseNet (CSPNet, Wang et al. 2020), its "fusion last" variant.

    The input's first floor(c/2) channels bypass the stage; a dense stage runs on the other
    c - floor(c/2), a partial transition (BN-ReLU-Conv1x1, width kept, no pooling) follows it,
    and the bypass is concatenated in front of its output: c + L*k channels, as in dense mode.
    The partial transition never pools: downsampling is left to the family's transition after
    the stage, so the stage keeps its spatial size like every other mode's.
    """

    def __init__(self, c_in: int, layers: int, config: ArchConfig) -> None:
        super().__init__()
        self.split = c_in // 2  # bypass channels; c_in = 1 leaves none and the stage is dense
        width = c_in - self.split + layers * config.growth_rate
        self.dense = DenseStage(c_in - self.split, layers, config)
        self.partial_transition = nn.Sequential(
            OrderedDict(
                norm=nn.BatchNorm2d(width),
                relu=nn.ReLU(inplace=True),
                conv=_conv(width, width, 1, config.conv_bias),
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        # The dense part is copied out of the input (a one-tensor cat always allocates and keeps
        # the layout, channels_last included; `.contiguous()` would return a view of the whole
        # input when the batch is 1), so autograd holds c - floor(c/2) channels, not the input.
        part = torch.cat([x[:, self.split :]], 1)
        return torch.cat([x[:, : self.split], self.partial_transition(self.dense(part))], 1)


class ResidualStage(nn.ModuleDict):
    """Pre-activation residual units: x <- x + H(x), width unchanged."""

    def __init__(self, c_in: int, layers: int, config: ArchConfig) -> None:
        super().__init__({f"layer{j + 1}": LayerUnit(c_in, c_in, config) for j in range(layers)})

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.values():
            x = x + layer(x)
        return x


class PlainStage(nn.ModuleDict):
    """A plain chain x <- H(x), width unchanged: the no-shortcut baseline."""

    def __init__(self, c_in: int, layers: int, config: ArchConfig) -> None:
        super().__init__({f"layer{j + 1}": LayerUnit(c_in, c_in, config) for j in range(layers)})

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.values():
            x = layer(x)
        return x


class Transition(nn.Sequential):
    """BN-ReLU-Conv1x1 then 2x2 average pooling, between consecutive stages."""

    def __init__(self, c_in: int, c_out: int, bias: bool) -> None:
        super().__init__(
            OrderedDict(
                norm=nn.BatchNorm2d(c_in),
                relu=nn.ReLU(inplace=True),
                conv=_conv(c_in, c_out, 1, bias),
                pool=nn.AvgPool2d(kernel_size=2, stride=2),
            )
        )


def stem_layers(config: ArchConfig) -> list[tuple[str, nn.Module]]:
    """The stem as named modules, to sit first in `features` (torchvision's names)."""
    c_in, c_out, bias = config.in_channels, config.init_features, config.conv_bias
    if config.stem == "imagenet":
        return [
            ("conv0", nn.Conv2d(c_in, c_out, kernel_size=7, stride=2, padding=3, bias=bias)),
            ("norm0", nn.BatchNorm2d(c_out)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
        ]
    return [("conv0", _conv(c_in, c_out, 3, bias))]

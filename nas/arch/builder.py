"""Build an `ArchConfig` into a model with one interface for every connectivity mode."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from nas.arch.blocks import Transition, stem_layers
from nas.arch.config import ArchConfig
from nas.arch.modes import MODES
from nas.errors import UsageError


class ArchNet(nn.Module):
    """stem -> stages with transitions between -> BN-ReLU -> global average pool -> Linear.

    Laid out as torchvision's DenseNet (`features`, `features.norm5`, `classifier`), so a
    torchvision DenseNet state dict loads into a dense-mode ArchNet with strict=True.
    """

    def __init__(self, config: ArchConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[tuple[str, nn.Module]] = stem_layers(config)
        mode = MODES[config.connectivity]
        last = len(config.block_config)
        for index, (n_layers, (c_in, c_out, c_next)) in enumerate(
            zip(config.block_config, config.stage_channels(), strict=True), start=1
        ):
            layers.append((f"{mode.block_prefix}{index}", mode.stage(c_in, n_layers, config)))
            if index != last:
                layers.append((f"transition{index}", Transition(c_out, c_next, config.conv_bias)))
        self.num_features = config.stage_channels()[-1][2]
        layers.append(("norm5", nn.BatchNorm2d(self.num_features)))
        layers.append(("relu5", nn.ReLU(inplace=True)))
        self.features = nn.Sequential(OrderedDict(layers))
        self.classifier = nn.Linear(self.num_features, config.num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torchvision's DenseNet initialisation."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    def forward_features(self, x: Tensor) -> Tensor:
        out: Tensor = self.features(x)
        return out

    def forward_head(self, features: Tensor) -> Tensor:
        pooled = torch.flatten(nn.functional.adaptive_avg_pool2d(features, (1, 1)), 1)
        out: Tensor = self.classifier(pooled)
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def build_model(config: ArchConfig, *, input_size: tuple[int, int, int] | None = None) -> ArchNet:
    """Build the network; with `input_size` (C, H, W), first refuse inputs it cannot take.

    The check names the stage where the spatial size would collapse, instead of letting torch
    fail deep inside a forward pass.
    """
    if not isinstance(config, ArchConfig):
        raise UsageError(
            f"config must be an ArchConfig, got {type(config).__name__}",
            owner="build_model",
            field="config",
            value=config,
            allowed="an ArchConfig",
        )
    if input_size is not None:
        config.stage_plan(input_size)
    return ArchNet(config)

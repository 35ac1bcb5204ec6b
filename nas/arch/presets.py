"""Named reference networks, each reproducing its source exactly.

`reference_params` is the parameter count measured by building the original code (see the
reference figures in docs/architecture.md); tests check that the built model, the closed-form
count and this number agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nas.arch.config import ArchConfig
from nas.errors import UsageError


@dataclass(frozen=True)
class Preset:
    name: str
    source: str  # where the layout comes from and how it maps onto the family
    config: ArchConfig
    reference_params: int | None = None  # for the config as given here (its num_classes)
    input_size: tuple[int, int, int] = (3, 224, 224)  # what the source trained on (C, H, W)


def _torchvision(growth: int, blocks: tuple[int, ...], init: int) -> ArchConfig:
    return ArchConfig(growth_rate=growth, block_config=blocks, init_features=init)


def _cifar_preact(connectivity: str) -> ArchConfig:
    return ArchConfig(
        connectivity=connectivity,
        stem="cifar",
        init_features=16,
        block_config=(6, 6, 6),
        bn_size=0,
        width_multiplier=2.0,
        num_classes=10,
    )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("densenet121", "torchvision densenet121 (ImageNet)", _torchvision(32, (6, 12, 24, 16), 64), 7_978_856),
        Preset("densenet161", "torchvision densenet161 (ImageNet)", _torchvision(48, (6, 12, 36, 24), 96), 28_681_000),
        Preset("densenet169", "torchvision densenet169 (ImageNet)", _torchvision(32, (6, 12, 32, 32), 64), 14_149_480),
        Preset("densenet201", "torchvision densenet201 (ImageNet)", _torchvision(32, (6, 12, 48, 32), 64), 20_013_928),
        Preset(
            "densenet_bc_100_k12",
            "CIFAR DenseNet-BC, L=100, k=12: 3 stages of 16 bottleneck layers, 2k stem features, "
            "compression 0.5 (Huang et al. 2017; memory-efficient variant by Pleiss et al.)",
            ArchConfig(growth_rate=12, block_config=(16, 16, 16), init_features=24, stem="cifar", num_classes=10),
            769_162,
            (3, 32, 32),
        ),
        Preset(
            "densenet_40_k12",
            "original CIFAR DenseNet, L=40, k=12: 3 stages of 12 layers, no bottleneck, no "
            "compression, 16 stem features (paper: 1.0M parameters)",
            ArchConfig(
                growth_rate=12,
                bn_size=0,
                compression=1.0,
                block_config=(12, 12, 12),
                init_features=16,
                stem="cifar",
                num_classes=10,
            ),
            None,
            (3, 32, 32),
        ),
        Preset(
            "d2l_densenet",
            "Dive into Deep Learning's Fashion-MNIST DenseNet: 1 input channel, stages (4,4,4,4), "
            "k=32, no bottleneck, halving transitions, conv bias on; 248 channels before the head",
            ArchConfig(
                growth_rate=32, bn_size=0, block_config=(4, 4, 4, 4), conv_bias=True, in_channels=1, num_classes=10
            ),
            758_226,
            (1, 96, 96),  # Fashion-MNIST resized to 96x96, as the book does
        ),
        Preset(
            "resdensenet",
            "ResDenseNet: dense layers inside each stage, a fused residual around it, "
            "transitions double the width; stages (3,4,6,4), k=32, bn_size 4, ImageNet stem",
            ArchConfig(connectivity="dense_residual", block_config=(3, 4, 6, 4), width_multiplier=2.0, num_classes=3),
            1_986_691,
        ),
        Preset(
            "preact_resnet20",
            "pre-activation residual network of 20 weighted layers for CIFAR: 16 stem features, "
            "3 stages of 6 single-conv residual units (BN-ReLU-Conv3x3 + identity) at widths "
            "16/32/64, transitions double the width",
            _cifar_preact("residual"),
            input_size=(3, 32, 32),
        ),
        Preset(
            "plain20",
            "the no-shortcut twin of preact_resnet20 (the 'plain' baseline of He et al. 2016)",
            _cifar_preact("plain"),
            input_size=(3, 32, 32),
        ),
        Preset(
            "vovnet_cifar",
            "one-shot aggregation (VoVNet) for CIFAR: 3 stages of 5 chained 3x3 layers (k=32, no "
            "bottleneck), each stage's outputs concatenated once, 64 stem features, compression 0.5",
            ArchConfig(
                connectivity="osp",
                growth_rate=32,
                bn_size=0,
                block_config=(5, 5, 5),
                init_features=64,
                stem="cifar",
                num_classes=10,
            ),
            input_size=(3, 32, 32),
        ),
    ]
}


def get_preset(name: str, **overrides: Any) -> ArchConfig:
    """The preset's config with any knob overridden (`num_classes`, `in_channels`, ...)."""
    if name not in PRESETS:
        raise UsageError(
            f"unknown preset {name!r}; valid presets are {sorted(PRESETS)}",
            field="preset",
            value=name,
            allowed=f"valid presets are {sorted(PRESETS)}",
        )
    return PRESETS[name].config.replace(**overrides)

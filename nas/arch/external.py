"""Baselines outside the family: torchvision classification models, trained like any trial.

A study places ResNet-style, DenseNet and fused networks on one chart; presets are ArchConfigs
already, torchvision models come in through `ExternalNet`. Their costs are counted on the built
model (fvcore), since no closed form exists for them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from torch import nn

from nas.arch import PRESETS, ArchConfig, get_preset
from nas.errors import UsageError

TORCHVISION_PREFIX = "torchvision:"
CIFAR_SUFFIX = ":cifar"


def torchvision_models() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


@dataclass(frozen=True)
class ExternalNet:
    """A torchvision classification model by name, with the dataset's channels and classes."""

    name: str  # torchvision's name, e.g. resnet18
    in_channels: int
    num_classes: int
    # ResNet-style models only: a 3x3/1 first conv and no max pool, as the CIFAR ResNets (and
    # the ResNet-18 speed anchor in docs/architecture.md) use on small images.
    cifar_stem: bool = False
    connectivity: str = "baseline"

    def build(self) -> nn.Module:
        import torchvision

        model: nn.Module = torchvision.models.get_model(self.name, weights=None, num_classes=self.num_classes)
        if self.cifar_stem:
            conv1 = model.get_submodule("conv1")
            assert isinstance(conv1, nn.Conv2d)  # resolve_baseline admits ResNet-style models only
            model.conv1 = nn.Conv2d(self.in_channels, conv1.out_channels, 3, padding=1, bias=False)
            model.maxpool = nn.Identity()
        elif self.in_channels != 3:
            _adapt_first_conv(model, self.in_channels)
        return model

    @property
    def label(self) -> str:
        return f"{TORCHVISION_PREFIX}{self.name}{CIFAR_SUFFIX if self.cifar_stem else ''}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.label,
            "connectivity": self.connectivity,
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
        }

    def arch_hash(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _adapt_first_conv(model: nn.Module, in_channels: int) -> None:
    """Swap the first convolution for one that takes `in_channels` (grey images)."""
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                setattr(
                    parent,
                    name,
                    nn.Conv2d(
                        in_channels,
                        child.out_channels,
                        kernel_size=child.kernel_size,  # type: ignore[arg-type]
                        stride=child.stride,  # type: ignore[arg-type]
                        padding=child.padding,  # type: ignore[arg-type]
                        bias=child.bias is not None,
                    ),
                )
                return


def resolve_baseline(name: str, *, in_channels: int, num_classes: int) -> ArchConfig | ExternalNet:
    """A preset name or `torchvision:<model>` (`torchvision:<model>:cifar` for the CIFAR stem),
    sized for the dataset."""
    if name.startswith(TORCHVISION_PREFIX):
        model = name.removeprefix(TORCHVISION_PREFIX)
        cifar = model.endswith(CIFAR_SUFFIX)
        model = model.removesuffix(CIFAR_SUFFIX)
        known = torchvision_models()
        if model not in known:
            raise UsageError(
                f"{model!r} is not a torchvision classification model (valid: {', '.join(known)})",
                field="baseline",
                value=name,
                allowed=f"torchvision:<model> with a classification model: {', '.join(known)}",
            )
        if cifar and not (model.startswith(("resnet", "resnext", "wide_resnet"))):
            raise UsageError(
                f"{model!r}: the {CIFAR_SUFFIX} stem is for ResNet-style models (conv1 and maxpool)",
                field="baseline",
                value=name,
                allowed=f"{CIFAR_SUFFIX} only after a ResNet-style model (resnet, resnext, wide_resnet)",
            )
        return ExternalNet(model, in_channels, num_classes, cifar_stem=cifar)
    if name not in PRESETS:
        raise UsageError(
            f"{name!r} is neither a preset (valid presets: {', '.join(sorted(PRESETS))}) "
            f"nor torchvision:<model>[{CIFAR_SUFFIX}]",
            field="baseline",
            value=name,
            allowed=f"a preset ({', '.join(sorted(PRESETS))}) or torchvision:<model>[{CIFAR_SUFFIX}]",
        )
    return get_preset(name, in_channels=in_channels, num_classes=num_classes)

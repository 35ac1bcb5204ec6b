"""What a network costs: parameters, FLOPs and training activation memory.

Conventions, for every number this project reports:

* FLOPs follow fvcore: one multiply-add counts as one FLOP, per image (batch 1), model in eval
  mode. Convolutions and the classifier count their multiply-adds (bias adds are not counted),
  batch norm counts 2 per element, global average pooling 1 per input element. fvcore skips
  three ops this family uses; this module counts them: a residual add 1 per output element,
  2x2 average pooling and 3x3 max pooling 1 per window element read (output elements x
  kernel area). ReLU, concatenation and dropout count 0.
* Activation memory is the bytes a training forward pass leaves held for backward, per image:
  the tensors autograd saves (fp32), dropout masks (4 bytes per element: fp32 on CPU; CUDA
  keeps 1-byte masks, so this is an upper bound there) and max-pool indices (8 bytes). In
  memory-efficient mode a checkpointed bottleneck keeps only its inputs. Parameters, gradients
  and optimizer state are not included.

`estimate` computes all of it from an `ArchConfig` and an input size alone, before any model is
built, so a study can reject an over-budget candidate for free. `count_flops` runs fvcore on a
built model; tests hold the two together.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nas.arch.config import ArchConfig
from nas.arch.modes import MODES
from nas.arch.parts import FLOAT_BYTES, INDEX_BYTES, PartCost

if TYPE_CHECKING:
    from nas.arch.external import ExternalNet


@dataclass
class CostEstimate:
    """Closed-form costs of one config at one input size (per image)."""

    config: ArchConfig
    input_size: tuple[int, int, int]
    parts: list[PartCost] = field(default_factory=list)

    @property
    def params(self) -> int:
        return sum(p.params for p in self.parts)

    @property
    def flops(self) -> int:
        return sum(p.flops for p in self.parts)

    @property
    def activation_bytes(self) -> int:
        return sum(p.activation_bytes for p in self.parts)

    @property
    def activation_bytes_efficient(self) -> int:
        return sum(p.activation_bytes_efficient for p in self.parts)

    @property
    def output_shape(self) -> tuple[int, int]:
        return (1, self.config.num_classes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "arch_hash": self.config.arch_hash(),
            "input_size": list(self.input_size),
            "params": self.params,
            "flops": self.flops,
            "flops_convention": "fvcore: one multiply-add = 1 FLOP, per image, eval mode",
            "activation_bytes": self.activation_bytes,
            "activation_bytes_efficient": self.activation_bytes_efficient,
            "output_shape": list(self.output_shape),
            "stages": [vars(p).copy() for p in self.parts],
        }


def estimate(config: ArchConfig, *, input_size: tuple[int, int, int]) -> CostEstimate:
    """Parameters, FLOPs and activation memory from the config alone (no model is built)."""
    plans = config.stage_plan(input_size)
    channels, height, width = input_size
    est = CostEstimate(config, (channels, height, width))
    c0 = config.init_features
    stem = PartCost("stem", "stem", 0, channels, c0, height, width)
    stem.hold(channels * height * width * FLOAT_BYTES)  # the image, saved by the first conv
    if config.stem == "imagenet":
        h1, w1 = (height - 1) // 2 + 1, (width - 1) // 2 + 1
        h2, w2 = plans[0].height, plans[0].width
        stem.conv(channels, c0, 7, h1 * w1, config.conv_bias)
        stem.norm(c0, h1 * w1)
        stem.flops += c0 * h2 * w2 * 9  # 3x3 max pool
        stem.hold(2 * c0 * h1 * w1 * FLOAT_BYTES + c0 * h2 * w2 * INDEX_BYTES)
    else:
        stem.conv(channels, c0, 3, height * width, config.conv_bias)
    est.parts.append(stem)

    for plan in plans:
        hw = plan.height * plan.width
        stage = PartCost(
            f"stage{plan.index}", "stage", plan.layers, plan.channels_in, plan.channels_out, plan.height, plan.width
        )
        MODES[config.connectivity].stage_cost(stage, config, plan.channels_in, plan.layers, hw)
        est.parts.append(stage)
        if plan.has_transition:
            trans = PartCost(
                f"transition{plan.index}",
                "transition",
                0,
                plan.channels_out,
                plan.channels_next,
                plan.height,
                plan.width,
            )
            trans.norm(plan.channels_out, hw)
            trans.conv(plan.channels_out, plan.channels_next, 1, hw, config.conv_bias)
            pooled = plan.channels_next * (plan.height // 2) * (plan.width // 2)
            trans.flops += pooled * 4
            trans.hold((2 * plan.channels_out + plan.channels_next) * hw * FLOAT_BYTES)
            est.parts.append(trans)

    last = plans[-1]
    c, hw = last.channels_next, last.height * last.width
    head = PartCost("head", "head", 0, c, config.num_classes, last.height, last.width)
    head.norm(c, hw)
    head.flops += c * hw + c * config.num_classes  # global average pool, classifier
    head.params += c * config.num_classes + config.num_classes
    head.hold((2 * c * hw + c) * FLOAT_BYTES)  # BN input, ReLU output, pooled vector
    est.parts.append(head)
    return est


def human(n: float) -> str:
    """A count in K, M or G with two decimals, for tables and progress lines."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _pool_handle(inputs: list[Any], outputs: list[Any]) -> int:
    from fvcore.nn.jit_handles import get_shape

    out = get_shape(outputs[0])
    kernel = inputs[1].toIValue()
    if kernel is None:  # a list built in the traced graph rather than a constant
        kernel = [v.toIValue() for v in inputs[1].node().inputs()]
    kernel = [kernel[0], kernel[0]] if len(kernel) == 1 else kernel
    return int(torch.Size(out).numel() * kernel[0] * kernel[1])


def _elementwise_handle(inputs: list[Any], outputs: list[Any]) -> int:
    from fvcore.nn.jit_handles import get_shape

    return int(torch.Size(get_shape(outputs[0])).numel())


EXTRA_FLOP_HANDLES = {
    "aten::add": _elementwise_handle,
    "aten::add_": _elementwise_handle,
    "aten::avg_pool2d": _pool_handle,
    "aten::max_pool2d": _pool_handle,
}


@dataclass(frozen=True)
class FlopCount:
    total: int
    by_module: dict[str, int]
    unsupported: dict[str, int]  # ops fvcore met and could not count


def count_flops(model: nn.Module, *, input_size: tuple[int, int, int]) -> FlopCount:
    """fvcore's count (with this module's extra handles) for one image, in eval mode."""
    from fvcore.nn import FlopCountAnalysis

    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        x = torch.zeros((1, *input_size), device=param.device, dtype=param.dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analysis = FlopCountAnalysis(model, x).set_op_handle(**EXTRA_FLOP_HANDLES)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            total = int(analysis.total())
            by_module = {k: int(v) for k, v in analysis.by_module().items()}
            unsupported = dict(Counter(analysis.unsupported_ops()))
    finally:
        model.train(was_training)
    return FlopCount(total, by_module, unsupported)


def network_counts(network: ArchConfig | ExternalNet, *, input_size: tuple[int, int, int]) -> tuple[int, int]:
    """(parameters, FLOPs) of any network a trial trains: the closed form for an ArchConfig, counted on the built
    model for a torchvision baseline, which has none; one rule for the trainer and the proxies alike."""
    if isinstance(network, ArchConfig):
        est = estimate(network, input_size=input_size)
        return est.params, est.flops
    model = network.build()
    return count_params(model), count_flops(model, input_size=input_size).total


__all__ = [
    "CostEstimate",
    "FlopCount",
    "PartCost",
    "count_flops",
    "count_params",
    "estimate",
    "human",
    "network_counts",
]

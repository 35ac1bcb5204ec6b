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
from typing import Any

import torch
from torch import nn

from nas.arch.config import ArchConfig

FLOAT_BYTES = 4
MASK_BYTES = 4
INDEX_BYTES = 8


@dataclass
class PartCost:
    """One row of the cost table: the stem, a stage, a transition or the head."""

    name: str
    kind: str  # stem | stage | transition | head
    layers: int
    channels_in: int
    channels_out: int
    height: int  # spatial size of the part's input
    width: int
    params: int = 0
    flops: int = 0
    activation_bytes: int = 0  # normal mode
    activation_bytes_efficient: int = 0  # memory-efficient mode

    # Each method adds one op; `saved` is how many of its elements stay held for backward.
    def conv(self, c_in: int, c_out: int, kernel: int, hw: int, bias: bool) -> None:
        self.params += c_in * c_out * kernel * kernel + (c_out if bias else 0)
        self.flops += c_in * c_out * kernel * kernel * hw

    def norm(self, c: int, hw: int) -> None:
        self.params += 2 * c
        self.flops += 2 * c * hw

    def hold(self, nbytes: int, *, efficient: int | None = None) -> None:
        self.activation_bytes += nbytes
        self.activation_bytes_efficient += nbytes if efficient is None else efficient


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


def _layer_unit(part: PartCost, config: ArchConfig, c_in: int, new_in: int, c_out: int, hw: int) -> None:
    """H(c_in -> c_out). `new_in`: channels of the one input tensor this layer adds to memory
    (dense layers share earlier inputs), which a checkpointed bottleneck keeps instead."""
    part.norm(c_in, hw)
    if config.bn_size > 0:
        width = config.bn_size * config.growth_rate
        part.conv(c_in, width, 1, hw, config.conv_bias)
        part.norm(width, hw)
        part.conv(width, c_out, 3, hw, config.conv_bias)
        # Normal: the BN input (a concat in dense modes) and the ReLU output stay held.
        # Efficient: the entry is recomputed; only its newest input tensor stays held.
        part.hold(2 * c_in * hw * FLOAT_BYTES, efficient=new_in * hw * FLOAT_BYTES)
        part.hold(2 * width * hw * FLOAT_BYTES)
    else:
        part.conv(c_in, c_out, 3, hw, config.conv_bias)
        part.hold(2 * c_in * hw * FLOAT_BYTES)
    if config.drop_rate > 0:
        part.hold(c_out * hw * MASK_BYTES)


def _stage(part: PartCost, config: ArchConfig, c: int, layers: int, hw: int) -> None:
    k = config.growth_rate
    mode = config.connectivity
    for j in range(layers):
        if mode in ("dense", "dense_residual"):
            _layer_unit(part, config, c + j * k, c if j == 0 else k, k, hw)
        elif mode == "osp":
            _layer_unit(part, config, c if j == 0 else k, c if j == 0 else k, k, hw)
        else:
            _layer_unit(part, config, c, c, c, hw)
            if mode == "residual":
                part.flops += c * hw  # the add
    if mode == "dense_residual":
        total = c + layers * k
        part.norm(total, hw)
        part.conv(total, c, 1, hw, config.conv_bias)
        part.hold(2 * total * hw * FLOAT_BYTES)  # fusion BN input and ReLU output
        part.flops += c * hw  # the add


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
        _stage(stage, config, plan.channels_in, plan.layers, hw)
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


__all__ = [
    "CostEstimate",
    "FlopCount",
    "PartCost",
    "count_flops",
    "count_params",
    "estimate",
    "human",
]

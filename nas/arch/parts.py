"""The closed-form cost model's building blocks: one row of the cost table, and the cost of a layer unit.

The conventions (fvcore's FLOPs, what activation memory counts) are stated in `nas.arch.cost`;
this module holds what every mode's stage cost (`nas.arch.modes`) adds up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

    # Each method adds one op; `hold` adds bytes that stay held for backward.
    def conv(self, c_in: int, c_out: int, kernel: int, hw: int, bias: bool) -> None:
        self.params += c_in * c_out * kernel * kernel + (c_out if bias else 0)
        self.flops += c_in * c_out * kernel * kernel * hw

    def norm(self, c: int, hw: int) -> None:
        self.params += 2 * c
        self.flops += 2 * c * hw

    def hold(self, nbytes: int, *, efficient: int | None = None) -> None:
        self.activation_bytes += nbytes
        self.activation_bytes_efficient += nbytes if efficient is None else efficient

    def add(self, c: int, hw: int) -> None:
        """An elementwise residual add (fvcore skips it; this project counts 1 per element)."""
        self.flops += c * hw


def layer_unit(part: PartCost, config: ArchConfig, c_in: int, new_in: int, c_out: int, hw: int) -> None:
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


def fusion(part: PartCost, config: ArchConfig, c_in: int, c_out: int, hw: int) -> None:
    """BN-ReLU-Conv1x1(c_in -> c_out) inside a stage: its BN input and ReLU output stay held."""
    part.norm(c_in, hw)
    part.conv(c_in, c_out, 1, hw, config.conv_bias)
    part.hold(2 * c_in * hw * FLOAT_BYTES)

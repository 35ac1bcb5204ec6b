"""The connectivity modes: one entry per mode holding everything that differs by mode.

Nothing else in the code names a mode. The config reads here how a stage's width grows and which
transition knob a mode uses (and so which knobs its canonical form ignores), the builder which
stage module to build, the cost model the stage's closed-form cost, the ablation which width to
solve for a matched cost, and reports the mode's colour. Adding a mode is an entry below, its
stage cost beside it and its stage class in `nas.arch.blocks` (docs/architecture.md). Network diagrams
draw a stage's wiring from its `Wiring` entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from nas.arch import blocks
from nas.arch.parts import PartCost, fusion, layer_unit

if TYPE_CHECKING:
    from nas.arch.config import ArchConfig

# (part, config, channels in, layers, height x width): adds one stage's parameters, FLOPs and memory.
StageCost = Callable[[PartCost, "ArchConfig", int, int, int], None]


@dataclass(frozen=True)
class Wiring:
    """Which links join a stage's layers, as the report's network diagrams draw them (nas.report.diagram)."""

    reads_all_earlier: bool = False  # each layer, and the stage's end, reads every earlier output
    adds_around_layer: bool = False  # each layer's input is added to its output: x + H(x)
    joins_all_outputs: bool = False  # the stage's end concatenates the input and every layer's output
    adds_stage_input: bool = False  # the stage's input is added to its (fused) output: an outer skip
    bypasses_half: bool = False  # half the input skips the layers and is concatenated at the end


@dataclass(frozen=True)
class Mode:
    """One connectivity mode."""

    name: str
    summary: str  # what a stage does, in one line (nas arch --list, docs)
    stage: type[nn.Module]  # built as stage(c_in, layers, config)
    block_prefix: str  # the stage's name in `features` before its 1-based index (torchvision's for dense)
    # True: a stage emits c + L*k channels and transitions scale by `compression`; False: a stage keeps
    # its c channels and transitions scale by `width_multiplier`.
    concatenates: bool
    wiring: Wiring  # what a network diagram draws inside the stage box
    # growth_rate only sets the bottleneck width (bn_size * k), so it means nothing when bn_size == 0.
    growth_only_in_bottleneck: bool
    # Matched-cost ablations: the knob solved for the target cost, then the one for fine steps.
    width_knobs: tuple[str, str]
    stage_cost: StageCost
    colour: str  # in every report chart, so a mode looks the same everywhere
    symbol: str  # its plotly marker shape in every chart, so a mode reads without colour too

    @property
    def transition_knob(self) -> str:
        return "compression" if self.concatenates else "width_multiplier"

    def stage_output(self, channels: int, layers: int, growth_rate: int) -> int:
        """Channels a stage emits, before any transition."""
        return channels + layers * growth_rate if self.concatenates else channels


# ----- closed-form stage costs (tests hold each equal to the built module and to fvcore) -----


def _dense_cost(part: PartCost, config: ArchConfig, c: int, layers: int, hw: int) -> None:
    k = config.growth_rate
    for j in range(layers):
        layer_unit(part, config, c + j * k, c if j == 0 else k, k, hw)


def _osp_cost(part: PartCost, config: ArchConfig, c: int, layers: int, hw: int) -> None:
    k = config.growth_rate
    for j in range(layers):
        layer_unit(part, config, c if j == 0 else k, c if j == 0 else k, k, hw)


def _dense_residual_cost(part: PartCost, config: ArchConfig, c: int, layers: int, hw: int) -> None:
    _dense_cost(part, config, c, layers, hw)
    fusion(part, config, c + layers * config.growth_rate, c, hw)
    part.add(c, hw)


def _residual_cost(part: PartCost, config: ArchConfig, c: int, layers: int, hw: int) -> None:
    for _ in range(layers):
        layer_unit(part, config, c, c, c, hw)
        part.add(c, hw)


def _plain_cost(part: PartCost, config: ArchConfig, c: int, layers: int, hw: int) -> None:
    for _ in range(layers):
        layer_unit(part, config, c, c, c, hw)


def _csp_cost(part: PartCost, config: ArchConfig, c: int, layers: int, hw: int) -> None:
    # The bypass view and the final concat hold nothing; the stage input is freed once it is
    # split, so only the dense part's copy (held by its first layer) and what follows count.
    dense_in = c - c // 2
    _dense_cost(part, config, dense_in, layers, hw)
    width = dense_in + layers * config.growth_rate
    fusion(part, config, width, width, hw)


MODES: dict[str, Mode] = {
    m.name: m
    for m in [
        Mode(
            "plain",
            "each layer sees the previous layer's output; stage keeps width c",
            blocks.PlainStage,
            "block",
            concatenates=False,
            wiring=Wiring(),
            growth_only_in_bottleneck=True,
            width_knobs=("init_features", "growth_rate"),
            stage_cost=_plain_cost,
            colour="#9467bd",
            symbol="square",
        ),
        Mode(
            "residual",
            "pre-activation residual units x + H(x); stage keeps width c",
            blocks.ResidualStage,
            "block",
            concatenates=False,
            wiring=Wiring(adds_around_layer=True),
            growth_only_in_bottleneck=True,
            width_knobs=("init_features", "growth_rate"),
            stage_cost=_residual_cost,
            colour="#d62728",
            symbol="diamond",
        ),
        Mode(
            "dense",
            "each layer sees the concat of all earlier outputs; stage outputs c + L*k",
            blocks.DenseStage,
            "denseblock",
            concatenates=True,
            wiring=Wiring(reads_all_earlier=True, joins_all_outputs=True),
            growth_only_in_bottleneck=False,
            width_knobs=("growth_rate", "init_features"),
            stage_cost=_dense_cost,
            colour="#1f77b4",
            symbol="circle",
        ),
        Mode(
            "dense_residual",
            "dense layers, then x0 + Conv1x1(BN-ReLU(concat)); stage keeps width c",
            blocks.DenseResidualStage,
            "denseblock",
            concatenates=False,
            wiring=Wiring(reads_all_earlier=True, joins_all_outputs=True, adds_stage_input=True),
            growth_only_in_bottleneck=False,
            width_knobs=("growth_rate", "init_features"),
            stage_cost=_dense_residual_cost,
            colour="#2ca02c",
            symbol="triangle-up",
        ),
        Mode(
            "osp",
            "one-shot aggregation: a chain of layers, all outputs concatenated once: c + L*k",
            blocks.OSPStage,
            "denseblock",
            concatenates=True,
            wiring=Wiring(joins_all_outputs=True),
            growth_only_in_bottleneck=False,
            width_knobs=("growth_rate", "init_features"),
            stage_cost=_osp_cost,
            colour="#ff7f0e",
            symbol="cross",
        ),
        Mode(
            "csp",
            "cross stage partial (fusion last): half the input bypasses a dense stage; outputs c + L*k",
            blocks.CSPStage,
            "denseblock",
            concatenates=True,
            wiring=Wiring(reads_all_earlier=True, joins_all_outputs=True, bypasses_half=True),
            growth_only_in_bottleneck=False,
            width_knobs=("growth_rate", "init_features"),
            stage_cost=_csp_cost,
            colour="#e6ab02",
            symbol="triangle-down",
        ),
    ]
}


__all__ = ["MODES", "Mode", "StageCost", "Wiring"]

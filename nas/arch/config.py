"""One frozen description of every network in the family.

`ArchConfig` is the single source of truth: the builder, the cost model and the studies all
read the channel and spatial plan from it, so a count computed here and a model built from it
can never disagree about widths.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from nas.arch.modes import MODES
from nas.checks import bad_value, is_int, is_number
from nas.errors import UsageError

# Stems: name -> layout. Both are followed by the first stage.
STEMS: dict[str, str] = {
    "imagenet": "7x7/2 conv, BN, ReLU, 3x3/2 max pool (as torchvision)",
    "cifar": "one 3x3 conv (as the CIFAR DenseNet-BC)",
}


@dataclass(frozen=True)
class StagePlan:
    """Channels and spatial size of one stage and the transition after it."""

    index: int  # 1-based, as the module names
    layers: int
    channels_in: int
    channels_out: int  # what the stage emits, before any transition
    channels_next: int  # after the transition; equals channels_out for the last stage
    height: int  # spatial size inside the stage
    width: int
    has_transition: bool


@dataclass(frozen=True)
class ArchConfig:
    """A network of the DenseNet family; defaults are torchvision's DenseNet-121."""

    # Wiring of each stage; one of nas.arch.modes.MODES.
    connectivity: str = "dense"
    # k: channels each layer adds (concat modes) or the unit of the bottleneck width.
    growth_rate: int = 32
    # Bottleneck 1x1 conv emits bn_size*k channels; 0 means no bottleneck (original DenseNet).
    bn_size: int = 4
    # Transition width factor for concat modes (DenseNet-BC uses 0.5, no compression is 1.0).
    compression: float = 0.5
    # Layers per stage; one transition sits between consecutive stages.
    block_config: tuple[int, ...] = (6, 12, 24, 16)
    # Channels the stem emits.
    init_features: int = 64
    # Input stem; one of STEMS.
    stem: str = "imagenet"
    # Transition width factor for width-preserving modes (2.0 doubles per stage, as ResNets).
    width_multiplier: float = 1.0
    # Dropout after every layer unit (the original DenseNet used 0.2 without augmentation).
    drop_rate: float = 0.0
    # Bias on every convolution (the d2l tutorial network has it; torchvision has not).
    conv_bias: bool = False
    # Recompute the concat-BN-ReLU-Conv1x1 bottleneck in backward: less memory, same maths.
    memory_efficient: bool = False
    in_channels: int = 3
    num_classes: int = 1000

    def __post_init__(self) -> None:
        if isinstance(self.block_config, list):
            object.__setattr__(self, "block_config", tuple(self.block_config))
        self._validate()

    def _validate(self) -> None:
        if self.connectivity not in MODES:
            raise bad_value("ArchConfig", "connectivity", self.connectivity, f"choose one of {sorted(MODES)}")
        if self.stem not in STEMS:
            raise bad_value("ArchConfig", "stem", self.stem, f"choose one of {sorted(STEMS)}")
        for name in ("growth_rate", "init_features", "in_channels", "num_classes"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise bad_value("ArchConfig", name, value, "a positive integer is required")
        if not is_int(self.bn_size) or self.bn_size < 0:
            raise bad_value("ArchConfig", "bn_size", self.bn_size, "an integer >= 0 is required (0 = no bottleneck)")
        if not is_number(self.compression) or not 0 < self.compression <= 1:
            raise bad_value("ArchConfig", "compression", self.compression, "a number in (0, 1] is required")
        if (
            not is_number(self.width_multiplier)
            or not math.isfinite(self.width_multiplier)
            or self.width_multiplier <= 0
        ):
            raise bad_value("ArchConfig", "width_multiplier", self.width_multiplier, "a finite number > 0 is required")
        if not is_number(self.drop_rate) or not 0 <= self.drop_rate < 1:
            raise bad_value("ArchConfig", "drop_rate", self.drop_rate, "a number in [0, 1) is required")
        for name in ("conv_bias", "memory_efficient"):
            if not isinstance(getattr(self, name), bool):
                raise bad_value("ArchConfig", name, getattr(self, name), "true or false is required")
        if not isinstance(self.block_config, tuple) or not self.block_config:
            raise bad_value(
                "ArchConfig", "block_config", self.block_config, "a non-empty list of layer counts is required"
            )
        for layers in self.block_config:
            if not is_int(layers) or layers < 1:
                raise bad_value("ArchConfig", "block_config", self.block_config, "every stage needs at least 1 layer")
        self.stage_channels()  # a width that rounds down to zero is a bad config too

    # ----- the channel and spatial plan -------------------------------------------------

    def stage_channels(self) -> tuple[tuple[int, int, int], ...]:
        """(channels in, channels out, channels after transition) for every stage."""
        plan = []
        c = self.init_features
        last = len(self.block_config) - 1
        mode = MODES[self.connectivity]
        knob = mode.transition_knob
        factor = getattr(self, knob)
        for i, layers in enumerate(self.block_config):
            out = mode.stage_output(c, layers, self.growth_rate)
            nxt = out if i == last else math.floor(factor * out)
            if nxt < 1:
                raise bad_value(
                    "ArchConfig", knob, factor, f"the transition after stage {i + 1} would have {nxt} channels"
                )
            plan.append((c, out, nxt))
            c = nxt
        return tuple(plan)

    def stem_output_size(self, height: int, width: int) -> tuple[int, int]:
        if self.stem == "imagenet":
            # 7x7/2 conv (padding 3) then 3x3/2 max pool (padding 1) each map n to (n-1)//2+1.
            return (((height - 1) // 2) // 2 + 1, ((width - 1) // 2) // 2 + 1)
        return (height, width)

    def stage_plan(self, input_size: tuple[int, int, int]) -> tuple[StagePlan, ...]:
        """Per-stage channels and spatial sizes for a (C, H, W) input; refuses a collapse."""
        channels, height, width = _check_input_size(input_size)
        if channels != self.in_channels:
            raise UsageError(
                f"input_size {tuple(input_size)} has {channels} channels but the config has "
                f"in_channels={self.in_channels}",
                field="input_size",
                value=tuple(input_size),
                allowed=f"{self.in_channels} channels, as the config's in_channels",
            )
        h, w = self.stem_output_size(height, width)
        if min(h, w) < 1:
            raise UsageError(
                f"input {height}x{width} collapses to {h}x{w} in the {self.stem} stem",
                field="input_size",
                value=tuple(input_size),
                allowed=f"an input the {self.stem} stem leaves at least 1x1",
            )
        stages = []
        last = len(self.block_config) - 1
        for i, ((c_in, c_out, c_next), layers) in enumerate(zip(self.stage_channels(), self.block_config, strict=True)):
            stages.append(StagePlan(i + 1, layers, c_in, c_out, c_next, h, w, i != last))
            if i != last:
                if min(h, w) < 2:
                    raise UsageError(
                        f"input {height}x{width} is too small: stage {i + 1} works at {h}x{w} and "
                        f"the 2x2 pooling of transition {i + 1} would make it 0x0 before "
                        f"stage {i + 2}; use a larger input, fewer stages or the cifar stem",
                        field="input_size",
                        value=tuple(input_size),
                        allowed="a larger input, fewer stages or the cifar stem",
                    )
                h, w = h // 2, w // 2
        return tuple(stages)

    # ----- identity ---------------------------------------------------------------------

    def canonical(self) -> ArchConfig:
        """The same network with every knob it ignores reset to its default and its transition factor
        at the simplest value that gives the same widths.

        Two configs that build the same network (same function, same parameters) have equal
        canonical forms. `memory_efficient` is an execution choice, not a different network.
        """
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {"memory_efficient": False}
        changes.update({knob: defaults[knob] for knob in self.ignored_knobs()})
        knob = MODES[self.connectivity].transition_knob
        if knob not in changes:
            changes[knob] = self._simplest_factor(knob)
        return dataclasses.replace(self, **changes)

    def _simplest_factor(self, knob: str) -> float:
        """The decimal with the fewest digits (the smallest of those) that gives every transition the
        widths this config gives it: compression 0.4447 and 0.4468 both take 24 channels to 10, so both
        become 0.42 and the network is trained once. Round values (0.5, 1.0, 2.0) usually stay as they are."""
        plan = self.stage_channels()
        transitions = [(out, nxt) for _, out, nxt in plan[:-1]]
        low = max(Fraction(nxt, out) for out, nxt in transitions)  # floor(f * out) == nxt for f in [low, high)
        high = min(Fraction(nxt + 1, out) for out, nxt in transitions)
        for digits in range(16):
            scale: int = 10**digits
            k = math.ceil(low * scale)
            while Fraction(k, scale) < high:
                factor = k / scale  # never above 1 for compression: floor(c * out) <= out keeps high <= 1 or low == 1
                candidate: dict[str, Any] = {knob: factor}
                if dataclasses.replace(self, **candidate).stage_channels() == plan:  # float rounding agrees
                    return factor
                k += 1
        return float(getattr(self, knob))  # not reached for widths below 10**15

    def ignored_knobs(self) -> tuple[str, ...]:
        """The knobs this network does not use (its mode's wiring has no place for them), so a report
        can leave them blank instead of showing a value that changes nothing."""
        mode = MODES[self.connectivity]
        ignored = [
            knob
            for knob in ("compression", "width_multiplier")
            if knob != mode.transition_knob or len(self.block_config) == 1  # no transition uses it
        ]
        if mode.growth_only_in_bottleneck and self.bn_size == 0:
            ignored.insert(0, "growth_rate")
        return tuple(ignored)

    def arch_hash(self) -> str:
        """A stable 12-hex-digit id of the canonical network."""
        text = json.dumps(self.canonical().to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["block_config"] = list(self.block_config)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchConfig:
        if not isinstance(data, dict):
            raise UsageError(
                f"an ArchConfig must be an object of fields, got {type(data).__name__}",
                owner="ArchConfig",
                value=data,
                allowed="an object of fields",
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(
                f"unknown ArchConfig field(s) {unknown}; valid fields are {sorted(known)}",
                owner="ArchConfig",
                field=", ".join(unknown),
                allowed=f"valid fields are {sorted(known)}",
            )
        return cls(**data)

    def replace(self, **changes: Any) -> ArchConfig:
        """A copy with some fields changed, validated like a new config."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise UsageError(
                f"unknown ArchConfig field(s) {unknown}; valid fields are {sorted(known)}",
                owner="ArchConfig",
                field=", ".join(unknown),
                allowed=f"valid fields are {sorted(known)}",
            )
        return dataclasses.replace(self, **changes)


def _check_input_size(input_size: tuple[int, ...]) -> tuple[int, int, int]:
    if (
        not isinstance(input_size, (tuple, list))
        or len(input_size) != 3
        or not all(is_int(v) and v >= 1 for v in input_size)
    ):
        raise UsageError(
            f"input_size = {input_size!r} is invalid: (channels, height, width) of positive integers is required",
            field="input_size",
            value=input_size,
            allowed="(channels, height, width) of positive integers is required",
        )
    return (input_size[0], input_size[1], input_size[2])


__all__ = ["STEMS", "ArchConfig", "StagePlan"]

"""The architecture family: one config, the connectivity modes table, blocks, presets, costs."""

from nas.arch.builder import ArchNet, build_model
from nas.arch.config import STEMS, ArchConfig, StagePlan
from nas.arch.modes import MODES, Mode
from nas.arch.presets import PRESETS, Preset, get_preset

__all__ = [
    "MODES",
    "PRESETS",
    "STEMS",
    "ArchConfig",
    "ArchNet",
    "Mode",
    "Preset",
    "StagePlan",
    "build_model",
    "get_preset",
]

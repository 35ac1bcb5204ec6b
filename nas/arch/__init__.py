"""The architecture family: one config, five connectivity modes, named presets."""

from nas.arch.builder import ArchNet, build_model
from nas.arch.config import CONNECTIVITIES, STEMS, ArchConfig, StagePlan
from nas.arch.presets import PRESETS, Preset, get_preset

__all__ = [
    "CONNECTIVITIES",
    "PRESETS",
    "STEMS",
    "ArchConfig",
    "ArchNet",
    "Preset",
    "StagePlan",
    "build_model",
    "get_preset",
]

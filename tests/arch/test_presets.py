"""Presets reproduce their reference networks exactly."""

from __future__ import annotations

import pytest
import torch
import torchvision

from nas.arch import PRESETS, build_model, get_preset
from nas.arch.cost import count_params, estimate

# Parameter counts measured by building the original code (docs/architecture.md), typed here on purpose:
# they are the external reference the builder must meet.
REFERENCE = {
    "densenet121": 7_978_856,
    "densenet161": 28_681_000,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
    "densenet_bc_100_k12": 769_162,
    "d2l_densenet": 758_226,
    "resdensenet": 1_986_691,
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_parameter_counts(name: str) -> None:
    model = build_model(PRESETS[name].config)
    assert count_params(model) == REFERENCE[name]
    assert PRESETS[name].reference_params == REFERENCE[name]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_and_runs(name: str) -> None:
    preset = PRESETS[name]
    model = build_model(preset.config, input_size=preset.input_size).eval()
    c, h, w = preset.input_size
    with torch.no_grad():
        out = model(torch.randn(1, c, min(h, 64), min(w, 64)))
    assert out.shape == (1, preset.config.num_classes)
    assert count_params(model) == estimate(preset.config, input_size=preset.input_size).params


def test_densenet_40_is_the_papers_one_million() -> None:
    assert round(count_params(build_model(PRESETS["densenet_40_k12"].config)) / 1e6, 1) == 1.0


def test_d2l_densenet_has_248_channels_before_the_head() -> None:
    assert build_model(PRESETS["d2l_densenet"].config).classifier.in_features == 248


def test_overrides() -> None:
    cfg = get_preset("densenet121", num_classes=10, in_channels=1, growth_rate=12)
    assert (cfg.num_classes, cfg.in_channels, cfg.growth_rate) == (10, 1, 12)
    assert cfg.block_config == (6, 12, 24, 16)
    with pytest.raises(ValueError, match=r"unknown preset 'densenet122'; valid presets are \["):
        get_preset("densenet122")
    with pytest.raises(ValueError, match="unknown ArchConfig field"):
        get_preset("densenet121", classes=10)
    with pytest.raises(ValueError, match=r"ArchConfig\.growth_rate = 0"):
        get_preset("densenet121", growth_rate=0)


def test_torchvision_densenet121_parity() -> None:
    reference = torchvision.models.densenet121(weights=None).eval()
    ours = build_model(get_preset("densenet121")).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["densenet161", "densenet169", "densenet201"])
def test_torchvision_state_dicts_load_strict(name: str) -> None:
    reference = getattr(torchvision.models, name)(weights=None)
    ours = build_model(get_preset(name))
    ours.load_state_dict(reference.state_dict(), strict=True)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}

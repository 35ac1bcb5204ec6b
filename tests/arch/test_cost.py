"""Costs: the closed form agrees with the built model, with fvcore and with measured memory."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from nas.arch import MODES, PRESETS, STEMS, ArchConfig, build_model
from nas.arch.cost import count_flops, count_params, estimate
from tests.conftest import VARIANTS, tiny


def random_config(rng: random.Random) -> tuple[ArchConfig, tuple[int, int, int]]:
    """A random valid config and an input size it accepts."""
    stages = rng.randint(1, 3)
    cfg = ArchConfig(
        connectivity=rng.choice(sorted(MODES)),
        growth_rate=rng.randint(1, 12),
        bn_size=rng.randint(0, 4),
        compression=rng.choice([0.5, 0.75, 1.0, rng.uniform(0.3, 1.0)]),
        block_config=tuple(rng.randint(1, 4) for _ in range(stages)),
        init_features=rng.randint(4, 24),
        stem=rng.choice(sorted(STEMS)),
        width_multiplier=rng.choice([1.0, 2.0, rng.uniform(0.8, 2.5)]),
        drop_rate=rng.choice([0.0, 0.1]),
        conv_bias=rng.random() < 0.3,
        in_channels=rng.choice([1, 3]),
        num_classes=rng.randint(2, 20),
    )
    side = (4 if cfg.stem == "imagenet" else 1) * 2 ** (stages - 1) + rng.randint(0, 13)
    return cfg, (cfg.in_channels, side, side + rng.randint(0, 5))


RANDOM_CASES = [random_config(random.Random(seed)) for seed in range(40)]


def _ids(case: tuple[ArchConfig, tuple[int, int, int]]) -> str:
    return f"{case[0].connectivity}-{case[0].arch_hash()}"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_closed_form_equals_model_and_fvcore(name: str) -> None:
    preset = PRESETS[name]
    c, h, w = preset.input_size
    size = (c, min(h, 64), min(w, 64))  # FLOPs scale exactly with area; keep tracing cheap
    est = estimate(preset.config, input_size=size)
    model = build_model(preset.config)
    assert est.params == count_params(model)
    counted = count_flops(model, input_size=size)
    assert counted.unsupported == {}
    assert abs(est.flops - counted.total) <= 0.01 * counted.total


@pytest.mark.parametrize("case", RANDOM_CASES, ids=_ids)
def test_random_configs_closed_form_equals_model_and_fvcore(case: tuple[ArchConfig, tuple[int, int, int]]) -> None:
    cfg, size = case
    est = estimate(cfg, input_size=size)
    model = build_model(cfg, input_size=size)
    assert est.params == count_params(model)
    counted = count_flops(model, input_size=size)
    assert counted.unsupported == {}
    assert abs(est.flops - counted.total) <= 0.01 * counted.total


def test_random_configs_cover_every_mode_and_stem() -> None:
    assert {c.connectivity for c, _ in RANDOM_CASES} == set(MODES)
    assert {c.stem for c, _ in RANDOM_CASES} == set(STEMS)


def test_flop_convention_on_a_single_conv() -> None:
    # One multiply-add = one FLOP: a 3x3 conv from 2 to 5 channels on 4x4 (padding 1).
    conv = nn.Conv2d(2, 5, kernel_size=3, padding=1, bias=True)
    assert count_flops(conv, input_size=(2, 4, 4)).total == 2 * 5 * 9 * 16


def test_fvcore_counts_residual_add_and_pooling() -> None:
    cfg = tiny("residual", stem="imagenet", block_config=(1, 1))
    counted = count_flops(build_model(cfg), input_size=(3, 32, 32))
    assert counted.unsupported == {}
    by_module = counted.by_module
    # Transition pooling: 2x2 windows over 9 channels at 8x8 -> 9 * 4 * 4 outputs * 4 reads.
    assert by_module["features.transition1.pool"] == 9 * 4 * 4 * 4
    # Max pool of the stem: 6 channels, 8x8 outputs, 3x3 windows.
    assert by_module["features.pool0"] == 6 * 8 * 8 * 9


def measured_activation_bytes(cfg: ArchConfig, size: tuple[int, int, int], batch: int = 2) -> float:
    """Bytes a training forward pass leaves allocated, per image, from the CPU allocator."""
    model = build_model(cfg).train()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        x = torch.randn(batch, *size)
        out = model(x)
    held = sum(e.self_cpu_memory_usage for e in prof.events()) - out.numel() * out.element_size()
    return held / batch


MEMORY_CASES = [(tiny(m, **v), (3, 24, 20)) for m in MODES for v in VARIANTS] + [
    (PRESETS["densenet_bc_100_k12"].config, (3, 32, 32)),
    (PRESETS["densenet_bc_100_k12"].config.replace(connectivity="csp"), (3, 32, 32)),
    (PRESETS["resdensenet"].config, (3, 64, 64)),
]


@pytest.mark.parametrize("case", MEMORY_CASES, ids=_ids)
@pytest.mark.parametrize("efficient", [False, True], ids=["normal", "efficient"])
def test_activation_memory_estimate_matches_allocator(
    case: tuple[ArchConfig, tuple[int, int, int]], efficient: bool
) -> None:
    cfg, size = case
    est = estimate(cfg, input_size=size)
    predicted = est.activation_bytes_efficient if efficient else est.activation_bytes
    measured = measured_activation_bytes(cfg.replace(memory_efficient=efficient), size)
    assert predicted == pytest.approx(measured, rel=0.03)


def test_memory_efficient_mode_saves_most_memory_on_densenet_bc() -> None:
    est = estimate(PRESETS["densenet_bc_100_k12"].config, input_size=(3, 32, 32))
    assert est.activation_bytes_efficient < 0.5 * est.activation_bytes


def test_estimate_refuses_collapsing_inputs() -> None:
    with pytest.raises(ValueError, match="too small"):
        estimate(ArchConfig(), input_size=(3, 8, 8))


def test_to_dict_has_what_the_cli_promises() -> None:
    data = estimate(PRESETS["densenet_bc_100_k12"].config, input_size=(3, 32, 32)).to_dict()
    assert data["params"] == 769_162
    assert data["output_shape"] == [1, 10]
    assert [s["name"] for s in data["stages"]] == [
        "stem",
        "stage1",
        "transition1",
        "stage2",
        "transition2",
        "stage3",
        "head",
    ]
    assert sum(s["flops"] for s in data["stages"]) == data["flops"]


def test_network_counts_are_the_closed_form_or_the_built_torchvision_model_s() -> None:
    """One rule for the trainer and the proxies: an ArchConfig by its closed form, a torchvision baseline (no closed
    form) counted on its built model."""
    from nas.arch.cost import network_counts
    from nas.arch.external import resolve_baseline

    config = ArchConfig(connectivity="dense", block_config=(2, 2), growth_rate=8, num_classes=10)
    est = estimate(config, input_size=(3, 32, 32))
    assert network_counts(config, input_size=(3, 32, 32)) == (est.params, est.flops)
    resnet = resolve_baseline("torchvision:resnet18", in_channels=1, num_classes=10)
    params, flops = network_counts(resnet, input_size=(1, 28, 28))
    assert params == 11_689_512 - 990 * 513 - 2 * 64 * 49  # torchvision's 1000-class, 3-channel count, resized
    assert flops > 0

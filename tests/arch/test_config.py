"""ArchConfig: validation, canonical form, hashing and serialisation."""

from __future__ import annotations

import json
import random
from collections import defaultdict

import pytest

from nas.arch import MODES, ArchConfig
from nas.arch.builder import build_model
from nas.arch.presets import PRESETS
from tests.conftest import tiny

BAD_VALUES = [
    ("connectivity", "densest", "choose one of"),
    ("stem", "mnist", "choose one of"),
    ("growth_rate", 0, "positive integer"),
    ("growth_rate", -4, "positive integer"),
    ("growth_rate", 2.5, "positive integer"),
    ("growth_rate", True, "positive integer"),
    ("init_features", 0, "positive integer"),
    ("in_channels", 0, "positive integer"),
    ("num_classes", -1, "positive integer"),
    ("bn_size", -1, "integer >= 0"),
    ("compression", 0, "(0, 1]"),
    ("compression", 1.5, "(0, 1]"),
    ("compression", "half", "(0, 1]"),
    ("width_multiplier", 0, "> 0"),
    ("width_multiplier", float("inf"), "> 0"),
    ("drop_rate", 1.0, "[0, 1)"),
    ("drop_rate", -0.1, "[0, 1)"),
    ("conv_bias", 1, "true or false"),
    ("memory_efficient", "yes", "true or false"),
    ("block_config", (), "non-empty"),
    ("block_config", (4, 0), "at least 1 layer"),
    ("block_config", 6, "non-empty"),
]


@pytest.mark.parametrize(("field", "value", "allowed"), BAD_VALUES)
def test_bad_value_names_field_value_and_what_is_allowed(field: str, value: object, allowed: str) -> None:
    with pytest.raises(ValueError) as err:
        ArchConfig(**{field: value})  # type: ignore[arg-type]
    message = str(err.value)
    assert f"ArchConfig.{field} = {value!r}" in message
    assert allowed in message


def test_width_that_rounds_to_zero_is_refused() -> None:
    with pytest.raises(ValueError, match=r"ArchConfig.compression = 0.01 .*transition after stage 1 would have 0"):
        ArchConfig(compression=0.01, init_features=4, growth_rate=2, block_config=(1, 1))
    with pytest.raises(ValueError, match=r"ArchConfig.width_multiplier = 0.1 .*stage 1 would have 0"):
        ArchConfig(connectivity="residual", width_multiplier=0.1, init_features=8, block_config=(1, 1))


def test_list_block_config_becomes_tuple() -> None:
    assert ArchConfig(block_config=[2, 3]).block_config == (2, 3)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", MODES)
def test_stage_channels_follow_the_mode_table(mode: str) -> None:
    cfg = tiny(mode, block_config=(2, 3, 1), init_features=10, growth_rate=4)
    expected = {
        "dense": [(10, 18, 9), (9, 21, 10), (10, 14, 14)],
        "osp": [(10, 18, 9), (9, 21, 10), (10, 14, 14)],
        "csp": [(10, 18, 9), (9, 21, 10), (10, 14, 14)],
        "dense_residual": [(10, 10, 15), (15, 15, 22), (22, 22, 22)],
        "residual": [(10, 10, 15), (15, 15, 22), (22, 22, 22)],
        "plain": [(10, 10, 15), (15, 15, 22), (22, 22, 22)],
    }[mode]
    assert list(cfg.stage_channels()) == expected


def test_stage_plan_spatial_sizes_and_collapse_message() -> None:
    cfg = ArchConfig()  # densenet121 layout: imagenet stem, 4 stages
    plan = cfg.stage_plan((3, 224, 224))
    assert [(p.height, p.width) for p in plan] == [(56, 56), (28, 28), (14, 14), (7, 7)]
    assert [p.has_transition for p in plan] == [True, True, True, False]
    with pytest.raises(ValueError, match=r"stage 3 works at 1x1 .* transition 3"):
        cfg.stage_plan((3, 16, 16))
    with pytest.raises(ValueError, match="has 1 channels but the config has in_channels=3"):
        cfg.stage_plan((1, 224, 224))
    with pytest.raises(ValueError, match="input_size"):
        cfg.stage_plan((3, 0, 224))


@pytest.mark.parametrize("mode", MODES)
def test_json_round_trip(mode: str) -> None:
    cfg = tiny(mode, drop_rate=0.1, conv_bias=True, memory_efficient=True)
    again = ArchConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert again.arch_hash() == cfg.arch_hash()


def test_from_dict_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match=r"unknown ArchConfig field\(s\) \['growth'\]; valid fields are"):
        ArchConfig.from_dict({"growth": 12})
    with pytest.raises(ValueError, match="unknown ArchConfig field"):
        ArchConfig().replace(blocks=(1,))


def test_hash_is_stable_and_short() -> None:
    # The hash is stored with every trial: it must not change between runs or releases.
    assert ArchConfig().arch_hash() == ArchConfig().arch_hash()
    assert len(ArchConfig().arch_hash()) == 12
    assert ArchConfig().arch_hash() != ArchConfig(growth_rate=24).arch_hash()


@pytest.mark.parametrize(
    ("mode", "ignored"),
    [
        ("dense", {"width_multiplier": 3.0}),
        ("osp", {"width_multiplier": 3.0}),
        ("csp", {"width_multiplier": 3.0}),
        ("residual", {"compression": 0.3}),
        ("plain", {"compression": 0.3}),
        ("dense_residual", {"compression": 0.3}),
        ("residual", {"growth_rate": 9}),  # no bottleneck: k is unused
        ("plain", {"growth_rate": 9}),
        ("dense", {"memory_efficient": True}),  # same network, other execution
    ],
)
def test_ignored_knobs_hash_equal(mode: str, ignored: dict[str, object]) -> None:
    base = tiny(mode, bn_size=0)
    other = base.replace(**ignored)
    assert other != base
    assert other.canonical() == base.canonical()
    assert other.arch_hash() == base.arch_hash()


@pytest.mark.parametrize(
    ("mode", "used"),
    [
        ("dense", {"compression": 0.3}),
        ("osp", {"growth_rate": 9}),
        ("csp", {"growth_rate": 9}),  # k is the dense part's growth even without a bottleneck
        ("csp", {"compression": 0.3}),
        ("residual", {"width_multiplier": 3.0}),
        ("dense_residual", {"growth_rate": 9}),
        ("plain", {"drop_rate": 0.1}),
        ("residual", {"bn_size": 1}),
    ],
)
def test_used_knobs_change_the_hash(mode: str, used: dict[str, object]) -> None:
    base = tiny(mode, bn_size=0)
    assert base.replace(**used).arch_hash() != base.arch_hash()


def test_single_stage_ignores_transition_knobs() -> None:
    a = tiny("dense", block_config=(3,), compression=0.5)
    assert a.replace(compression=0.9).arch_hash() == a.arch_hash()


def test_transition_factors_giving_the_same_widths_are_one_network() -> None:
    # Seen in a real study: compression 0.4447 and 0.4468 both take 24 channels to 10; trained twice.
    a = tiny("dense", block_config=(2, 2), growth_rate=8, init_features=8, compression=0.4447)
    b = a.replace(compression=0.4468)
    assert a.stage_channels() == b.stage_channels() == ((8, 24, 10), (10, 26, 26))
    assert a.arch_hash() == b.arch_hash()
    assert a.canonical().compression == b.canonical().compression == 0.42  # the shortest decimal giving 10
    assert a.replace(compression=0.5).arch_hash() != a.arch_hash()  # 12 channels: another network

    def shapes(cfg: ArchConfig) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v.shape) for k, v in build_model(cfg).state_dict().items()}

    assert shapes(a) == shapes(b) == shapes(a.canonical())


@pytest.mark.parametrize("mode", sorted(MODES))
def test_configs_hash_equal_exactly_when_they_build_the_same_widths(mode: str) -> None:
    knob = MODES[mode].transition_knob
    rng = random.Random(0)
    values = [
        round(rng.uniform(0.05, 1.0 if knob == "compression" else 3.0), rng.choice([2, 3, 4, 6])) for _ in range(300)
    ]
    for block_config in [(1, 2), (2, 1, 3), (3, 3, 3, 1)]:
        by_widths: defaultdict[object, set[float]] = defaultdict(set)
        by_hash: defaultdict[str, set[float]] = defaultdict(set)
        for value in values:
            try:
                cfg = tiny(mode, block_config=block_config, **{knob: value})
            except ValueError:  # a transition rounds to 0 channels
                continue
            canon = cfg.canonical()
            assert canon.stage_channels() == cfg.stage_channels(), value  # the same network
            assert canon.canonical() == canon and canon.arch_hash() == cfg.arch_hash()
            by_widths[cfg.stage_channels()].add(value)
            by_hash[cfg.arch_hash()].add(value)
        assert len(by_widths) > 5
        assert sorted(map(sorted, by_widths.values())) == sorted(map(sorted, by_hash.values()))


def test_round_transition_factors_and_preset_hashes_stay_as_they_were() -> None:
    # Hashes are stored with every trial; canonical transition factors changed only values like 0.4447.
    for name, preset in PRESETS.items():
        knob = MODES[preset.config.connectivity].transition_knob
        if knob not in preset.config.ignored_knobs():
            assert getattr(preset.config.canonical(), knob) == getattr(preset.config, knob), name
    assert PRESETS["densenet_bc_100_k12"].config.arch_hash() == "181668f3977f"
    assert PRESETS["resdensenet"].config.arch_hash() == "cee9db145848"
    for value in (0.25, 0.5, 0.75, 1.0):
        assert tiny("dense", init_features=64, compression=value).canonical().compression == value
    for value in (0.5, 1.0, 1.5, 2.0, 3.0):
        assert tiny("residual", init_features=64, width_multiplier=value).canonical().width_multiplier == value


@pytest.mark.parametrize(
    ("mode", "bn_size", "stages", "ignored"),
    [
        ("dense", 0, 2, ("width_multiplier",)),
        ("dense", 4, 1, ("compression", "width_multiplier")),
        ("osp", 0, 2, ("width_multiplier",)),
        ("residual", 0, 2, ("growth_rate", "compression")),
        ("residual", 4, 2, ("compression",)),
        ("plain", 0, 1, ("growth_rate", "compression", "width_multiplier")),
        ("dense_residual", 0, 2, ("compression",)),
    ],
)
def test_ignored_knobs_are_what_the_canonical_form_resets(
    mode: str, bn_size: int, stages: int, ignored: tuple[str, ...]
) -> None:
    """A report blanks these: changing any of them leaves the hash alone, changing any other knob does not."""
    base = tiny(mode, bn_size=bn_size, block_config=(2,) * stages)
    assert base.ignored_knobs() == ignored
    changed = {"growth_rate": 9, "compression": 0.3, "width_multiplier": 3.0}
    for knob, value in changed.items():
        assert (base.replace(**{knob: value}).arch_hash() == base.arch_hash()) == (knob in ignored), knob


def test_each_mode_has_its_own_colour_and_marker_shape() -> None:
    """Charts tell modes apart without colour too: distinct shapes, none the baselines' star."""
    from nas.arch.modes import MODES

    assert len({m.colour for m in MODES.values()}) == len({m.symbol for m in MODES.values()}) == len(MODES)
    assert "star" not in {m.symbol for m in MODES.values()}

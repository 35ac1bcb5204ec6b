"""Search spaces: the shipped files, sampling with real Optuna studies, grids and fixed fallbacks."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from nas.arch import MODES, ArchConfig
from nas.search.spec.space import SearchSpace
from nas.search.spec.space_file import SPACE_DIR, load_space, resolve_space_path

SHIPPED = ["cifar_bc", "connectivity_ablation", "densenet_family", "tabular_digits", "tabular_grid"]


def write(tmp_path: Path, text: str, name: str = "space.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def sample(space: SearchSpace, sampler: optuna.samplers.BaseSampler, n: int) -> list[optuna.trial.FrozenTrial]:
    """n trials of an in-memory study; each trial's value is a function of its config."""

    def objective(trial: optuna.Trial) -> float:
        config = space.config(space.suggest(trial), in_channels=1, num_classes=10)
        return config.growth_rate + 10 * sum(config.block_config)

    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=n)  # GridSampler stops the study itself: not ask/tell
    return study.trials


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_spaces_load(name: str) -> None:
    space = load_space(resolve_space_path(name))
    assert space.name == name
    assert space.description
    assert space.path == str((SPACE_DIR / f"{name}.toml").resolve())
    assert space.fixed["stem"] == ("imagenet" if name == "tabular_grid" else "cifar")
    assert set(space.distributions()) == {knob.name for knob in space.knobs}
    assert sorted(p.stem for p in SPACE_DIR.glob("*.toml")) == SHIPPED


def test_densenet_family_samples_valid_configs_and_respects_conditions() -> None:
    space = load_space(resolve_space_path("densenet_family"))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    modes = set()
    for _ in range(50):
        trial = study.ask()
        values = space.suggest(trial)
        config = space.config(values, in_channels=1, num_classes=10)
        assert config == space.config(dict(trial.params), in_channels=1, num_classes=10)
        assert (config.in_channels, config.num_classes, config.stem) == (1, 10, "cifar")
        mode = config.connectivity
        modes.add(mode)
        # Each transition knob is sampled exactly for the modes whose transitions use it.
        assert ("compression" in trial.params) == (MODES[mode].transition_knob == "compression")
        assert ("width_multiplier" in trial.params) == (MODES[mode].transition_knob == "width_multiplier")
        if "compression" not in trial.params:
            assert config.compression == ArchConfig().compression  # an excluded knob keeps the default
        assert isinstance(trial.params["block_config"], str)
        assert config.block_config in {(2, 2), (3, 3), (2, 2, 2), (4, 4)}
        assert 4 <= config.growth_rate <= 16 and config.growth_rate % 4 == 0
        study.tell(trial, 0.5)
    assert modes == set(MODES)


def test_same_seed_same_params() -> None:
    space = load_space(resolve_space_path("densenet_family"))

    def asked() -> list[dict[str, object]]:
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1))
        for _ in range(15):
            trial = study.ask()
            config = space.config(space.suggest(trial), in_channels=1, num_classes=10)
            study.tell(trial, config.growth_rate + 10 * sum(config.block_config))
        return [t.params for t in study.trials]

    first = asked()
    assert first == asked()
    assert len({str(params) for params in first}) > 1


def test_grid_of_the_ablation_space_runs_every_mode() -> None:
    space = load_space(resolve_space_path("connectivity_ablation"))
    grid = space.grid()
    assert grid == {"connectivity": list(MODES)}
    trials = sample(space, optuna.samplers.GridSampler(grid, seed=0), len(MODES))
    assert sorted(t.params["connectivity"] for t in trials) == sorted(MODES)
    config = space.config({"connectivity": "osp"}, in_channels=3, num_classes=10)
    assert (config.block_config, config.growth_rate, config.width_multiplier) == ((3, 3), 12, 2.0)


def test_grid_expands_int_steps_and_refuses_ranges_and_conditions(tmp_path: Path) -> None:
    stepped = write(tmp_path, '[knobs.block_config]\nchoices = [[2], [2, 2]]\n[knobs.growth_rate]\ntype = "int"\n'
                    "low = 4\nhigh = 12\nstep = 4\n")  # fmt: skip
    grid = load_space(stepped).grid()
    assert grid == {"block_config": ["2", "2,2"], "growth_rate": [4, 8, 12]}
    trials = sample(load_space(stepped), optuna.samplers.GridSampler(grid, seed=0), 6)
    assert sorted((t.params["block_config"], t.params["growth_rate"]) for t in trials) == [
        (blocks, k) for blocks in ("2", "2,2") for k in (4, 8, 12)
    ]
    ranged = write(tmp_path, '[knobs.drop_rate]\ntype = "float"\nlow = 0.0\nhigh = 0.5\n', "ranged.toml")
    with pytest.raises(ValueError, match=r"knob 'drop_rate' is a float range.*use another sampler"):
        load_space(ranged).grid()
    unstepped = write(tmp_path, '[knobs.growth_rate]\ntype = "int"\nlow = 4\nhigh = 8\n', "unstepped.toml")
    with pytest.raises(ValueError, match="knob 'growth_rate'"):
        load_space(unstepped).grid()
    with pytest.raises(ValueError, match=r"knob 'compression' is conditional.*use another sampler"):
        load_space(resolve_space_path("densenet_family")).grid()


def test_enqueued_params_and_fixed_fallback(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'name = "fallback"\n[fixed]\ncompression = 1\nstem = "cifar"\n'
        '[knobs.connectivity]\nchoices = ["plain", "dense"]\n'
        '[knobs.compression]\ntype = "float"\nlow = 0.25\nhigh = 0.75\nstep = 0.25\n'
        'when = { connectivity = ["dense"] }\n'
        "[knobs.block_config]\nchoices = [[1, 2], [3]]\n",
    )
    space = load_space(path)
    assert space.fixed == {"compression": 1.0, "stem": "cifar"}
    study = optuna.create_study()
    study.enqueue_trial({"connectivity": "plain", "block_config": "1,2"})
    study.enqueue_trial({"connectivity": "dense", "compression": 0.5, "block_config": "3"})
    plain, dense = study.ask(), study.ask()
    assert space.suggest(plain) == {
        "compression": 1.0,
        "stem": "cifar",
        "connectivity": "plain",
        "block_config": (1, 2),
    }
    assert space.suggest(dense)["compression"] == 0.5
    assert space.config(dense.params, in_channels=1, num_classes=2).block_config == (3,)
    # Params of an excluded knob are ignored; an active knob must be there; strangers are refused.
    config = space.config(
        {"connectivity": "plain", "compression": 0.25, "block_config": "3"}, in_channels=1, num_classes=2
    )
    assert config.compression == 1.0
    with pytest.raises(ValueError, match="lack the active knob 'compression'"):
        space.config({"connectivity": "dense", "block_config": "3"}, in_channels=1, num_classes=2)
    with pytest.raises(ValueError, match=r"params \['growth'\] are not knobs"):
        space.config({"connectivity": "plain", "block_config": "3", "growth": 3}, in_channels=1, num_classes=2)


def test_every_network_of_the_tabular_grid_is_each_distinct_network_once():
    from collections import Counter

    import optuna

    from nas.search.spec.space_file import load_space, shipped_dir

    space = load_space(shipped_dir("search_spaces") / "tabular_grid.toml")
    nets = space.every_network(in_channels=1, num_classes=10)
    hashes = {cfg.arch_hash() for cfg in nets}
    assert len(hashes) == len(nets) == 160
    # per mode: the product of the knobs that mode uses (growth 2 x bn 2 x compression or width 2 x blocks 4)
    assert Counter(cfg.connectivity for cfg in nets) == {
        "dense": 32,
        "osp": 32,
        "csp": 32,
        "dense_residual": 32,
        "plain": 16,
        "residual": 16,
    }
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(200):  # whatever a sampler proposes is one of them
        trial = study.ask()
        fields = space.suggest(trial)
        assert space.config(trial.params, in_channels=1, num_classes=10).arch_hash() in hashes
        study.tell(trial, 0.0)
        assert fields


def test_every_network_refuses_a_float_range():
    import pytest

    from nas.errors import UsageError
    from nas.search.spec.space_file import load_space, shipped_dir

    space = load_space(shipped_dir("search_spaces") / "densenet_family.toml")
    with pytest.raises(UsageError, match="compression"):
        space.every_network(in_channels=1, num_classes=10)


def test_the_digits_grid_is_the_tabular_grid_with_the_cifar_stem() -> None:
    """The second recorded table's space differs from the first in its stem alone (8x8 images need the CIFAR one)."""
    grid = load_space(SPACE_DIR / "tabular_grid.toml")
    digits = load_space(SPACE_DIR / "tabular_digits.toml")
    assert digits.knobs == grid.knobs
    assert {**digits.fixed, "stem": "imagenet"} == grid.fixed
    assert len(digits.every_network(in_channels=1, num_classes=10)) == 160

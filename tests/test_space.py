"""Search spaces: the shipped files, sampling with real Optuna studies, and every refusal."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from nas.arch import CONNECTIVITIES, ArchConfig
from nas.space import SPACE_DIR, SearchSpace, load_space, resolve_space_path

SHIPPED = ["cifar_bc", "connectivity_ablation", "densenet_family"]


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
    assert space.fixed["stem"] == "cifar"
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
        assert ("compression" in trial.params) == (mode in ("dense", "osp"))
        assert ("width_multiplier" in trial.params) == (mode in ("plain", "residual", "dense_residual"))
        if "compression" not in trial.params:
            assert config.compression == ArchConfig().compression  # an excluded knob keeps the default
        assert isinstance(trial.params["block_config"], str)
        assert config.block_config in {(2, 2), (3, 3), (2, 2, 2), (4, 4)}
        assert 4 <= config.growth_rate <= 16 and config.growth_rate % 4 == 0
        study.tell(trial, 0.5)
    assert modes == set(CONNECTIVITIES)


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
    assert grid == {"connectivity": list(CONNECTIVITIES)}
    trials = sample(space, optuna.samplers.GridSampler(grid, seed=0), 5)
    assert sorted(t.params["connectivity"] for t in trials) == sorted(CONNECTIVITIES)
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


def test_resolve_space_path(tmp_path: Path) -> None:
    assert resolve_space_path("cifar_bc") == SPACE_DIR / "cifar_bc.toml"
    (tmp_path / "mine").mkdir()
    mine = write(tmp_path / "mine", '[knobs.connectivity]\nchoices = ["dense"]\n', "s.toml")
    assert resolve_space_path("mine/s.toml", relative_to=tmp_path) == mine
    assert resolve_space_path(str(mine)) == mine
    assert load_space(mine).name == "s"  # the file stem when name is absent
    for bad in ("nope", "..", ".hidden"):
        with pytest.raises(ValueError, match="shipped spaces are cifar_bc, connectivity_ablation, densenet_family"):
            resolve_space_path(bad)
    with pytest.raises(ValueError, match=r"does not exist \(shipped spaces: cifar_bc"):
        resolve_space_path("../nope.toml", relative_to=tmp_path)


RANGE = '[knobs.growth_rate]\ntype = "int"\nlow = 8\nhigh = 16\n'
MODES = '[knobs.connectivity]\nchoices = ["dense", "osp"]\n'

BAD = {
    "unknown top-level key": (
        'nmae = "x"\n' + MODES,
        "unknown key nmae (valid keys: description, fixed, knobs, name)",
    ),
    "unknown knob key": (
        RANGE + "setp = 2\n",
        "unknown key knobs.growth_rate.setp (valid keys: choices, high, log, low, step, type, when)",
    ),
    "wrong type": (
        '[knobs.growth_rate]\ntype = "int"\nlow = "8"\nhigh = 16\n',
        'knobs.growth_rate.low = "8" is invalid: an integer is required',
    ),
    "unknown range type": (
        '[knobs.growth_rate]\ntype = "integer"\nlow = 8\nhigh = 16\n',
        'knobs.growth_rate.type = "integer" is invalid: choose one of "float", "int"',
    ),
    "range type of the wrong field kind": (
        '[knobs.compression]\ntype = "int"\nlow = 1\nhigh = 2\n',
        'knobs.compression.type = "int" is invalid: compression is a float field: use type = "float"',
    ),
    "range over a string field": (
        '[knobs.stem]\ntype = "int"\nlow = 1\nhigh = 2\n',
        "stem is not a number: give choices",
    ),
    "low >= high": (
        '[knobs.growth_rate]\ntype = "int"\nlow = 16\nhigh = 8\n',
        "knobs.growth_rate.high = 8 is invalid: it must be greater than low = 16",
    ),
    "missing high": ('[knobs.growth_rate]\ntype = "int"\nlow = 16\n', "knobs.growth_rate.high is missing"),
    "log with low <= 0": (
        '[knobs.drop_rate]\ntype = "float"\nlow = 0.0\nhigh = 0.5\nlog = true\n',
        "knobs.drop_rate.low = 0.0 is invalid: a log range needs low > 0",
    ),
    "log and step": (RANGE + "step = 2\nlog = true\n", "knobs.growth_rate sets both step and log"),
    "step not dividing the range": (RANGE + "step = 3\n", "knobs.growth_rate.step = 3 is invalid: high - low = 8"),
    "non-positive step": (RANGE + "step = 0\n", "knobs.growth_rate.step = 0 is invalid: an integer > 0"),
    "bound invalid for the field": (
        '[knobs.compression]\ntype = "float"\nlow = 0\nhigh = 1\n',
        "knobs.compression.low = 0 is invalid: a number in (0, 1] is required",
    ),
    "choices and a range": (
        "[knobs.growth_rate]\nchoices = [8]\nlow = 8\n",
        "knobs.growth_rate sets choices and low: a knob is either choices",
    ),
    "neither choices nor a range": (
        "[knobs.growth_rate]\nlow = 8\n",
        "knobs.growth_rate needs choices = [...] or a range",
    ),
    "empty choices": (
        "[knobs.growth_rate]\nchoices = []\n",
        "knobs.growth_rate.choices = [] is invalid: a non-empty list",
    ),
    "choice invalid for the field": (
        '[knobs.connectivity]\nchoices = ["dense", "dens"]\n',
        "knobs.connectivity.choices: \"dens\" is invalid: choose one of ['dense', 'dense_residual', 'osp'",
    ),
    "choice of the wrong type": (
        '[knobs.bn_size]\nchoices = [0, "4"]\n',
        'knobs.bn_size.choices: "4" is invalid: an integer is required',
    ),
    "duplicate choice": ("[knobs.bn_size]\nchoices = [0, 4, 4]\n", "knobs.bn_size.choices lists 4 twice"),
    "list choice outside block_config": (
        "[knobs.bn_size]\nchoices = [[0]]\n",
        "only block_config choices may be lists",
    ),
    "bad block_config choice": (
        "[knobs.block_config]\nchoices = [[2, 2], [2, 0]]\n",
        "knobs.block_config.choices: [2, 0] is invalid: a non-empty list of positive layer counts",
    ),
    "in_channels as a knob": (
        "[knobs.in_channels]\nchoices = [1, 3]\n",
        "knobs.in_channels cannot be searched: in_channels and num_classes come from the dataset",
    ),
    "num_classes fixed": (
        "[fixed]\nnum_classes = 10\n",
        "fixed.num_classes cannot be set: in_channels and num_classes come from the dataset",
    ),
    "memory_efficient as a knob": (
        "[knobs.memory_efficient]\nchoices = [true, false]\n",
        "knobs.memory_efficient cannot be searched",
    ),
    "unknown knob": (
        "[knobs.depth]\nchoices = [1]\n",
        "unknown knob knobs.depth: not a searchable ArchConfig field (valid: block_config",
    ),
    "unknown fixed key": ("[fixed]\ndepth = 3\n", "unknown key fixed.depth (valid keys: block_config, bn_size"),
    "bad fixed value": (
        '[fixed]\nstem = "tiny"\n',
        "fixed.stem = \"tiny\" is invalid: choose one of ['cifar', 'imagenet']",
    ),
    "fixed and always sampled": ('[fixed]\nconnectivity = "osp"\n' + MODES, "knobs.connectivity is also in [fixed]"),
    "condition on a later knob": (
        RANGE + 'when = { connectivity = ["dense"] }\n' + MODES,
        "knobs.growth_rate.when.connectivity: knob 'connectivity' is declared after 'growth_rate'",
    ),
    "condition on an unknown knob": (
        MODES + RANGE + 'when = { mode = ["dense"] }\n',
        "knobs.growth_rate.when.mode: 'mode' is not a knob of this space (earlier knobs: connectivity)",
    ),
    "condition on a value the knob cannot take": (
        MODES + RANGE + 'when = { connectivity = ["plain"] }\n',
        "knobs.growth_rate.when.connectivity: \"plain\" is not a value knob 'connectivity' can take "
        '(choices ["dense", "osp"])',
    ),
    "condition off a range's step": (
        '[knobs.init_features]\ntype = "int"\nlow = 8\nhigh = 16\nstep = 4\n'
        + RANGE
        + "when = { init_features = [10] }\n",
        "10 is not a value knob 'init_features' can take (int range 8..16 step 4)",
    ),
    "condition not a table": (
        MODES + RANGE + 'when = "dense"\n',
        'knobs.growth_rate.when = "dense" is invalid: a table',
    ),
    "knob not a table": ("[knobs]\ngrowth_rate = 8\n", "knobs.growth_rate = 8 is invalid: a table with choices"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_space_files_name_the_file_and_key(tmp_path: Path, case: str) -> None:
    text, message = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as error:
        load_space(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_syntax_error_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[knobs.connectivity]\nchoices = ["dense"]\nwhen = {\n')
    with pytest.raises(ValueError, match=rf"^{path}: invalid TOML: .*line 3"):
        load_space(path)
    with pytest.raises(ValueError, match=rf"^{tmp_path / 'nope.toml'}: no such search space file"):
        load_space(tmp_path / "nope.toml")

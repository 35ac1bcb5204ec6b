"""Search-space files: name or path resolution and every refusal, naming the file and key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from nas.search.spec.space_file import SPACE_DIR, load_space, resolve_space_path, shipped_dir


def write(tmp_path: Path, text: str, name: str = "space.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_files_are_found_in_the_source_tree_then_where_an_install_put_them(tmp_path: Path) -> None:
    source, prefix, user = tmp_path / "src", tmp_path / "venv", tmp_path / "user"
    (user / "share" / "densenas" / "search_spaces").mkdir(parents=True)
    prefixes = (str(prefix), str(user))
    assert shipped_dir("search_spaces", source_root=source, prefixes=prefixes) == user / "share/densenas/search_spaces"
    (prefix / "share" / "densenas" / "search_spaces").mkdir(parents=True)
    assert (
        shipped_dir("search_spaces", source_root=source, prefixes=prefixes) == prefix / "share/densenas/search_spaces"
    )
    (source / "search_spaces").mkdir(parents=True)
    assert shipped_dir("search_spaces", source_root=source, prefixes=prefixes) == source / "search_spaces"
    assert shipped_dir("studies", source_root=source, prefixes=prefixes) == source / "studies"  # none: named anyway


def test_an_install_carries_every_shipped_space_and_study() -> None:
    root = SPACE_DIR.parent
    data_files = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    for kind in ("search_spaces", "studies"):
        (pattern,) = data_files[f"share/densenas/{kind}"]
        assert sorted(root.glob(pattern)) == sorted((root / kind).glob("*.toml")) != []


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
        "knobs.connectivity.choices: \"dens\" is invalid: choose one of ['csp', 'dense', 'dense_residual', 'osp'",
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

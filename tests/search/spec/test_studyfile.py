"""Study files: the shipped ones, defaults, paths, and a message for every kind of mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas.arch import MODES
from nas.data.datasets import AugmentConfig, DataConfig
from nas.search.spec.space_file import SPACE_DIR, load_space
from nas.search.spec.studyfile import Ablation, Constraints, Pruning, StudyFile
from nas.search.spec.studyfile_reader import StudyFileError, load_study_file
from nas.train.recipe import Recipe

STUDIES = Path(__file__).resolve().parents[3] / "studies"


def write(folder: Path, text: str, name: str = "x.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def study_text(**study: object) -> str:
    """A small valid study file; keyword arguments replace [study] keys (None drops one)."""
    keys: dict[str, object] = {"name": "t", "space": "connectivity_ablation", "trials": 3, **study}
    lines = [f"{key} = {json.dumps(value)}" for key, value in keys.items() if value is not None]
    return "[study]\n" + "\n".join(lines) + "\n\n[recipe]\nepochs = 1\n"


def test_quickstart() -> None:
    study = load_study_file(STUDIES / "quickstart.toml")
    assert study.path == str(STUDIES / "quickstart.toml")
    assert (study.name, study.sampler, study.time_limit_minutes) == ("quickstart", "tpe", 3.0)
    assert study.trials >= 20  # the README's promise: at least 20 trials in at most 3 minutes
    assert (study.device, study.seed, study.storage, study.baselines) == ("cpu", 0, None, ("preact_resnet20",))
    assert study.objectives == ("val_accuracy", "flops")
    assert study.directions() == ["maximize", "minimize"]
    assert study.space == load_space(SPACE_DIR / "densenet_family.toml")
    assert study.data == DataConfig(name="digits")
    assert study.recipe == Recipe(epochs=study.recipe.epochs, batch_size=32, lr=0.2, measure_latency=False)
    assert study.pruning == Pruning(method="pareto_stop", min_epochs=1, eta=3, margin=0.02)
    assert study.constraints == Constraints()
    assert study.ablation is None
    assert json.loads(json.dumps(study.to_dict()))["space"]["knobs"][3]["when"] == {
        "connectivity": ["dense", "osp", "csp"]
    }


def test_recipe_base_fast_loads_and_the_file_keys_override_it(tmp_path: Path) -> None:
    path = write(tmp_path, study_text() + 'base = "fast"\nema_decay = 0.9\nnorm_bias_lr_scale = 2\n')
    study = load_study_file(path)
    assert study.recipe == Recipe.from_dict({"base": "fast", "epochs": 1, "ema_decay": 0.9, "norm_bias_lr_scale": 2.0})
    assert study.recipe.tta_flip and study.recipe.alternate_flips and not study.recipe.decay_norm_and_bias
    assert type(study.recipe.norm_bias_lr_scale) is float  # recipe hashes must not tell 2 from 2.0
    assert "base" not in study.to_dict()["recipe"]  # what the study stores is every field, resolved
    default = load_study_file(write(tmp_path, study_text() + 'base = "default"\n', "d.toml"))
    assert default.recipe == Recipe(epochs=1)


def test_pruning_methods_and_study_files_written_before_them(tmp_path: Path) -> None:
    def pruning(table: str) -> Pruning:
        text = study_text().replace("epochs = 1", "epochs = 9") + f"[pruning]\n{table}\n"
        return load_study_file(write(tmp_path, text)).pruning

    assert pruning("") == Pruning(method="none", min_epochs=1, eta=3, margin="auto")
    assert pruning("enabled = false") == Pruning(method="none")  # an old study file that turned stopping off
    assert pruning("enabled = true\nmargin = 0.05") == Pruning(method="pareto_stop", margin=0.05)
    assert pruning("enabled = true") == Pruning(method="pareto_stop")  # what it meant: the only rule there was
    assert pruning('enabled = true\nmethod = "mo_asha"\neta = 2') == Pruning(method="mo_asha", eta=2)
    assert pruning('method = "none"') == Pruning(method="none")
    margin = pruning("margin = 0")
    assert margin == Pruning(margin=0.0) and type(margin.margin) is float
    with pytest.raises(ValueError, match="choose one of pareto_stop, mo_asha, none"):
        Pruning(method="asha")


def test_fashion_mnist_gpu_and_ablation_studies() -> None:
    gpu = load_study_file(STUDIES / "fashion_mnist_gpu.toml")
    assert (gpu.device, gpu.sampler, gpu.trials, gpu.space.name) == ("cuda", "nsga2", 200, "cifar_bc")
    assert gpu.objectives == ("val_accuracy", "flops", "latency_ms")
    assert gpu.baselines == ("densenet_bc_100_k12", "torchvision:resnet18:cifar")
    assert gpu.constraints == Constraints(max_params=2_000_000)
    assert (gpu.data.name, gpu.recipe.epochs, gpu.recipe.batch_size) == ("fashion_mnist", 15, 256)
    ablation = load_study_file(STUDIES / "connectivity_ablation.toml")
    assert ablation.objectives == ("val_accuracy", "params")
    assert ablation.ablation == Ablation(modes=tuple(MODES), match="params", target=20000, seeds=3)
    assert ablation.space.grid() == {"connectivity": list(MODES)}
    assert ablation.trials == len(MODES)  # `nas run` on it: the grid visits every mode once
    assert sorted(p.name for p in STUDIES.glob("*.toml")) == [
        "cifar10_gpu.toml",
        "connectivity_ablation.toml",
        "fashion_mnist_gpu.toml",
        "imagefolder.toml",
        "quickstart.toml",
    ]


def test_cifar10_gpu_and_imagefolder_studies_load_without_touching_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # imagefolder.toml's root is relative to here, and absent
    cifar = load_study_file(STUDIES / "cifar10_gpu.toml")
    assert (cifar.device, cifar.sampler, cifar.space.name) == ("cuda", "nsga2", "cifar_bc")
    assert cifar.data == DataConfig(name="cifar10")
    assert cifar.baselines == ("densenet_bc_100_k12", "torchvision:resnet18:cifar")
    assert cifar.objectives == ("val_accuracy", "flops", "latency_ms") and cifar.recipe.measure_latency
    folder = load_study_file(STUDIES / "imagefolder.toml")
    assert folder.data == DataConfig(name="imagefolder", root="data/my_images", image_size=64, val_fraction=0.2)
    assert folder.baselines == ("resdensenet", "torchvision:resnet18")
    assert (folder.recipe.optimizer, folder.recipe.schedule, folder.recipe.label_smoothing) == ("adamw", "cosine", 0.1)
    assert folder.space == load_space(SPACE_DIR / "densenet_family.toml")
    assert list(tmp_path.iterdir()) == []  # no download, no data folder, no runs/


def test_defaults_paths_and_nothing_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spaces").mkdir()
    write(tmp_path / "spaces", '[fixed]\nstem = "cifar"\n[knobs.connectivity]\nchoices = ["dense", "osp"]\n', "s.toml")
    text = study_text(space="spaces/s.toml") + (
        '[data]\nname = "digits"\naugment = { crop_padding = 2, flip = true }\n'
        '[ablation]\nmodes = ["dense"]\nmatch = "flops"\ntarget = 1e6\nbase = "connectivity_ablation"\n'
    )
    path = write(tmp_path, text)
    before = sorted(tmp_path.rglob("*"))
    study = load_study_file("x.toml")
    assert sorted(tmp_path.rglob("*")) == before  # no runs/ folder, no journal
    assert study.path == str(path)
    assert (study.objectives, study.sampler, study.seed, study.device) == (("val_accuracy",), "tpe", 0, "auto")
    assert study.space.path == str(tmp_path / "spaces" / "s.toml")
    assert study.data.augment == AugmentConfig(crop_padding=2, flip=True)
    assert study.ablation is not None and study.ablation.base == str(SPACE_DIR / "connectivity_ablation.toml")
    assert study.storage_url() == str(Path("runs") / "t" / "journal.log")
    assert study.run_dir(tmp_path / "out") == tmp_path / "out" / "t"
    assert study.run_dir(tmp_path / "out").resolve().is_relative_to((tmp_path / "out").resolve())
    assert json.loads(json.dumps(study.to_dict()))["data"]["augment"]["crop_padding"] == 2
    explicit = load_study_file(write(tmp_path, study_text(storage="sqlite:///runs/t.db"), "y.toml"))
    assert explicit.storage_url() == "sqlite:///runs/t.db"


def test_study_file_validates_on_construction() -> None:
    study = load_study_file(STUDIES / "connectivity_ablation.toml")
    with pytest.raises(ValueError, match=r"StudyFile.name = '\.\./x' is invalid"):
        StudyFile(path="x", name="../x", space=study.space, objectives=("val_accuracy",), sampler="tpe", trials=1)
    assert StudyFile(
        path="x", name="ok", space=study.space, objectives=["val_accuracy"], sampler="grid", trials=1
    ).objectives == ("val_accuracy",)


SPACE_ERROR = '[knobs.compression]\ntype = "float"\nlow = 0\nhigh = 1\n'

BAD_STUDY = {
    "trials not an integer": (study_text(trials="ten"), 'study.trials = "ten" is invalid: an integer >= 1 is required'),
    "trials zero": (study_text(trials=0), "study.trials = 0 is invalid: an integer >= 1 is required"),
    "trials missing": (study_text(trials=None), "study.trials is missing: an integer >= 1 is required"),
    "unknown recipe key": (
        study_text() + "epoch = 2\n",
        "unknown key recipe.epoch (valid keys: alternate_flips, amp, base, batch_size, channels_last, compile,",
    ),
    "unknown recipe base": (
        study_text() + 'base = "fastest"\n',
        "recipe.base = \"fastest\" is invalid: choose one of ['default', 'fast']",
    ),
    "recipe base not a name": (
        study_text() + "base = 2\n",
        "recipe.base = 2 is invalid: choose one of ['default', 'fast']",
    ),
    "bad value over a base": (
        study_text() + 'base = "fast"\nema_decay = 1.5\n',
        "recipe.ema_decay = 1.5 is invalid: a number in [0, 1) is required (0 = off)",
    ),
    "unknown study key": (
        study_text(trails=3),
        "unknown key study.trails (valid keys: baselines, device, heartbeat_seconds, name,",
    ),
    "unknown table": (study_text() + "[sudy]\n", "unknown table [sudy] (valid tables: ablation, constraints, data,"),
    "study not a table": ("study = 3\n", "study = 3 is invalid: a table [study] is required"),
    "no study table": ("[recipe]\nepochs = 1\n", "a [study] table is required"),
    "name with a slash": (study_text(name="a/b"), 'study.name = "a/b" is invalid: 1 to 64 letters'),
    "name ..": (study_text(name=".."), 'study.name = ".." is invalid'),
    "name with markup": (study_text(name="<script>"), 'study.name = "<script>" is invalid'),
    "hidden name": (study_text(name=".runs"), 'study.name = ".runs" is invalid'),
    "long name": (study_text(name="n" * 65), "study.name = "),
    "objectives without val_accuracy first": (
        study_text(objectives=["flops", "val_accuracy"]),
        'study.objectives = ["flops", "val_accuracy"] is invalid: val_accuracy first, then any of [\'flops\', ',
    ),
    "unknown objective": (
        study_text(objectives=["val_accuracy", "energy"]),
        "'energy' is not one of ['flops', 'params', 'latency_ms', 'peak_memory', 'train_time']",
    ),
    "duplicate objective": (study_text(objectives=["val_accuracy", "flops", "flops"]), "every entry must be unique"),
    "latency without measuring it": (
        study_text(objectives=["val_accuracy", "latency_ms"]) + "measure_latency = false\n",
        "latency_ms needs recipe.measure_latency = true",
    ),
    "unknown sampler": (
        study_text(sampler="bayes"),
        'study.sampler = "bayes" is invalid: choose one of tpe, nsga2, gp, random, grid',
    ),
    "grid over a conditional space": (
        study_text(sampler="grid", space="densenet_family"),
        "knob 'compression' is conditional",
    ),
    "unknown baseline": (
        study_text(baselines=["resnet"]),
        "'resnet' is neither a preset (valid presets: d2l_densenet, densenet121,",
    ),
    "unknown torchvision model": (
        study_text(baselines=["torchvision:resnet19"]),
        "'resnet19' is not a torchvision classification model (valid: alexnet,",
    ),
    "detection model as a baseline": (
        study_text(baselines=["torchvision:fasterrcnn_resnet50_fpn"]),
        "is not a torchvision classification model",
    ),
    "bad recipe value": (
        study_text() + 'optimizer = "lamb"\n',
        "recipe.optimizer = \"lamb\" is invalid: choose one of ['adamw', 'sgd']",
    ),
    "recipe wrong type": (
        study_text() + 'batch_size = "32"\n',
        'recipe.batch_size = "32" is invalid: an integer is required',
    ),
    "recipe bool": (study_text() + 'amp = "no"\n', 'recipe.amp = "no" is invalid: true or false is required'),
    "bad data name": (study_text() + '[data]\nname = "imagenet"\n', 'data.name = "imagenet" is invalid: choose one of'),
    "bad data value": (
        study_text() + "[data]\nval_fraction = 1.5\n",
        "data.val_fraction = 1.5 is invalid: a number in [0, 1)",
    ),
    "no validation split": (
        study_text() + "[data]\nval_fraction = 0\n",
        "data.val_fraction = 0 is invalid: a number in (0, 1) is required: a search needs a validation split",
    ),
    "data field not set": (
        study_text() + '[data]\nname = "imagefolder"\n',
        "data.root (not set) is invalid: imagefolder needs",
    ),
    "bad augment value": (
        study_text() + "[data]\naugment = { crop_padding = -1 }\n",
        "data.augment.crop_padding = -1 is invalid",
    ),
    "unknown augment key": (
        study_text() + "[data]\naugment = { flp = true }\n",
        "unknown key data.augment.flp (valid keys: color_jitter, crop_padding, flip)",
    ),
    "unknown space": (
        study_text(space="nope"),
        "study.space = \"nope\" is invalid: unknown search space 'nope': shipped spaces are cifar_bc,",
    ),
    "storage not a URL": (
        study_text(storage="runs/t.db"),
        'study.storage = "runs/t.db" is invalid: an Optuna storage URL',
    ),
    "unknown device": (study_text(device="gpu"), 'study.device = "gpu" is invalid: auto, cpu, cuda or cuda:N'),
    "zero time limit": (study_text(time_limit_minutes=0), "study.time_limit_minutes = 0 is invalid: a number > 0"),
    "negative seed": (study_text(seed=-1), "study.seed = -1 is invalid: an integer from 0 to 4294967295"),
    "constraint zero": (
        study_text() + "[constraints]\nmax_params = 0\n",
        "constraints.max_params = 0 is invalid: an integer > 0",
    ),
    "constraint wrong type": (
        study_text() + '[constraints]\nmax_flops = "5e6"\n',
        'constraints.max_flops = "5e6" is invalid: a number is required',
    ),
    "pruning margin": (study_text() + "[pruning]\nmargin = 2\n", "pruning.margin = 2 is invalid: a number in [0, 1]"),
    "pruning method": (
        study_text() + '[pruning]\nmethod = "asha"\n',
        'pruning.method = "asha" is invalid: choose one of pareto_stop, mo_asha, none',
    ),
    "pruning eta": (study_text() + "[pruning]\neta = 1\n", "pruning.eta = 1 is invalid: an integer >= 2"),
    "pruning margin word": (
        study_text() + '[pruning]\nmargin = "fast"\n',
        'pruning.margin = "fast" is invalid: a number in [0, 1] or "auto"',
    ),
    "pruning enabled type": (
        study_text() + '[pruning]\nenabled = "no"\n',
        'pruning.enabled = "no" is invalid: true or',
    ),
    "pruning disabled but a method": (
        study_text() + '[pruning]\nenabled = false\nmethod = "mo_asha"\n',
        'pruning.enabled = false contradicts pruning.method = "mo_asha": set method alone',
    ),
    "pruning enabled but none": (
        study_text() + '[pruning]\nenabled = true\nmethod = "none"\n',
        'pruning.enabled = true contradicts pruning.method = "none"',
    ),
    "mo_asha without a rung": (
        study_text() + '[pruning]\nmethod = "mo_asha"\n',
        "pruning.min_epochs = 1 is invalid: MO-ASHA's first rung must come before the last epoch: an integer < "
        "recipe.epochs = 1",
    ),
    "pruning unknown key": (
        study_text() + "[pruning]\nepochs = 2\n",
        "unknown key pruning.epochs (valid keys: enabled, eta, margin, method, min_epochs)",
    ),
    "ablation mode": (
        study_text() + '[ablation]\nmodes = ["dense", "fancy"]\nmatch = "params"\ntarget = 1\n',
        'ablation.modes = ["dense", "fancy"] is invalid: a non-empty list of',
    ),
    "ablation match": (
        study_text() + '[ablation]\nmodes = ["dense"]\nmatch = "time"\ntarget = 1\n',
        'ablation.match = "time" is invalid',
    ),
    "ablation tolerance": (
        study_text() + '[ablation]\nmodes = ["dense"]\nmatch = "params"\ntarget = 1\ntolerance = 1\n',
        "ablation.tolerance = 1 is invalid: a number in (0, 1)",
    ),
    "ablation missing target": (
        study_text() + '[ablation]\nmodes = ["dense"]\nmatch = "params"\n',
        "ablation.target is missing",
    ),
    "ablation unknown key": (
        study_text() + "[ablation]\nseed = 1\n",
        "unknown key ablation.seed (valid keys: base, match, modes,",
    ),
    "ablation base": (
        study_text() + '[ablation]\nmodes = ["dense"]\nmatch = "params"\ntarget = 1\nbase = "nope"\n',
        'ablation.base = "nope" is invalid: unknown search space',
    ),
    "syntax error": ('[study]\nname = "t"\ntrials = 3 3\n', "invalid TOML: "),
}


@pytest.mark.parametrize("case", list(BAD_STUDY))
def test_bad_study_files_name_the_file_and_key(tmp_path: Path, case: str) -> None:
    text, message = BAD_STUDY[case]
    path = write(tmp_path, text)
    with pytest.raises(StudyFileError) as error:
        load_study_file(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_syntax_error_line_missing_file_and_broken_space(tmp_path: Path) -> None:
    with pytest.raises(StudyFileError, match=r"invalid TOML: .*\(at line 3"):
        load_study_file(write(tmp_path, '[study]\nname = "t"\ntrials = 3 3\n'))
    with pytest.raises(StudyFileError, match=rf"^{tmp_path / 'nope.toml'}: no such study file"):
        load_study_file(tmp_path / "nope.toml")
    write(tmp_path, SPACE_ERROR, "broken.toml")
    path = write(tmp_path, study_text(space="broken.toml"), "study.toml")
    message = f'{path}: study.space = "broken.toml" is invalid: {tmp_path / "broken.toml"}: knobs.compression.low = 0'
    with pytest.raises(StudyFileError) as error:
        load_study_file(path)
    assert str(error.value).startswith(message)

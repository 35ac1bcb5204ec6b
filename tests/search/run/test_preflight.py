"""Mistakes that would fail every trial are refused before the first one, in one line, with nothing stored."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch
from PIL import Image

from nas.data.datasets import load_data
from nas.errors import UsageError
from nas.search.run.preflight import check_resume, settings
from nas.search.run.runner import check_before_trials
from nas.search.run.storage import open_storage
from nas.search.spec.studyfile_reader import load_study_file
from tests.commands import nas_here

SPACE = """
name = "s"
[fixed]
growth_rate = 4
init_features = 4
[knobs.stem]
choices = {stems}
[knobs.block_config]
choices = {blocks}
"""


def write(
    tmp_path: Path, *, stems: str = '["cifar"]', blocks: str = "[[1, 1]]", extra: str = "", epochs: int = 1
) -> Path:
    (tmp_path / "s.toml").write_text(SPACE.format(stems=stems, blocks=blocks))
    path = tmp_path / "study.toml"
    path.write_text(f"""
[study]
name = "p"
space = "s.toml"
trials = 1
device = "cpu"
{extra}
[data]
name = "digits"
[recipe]
epochs = {epochs}
batch_size = 64
measure_latency = false
""")
    return path


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_a_device_this_machine_lacks_is_refused_before_the_study_exists(tmp_path: Path, device: str) -> None:
    path = write(tmp_path)
    run = nas_here("run", str(path), "--device", device, cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        f"nas run: error: device = {device!r} is invalid: CUDA is not available on this machine"
    ]
    assert not (tmp_path / "runs").exists()


def test_a_space_whose_deepest_network_cannot_take_the_input_is_refused(tmp_path: Path) -> None:
    sf = load_study_file(write(tmp_path, stems='["cifar", "imagenet"]', blocks="[[1], [1, 1, 1]]"))
    data = load_data(sf.data)
    check_before_trials(load_study_file(write(tmp_path, blocks="[[1], [1, 1, 1]]")), data, device="cpu")  # cifar: fits
    with pytest.raises(UsageError) as err:
        check_before_trials(sf, data, device="cpu")
    assert str(err.value).startswith(f"{sf.path}: the space 's' can draw networks with stem = imagenet, ")
    assert "block_config = [1, 1, 1], which cannot take digits's 8x8 input" in str(err.value)
    assert err.value.field == "study.space"


def test_a_baseline_that_cannot_take_the_input_is_refused(tmp_path: Path) -> None:
    sf = load_study_file(write(tmp_path, extra='baselines = ["preact_resnet20", "densenet121"]'))
    with pytest.raises(UsageError, match=r"baseline 'densenet121' cannot take digits's 1x8x8 input: input 8x8"):
        check_before_trials(sf, load_data(sf.data), device="cpu")


def test_a_dataset_of_one_class_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "images" / "only"
    folder.mkdir(parents=True)
    for i in range(12):
        Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(folder / f"{i}.png")
    path = write(tmp_path)
    folder_data = f'name = "imagefolder"\nroot = "{tmp_path / "images"}"\nnum_workers = 0'
    path.write_text(path.read_text().replace('name = "digits"', folder_data))
    sf = load_study_file(path)
    data = load_data(sf.data)
    with pytest.raises(UsageError, match=r"dataset 'imagefolder' has 1 class: a search needs at least 2"):
        check_before_trials(sf, data, device="cpu")


def test_a_resumed_study_whose_recipe_changed_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, epochs=1)
    first = nas_here("run", str(path), "--no-report", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    storage = str(tmp_path / "runs" / "p" / "journal.log")
    write(tmp_path, epochs=2)
    again = nas_here("run", str(path), "--trials", "2", "--no-report", cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.splitlines() == [
        f"nas run: error: {path}: study 'p' was created with another recipe (recipe.epochs differs: stored 1, "
        "file 2); its trials would share one front with trials trained otherwise: give the study a new name, "
        "or resume with --allow-changed recipe.epochs to accept that"
    ]
    assert len(optuna.load_study(study_name="p", storage=open_storage(storage)).trials) == 1  # nothing trained
    allowed = nas_here(
        "run", str(path), "--trials", "2", "--no-report", "--allow-changed", "recipe.epochs", cwd=tmp_path
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "study 'p' resumes with changed recipe.epochs (--allow-changed)" in allowed.stdout
    assert len(optuna.load_study(study_name="p", storage=open_storage(storage)).trials) == 2
    path = write(tmp_path, epochs=1)
    execution_only = "batch_size = 64\nnum_workers = 1\neval_batch_size = 64"
    path.write_text(path.read_text().replace("batch_size = 64", execution_only))
    same = nas_here("run", str(path), "--trials", "3", "--no-report", cwd=tmp_path)
    assert same.returncode == 0, same.stderr  # the same settings resume; execution-only keys may change freely


def test_a_study_stored_before_a_recipe_or_data_field_existed_resumes_when_the_file_keeps_its_default(
    tmp_path: Path,
) -> None:
    sf = load_study_file(write(tmp_path))
    stored = settings(sf)
    for key in ("ema_decay", "tta_flip", "decay_norm_and_bias", "norm_bias_lr_scale", "alternate_flips"):
        del stored["recipe"][key]  # as a study made before the fast-recipe keys stores its recipe
    del stored["data"]["train_subset"]
    assert check_resume(sf, stored) == []
    fast_file = tmp_path / "fast.toml"
    fast_file.write_text((tmp_path / "study.toml").read_text().replace("[recipe]", '[recipe]\nbase = "fast"'))
    fast = load_study_file(fast_file)
    with pytest.raises(UsageError, match=r"recipe\.alternate_flips differs: stored False, file True"):
        check_resume(fast, stored)


@pytest.mark.parametrize(
    ("fixed", "knobs", "warned"),
    [
        ('connectivity = "plain"', "[knobs.compression]\nchoices = [0.5, 0.75]", ["compression"]),
        ('connectivity = "dense"', "[knobs.compression]\nchoices = [0.5, 0.75]", []),
        ('connectivity = "dense"', "[knobs.width_multiplier]\nchoices = [1.0, 2.0]", ["width_multiplier"]),
        ("", '[knobs.connectivity]\nchoices = ["plain", "dense"]\n[knobs.compression]\nchoices = [0.5, 0.75]', []),
    ],
)
def test_a_searched_knob_no_network_uses_is_named_at_the_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fixed: str, knobs: str, warned: list[str]
) -> None:
    (tmp_path / "k.toml").write_text(f'name = "k"\n[fixed]\nstem = "cifar"\nblock_config = [1, 1]\n{fixed}\n{knobs}\n')
    path = tmp_path / "study.toml"
    path.write_text('[study]\nname = "k"\nspace = "k.toml"\ntrials = 1\ndevice = "cpu"\n[data]\nname = "digits"\n')
    sf = load_study_file(path)
    check_before_trials(sf, load_data(sf.data), device="cpu")
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("the space searches ")[1].split(",")[0] for line in lines] == warned
    for line in lines:
        assert line.startswith(f"warning: {path}: the space searches ")
        assert line.endswith("trials that differ only in it are one network, trained once and reused")


def test_nas_run_with_workers_says_each_warning_once_not_once_per_worker(tmp_path: Path) -> None:
    from tests.commands import nas

    (tmp_path / "k.toml").write_text(
        'name = "k"\n[fixed]\nstem = "cifar"\nconnectivity = "plain"\n[knobs.compression]\nchoices = [0.5, 0.75]\n'
        "[knobs.block_config]\nchoices = [[1], [2]]\n"
    )
    path = tmp_path / "study.toml"
    path.write_text(
        '[study]\nname = "k"\nspace = "k.toml"\ntrials = 2\ndevice = "cpu"\n[data]\nname = "digits"\n'
        "[recipe]\nepochs = 1\nmeasure_latency = false\n"
    )
    result = nas("run", str(path), "--workers", "2", "--no-report", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "the space searches compression" in line]
    assert len(warnings) == 1, result.stderr

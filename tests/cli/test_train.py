"""`nas train` and `nas evaluate` (nas/cli/train.py) run as a user runs them: a real subprocess."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from PIL import Image

from nas.arch import ArchConfig, build_model
from nas.data.datasets import DataConfig
from nas.train.checkpoint import save_checkpoint
from nas.train.recipe import Recipe
from tests.cli.conftest import nas


def test_train_save_then_evaluate_on_the_test_split(tmp_path: Path) -> None:
    ckpt = tmp_path / "net.pt"
    run = nas(
        "train",
        "densenet_bc_100_k12",
        "--set",
        "block_config=[2,2]",
        "--set",
        "growth_rate=8",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--device",
        "cpu",
        "--recipe",
        "measure_latency=false",
        "--save",
        str(ckpt),
        "--json",
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["status"] == "complete" and result["split"] == "val"
    assert result["config"]["in_channels"] == 1 and result["config"]["num_classes"] == 10  # taken from digits
    assert "epoch 1/1" in run.stderr  # plain progress lines: not a terminal
    evaluated = nas("evaluate", str(ckpt), "--device", "cpu", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert report["split"] == "test" and report["images"] == 359 and 0 <= report["accuracy"] <= 1


def test_train_and_evaluate_errors(tmp_path: Path) -> None:
    for args, message in [
        (("train", "densenet121", "--dataset", "imagenet"), "DataConfig.name = 'imagenet'"),
        (("train", "densenet121", "--recipe", "optimizer=lamb"), "Recipe.optimizer = 'lamb'"),
        (("train", "densenet121"), "input 8x8 is too small"),
        (("evaluate", str(tmp_path / "none.pt")), "no checkpoint at"),
    ]:
        run = nas(*args)
        assert run.returncode == 2, args
        assert message in run.stderr, (args, run.stderr)
        assert "Traceback" not in run.stderr


RECIPE_FIELDS = (
    "epochs, batch_size, optimizer, lr, momentum, weight_decay, schedule, warmup_fraction, label_smoothing, amp, "
    "channels_last, compile, memory_budget_gb, eval_batch_size, measure_latency, latency_batch_size, "
    "latency_repeats, num_workers, seed"
)


def test_a_bad_recipe_value_is_one_line_naming_the_key() -> None:
    for value, line in [
        ("momentum=x", "nas train: error: Recipe.momentum = 'x' is invalid: a number in [0, 1) is required"),
        ("amp=maybe", "nas train: error: Recipe.amp = 'maybe' is invalid: True or False is required"),
        ("nosuch=1", f"nas train: error: Recipe.nosuch is unknown: valid keys are {RECIPE_FIELDS}"),
        ("momentum", "nas train: error: --recipe 'momentum' is invalid: use KEY=VALUE, e.g. --recipe epochs=3"),
    ]:
        run = nas("train", "densenet121", "--recipe", value)
        assert run.returncode == 2, value
        assert run.stderr.splitlines() == [line], value
        assert run.stdout == ""


def test_debug_shows_the_traceback_of_a_user_error() -> None:
    run = nas("--debug", "train", "densenet121", "--recipe", "momentum=x")
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1] == "nas.errors.UsageError: Recipe.momentum = 'x' is invalid: a number in [0, 1) is required"


def test_a_dataset_field_set_against_the_dataset_is_one_line() -> None:
    run = nas("train", "densenet_bc_100_k12", "--set", "in_channels=3")
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "nas train: error: --set in_channels=3 is invalid: dataset 'digits' has 1; in_channels comes from the dataset"
    ]


def test_evaluate_refuses_a_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "notes.pt"
    path.write_text("not a checkpoint\n")
    run = nas("evaluate", str(path))
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        f"nas evaluate: error: {path} is not a checkpoint written by nas train --save (UnpicklingError)"
    ]


def test_evaluate_refuses_data_with_other_classes_naming_both(tmp_path: Path) -> None:
    for name in ("a", "b"):  # two classes on disk
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(tmp_path / "images" / name / f"{i}.png")
    config = ArchConfig(connectivity="plain", stem="cifar", block_config=(1,), init_features=4, num_classes=3)
    data_config = DataConfig(name="imagefolder", root=str(tmp_path / "images"), image_size=8, num_workers=0)
    path = tmp_path / "three.pt"
    save_checkpoint(
        path, model=build_model(config), config=config, recipe=Recipe(), extra={"data_config": asdict(data_config)}
    )
    run = nas("evaluate", str(path))
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        f"nas evaluate: error: {path} holds a network for 3 channels and 3 classes, but imagefolder has 3 "
        "channels and 2 classes: give --data-root the data it was trained on"
    ]

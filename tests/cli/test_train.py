"""`nas train` and `nas evaluate` (nas/cli/train.py): training, saving, evaluating and `--debug` as a user runs
them (a real subprocess); what they refuse and print in-process (tests/commands.py)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from PIL import Image

from nas.arch import ArchConfig, build_model
from nas.data.datasets import AugmentConfig, DataConfig, load_data
from nas.train.checkpoint import save_checkpoint
from nas.train.evaluate import evaluate_split
from nas.train.recipe import Recipe
from tests.commands import nas, nas_here


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
        "--recipe",
        "fast",
        "--save",
        str(ckpt),
        "--json",
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["status"] == "complete" and result["split"] == "val"
    assert result["config"]["in_channels"] == 1 and result["config"]["num_classes"] == 10  # taken from digits
    assert "epoch 1/1" in run.stderr  # plain progress lines: not a terminal
    assert [line for line in run.stderr.splitlines() if not line.startswith("trial ")] == []  # nothing else
    assert "recipe.tta_flip skipped: the augmentation of digits does not flip images" in result["notes"]  # fast
    evaluated = nas("evaluate", str(ckpt), "--device", "cpu", "--json")
    assert (evaluated.returncode, evaluated.stderr) == (0, "")
    report = json.loads(evaluated.stdout)
    assert report["split"] == "test" and report["images"] == 359 and 0 <= report["accuracy"] <= 1


def test_train_and_evaluate_errors(tmp_path: Path) -> None:
    for args, message in [
        (("train", "densenet121", "--dataset", "imagenet"), "--dataset = 'imagenet' is invalid: choose one of"),
        (("train", "densenet121", "--recipe", "optimizer=lamb"), "Recipe.optimizer = 'lamb'"),
        (("train", "densenet121"), "input 8x8 is too small"),
        (("evaluate", str(tmp_path / "none.pt")), "no checkpoint at"),
    ]:
        run = nas_here(*args)
        assert run.returncode == 2, args
        assert message in run.stderr, (args, run.stderr)
        assert "Traceback" not in run.stderr


RECIPE_FIELDS = (
    "epochs, batch_size, optimizer, lr, momentum, weight_decay, schedule, warmup_fraction, label_smoothing, "
    "ema_decay, tta_flip, decay_norm_and_bias, norm_bias_lr_scale, alternate_flips, amp, channels_last, compile, "
    "memory_budget_gb, eval_batch_size, measure_latency, latency_batch_size, latency_repeats, num_workers, seed, base"
)
NOT_A_RECIPE = "a recipe name (default, fast) or KEY=VALUE, e.g. --recipe epochs=3"


def test_a_bad_recipe_value_is_one_line_naming_the_key() -> None:
    for value, line in [
        ("momentum=x", "nas train: error: Recipe.momentum = 'x' is invalid: a number in [0, 1) is required"),
        ("amp=maybe", "nas train: error: Recipe.amp = 'maybe' is invalid: True or False is required"),
        ("nosuch=1", f"nas train: error: Recipe.nosuch is unknown: valid keys are {RECIPE_FIELDS}"),
        ("momentum", f"nas train: error: --recipe 'momentum' is invalid: {NOT_A_RECIPE}"),
        ("fastest", f"nas train: error: --recipe 'fastest' is invalid: {NOT_A_RECIPE}"),
        ("base=fastest", "nas train: error: Recipe.base = 'fastest' is invalid: choose one of ['default', 'fast']"),
    ]:
        run = nas_here("train", "densenet121", "--recipe", value)
        assert run.returncode == 2, value
        assert run.stderr.splitlines() == [line], value
        assert run.stdout == ""


def test_two_recipe_names_are_one_line() -> None:
    run = nas_here("train", "densenet121", "--recipe", "fast", "--recipe", "default")
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "nas train: error: --recipe names 2 recipes (fast, default): one recipe name, then KEY=VALUE pairs"
    ]


def test_evaluate_averages_flipped_logits_when_the_recipe_did(tmp_path: Path) -> None:
    config = ArchConfig(
        connectivity="plain", stem="cifar", block_config=(1,), init_features=4, in_channels=1, num_classes=10
    )
    data_config = DataConfig(augment=AugmentConfig(crop_padding=1, flip=True))  # digits, mirrored in training
    model = build_model(config)
    path = tmp_path / "tta.pt"
    extra = {"data_config": asdict(data_config)}
    save_checkpoint(path, model=model, config=config, recipe=Recipe(tta_flip=True), extra=extra)
    run = nas_here("evaluate", str(path), "--device", "cpu", "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    data = load_data(data_config)
    loss, accuracy = evaluate_split(model, data.test, data, device=torch.device("cpu"), tta_flip=True)
    assert report["tta_flip"] is True and report["accuracy"] == accuracy and report["loss"] == pytest.approx(loss)


def test_debug_shows_the_traceback_of_a_user_error() -> None:
    run = nas("--debug", "train", "densenet121", "--recipe", "momentum=x")
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1] == "nas.errors.UsageError: Recipe.momentum = 'x' is invalid: a number in [0, 1) is required"


def test_a_dataset_field_set_against_the_dataset_is_one_line() -> None:
    run = nas_here("train", "densenet_bc_100_k12", "--set", "in_channels=3")
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "nas train: error: --set in_channels=3 is invalid: dataset 'digits' has 1; in_channels comes from the dataset"
    ]


def test_evaluate_refuses_a_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "notes.pt"
    path.write_text("not a checkpoint\n")
    run = nas_here("evaluate", str(path))
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
    run = nas_here("evaluate", str(path))
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        f"nas evaluate: error: {path} holds a network for 3 channels and 3 classes, but imagefolder has 3 "
        "channels and 2 classes: give --data-root the data it was trained on"
    ]


@pytest.mark.parametrize(("held", "why"), [(torch.zeros(3), "it holds a Tensor"), ({"a": 1}, "it holds a dict")])
def test_evaluate_refuses_a_torch_file_that_holds_no_checkpoint(tmp_path: Path, held: object, why: str) -> None:
    path = tmp_path / "other.pt"
    torch.save(held, path)
    run = nas_here("evaluate", str(path))
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        f"nas evaluate: error: {path} is not a checkpoint written by nas train --save "
        f"({why}, without a network's config and weights)"
    ]  # was a traceback (IndexError, TypeError)


def folder_of(root: Path, classes: tuple[str, ...]) -> Path:
    """Five 8x8 pictures a class, every channel varying (a channel constant over a dataset has no spread to
    normalise by)."""
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (8, 8), (40 * i, 20 * i + 10, 250 - 30 * i)).save(root / name / f"{i}.png")
    return root


def test_evaluate_refuses_a_folder_of_other_classes_with_as_many_of_them(tmp_path: Path) -> None:
    """Trained on a/b, evaluated on cat/dog: two classes each, so the network fits, but the accuracy would be
    of nothing (it printed one)."""
    folder_of(tmp_path / "ab", ("a", "b"))
    folder_of(tmp_path / "pets", ("cat", "dog"))
    path = tmp_path / "ab.pt"
    config = tmp_path / "net.json"
    config.write_text(
        json.dumps(ArchConfig(connectivity="plain", stem="cifar", block_config=(1,), init_features=4).to_dict())
    )
    common = [
        "--dataset",
        "imagefolder",
        "--set",
        "num_classes=2",
        "--set",
        "in_channels=3",
        "--recipe",
        "measure_latency=false",
    ]
    train = nas_here(
        "train", str(config), *common, "--data-root", str(tmp_path / "ab"), "--epochs", "1", "--save", str(path)
    )
    assert train.returncode == 0, train.stderr
    same = nas_here("evaluate", str(path), "--data-root", str(tmp_path / "ab"))
    assert same.returncode == 0, same.stderr
    other = nas_here("evaluate", str(path), "--data-root", str(tmp_path / "pets"))
    assert other.returncode == 2
    assert other.stderr.splitlines() == [
        f"nas evaluate: error: {path} was trained on the classes [a, b], but imagefolder has [cat, dog]: an accuracy "
        "between them would mean nothing; give --data-root the data it was trained on"
    ]


def test_train_refuses_a_save_path_where_no_file_can_be_made_before_training(tmp_path: Path) -> None:
    run = nas_here("train", "d2l_densenet", "--dataset", "digits", "--epochs", "1", "--save", "/proc/nas/w.pt")
    assert run.returncode == 2 and run.stdout == ""  # nothing trained
    assert run.stderr.splitlines() == [
        "nas train: error: --save = '/proc/nas/w.pt' is invalid: a path this user can write (a file cannot be made "
        "in /proc: No such file or directory)"
    ]

"""`nas train --from-study STUDY --trial N` (nas/cli/reproduce.py): a trial trained again as its study trained it
(data, image size, recipe, seed, CPU threads), on a tiny image-folder study at 32x32; the hints `nas show` prints,
run as printed; `--image-size`; and one-line refusals that name the command-line option."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from pathlib import Path

import optuna
import pytest
from PIL import Image

from nas.arch import ArchConfig
from nas.arch.cost import estimate
from nas.arch.external import ExternalNet
from nas.search.results import records, trial_record
from nas.search.run.storage import open_storage
from tests.cli.conftest import TWO_NETS_SPACE
from tests.commands import nas, nas_here

CLASSES = ("a", "b", "c")


def image_folder(root: Path) -> Path:
    """Three classes of ten 12x12 pictures, each a little different (resized to 32x32 by the study)."""
    for k, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(10):
            colour = (60 * k + 5 * i, 200 - 40 * k + 3 * i, 20 * i + 7 * k)
            picture = Image.new("RGB", (12, 12), colour)
            picture.putpixel((i, k), (255 - colour[0], 0, 255))
            picture.save(root / name / f"{i}.png")
    return root


STUDY = """
[study]
name = "pictures"
space = "two_nets.toml"
objectives = ["val_accuracy", "flops"]
sampler = "random"
trials = 3
seed = 0
device = "cpu"
baselines = ["plain20"]

[data]
name = "imagefolder"
root = "images"
image_size = 32
val_fraction = 0.3

[recipe]
epochs = 1
batch_size = 8
lr = 0.05
measure_latency = false
"""


@pytest.fixture(scope="module")
def study_file(tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> Path:
    """Trial 0 the preset baseline plain20, then two trials of the two tiny networks, on 32x32 pictures."""
    folder = tmp_path_factory.mktemp("from_study")
    image_folder(folder / "images")
    (folder / "two_nets.toml").write_text(TWO_NETS_SPACE)
    (folder / "study.toml").write_text(STUDY)
    run = nas_here("run", "study.toml", "--no-report", cwd=folder)
    assert run.returncode == 0, run.stderr
    return folder / "study.toml"


@pytest.fixture
def here(study_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The study's folder, as the working folder (its data root is relative to it)."""
    monkeypatch.chdir(study_file.parent)
    return study_file.parent


def trials(folder: Path) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="pictures", storage=open_storage(str(folder / "runs/pictures/journal.log")))
    return sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)


def searched(folder: Path) -> optuna.trial.FrozenTrial:
    return next(
        t for t in trials(folder) if not trial_record.baseline_of(t) and trial_record.stored(t).status == "complete"
    )


def trained(*args: str, cwd: Path) -> tuple[dict[str, object], list[str]]:
    """`nas train ARGS --json` in this process: the result and the lines on stderr but the epochs'."""
    run = nas_here("train", *args, "--json", cwd=cwd)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout), [line for line in run.stderr.splitlines() if not line.startswith("trial ")]


def test_a_searched_trial_trains_again_with_the_study_s_data_size_recipe_and_seed(here: Path) -> None:
    trial = searched(here)
    stored = trial_record.stored(trial)
    result, said = trained("--from-study", "study.toml", "--trial", str(trial.number), cwd=here)
    assert result["arch_hash"] == stored.arch_hash
    for name in ("params", "flops"):
        assert result[name] == stored.metrics[name], name
    assert result["flops"] == estimate(ArchConfig.from_dict(stored.arch), input_size=(3, 32, 32)).flops
    assert result["best_val_accuracy"] == stored.metrics["val_accuracy"]  # CPU, same seed and threads: exact
    assert [h["val_accuracy"] for h in result["history"]] == [h["val_accuracy"] for h in stored.history]
    assert result["from_study"] == {
        "study": "study.toml",
        "trial": trial.number,
        "recorded": {k: stored.metrics[k] for k in ("val_accuracy", "params", "flops")},
    }
    assert said == [
        f"nas train: trial {trial.number} of study.toml, {stored.connectivity} network, on imagefolder "
        "3x32x32, 1 epoch, seed 0"
    ]


def test_a_baseline_trial_trains_again_as_the_study_trained_it(here: Path) -> None:
    baseline = trials(here)[0]
    stored = trial_record.stored(baseline)
    assert stored.baseline == "plain20"
    result, said = trained("--from-study", "study.toml", "--trial", "0", cwd=here)
    assert (result["params"], result["flops"]) == (stored.metrics["params"], stored.metrics["flops"])
    assert result["config"]["in_channels"] == 3 and result["config"]["num_classes"] == 3  # sized for the pictures
    assert result["best_val_accuracy"] == stored.metrics["val_accuracy"]
    assert said == ["nas train: trial 0 of study.toml, baseline plain20, on imagefolder 3x32x32, 1 epoch, seed 0"]


def test_options_beside_it_still_apply_and_say_so(here: Path) -> None:
    trial = searched(here)
    result, said = trained(
        "--from-study", "study.toml", "--trial", str(trial.number), "--epochs", "2", "--image-size", "16", cwd=here
    )
    assert len(result["history"]) == 2
    assert (
        result["flops"] == estimate(ArchConfig.from_dict(trial_record.stored(trial).arch), input_size=(3, 16, 16)).flops
    )
    assert said[-1] == (
        "nas train: note: the options given change data.image_size 32 -> 16, recipe.epochs 1 -> 2: this is not how "
        "the study trained it"
    )
    # Options that say only where the data is, or how it is read, change nothing the trial measured.
    moved = here.parent / "moved_images"
    shutil.copytree(here / "images", moved, dirs_exist_ok=True)
    result, said = trained(
        "--from-study", "study.toml", "--trial", str(trial.number), "--data-root", str(moved), cwd=here
    )
    assert result["best_val_accuracy"] == trial_record.stored(trial).metrics["val_accuracy"]
    assert not any("note:" in line for line in said)


def test_every_hint_nas_show_prints_runs_as_printed(here: Path) -> None:
    """The hints of a searched trial and of a baseline, parsed from `nas show` and run: the train hint reproduces
    the trial (it was `nas train trialN.json --dataset imagefolder`: no data root, then 64x64 instead of 32x32)."""
    for trial in (searched(here), trials(here)[0]):
        shown = nas_here("show", "study.toml", "--trial", str(trial.number), cwd=here)
        assert shown.returncode == 0, shown.stderr
        hints = re.findall(r"`([^`]+)`", shown.stdout)
        assert hints[0] == f"nas train --from-study study.toml --trial {trial.number}"
        assert len(hints) == (1 if trial_record.baseline_of(trial) else 2)
        for hint in hints:
            argv = shlex.split(hint)
            assert argv[0] == "nas"
            run = nas_here(*argv[1:], *(["--json"] if argv[1] == "train" else []), cwd=here)
            assert run.returncode == 0, (hint, run.stderr)
            if argv[1] == "train":
                assert json.loads(run.stdout)["flops"] == trial_record.stored(trial).metrics["flops"], hint
            else:
                assert json.loads(run.stdout) == trial_record.stored(trial).arch


def test_the_train_hint_runs_in_a_real_shell_as_printed(here: Path) -> None:
    """As a user pastes it: a real process (its own torch threads: set to the trial's), from the study's folder."""
    trial = searched(here)
    shown = nas_here("show", "study.toml", "--trial", str(trial.number), cwd=here)
    hint = re.findall(r"`([^`]+)`", shown.stdout)[0]
    run = nas(*shlex.split(hint)[1:], cwd=here, env={"OMP_NUM_THREADS": "2"})
    assert run.returncode == 0, run.stderr
    stored = trial_record.stored(trial)
    accuracy = f"{stored.metrics['val_accuracy']:.2%}"
    assert run.stdout.splitlines() == [
        line for line in run.stdout.splitlines() if line.startswith(("complete:", f"trial {trial.number} of"))
    ]
    assert f"complete: best validation accuracy {accuracy} (epoch 1) on imagefolder" in run.stdout
    assert f"{stored.metrics['flops']:,} FLOPs" in run.stdout.splitlines()[0]
    assert run.stdout.splitlines()[1] == (
        f"trial {trial.number} of study.toml (complete) recorded: best validation accuracy {accuracy}, "
        f"{stored.metrics['params']:,} parameters, {stored.metrics['flops']:,} FLOPs"
    )
    # Said when its own thread count differed (OMP_NUM_THREADS=2 alone); under pytest-xdist a worker's share of the
    # cores may already be the trial's, and then nothing needs saying.
    threads = [line for line in run.stderr.splitlines() if "CPU thread" in line]
    assert threads in ([], ["nas train: 1 CPU thread, as the trial trained"])


def test_nas_train_takes_the_image_size_of_a_study(here: Path) -> None:
    """The ArchConfig JSON of `nas show --json`, trained on the same folder at --image-size 32: the study's FLOPs
    (without it, 64x64 and about four times as many)."""
    trial = searched(here)
    config = here.parent / "net.json"
    config.write_text(json.dumps(trial_record.stored(trial).arch))
    common = ("--dataset", "imagefolder", "--data-root", "images", "--epochs", "1", "--recipe", "measure_latency=false")
    at_32, _ = trained(str(config), *common, "--image-size", "32", cwd=here)
    at_64, _ = trained(str(config), *common, cwd=here)
    assert at_32["flops"] == trial_record.stored(trial).metrics["flops"]
    arch = ArchConfig.from_dict(trial_record.stored(trial).arch)
    assert at_64["flops"] == estimate(arch, input_size=(3, 64, 64)).flops > 3 * at_32["flops"]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("train", "--dataset", "imagefolder", "--image-size", "32", "--epochs", "1", "plain20"),
            "nas train: error: --dataset imagefolder needs --data-root: the folder of class subfolders (or of train/ "
            "and test/), e.g. --data-root data/my_images",
        ),
        (
            ("train", "plain20", "--image-size", "32"),
            "nas train: error: --image-size = 32 is invalid: --image-size resizes --dataset imagefolder only; digits "
            "keeps its native size",
        ),
        (
            ("train", "plain20", "--dataset", "imagefolder", "--data-root", "images", "--image-size", "0"),
            "nas train: error: --image-size = 0 is invalid: an integer from 1 to 1024 is required",
        ),
        (
            ("train", "plain20", "--dataset", "imagefolder", "--data-root", "nowhere"),
            "nas train: error: image folder nowhere does not exist (--data-root, or root in a study file's [data])",
        ),
        (
            ("train", "plain20", "--from-study", "study.toml", "--trial", "0"),
            "nas train: error: nas train got both a TARGET (plain20) and --from-study study.toml: a TARGET (preset or "
            "CONFIG.json) or --from-study STUDY --trial N, not both",
        ),
        (
            ("train", "--from-study", "study.toml"),
            "nas train: error: --from-study study.toml needs --trial N: the trial to train again (nas status and the "
            "report number them)",
        ),
        (
            ("train", "--from-study", "study.toml", "--trial", "3"),
            "nas train: error: study 'pictures' has no trial 3: its trials are numbered 0 to 2",
        ),
        (
            ("train", "--from-study", "study.toml", "--trial", "1", "--dataset", "digits"),
            "nas train: error: --dataset digits: --from-study trains on the study's dataset; no --dataset with "
            "--from-study (give --data-root to read the study's data from elsewhere)",
        ),
        (
            ("train", "plain20", "--trial", "1"),
            "nas train: error: --trial = 1 is invalid: it goes with --from-study STUDY",
        ),
        (
            ("train",),
            "nas train: error: nas train needs what to train: a TARGET (a preset name or CONFIG.json), or --from-study "
            "STUDY --trial N",
        ),
        (
            ("train", "--from-study", "nosuch.toml", "--trial", "0"),
            "nas train: error: nosuch.toml: no such study file ({here}/nosuch.toml does not exist)",
        ),
    ],
)
def test_mistakes_are_one_line_naming_the_option(here: Path, args: tuple[str, ...], line: str) -> None:
    run = nas_here(*args, cwd=here)
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr.splitlines() == [line.format(here=here)]


def test_a_trial_without_a_network_is_refused(study_file: Path, tmp_path: Path) -> None:
    shutil.copytree(study_file.parent, tmp_path / "copy")
    folder = tmp_path / "copy"
    study = optuna.load_study(study_name="pictures", storage=open_storage(str(folder / "runs/pictures/journal.log")))
    trial = study.ask()  # failed before its network was built
    records.write_outcome(trial, "failed", "RuntimeError: before building")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    run = nas_here("train", "--from-study", "study.toml", "--trial", str(trial.number), cwd=folder)
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr.splitlines() == [
        f"nas train: error: study 'pictures' trial {trial.number} has no network to train: it is failed: RuntimeError: "
        f"before building and ended before its network was built; its trials are numbered 0 to {trial.number}"
    ]


def test_a_study_in_another_storage_is_named_in_the_hint_and_read_from_it(study_file: Path, tmp_path: Path) -> None:
    """--storage URL, as `nas show` and `nas report` take it: the hint carries it, quoted for the shell."""
    folder = tmp_path / "moved"
    shutil.copytree(study_file.parent, folder)
    journal = folder / "other place" / "journal.log"
    journal.parent.mkdir()
    os.replace(folder / "runs/pictures/journal.log", journal)
    shown = nas_here("show", "study.toml", "--trial", "1", "--storage", str(journal), cwd=folder)
    assert shown.returncode == 0, shown.stderr
    hint = re.findall(r"`([^`]+)`", shown.stdout)[0]
    assert hint == f"nas train --from-study study.toml --trial 1 --storage '{journal}'"
    result, _ = trained(*shlex.split(hint)[2:], cwd=folder)
    assert result["from_study"]["trial"] == 1  # type: ignore[index]


def test_a_study_file_changed_since_the_study_was_created_is_said(study_file: Path, tmp_path: Path) -> None:
    """Resumed with --allow-changed recipe.lr, a study holds trials of both rates: the run says so."""
    folder = tmp_path / "changed"
    shutil.copytree(study_file.parent, folder)
    (folder / "study.toml").write_text(STUDY.replace("lr = 0.05", "lr = 0.07"))
    _, said = trained("--from-study", "study.toml", "--trial", "1", cwd=folder)
    assert said[-1] == (
        "nas train: note: study.toml changed recipe.lr since the study was created; trials that ran before the change "
        "trained with the earlier settings"
    )


def test_a_named_recipe_and_set_apply_over_the_trial_s_and_say_so(here: Path) -> None:
    trial = searched(here)
    result, said = trained(
        "--from-study",
        "study.toml",
        "--trial",
        str(trial.number),
        "--recipe",
        "fast",
        "--set",
        "growth_rate=4",
        cwd=here,
    )
    assert result["config"]["growth_rate"] == 4 and result["arch_hash"] != trial_record.stored(trial).arch_hash
    assert said[-1] == (
        "nas train: note: the options given change recipe.label_smoothing 0.1 -> 0.2, recipe.ema_decay 0.0 -> 0.99, "
        "recipe.tta_flip False -> True, recipe.decay_norm_and_bias True -> False, recipe.norm_bias_lr_scale 1.0 -> "
        "8.0, recipe.alternate_flips False -> True, the network (--set): this is not how the study trained it"
    )


def test_a_torchvision_baseline_takes_no_set_and_no_save(study_file: Path, tmp_path: Path) -> None:
    folder = tmp_path / "tv"
    shutil.copytree(study_file.parent, folder)
    study = optuna.load_study(study_name="pictures", storage=open_storage(str(folder / "runs/pictures/journal.log")))
    net = ExternalNet("resnet18", 3, 3)
    study.enqueue_trial({}, user_attrs=records.baseline_attrs(net.label))
    trial = study.ask()
    records.write_network(
        trial, arch=net.to_dict(), arch_hash=net.arch_hash(), connectivity="baseline", recipe_hash="x"
    )
    records.write_outcome(trial, "failed", "stopped by the test")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    run = nas_here(
        "train", "--from-study", "study.toml", "--trial", str(trial.number), "--set", "growth_rate=4", cwd=folder
    )
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr.splitlines() == [
        f"nas train: error: trial {trial.number} of study.toml is the torchvision baseline torchvision:resnet18: --set "
        "changes ArchConfig knobs, and it has none"
    ]
    run = nas_here("train", "--from-study", "study.toml", "--trial", str(trial.number), "--save", "net.pt", cwd=folder)
    assert (run.returncode, run.stdout) == (2, "")  # before the data is read
    assert run.stderr.splitlines() == [
        f"nas train: error: trial {trial.number} of study.toml is torchvision:resnet18; no --save with a torchvision "
        "baseline: checkpoints hold ArchConfig networks only"
    ]

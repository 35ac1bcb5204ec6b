"""A table of bad inputs, fed to the `nas` command as a user would type them.

Every case must end in exit status 2 with exactly one line on stderr that names the offending
file, option or key, with no traceback, and with nothing created in storage. The cases run the
command in-process (`nas.cli.main.main`) so the table stays fast; tests beside this one run the
same command as a real subprocess.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from nas.cli.main import main

# A valid study; each case sets one key of one table (or adds a table) to a bad value.
BASE = {
    "study": ['name = "bad"', 'space = "densenet_family"', "trials = 1", 'device = "cpu"'],
    "data": ['name = "digits"'],
    "recipe": ["epochs = 1", "measure_latency = false"],
}

HUGE = 10**400

FILE_CASES: list[tuple[str, str, str]] = [  # (table, `key = value`, what the one line must contain)
    ("study", 'name = "../up"', "study.name"),
    ("study", 'name = "<b>"', "study.name"),
    ("study", "trials = 0", "study.trials"),
    ("study", 'trials = "ten"', "study.trials"),
    ("study", "trials = 1.5", "study.trials"),
    ("study", 'sampler = "bayes"', "study.sampler"),
    ("study", 'objectives = ["accuracy"]', "study.objectives"),
    ("study", 'objectives = ["val_accuracy", "val_accuracy"]', "study.objectives"),
    ("study", 'objectives = ["flops", "val_accuracy"]', "study.objectives"),
    ("study", 'objectives = ["val_accuracy", "peak_memory"]', "peak_memory"),
    ("study", 'device = "tpu"', "study.device"),
    ("study", "seed = -1", "study.seed"),
    ("study", 'storage = "nope"', "study.storage"),
    ("study", "heartbeat_seconds = 0", "study.heartbeat_seconds"),
    ("study", "time_limit_minutes = -1", "study.time_limit_minutes"),
    ("study", "trial_timeout_minutes = 0", "study.trial_timeout_minutes"),
    ("study", 'baselines = ["nosuch"]', "study.baselines"),
    ("study", 'baselines = ["torchvision:nosuchnet"]', "study.baselines"),
    ("study", 'baselines = ["densenet121"]', "baseline 'densenet121'"),
    ("study", 'space = "nosuch"', "study.space"),
    ("study", "colour = 1", "study.colour"),
    ("data", 'name = "mnist2"', "data.name"),
    ("data", "val_fraction = 1.5", "data.val_fraction"),
    ("data", "split_seed = -1", "data.split_seed"),
    ("data", "image_size = 32", "data.image_size"),
    ("data", 'download = "yes"', "data.download"),
    ("data", 'augment = "x"', "data.augment"),
    ("data", "max_resident_gb = -1", "data.max_resident_gb"),
    ("data", "num_workers = -1", "data.num_workers"),
    ("recipe", "epochs = 0", "recipe.epochs"),
    ("recipe", "batch_size = 0", "recipe.batch_size"),
    ("recipe", 'momentum = "x"', "recipe.momentum"),
    ("recipe", "momentum = 1.5", "recipe.momentum"),
    ("recipe", 'amp = "maybe"', "recipe.amp"),
    ("recipe", "channels_last = 7", "recipe.channels_last"),
    ("recipe", 'optimizer = "lamb"', "recipe.optimizer"),
    ("recipe", 'schedule = "linear"', "recipe.schedule"),
    ("recipe", 'compile = "maybe"', "recipe.compile"),
    ("recipe", "lr = -1", "recipe.lr"),
    ("recipe", "weight_decay = -1", "recipe.weight_decay"),
    ("recipe", "warmup_fraction = 1", "recipe.warmup_fraction"),
    ("recipe", "label_smoothing = [1]", "recipe.label_smoothing"),
    ("recipe", "memory_budget_gb = -2", "recipe.memory_budget_gb"),
    ("recipe", "eval_batch_size = 0", "recipe.eval_batch_size"),
    ("recipe", "latency_repeats = 0", "recipe.latency_repeats"),
    ("recipe", 'seed = "0"', "recipe.seed"),
    ("recipe", "nosuch = 1", "recipe.nosuch"),
    ("recipe", 'base = "fastest"', "recipe.base"),
    ("recipe", "ema_decay = 1", "recipe.ema_decay"),
    ("recipe", 'tta_flip = "yes"', "recipe.tta_flip"),
    ("recipe", "decay_norm_and_bias = 0", "recipe.decay_norm_and_bias"),
    ("recipe", "norm_bias_lr_scale = 0", "recipe.norm_bias_lr_scale"),
    ("recipe", "alternate_flips = 1", "recipe.alternate_flips"),
    ("data", "train_subset = 0", "data.train_subset"),
    ("data", "train_subset = 5", "DataConfig.train_subset = 5"),
    ("constraints", "max_params = 0", "constraints.max_params"),
    ("constraints", "max_flops = -1", "constraints.max_flops"),
    ("pruning", 'enabled = "yes"', "pruning.enabled"),
    ("pruning", "min_epochs = 0", "pruning.min_epochs"),
    ("pruning", "margin = 2", "pruning.margin"),
    ("ablation", 'modes = ["fancy"]\nmatch = "params"\ntarget = 1000', "ablation.modes"),
    ("ablation", 'modes = ["dense"]\nmatch = "time"\ntarget = 1000', "ablation.match"),
    ("ablation", 'modes = ["dense"]\nmatch = "params"\ntarget = -1', "ablation.target"),
    ("ablation", 'modes = ["dense"]\nmatch = "params"\ntarget = 1000\ntolerance = 1', "ablation.tolerance"),
    ("ablation", 'modes = ["dense"]\nmatch = "params"\ntarget = 1000\nseeds = 0', "ablation.seeds"),
    ("ablation", 'modes = ["dense"]\nmatch = "params"', "ablation.target"),
    ("colours", "red = 1", "[colours]"),
    # Numbers beyond what the machine takes (issue 20): each failed every trial, or crashed while loading.
    ("recipe", f"epochs = {HUGE}", "recipe.epochs = a 401-digit integer (more than 64 bits)"),
    ("recipe", f"seed = {HUGE}", "recipe.seed"),
    ("recipe", f"memory_budget_gb = {HUGE}", "recipe.memory_budget_gb"),
    ("recipe", "memory_budget_gb = 0", "recipe.memory_budget_gb"),
    ("recipe", "lr = -1", "a finite number > 0 (or None for the default)"),  # no longer suggests 0, then refuses it
    ("study", f"trials = {HUGE}", "study.trials"),
    ("study", f"seed = {HUGE}", "study.seed"),
    ("study", "seed = 4294967296", "study.seed = 4294967296 is invalid: an integer from 0 to 4294967295"),
    ("study", f"heartbeat_seconds = {HUGE}", "study.heartbeat_seconds"),
    ("data", f"split_seed = {HUGE}", "data.split_seed"),
]


def study_text(table: str, line: str) -> str:
    tables = {name: list(lines) for name, lines in BASE.items()}
    key = line.split("=", 1)[0].strip()
    if table in tables and "\n" not in line:
        tables[table] = [x for x in tables[table] if x.split("=", 1)[0].strip() != key]
    tables.setdefault(table, []).append(line)
    return "\n".join(f"[{name}]\n" + "\n".join(lines) for name, lines in tables.items()) + "\n"


def run_nas(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    try:
        code = main(args)
    except SystemExit as exit:  # argparse refuses a malformed option by exiting, as the real command does
        code = int(exit.code or 0)
    return code, capsys.readouterr().err.splitlines()


def assert_one_line(code: int, err: list[str], command: str, names: str, cwd: Path) -> None:
    assert code == 2, err
    assert len(err) == 1, err
    assert err[0].startswith(f"nas {command}: error: "), err[0]
    assert names in err[0], err[0]
    assert "Traceback" not in err[0]
    assert not (cwd / "runs").exists()  # no storage created


@pytest.mark.parametrize(("table", "line", "names"), FILE_CASES, ids=[f"{t}:{line}"[:60] for t, line, _ in FILE_CASES])
def test_every_study_file_field_refuses_a_bad_value(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    table: str,
    line: str,
    names: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "study.toml"
    path.write_text(study_text(table, line))
    command = "ablate" if table == "ablation" else "run"  # `nas ablate` reads the same file and tables
    code, err = run_nas([command, str(path), "--no-report"], capsys)
    assert_one_line(code, err, command, names, tmp_path)


STUDY = str(Path(__file__).resolve().parents[2] / "studies" / "quickstart.toml")
# (arguments, what the one line must name); {tmp} is the test's folder, with the files `bad_files` writes.
OPTION_CASES: list[tuple[list[str], str]] = [
    (["run", STUDY, "--trials", "0"], "--trials"),
    (["run", STUDY, "--trials", "x"], "--trials"),
    (["run", STUDY, "--workers", "0"], "--workers"),
    (["run", STUDY, "--trials", str(HUGE)], "--trials: a 401-digit integer (more than 64 bits) is out of range"),
    (["run", STUDY, "--workers", str(HUGE)], "--workers"),
    (["run", STUDY, "--trials-per-gpu", str(HUGE)], "--trials-per-gpu"),
    (["worker", STUDY, "--trials", str(HUGE)], "--trials"),
    (["train", "densenet121", "--seed", str(HUGE)], "--seed"),
    (["train", "densenet121", "--epochs", str(HUGE)], "--epochs"),
    (["train", "densenet121", "--recipe", f"epochs={HUGE}"], "Recipe.epochs"),
    (["arch", "densenet121", "--set", f"growth_rate={HUGE}"], "ArchConfig.growth_rate"),
    (["finalize", STUDY, "--seeds", str(HUGE)], "--seeds"),
    (["run", STUDY, "--device", "tpu"], "device"),
    (["run", STUDY, "--out", "{tmp}/g.pt"], "--out"),
    (["run", "{tmp}/nosuch.toml"], "nosuch.toml"),
    (["run", "{tmp}/folder"], "folder"),
    (["run", STUDY, "--storage", "nosuch://x"], "nosuch://x"),
    (["worker", STUDY, "--trials", "0"], "--trials"),
    (["status", STUDY, "--storage", "{tmp}/runs/j.log"], "does not exist"),
    (["report", STUDY, "--storage", "{tmp}/runs/j.log"], "does not exist"),
    (["trials", STUDY, "--csv", "a.csv", "--parquet", "b.parquet"], "--csv"),
    (["trials", STUDY], "--csv"),
    (["train", "densenet121", "--recipe", "momentum=x"], "momentum"),
    (["train", "densenet121", "--recipe", "fastest"], "--recipe 'fastest'"),
    (["train", "densenet121", "--recipe", "base=fastest"], "Recipe.base"),
    (["train", "densenet121", "--recipe", "nosuch=1"], "nosuch"),
    (["train", "densenet121", "--recipe", "amp=maybe"], "amp"),
    (["train", "densenet121", "--recipe", "momentum"], "--recipe"),
    (["train", "densenet121", "--epochs", "0"], "epochs"),
    (["train", "densenet121", "--batch-size", "0"], "batch_size"),
    (["train", "densenet121", "--lr", "-1"], "lr"),
    (["train", "densenet121", "--optimizer", "lamb"], "optimizer"),
    (["train", "densenet121", "--dataset", "nosuch"], "nosuch"),
    (["train", "preact_resnet20", "--device", "tpu", "--epochs", "1"], "device"),
    (["train", "preact_resnet20", "--save", "{tmp}/folder"], "--save"),
    (["train", "preact_resnet20", "--set", "growth_rate=x"], "growth_rate"),
    (["train", "preact_resnet20", "--set", "nosuch=1"], "nosuch"),
    (["train", "nosuch_net"], "nosuch_net"),
    (["arch", "densenet121", "--input-size", "1,2"], "--input-size"),
    (["arch", "densenet121", "--set", "connectivity=fancy"], "connectivity"),
    (["arch", "densenet121", "--set", "block_config=[]"], "block_config"),
    (["arch", "densenet121", "--num-classes", "0"], "num_classes"),
    (["arch", "densenet121", "--input-size", "3,8,8"], "too small"),
    (["arch", "{tmp}/b.json"], "b.json"),
    (["arch", "{tmp}/o.json"], "o.json"),
    (["arch", "{tmp}/nosuch.json"], "nosuch.json"),
    (["arch"], "preset"),
    (["evaluate", "{tmp}/nosuch.pt"], "nosuch.pt"),
    (["evaluate", "{tmp}/g.pt"], "g.pt"),
    (["evaluate", "{tmp}/e.pt"], "e.pt"),
    (["train", "preact_resnet20", "--dataset", "imagefolder", "--data-root", "{tmp}/images"], "broken.png"),
]


def bad_files(tmp: Path) -> None:
    (tmp / "folder").mkdir()
    (tmp / "g.pt").write_bytes(b"\x00garbage\xff" * 10)
    (tmp / "e.pt").write_bytes(b"")
    (tmp / "b.json").write_text("{nope")
    (tmp / "o.json").write_text("[1, 2]")
    for name in ("a", "b"):  # an image folder with one corrupt file among good ones
        (tmp / "images" / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (8, 8), (60 * i, 0, 0)).save(tmp / "images" / name / f"{i}.png")
    (tmp / "images" / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"cut short")


@pytest.mark.parametrize(("args", "names"), OPTION_CASES, ids=[" ".join(a)[:60] for a, _ in OPTION_CASES])
def test_every_option_refuses_a_bad_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], names: str
) -> None:
    monkeypatch.chdir(tmp_path)
    bad_files(tmp_path)
    code, err = run_nas([a.replace("{tmp}", str(tmp_path)) for a in args], capsys)
    assert_one_line(code, err, args[0], names, tmp_path)

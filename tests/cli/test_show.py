"""`nas show` on a real digits study: the stage table of `nas arch`, a CONFIG.json that `nas arch` and
`nas train` take unchanged, baselines, and one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pytest

from nas.arch.external import ExternalNet
from nas.cli.main import main
from nas.search.results import records, trial_record
from nas.search.run.storage import open_storage
from tests.cli.conftest import make_digits_study


@pytest.fixture(scope="module")
def study_file(tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> Path:
    """Trial 0 the preset baseline plain20, then three trials of the two tiny networks (one reused)."""
    return make_digits_study(tmp_path_factory.mktemp("show"), trials=4, baselines='["plain20"]')


def load(folder: Path) -> optuna.Study:
    return optuna.load_study(study_name="final", storage=open_storage(str(folder / "runs/final/journal.log")))


@pytest.fixture
def study(study_file: Path, monkeypatch: pytest.MonkeyPatch) -> optuna.Study:
    monkeypatch.chdir(study_file.parent)
    return load(study_file.parent)


@pytest.fixture
def own_copy(study_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the study for a test that adds trials to it; returns its study file."""
    shutil.copytree(study_file.parent, tmp_path / "copy")
    monkeypatch.chdir(tmp_path / "copy")
    return tmp_path / "copy" / study_file.name


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], list[str]]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def searched_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    return next(
        t for t in study.trials if trial_record.stored(t).status == "complete" and not trial_record.baseline_of(t)
    )


def test_the_table_is_nas_arch_s_after_one_line_about_the_trial(
    study: optuna.Study, study_file: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    trial = searched_trial(study)
    stored = trial_record.stored(trial)
    code, lines, _ = run(capsys, "show", str(study_file), "--trial", str(trial.number))
    assert code == 0
    accuracy = stored.metrics["val_accuracy"]
    assert lines[0] == f"trial {trial.number}: complete, val accuracy {accuracy:.2%}, {stored.connectivity}"
    config = tmp_path / "config.json"
    config.write_text(json.dumps(stored.arch))
    assert main(["arch", str(config), "--input-size", "1,8,8"]) == 0
    assert lines[1:-2] == capsys.readouterr().out.splitlines()
    assert lines[-2:] == [
        f"train it as the study did: `nas train --from-study {study_file} --trial {trial.number}`",
        f"its ArchConfig (for nas arch and nas train): `nas show {study_file} --trial {trial.number} --json`",
    ]


def test_a_reused_trial_names_the_trial_it_reused(
    study: optuna.Study, study_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    twin = next(t for t in study.trials if trial_record.stored(t).status == "reused")
    source = trial_record.stored(twin).reused_from
    code, lines, _ = run(capsys, "show", str(study_file), "--trial", str(twin.number))
    assert code == 0
    assert lines[0].startswith(f"trial {twin.number}: reused (from trial {source}), val accuracy ")


def test_json_round_trips_through_nas_arch_and_nas_train(
    study: optuna.Study, study_file: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    trial = searched_trial(study)
    code, lines, _ = run(capsys, "show", str(study_file), "--trial", str(trial.number), "--json")
    assert code == 0
    config = tmp_path / "trial.json"
    config.write_text("\n".join(lines))
    assert json.loads(config.read_text()) == trial_record.stored(trial).arch
    code, arch_out, _ = run(capsys, "arch", str(config), "--input-size", "1,8,8", "--json")
    assert code == 0 and json.loads("\n".join(arch_out))["config"] == trial_record.stored(trial).arch
    args = ("train", str(config), "--epochs", "1", "--device", "cpu", "--json", "--recipe", "measure_latency=false")
    code, train_out, _ = run(capsys, *args)
    result = json.loads("\n".join(train_out))
    assert code == 0 and result["status"] == "complete"
    assert result["arch_hash"] == trial_record.network_of(trial)[0]


def test_a_preset_baseline_shows_its_table_and_how_to_train_it(
    study: optuna.Study, study_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = next(t for t in study.trials if trial_record.baseline_of(t) == "plain20")
    code, lines, _ = run(capsys, "show", str(study_file), "--trial", str(baseline.number))
    assert code == 0
    assert lines[0].startswith(f"trial {baseline.number}: complete, val accuracy ")
    assert lines[0].endswith(", baseline plain20 (plain)")
    assert lines[1].startswith("plain network, input 1x8x8, 10 classes")
    assert lines[-1] == f"train it as the study did: `nas train --from-study {study_file} --trial {baseline.number}`"


def test_a_torchvision_baseline_has_a_name_and_no_config(own_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A torchvision baseline's trial as the runner writes it (costly to train here: it failed at once)."""
    study_file, study = own_copy, load(own_copy.parent)
    net = ExternalNet("resnet18", 1, 10)
    study.enqueue_trial({}, user_attrs=records.baseline_attrs(net.label))
    trial = study.ask()
    records.write_network(
        trial, arch=net.to_dict(), arch_hash=net.arch_hash(), connectivity="baseline", recipe_hash="x"
    )
    records.write_outcome(trial, "failed", "stopped by the test")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    code, lines, _ = run(capsys, "show", str(study_file), "--trial", str(trial.number))
    assert code == 0
    assert lines == [
        f"trial {trial.number}: failed, not trained, baseline torchvision:resnet18 (baseline)",
        "torchvision:resnet18 is a torchvision model, not an ArchConfig network: no stage table",
        f"train it as the study did: `nas train --from-study {study_file} --trial {trial.number}`",
        "train it on train+validation and measure it on the test split: "
        f"`nas finalize {study_file} --trials {trial.number}`",
    ]
    code, out, err = run(capsys, "show", str(study_file), "--trial", str(trial.number), "--json")
    assert (code, out) == (2, [])
    assert err == [
        f"nas show: error: study 'final' trial {trial.number} is the torchvision baseline torchvision:resnet18: it "
        f"has no ArchConfig JSON; `nas train --from-study {study_file} --trial {trial.number}` trains it as the study "
        f"did, `nas finalize {study_file} --trials {trial.number}` trains and tests it"
    ]


def test_unknown_trials_and_trials_without_a_network_are_refused_in_one_line(
    own_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study_file, study = own_copy, load(own_copy.parent)
    trial = study.ask()  # failed before its network was built: no network stored
    records.write_outcome(trial, "failed", "RuntimeError: before building")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    last = trial.number
    code, out, err = run(capsys, "show", str(study_file), "--trial", str(last))
    assert (code, out) == (2, [])
    assert err == [
        f"nas show: error: study 'final' trial {last} has no network: it is failed: RuntimeError: before building "
        f"and ended before its network was built; its trials are numbered 0 to {last}"
    ]
    for number in (last + 1, -1):
        code, out, err = run(capsys, "show", str(study_file), "--trial", str(number))
        assert (code, out) == (2, [])
        assert err == [f"nas show: error: study 'final' has no trial {number}: its trials are numbered 0 to {last}"]
    code, _, err = run(capsys, "show", str(study_file.parent / "nosuch.toml"), "--trial", "0")
    assert code == 2 and len(err) == 1

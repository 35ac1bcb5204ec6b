"""`nas finalize` on a real digits study: one row per network, the test split read once per (network, seed),
results stored as they finish, a rerun that trains nothing, the report's Final evaluation section."""

from __future__ import annotations

import csv
import shutil
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
from torch import nn

from nas.arch.external import ExternalNet
from nas.cli.main import main
from nas.data.datasets import DataConfig, Split, load_data
from nas.search.results import records, trial_record
from nas.search.results.finals import stored_runs
from nas.search.run import finalize
from nas.search.run.storage import open_storage
from nas.train import loop
from tests.cli.conftest import make_digits_study


@pytest.fixture(scope="module")
def study_file(tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> Path:
    """Four trials of two tiny networks, drawn by a seeded random sampler: residual twice (one reused)."""
    return make_digits_study(tmp_path_factory.mktemp("finalize"), trials=4)


@pytest.fixture
def study_copy(study_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The study copied for one test (finalize writes into it), the working folder; returns its study file."""
    shutil.copytree(study_file.parent, tmp_path / "copy")
    monkeypatch.chdir(tmp_path / "copy")
    return tmp_path / "copy" / study_file.name


@pytest.fixture
def test_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every evaluation of a test split in this process (training loop and finalize alike), as
    (parameters of the model, images read)."""
    reads: list[tuple[int, int]] = []
    real = loop.evaluate_split

    def counting(model: nn.Module, split: Split, *args: Any, **kwargs: Any) -> tuple[float, float]:
        if split.name == "test":
            reads.append((sum(p.numel() for p in model.parameters()), len(split)))
        return real(model, split, *args, **kwargs)

    monkeypatch.setattr(loop, "evaluate_split", counting)
    monkeypatch.setattr(finalize, "evaluate_split", counting)
    return reads


def load() -> optuna.Study:
    return optuna.load_study(study_name="final", storage=open_storage("runs/final/journal.log"))


def trained_by(trial: optuna.trial.FrozenTrial) -> int:
    """The trial that trained this trial's network (itself, unless it reused a twin's result)."""
    source = trial_record.stored(trial).reused_from
    return trial.number if source is None else source


def csv_rows() -> list[dict[str, str]]:
    with open("runs/final/final.csv", newline="") as f:
        return list(csv.DictReader(f))


TEST_IMAGES = len(load_data(DataConfig(name="digits")).test)


def test_the_front_with_two_seeds_then_a_rerun_that_trains_nothing(
    study_copy: Path, test_reads: list[tuple[int, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    study = load()
    front = study.best_trials
    networks = {
        trial_record.network_of(t)[0]: min(
            trained_by(u) for u in front if trial_record.network_of(u) == trial_record.network_of(t)
        )
        for t in front
    }
    expected = sorted(networks.values())
    assert len(expected) < len(front)  # the sampler drew residual twice: a twin to fold on the front

    assert main(["finalize", str(study_copy), "--seeds", "2", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    runs = stored_runs(load())
    assert sorted((r.trial, r.seed) for r in runs) == [(t, s) for t in expected for s in (0, 1)]
    # The test split was read exactly once per (network, seed), all of it, and by nothing else.
    params = {r.trial: r.params for r in runs}
    assert Counter(n for n, _ in test_reads) == Counter({params[t]: 2 for t in expected})
    assert {images for _, images in test_reads} == {TEST_IMAGES}
    assert all(r.test_images == TEST_IMAGES and r.epochs == 1 for r in runs)

    rows = csv_rows()
    assert [int(row["trial"]) for row in rows] == expected  # one row per network
    by_number = {t.number: t for t in study.trials}
    for row in rows:
        mine = [r for r in runs if r.trial == int(row["trial"])]
        accuracies = [r.test_accuracy for r in mine]
        metrics = trial_record.stored(by_number[int(row["trial"])]).metrics
        assert float(row["test_accuracy_mean"]) == statistics.fmean(accuracies)
        assert float(row["test_accuracy_std"]) == statistics.stdev(accuracies)
        assert (row["seeds"], row["epochs"], row["dataset"]) == ("2", "1", "digits")
        assert float(row["val_accuracy"]) == metrics["val_accuracy"]
        assert (int(row["params"]), int(row["flops"])) == (metrics["params"], metrics["flops"])
        assert float(row["latency_ms"]) > 0  # measured in every final run
    assert "folded into trial" in out and out.count(": test ") == len(expected)

    page = Path("reports/final.html").read_text(encoding="utf-8")
    assert "<h2>Final evaluation</h2>" in page and "read only by <code>nas finalize</code>" in page

    test_reads.clear()
    assert main(["finalize", str(study_copy), "--seeds", "2", "--epochs", "1"]) == 0
    assert test_reads == []  # nothing trained, nothing measured
    assert capsys.readouterr().out.count("done before with this recipe, skipped") == 2 * len(expected)
    assert stored_runs(load()) == runs
    assert csv_rows() == rows


def test_an_explicit_list_folds_twins_into_the_trial_that_trained_them(
    study_copy: Path, test_reads: list[tuple[int, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    study = load()
    twin = next(t for t in study.trials if trial_record.stored(t).status == "reused")
    source = trained_by(twin)
    other = next(t.number for t in study.trials if trial_record.network_of(t) != trial_record.network_of(twin))
    chosen = f"{twin.number},{other},{source}"
    assert main(["finalize", str(study_copy), "--trials", chosen, "--seeds", "1", "--epochs", "1", "--no-report"]) == 0
    assert f"trial {twin.number} folded into trial {source}: the same network" in capsys.readouterr().out
    assert sorted((r.trial, r.seed) for r in stored_runs(load())) == sorted([(source, 0), (other, 0)])
    assert [int(row["trial"]) for row in csv_rows()] == sorted([source, other])
    assert len(test_reads) == 2
    assert not Path("reports").exists()


def test_a_torchvision_baseline_is_finalized_too(study_copy: Path, test_reads: list[tuple[int, int]]) -> None:
    """Its search trial as the runner records one (training it in the search here would double the cost)."""
    study = load()
    net = ExternalNet("resnet18", 1, 10)
    study.enqueue_trial({}, user_attrs=records.baseline_attrs(net.label))
    trial = study.ask()
    records.write_network(
        trial, arch=net.to_dict(), arch_hash=net.arch_hash(), connectivity="baseline", recipe_hash="x"
    )
    records.write_outcome(trial, "complete")
    study.tell(trial, [0.5, 1e6])
    args = ["--trials", str(trial.number), "--seeds", "1", "--epochs", "1", "--no-report"]
    assert main(["finalize", str(study_copy), *args]) == 0
    (run,) = stored_runs(load())
    params = 11_175_370  # torchvision's resnet18, 10 classes, its first convolution taking 1 channel
    assert (run.trial, run.network, run.params, run.val_accuracy) == (
        trial.number,
        "torchvision:resnet18",
        params,
        None,
    )
    assert test_reads == [(params, TEST_IMAGES)]


def test_mistakes_are_refused_in_one_line_before_anything_trains(
    study_copy: Path, test_reads: list[tuple[int, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    study = load()
    trial = study.ask()  # a trial that failed before it trained anything
    records.write_outcome(trial, "failed", "RuntimeError: before training")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    last = trial.number
    cases = [
        (["--seeds", "0"], "--seeds = 0 is invalid: an integer >= 1 is required"),
        (["--epochs", "0"], "--epochs = 0 is invalid: an integer >= 1 is required"),
        (["--trials", "1,x"], "--trials = '1,x' is invalid: front, or trial numbers separated by commas (3,7,12)"),
        (["--trials", f"0,{last + 1}"], f"study 'final' has no trial {last + 1}: its trials are numbered 0 to {last}"),
        (
            ["--trials", str(last)],
            f"study 'final' trial {last} is failed: nas finalize takes a trained trial (complete, reused, pruned) "
            "of study 'final'",
        ),
        (
            ["--storage", "runs/other.log"],
            f"no study 'final': runs/other.log does not exist; run `nas run {study_copy}` first",
        ),
        (["--device", "tpu"], "device = 'tpu' is invalid: choose auto, cpu, cuda or cuda:N"),
    ]
    for args, line in cases:
        assert main(["finalize", str(study_copy), *args]) == 2
        out, err = capsys.readouterr()
        assert (out, err.splitlines()) == ("", [f"nas finalize: error: {line}"])
    assert test_reads == [] and stored_runs(load()) == [] and not Path("runs/final/final.csv").exists()

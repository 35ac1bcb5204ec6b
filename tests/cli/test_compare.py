"""`nas report A.toml B.toml --out DIR` on two real digits studies: three linked pages, errors before any file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna._hypervolume import compute_hypervolume
from optuna.trial import TrialState

from nas.cli.compare import labels_for
from nas.cli.main import main
from nas.search.run.storage import open_storage
from tests.cli.conftest import make_digits_study


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> tuple[Path, Path, Path]:
    """Two quickstart-like studies, alpha and beta, both in files called study.toml, journals under root/runs/."""
    root = tmp_path_factory.mktemp("compare")
    alpha = make_digits_study(root / "a", trials=3, name="alpha", run_in=root)
    beta = make_digits_study(root / "b", trials=4, name="beta", run_in=root)
    return root, alpha, beta


def feasible_trial(trial: optuna.trial.FrozenTrial) -> bool:
    return trial.state == TrialState.COMPLETE and all(c <= 0 for c in (trial.constraints or {}).values())


def minimised(study: optuna.Study, trials: list[optuna.trial.FrozenTrial]) -> np.ndarray:
    signs = np.array([-1.0 if d == optuna.study.StudyDirection.MAXIMIZE else 1.0 for d in study.directions])
    return np.array([np.array(t.values) * signs for t in trials])


def test_two_studies_give_three_linked_pages(
    two_studies: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root, alpha, beta = two_studies
    monkeypatch.chdir(root)
    assert main(["report", str(alpha), str(beta), "--out", "out"]) == 0
    out = (root / "out").resolve()
    assert capsys.readouterr().out.splitlines() == [
        f"report: {out / 'study.html'}",  # both files are study.toml: the second label takes -2
        f"report: {out / 'study-2.html'}",
        f"comparison: {out / 'compare.html'}",
    ]
    assert sorted(p.name for p in out.iterdir()) == ["compare.html", "study-2.html", "study.html"]
    page = (out / "compare.html").read_text(encoding="utf-8")
    table = page[: page.index("<h2>Pareto fronts</h2>")]
    links = re.findall(r'<a href="([^"]*)"', table)
    assert links == ["study.html", "study-2.html"]
    for link, name in zip(links, ("alpha", "beta"), strict=True):
        title = re.search(r"<title>([^<]*)</title>", (out / link).read_text(encoding="utf-8"))
        assert title is not None and name in title.group(1)

    studies = [
        optuna.load_study(study_name=n, storage=open_storage(f"runs/{n}/journal.log")) for n in ("alpha", "beta")
    ]
    feasible = [minimised(s, [t for t in s.trials if feasible_trial(t)]) for s in studies]
    union = np.vstack(feasible)
    reference = union.max(axis=0) + 0.1 * (union.max(axis=0) - union.min(axis=0))
    for study in studies:
        expected = compute_hypervolume(minimised(study, study.best_trials), reference)
        assert f'<td class="num">{expected:.6g}</td>' in table
    assert page.count("* plotly.js v") == 1


def test_a_missing_study_is_refused_before_any_file(
    two_studies: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root, alpha, _ = two_studies
    monkeypatch.chdir(root)
    never_run = make_study_file(root / "c", name="gamma")
    assert main(["report", str(alpha), str(never_run), "--out", "none"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"nas report: error: no study 'gamma': runs/gamma/journal.log does not exist; run `nas run {never_run}` first"
    ]
    assert main(["report", str(alpha), str(root / "nosuch.toml"), "--out", "none"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "nosuch.toml" in err[0]
    assert not (root / "none").exists()


def test_storage_is_for_one_study_only(
    two_studies: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root, alpha, beta = two_studies
    monkeypatch.chdir(root)
    assert main(["report", str(alpha), str(beta), "--storage", "runs/alpha/journal.log", "--out", "none"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "nas report: error: --storage = 'runs/alpha/journal.log' is invalid: one study only (2 study files given)"
    ]
    assert not (root / "none").exists()


def test_labels_for_study_files_are_distinct_and_deterministic() -> None:
    paths = ["x/quick.toml", "y/quick.toml", "compare.toml", "my study.toml", "z/Quick.toml", "quick-2.toml"]
    assert labels_for(paths) == ["quick", "quick-2", "compare-2", "my_study", "Quick-3", "quick-2-2"]


def make_study_file(folder: Path, *, name: str) -> Path:
    """A study file that was never run."""
    folder.mkdir()
    path = folder / "study.toml"
    path.write_text(f'[study]\nname = "{name}"\nspace = "densenet_family"\ntrials = 3\n\n[data]\nname = "digits"\n')
    return path

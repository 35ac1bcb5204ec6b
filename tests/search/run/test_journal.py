"""A journal with a bad line in its middle: refused in one line before anything is written, and repaired by
`nas repair` with nothing valid lost (the torn last line: tests/search/run/test_storage.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pytest

from nas.search.run.storage import open_storage
from tests.commands import nas_here
from tests.search.run.test_storage import study_file


@pytest.fixture(scope="module")
def intact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(study file, journal) of a finished 3-trial digits study, made once; tests damage copies of it."""
    folder = tmp_path_factory.mktemp("intact")
    path = study_file(folder, trials=3)
    journal = folder / "journal.log"
    run = nas_here("run", str(path), "--storage", str(journal), "--no-report", cwd=folder)
    assert run.returncode == 0, run.stderr
    return path, journal


def damaged(intact: tuple[Path, Path], tmp_path: Path, damage: str) -> tuple[Path, Path, list[bytes], int]:
    """A copy of the intact journal with one line damaged in its middle: (study file, journal, the intact lines,
    the damaged line's number)."""
    path, journal = intact
    lines = journal.read_bytes().splitlines(keepends=True)
    middle = len(lines) // 2
    if damage == "garbage":
        changed = [*lines[:middle], b"the disk hiccuped here\n", *lines[middle:]]
    elif damage == "truncated":
        changed = [*lines[:middle], lines[middle][:40] + b"\n", *lines[middle + 1 :]]
    else:  # a trial's creation written twice
        middle = next(i for i, line in enumerate(lines) if json.loads(line)["op_code"] == 4)
        changed = [*lines[: middle + 1], lines[middle], *lines[middle + 1 :]]
        middle += 1
    copy = tmp_path / "journal.log"
    copy.write_bytes(b"".join(changed))
    shutil.copy(path, tmp_path / path.name)
    shutil.copy(path.parent / "space.toml", tmp_path / "space.toml")
    return tmp_path / path.name, copy, lines, middle + 1


def trials(journal: Path, name: str) -> list[tuple[int, str, object]]:
    study = optuna.load_study(study_name=name, storage=open_storage(str(journal)))
    return [(t.number, t.state.name, t.values) for t in study.get_trials(deepcopy=False)]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "repeated"])
def test_a_bad_middle_line_is_refused_in_one_line_and_nothing_is_written(
    intact: tuple[Path, Path], tmp_path: Path, damage: str
) -> None:
    path, journal, _, number = damaged(intact, tmp_path, damage)
    before = journal.read_bytes()
    for command in (["status"], ["report", "--out", str(tmp_path / "r")], ["trials", "--csv", "t.csv"], ["run"]):
        run = nas_here(command[0], str(path), "--storage", str(journal), *command[1:], cwd=tmp_path)
        assert run.returncode == 2, (command, run.stderr)
        (line,) = run.stderr.strip().splitlines()
        assert line.startswith(f"nas {command[0]}: error: journal {journal}, line {number}: "), line
        assert line.endswith(f"`nas repair {journal}` sets the bad lines aside and keeps every other record")
        assert journal.read_bytes() == before  # `nas run` used to append a create-study record after the bad line


@pytest.mark.parametrize("damage", ["garbage", "truncated", "repeated"])
def test_nas_repair_sets_the_bad_line_aside_and_keeps_every_other_record(
    intact: tuple[Path, Path], tmp_path: Path, damage: str
) -> None:
    path, journal, lines, number = damaged(intact, tmp_path, damage)
    before = journal.read_bytes()
    run = nas_here("repair", str(path), "--storage", str(journal), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    bad_line = before.splitlines(keepends=True)[number - 1]
    (original,) = tmp_path.glob("journal.log.orig-*")
    assert original.read_bytes() == before  # copied aside before anything changed
    assert (tmp_path / "journal.log.bad").read_bytes() == bad_line
    kept = before.splitlines(keepends=True)
    del kept[number - 1]
    assert journal.read_bytes() == b"".join(kept)  # every other line, in order
    if damage != "truncated":  # the intact journal's study, trial for trial
        assert journal.read_bytes() == b"".join(lines)
    name = path.stem
    assert run.stdout.strip() == (
        f"journal {journal}: {len(trials(journal, name))} trials in 1 study kept, 1 line set aside (line {number}) "
        f"in {tmp_path / 'journal.log.bad'}; the journal as it was is in {original}"
    )
    again = nas_here("run", str(path), "--storage", str(journal), "--trials", "4", "--no-report", cwd=tmp_path)
    assert again.returncode == 0, again.stderr  # the study goes on
    assert len(trials(journal, name)) >= 4


def test_nas_repair_on_a_sound_journal_changes_nothing(intact: tuple[Path, Path], tmp_path: Path) -> None:
    _, journal = intact
    copy = tmp_path / "journal.log"
    shutil.copy(journal, copy)
    run = nas_here("repair", str(copy), cwd=tmp_path)
    assert run.returncode == 0
    assert run.stdout.strip() == f"journal {copy}: every line is a record, nothing to repair (3 trials in 1 study kept)"
    assert copy.read_bytes() == journal.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.log"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch.log"], "nas repair: error: journal nosuch.log: no such file"),
        (
            ["{study}", "--storage", "postgresql://nas@127.0.0.1:1/none"],
            "nas repair: error: nas repair: study {study} is stored in a database (postgresql://nas@127.0.0.1:1/none), "
            "which keeps its own integrity; only a journal file is repaired",
        ),
        (
            ["x.log", "--storage", "y.log"],
            "nas repair: error: nas repair: --storage goes with a study file, not with a journal file",
        ),
    ],
)
def test_nas_repair_refuses_what_it_cannot_repair(tmp_path: Path, args: list[str], message: str) -> None:
    path = study_file(tmp_path, trials=1)
    run = nas_here("repair", *(a.format(study=path) for a in args), cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip() == message.format(study=path)

"""`nas run/worker/status/report/trials` refuse bad counts and read-only commands create nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.commands import nas_here

STUDY = Path(__file__).resolve().parents[2] / "studies" / "quickstart.toml"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("run", "--trials", "0"), "nas run: error: --trials = 0 is invalid: an integer >= 1 is required"),
        (("run", "--trials", "-2"), "nas run: error: --trials = -2 is invalid: an integer >= 1 is required"),
        (("run", "--workers", "0"), "nas run: error: --workers = 0 is invalid: an integer >= 1 or auto is required"),
        (
            ("run", "--workers-per-gpu", "0"),
            "nas run: error: --workers-per-gpu = 0 is invalid: an integer >= 1 is required",
        ),
        (  # the quickstart study trains on the CPU: its workers see no GPU
            ("run", "--workers", "auto", "--workers-per-gpu", "2"),
            "nas run: error: --workers-per-gpu = 2 is invalid: it needs GPUs, and the workers have none "
            "(the device is cpu, or no GPU is visible)",
        ),
        (("worker", "--trials", "0"), "nas worker: error: --trials = 0 is invalid: an integer >= 1 is required"),
    ],
)
def test_bad_counts_are_refused_before_anything_runs(tmp_path: Path, args: tuple[str, ...], line: str) -> None:
    storage = tmp_path / "runs" / "journal.log"
    run = nas_here(args[0], str(STUDY), "--storage", str(storage), *args[1:])
    assert run.returncode == 2
    assert run.stderr.splitlines() == [line]
    assert not (tmp_path / "runs").exists()  # no study created


@pytest.mark.parametrize("command", [("status",), ("report",), ("trials", "--csv", "t.csv")])
def test_read_only_commands_on_a_study_never_run_create_nothing(tmp_path: Path, command: tuple[str, ...]) -> None:
    storage = tmp_path / "runs" / "journal.log"
    run = nas_here(command[0], str(STUDY), "--storage", str(storage), *command[1:])
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        f"nas {command[0]}: error: no study 'quickstart': {storage} does not exist; run `nas run {STUDY}` first"
    ]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", ["run", "report", "ablate"])
def test_a_report_folder_that_is_a_file_is_refused_first(tmp_path: Path, command: str) -> None:
    out = tmp_path / "report.html"
    out.write_text("mine\n")
    storage = tmp_path / "runs" / "journal.log"
    run = nas_here(command, str(STUDY), "--storage", str(storage), "--out", str(out))
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        f"nas {command}: error: --out = {str(out)!r} is invalid: a folder (this is a file)"
    ]
    assert out.read_text() == "mine\n" and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("run", str(STUDY), "--trials", "x"), "nas run: error: argument --trials: invalid int value: 'x'"),
        (
            ("run", str(STUDY), "--workers", "two"),
            "nas run: error: argument --workers: invalid value 'two': an integer >= 1 or auto is required",
        ),
        (("worker", str(STUDY), "--trials", "1.5"), "nas worker: error: argument --trials: invalid int value: '1.5'"),
        (("status",), "nas status: error: the following arguments are required: study"),
        (("run", str(STUDY), "--nosuch"), "nas: error: unrecognized arguments: --nosuch"),
    ],
)
def test_malformed_options_end_in_one_line(args: tuple[str, ...], line: str) -> None:
    run = nas_here(*args)
    assert run.returncode == 2
    assert run.stderr.splitlines() == [line]


def test_status_lists_each_front_network_once_with_its_twins(tmp_path: Path) -> None:
    """Trial 6 reused trial 1's network: one front line for both, saying so (issue 12)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from tests.report.test_report import hand_study
    from tests.search.run.test_study import write_study

    journal = tmp_path / "unit.log"
    study = hand_study("unit", storage=JournalStorage(JournalFileBackend(str(journal))))
    assert {1, 6} <= {t.number for t in study.best_trials}
    status = nas_here("status", str(write_study(tmp_path, name="unit")), "--storage", str(journal))
    assert status.returncode == 0, status.stderr
    front = [line.strip() for line in status.stdout.splitlines() if line.startswith("    trial ")]
    assert [line.split(":")[0] for line in front] == ["trial 11", "trial 1", "trial 0", "trial 2", "trial 4"]
    assert front[1].endswith(", reused by 1 trial (6)")
    assert "  Pareto front: 5 networks" in status.stdout


def test_status_shows_queued_trials_as_queued_and_running_ones_with_their_worker(tmp_path: Path) -> None:
    """A baseline and a re-run that wait for a worker were listed as `running: trial 5 since None`."""
    import os
    import socket

    from nas.search.results import records
    from nas.search.run.storage import fail_and_requeue
    from nas.search.run.study import open_study
    from nas.search.spec.studyfile_reader import load_study_file

    (tmp_path / "s.toml").write_text('name = "s"\n[fixed]\nstem = "cifar"\n[knobs.connectivity]\nchoices = ["dense"]\n')
    path = tmp_path / "st.toml"
    path.write_text(
        '[study]\nname = "q"\nspace = "s.toml"\ntrials = 3\ndevice = "cpu"\nbaselines = ["preact_resnet20"]\n'
        '[data]\nname = "digits"\n'
    )
    storage = str(tmp_path / "journal.log")
    study = open_study(load_study_file(path), storage=storage)  # trial 0: the baseline, queued
    running = study.ask()  # trial 0 is waiting: the ask takes it (a worker runs the baseline)
    records.write_worker(running)
    records.write_heartbeat(study, running)
    lost = study.ask()  # trial 1, lost with its worker: failed and re-queued as trial 2
    lost.suggest_categorical("connectivity", ["dense"])
    fail_and_requeue(study, study.trials[lost.number], "its worker died")
    status = nas_here("status", str(path), "--storage", storage, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[1] == "  failed 1, queued 1, running 1"
    assert lines[2].startswith(f"  running: trial 0 preact_resnet20 on {socket.gethostname()}:{os.getpid()} since 20")
    assert lines[2].endswith(" s ago") and ", last heartbeat " in lines[2]
    assert lines[3] == "  queued: trial 2 dense, re-run of trial 1 (waits for a worker)"

"""Output that its reader stops reading (`nas status | head -1`) and outputs that are not files (`/dev/stdout`, a
FIFO): real subprocesses whose standard output is a pipe closed before they write."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import optuna
from optuna.trial import TrialState

from nas.search.run.storage import open_storage
from tests.search.run.test_storage import study_file


def closed_stdout(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`nas ARGS | head -0`: the reading end of its standard output is closed before it writes anything."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nas.cli", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    return subprocess.CompletedProcess(args, proc.wait(timeout=600), "", err)


def test_a_closed_pipe_stops_neither_a_search_nor_a_command_that_reads(tmp_path: Path) -> None:
    path = study_file(tmp_path, trials=3)
    journal = str(tmp_path / "journal.log")
    run = closed_stdout("run", str(path), "--storage", journal, "--no-report", cwd=tmp_path)
    assert (run.returncode, run.stderr) == (0, "")
    study = optuna.load_study(study_name=path.stem, storage=open_storage(journal))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3  # every trial, though no line was read
    for command in ("status", "show"):
        extra = ["--trial", "0"] if command == "show" else []
        done = closed_stdout(command, str(path), *extra, "--storage", journal, cwd=tmp_path)
        assert (done.returncode, done.stderr) == (0, ""), command  # was `error: Broken pipe`, exit 2


def test_an_export_to_a_pipe_is_written_into_it_not_renamed_over_it(tmp_path: Path) -> None:
    path = study_file(tmp_path, trials=1)
    journal = str(tmp_path / "journal.log")
    assert subprocess.run([sys.executable, "-m", "nas.cli", "run", str(path), "--storage", journal, "--no-report"],
                          cwd=tmp_path, capture_output=True).returncode == 0  # fmt: skip
    fifo = tmp_path / "trials.fifo"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    export = subprocess.run(
        [sys.executable, "-m", "nas.cli", "trials", str(path), "--storage", journal, "--csv", str(fifo)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    reader.join(30)
    assert export.returncode == 0, export.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still the pipe, not a file renamed over it
    assert received and received[0].splitlines()[0].startswith("number,status,")
    assert len(received[0].splitlines()) == 2

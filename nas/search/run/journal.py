"""A journal file's integrity: read every line before anything is written, cut a torn last line, and repair one
whose middle holds lines that are not records.

Optuna replays a journal line by line and stops at the first line that is not JSON, which leaves every command
on that study in a traceback, and a trial's records after it unreadable. A disk hiccup, a careless edit or two
machines appending over a network file system can put such a line in the middle. So:

* `open_journal` has Optuna read the whole file before anything writes to it: a bad complete line refuses the
  study in one line naming the file, the line (found by `first_bad_line`) and `nas repair`;
* a torn last line (a crash mid-write) is what Optuna itself tolerates: it is cut off and kept in
  `<journal>.torn` (`cut_torn_line`), silently but for one line of output;
* `repair_journal` (`nas repair`) copies the journal aside, keeps every line that is a record, sets the others
  aside in `<journal>.bad`, checks that the kept records open, and only then replaces the journal.

A line that repeats an earlier trial-creating record exactly is bad too: Optuna would create the trial twice and
attach every later record of the study's trials to the wrong one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage

from nas.errors import UsageError
from nas.search.results import optuna_internals
from nas.text import plural

CREATE_TRIAL = optuna_internals.journal_create_trial_op()


@dataclass(frozen=True)
class BadLine:
    """A complete line of a journal that is not a record Optuna can replay."""

    number: int  # from 1, as an editor counts
    why: str
    text: bytes


class JournalDamaged(UsageError):
    """A journal with a bad line in it: refused before anything reads its trials or writes to it."""

    def __init__(self, path: Path, bad: BadLine) -> None:
        super().__init__(
            f"journal {path}, line {bad.number}: {bad.why}; nothing was read from it or written to it: "
            f"`nas repair {path}` sets the bad lines aside and keeps every other record"
        )
        self.path, self.bad = path, bad


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as f:
        yield from enumerate(f, start=1)


def _why_bad(line: bytes, number: int, creates: dict[bytes, int]) -> str | None:
    """Why a complete line is not a record to replay (None: it is one); `creates` remembers trial creations."""
    try:
        record = json.loads(line)
    except ValueError as err:  # JSONDecodeError, and UnicodeDecodeError for bytes that are not UTF-8
        return f"not a journal record ({type(err).__name__}: {err})"
    if not isinstance(record, dict) or not isinstance(record.get("op_code"), int):
        return "not a journal record (JSON without an op_code)"
    if record["op_code"] == CREATE_TRIAL:
        first = creates.setdefault(line.strip(), number)
        if first != number:
            return _repeats(first)
    return None


def _repeats(first: int) -> str:
    return f"repeats line {first}, which creates a trial (Optuna would create it twice)"


def first_bad_line(path: Path) -> BadLine | None:
    """The first complete line of the journal that is not a record; a torn last line is not counted."""
    if not path.is_file():
        return None
    creates: dict[bytes, int] = {}
    for number, line in _lines(path):
        if not line.endswith(b"\n"):
            return None
        why = _why_bad(line, number, creates)
        if why is not None:
            return BadLine(number, why, line)
    return None


def _repeated_create(path: Path) -> BadLine | None:
    """The first line repeating an earlier trial-creating line: found by the lines' start (cheap: Optuna writes
    each record as compact JSON with its op_code first), parsed only when one repeats."""
    start = re.compile(rb'^\{\s*"op_code"\s*:\s*%d\s*,' % CREATE_TRIAL)
    creates: dict[bytes, int] = {}
    if not path.is_file():
        return None
    for number, line in _lines(path):
        if start.match(line) and line.endswith(b"\n") and creates.setdefault(line.strip(), number) != number:
            return BadLine(number, _repeats(creates[line.strip()]), line)
    return None


def open_journal(path: Path) -> JournalStorage:
    """The journal's storage, read whole before anything can write to it (creating a study appends first, then
    reads): a bad line refuses it with `JournalDamaged`. A torn last line, which Optuna skips, is cut off after."""
    repeated = _repeated_create(path)
    if repeated is not None:
        raise JournalDamaged(path, repeated)
    try:
        storage = JournalStorage(JournalFileBackend(str(path)))  # replays every line; later reads go on from here
    except Exception:
        bad = first_bad_line(path)
        if bad is None:
            raise
        raise JournalDamaged(path, bad) from None
    return storage


class _Locked:
    """Optuna's own journal lock, held while this process rewrites the file: no worker appends meanwhile."""

    def __init__(self, path: Path) -> None:
        self.lock = JournalFileSymlinkLock(str(path))

    def __enter__(self) -> None:
        while not self.lock.acquire():
            time.sleep(0.01)

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def cut_torn_line(path: Path) -> int:
    """Cut a torn last line (a crash mid-write) off the journal into `<journal>.torn`; returns the bytes moved."""
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    with _Locked(path), path.open("rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return 0
        data = path.read_bytes()
        keep = data.rfind(b"\n") + 1
        with path.with_name(path.name + ".torn").open("ab") as torn:
            torn.write(data[keep:] + b"\n")
        f.truncate(keep)
        return len(data) - keep


@dataclass
class Repair:
    """What `repair_journal` did: the lines it set aside, where it put them and the original, what it kept."""

    path: Path
    set_aside: list[BadLine] = field(default_factory=list)
    original: Path | None = None  # the untouched copy; None when nothing needed repairing
    bad_file: Path | None = None
    studies: dict[str, int] = field(default_factory=dict)  # study name -> trials, as the repaired journal opens

    def summary(self) -> str:
        trials = sum(self.studies.values())
        kept = f"{plural(trials, 'trial')} in {plural(len(self.studies), 'study', 'studies')} kept"
        if not self.set_aside:
            return f"journal {self.path}: every line is a record, nothing to repair ({kept})"
        numbers = ", ".join(str(b.number) for b in self.set_aside[:10]) + (", ..." if len(self.set_aside) > 10 else "")
        return (
            f"journal {self.path}: {kept}, {plural(len(self.set_aside), 'line')} set aside (line {numbers}) "
            f"in {self.bad_file}; the journal as it was is in {self.original}"
        )


def _open_studies(path: Path) -> dict[str, int]:
    """Every study of the journal at `path` and its number of trials, as Optuna replays the file."""
    storage = JournalStorage(JournalFileBackend(str(path)))
    return {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}


def repair_journal(path: Path) -> Repair:
    """Keep every line of the journal that is a record, set the others aside (a torn last line too), and replace
    the journal only once the kept records open; the original is copied aside first."""
    if not path.is_file():
        raise UsageError(f"journal {path}: no such file", owner="nas repair", value=str(path), allowed="a journal file")
    repair = Repair(path)
    with _Locked(path):
        kept: list[bytes] = []
        creates: dict[bytes, int] = {}
        for number, line in _lines(path):
            why = (
                "torn: the last line, cut off mid-write"
                if not line.endswith(b"\n")
                else _why_bad(line, number, creates)
            )
            if why is None:
                kept.append(line)
            else:
                repair.set_aside.append(BadLine(number, why, line))
        if not repair.set_aside:
            repair.studies = _open_studies(path)
            return repair
        stamp = time.strftime("%Y%m%d-%H%M%S")
        repair.original = path.with_name(f"{path.name}.orig-{stamp}")
        shutil.copy2(path, repair.original)
        fresh = path.with_name(f"{path.name}.repaired-{stamp}")
        fresh.write_bytes(b"".join(kept))
        try:
            repair.studies = _open_studies(fresh)
        except Exception as err:
            fresh.unlink()
            raise UsageError(
                f"journal {path}: the records kept after setting {plural(len(repair.set_aside), 'line')} aside do not "
                f"open ({type(err).__name__}: {err}); the journal is unchanged"
            ) from None
        repair.bad_file = path.with_name(f"{path.name}.bad")
        with repair.bad_file.open("ab") as f:
            for bad in repair.set_aside:
                f.write(bad.text if bad.text.endswith(b"\n") else bad.text + b"\n")
        os.replace(fresh, path)
    return repair

"""Study storage that survives crashes: journal repair, exact budgets, dead workers detected.

Two storages are supported. The journal file (default) serves the workers of one machine; a
PostgreSQL (or other SQLAlchemy) URL serves workers on many machines. For both:

* a worker claims a trial under a lock (a file lock beside the journal or SQLite file, a
  PostgreSQL advisory lock), so the budget check and the trial's creation are one step and
  several workers never overshoot the budget;
* a running trial carries a heartbeat. On a database, Optuna's own heartbeat: a trial whose
  worker stopped beating for `grace` seconds is failed and re-queued with the same parameters
  (RetryHeartbeatStaleTrialCallback). On a journal, the trial records its worker (host, pid) and a
  heartbeat attribute; a trial whose worker process is gone (same host) or whose heartbeat is
  older than `grace` is failed and re-queued the same way;
* a trial whose worker died between claiming it and its first beat has no heartbeat to go
  stale: it is failed and re-queued once its start is older than `grace`, on both storages;
* a trial lost that way is recorded as failed with its reason and does not count against the
  budget: its re-run does. A trial is re-queued at most MAX_RERUNS times in a row, so a network
  that crashes every worker that runs it ends as failed instead of taking every worker down.

A journal is read whole before use (nas.search.run.journal): a line that is not a record refuses it in one line
naming `nas repair`; a last line torn by a crash is moved to `<journal>.torn` and the file cut back to its last
complete line.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.errors import UsageError
from nas.search.results import optuna_internals, records, trial_record
from nas.search.results.records import RETRY_HISTORY, rerun_system_attrs
from nas.search.results.trial_record import stored
from nas.search.run.journal import cut_torn_line, open_journal
from nas.text import plural

MAX_RERUNS = 3  # re-runs of one lost trial in a row, as Optuna's retry callback counts them


class StorageError(UsageError):
    """A storage URL or file that cannot be opened; the message names it."""


def is_journal(url: str) -> bool:
    return "://" not in url


def open_storage(url: str, *, heartbeat_seconds: int = 30) -> optuna.storages.BaseStorage:
    """A journal file path (the default) or any Optuna storage URL, PostgreSQL included."""
    if is_journal(url):
        path = Path(url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StorageError(f"cannot open storage {url}: {err.strerror}") from err
        storage = open_journal(path)  # a bad line refuses the study before anything is written to the file
        moved = cut_torn_line(path)
        if moved:
            print(f"journal {path}: cut {moved} torn bytes after a crash (kept in {path.name}.torn)", flush=True)
        return storage
    try:
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=heartbeat_seconds,
            grace_period=4 * heartbeat_seconds,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RERUNS),
            engine_kwargs={"pool_pre_ping": True},
        )
    except Exception as err:  # SQLAlchemy and the drivers raise many kinds; the user needs the URL and why
        # Only a missing driver gets the install hint, not a server that is not there.
        hint = ' (a database driver is missing; for postgresql:// URLs: pip install "psycopg[binary]")'
        hint = hint if isinstance(err, ImportError) else ""
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise StorageError(f"cannot open storage {url}: {type(err).__name__}: {first}{hint}") from err


def holds_no_studies(url: str) -> bool:
    """True when the database at `url` (not a journal) answers and has no Optuna tables: a read-only
    command then says so instead of creating them (a mistyped database name). Looked at without
    creating anything; False when unsure, so that opening the storage reports its own error."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():  # connecting would create the file
            return True
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url)
    except Exception:
        return False
    try:
        with engine.connect() as conn:
            return not sqlalchemy.inspect(conn).has_table("studies")
    except Exception:  # unreachable, refused, a missing driver: open_storage words it
        return False
    finally:
        engine.dispose()


class ClaimLock:
    """Makes 'is there budget left? then create a trial' one step across workers."""

    def __init__(self, url: str, study_name: str) -> None:
        self.url, self.study_name = url, study_name
        self._engine: Any = None
        if is_journal(url) or url.startswith("sqlite:///"):
            base = Path(url) if is_journal(url) else Path(url.removeprefix("sqlite:///"))
            self.path: Path | None = base.with_name(f"{base.name}.{study_name}.claim.lock")
        else:
            self.path = None
        key = hashlib.sha256(f"densenas:{study_name}".encode()).digest()
        self.key = int.from_bytes(key[:8], "big", signed=True)  # a PostgreSQL advisory-lock key

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        if self.path is not None:
            with self.path.open("a") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
        elif self.url.startswith("postgresql"):
            import sqlalchemy

            if self._engine is None:
                self._engine = sqlalchemy.create_engine(self.url, pool_pre_ping=True)
            with self._engine.connect() as conn:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self.key})
                try:
                    yield
                finally:
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        else:  # other databases: best effort, may overshoot by workers - 1
            yield


def budget_used(trials: list[FrozenTrial]) -> int:
    """Trials that count against the budget: all of them, whatever their state, except the ones
    lost with a dead worker, whose re-runs count instead."""
    return len(trials) - len(trial_record.replaced_trials(trials))


class Heartbeat:
    """Beats for one running trial until stopped (a daemon thread)."""

    def __init__(self, study: optuna.Study, trial: optuna.Trial, seconds: float) -> None:
        self.study, self.trial, self.seconds = study, trial, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"heartbeat-{trial.number}")

    def _beat(self) -> None:
        database = optuna_internals.heartbeat_storage(optuna_internals.storage_of(self.study))
        if database is not None:
            database.record_heartbeat(optuna_internals.trial_id_of(self.trial))
        else:
            records.write_heartbeat(self.study, self.trial)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            with contextlib.suppress(Exception):  # a trial that just finished cannot take attrs
                self._beat()

    def __enter__(self) -> Heartbeat:
        records.write_worker(self.trial)
        self._beat()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _started_at(trial: FrozenTrial, now: float) -> float:
    return trial.datetime_start.timestamp() if trial.datetime_start else now


def _process_gone(pid: int) -> bool:
    """True when no live process has this pid; a zombie (killed, not yet reaped) is gone too."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
    except (OSError, IndexError):
        pass  # no /proc (macOS): ask the kernel
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def fail_stale_trials(study: optuna.Study, *, heartbeat_seconds: float) -> dict[int, str]:
    """Fail the running trials whose worker died and re-queue them (at most MAX_RERUNS times in a row,
    so a network that kills its process cannot take every worker down forever); returns number -> what
    happened."""
    database = optuna_internals.heartbeat_storage(optuna_internals.storage_of(study)) is not None
    lost: dict[int, str] = {}
    if database:  # Optuna's heartbeat watches every trial that beat once
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        optuna.storages.fail_stale_trials(study)
        after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        for number in sorted(before - after):
            lost[number] = (
                f"its worker stopped beating: failed, re-queued at most {plural(MAX_RERUNS, 'time')} in a row"
            )
    host, now = socket.gethostname(), time.time()
    for t in study.get_trials(deepcopy=True, states=(TrialState.RUNNING,)):
        attrs = stored(t)
        worker, beat = attrs.worker, attrs.heartbeat
        # A re-run on a database starts with a copy of the dead trial's attrs: its own worker names it.
        started = bool(worker) and worker.get("trial", t.number) == t.number
        if database and started:
            continue
        if started and worker.get("host") == host and isinstance(worker.get("pid"), int):
            gone = _process_gone(worker["pid"])
        else:  # another machine's worker, or one that died between claiming the trial and its first beat
            last = float(beat) if started and beat is not None else _started_at(t, now)
            gone = now - last > 4 * heartbeat_seconds
        if not gone:
            continue
        why = (
            f"worker {worker.get('host')}:{worker.get('pid')} died during the trial"
            if started
            else f"its worker died before the trial's first heartbeat (none for {now - last:.0f} s)"
        )
        rerun = rerun_system_attrs(t)
        history = rerun[RETRY_HISTORY]
        requeue = len(history) <= MAX_RERUNS
        if requeue:
            why += "; re-queued with the same parameters"
        else:
            died = plural(len(history), "worker")
            why += f"; not re-queued: {died} died running these parameters (does the network crash them?)"
        if fail_and_requeue(study, t, why, requeue=requeue):
            lost[t.number] = why
    return lost


def fail_and_requeue(study: optuna.Study, trial: FrozenTrial, why: str, *, requeue: bool = True) -> bool:
    """Record a running trial as failed with `why` and queue a re-run with the same parameters, which
    counts against the budget in its place; False when another worker got there first."""
    if not records.fail_lost_trial(study, trial, why):
        return False
    if requeue:
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.WAITING,
                params=trial.params,
                distributions=trial.distributions,
                user_attrs=records.requeued_attrs(trial),
                system_attrs=rerun_system_attrs(trial),
            )
        )
    return True

"""Studies that outgrow one process: real worker processes on a journal file and on PostgreSQL (what a command
refuses before it starts, in-process: tests/commands.py).

PostgreSQL comes from NAS_TEST_POSTGRES_URL (.ci/run starts a server and sets it) or a local
server set up by .ci/postgres.sh; without either, only the PostgreSQL cases skip.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nas.report.data import compute_report_data
from nas.report.page import write_report
from nas.search.results import records as R
from nas.search.results import trial_record
from nas.search.results.records import FAILED_TRIAL, WORKER
from nas.search.run.journal import cut_torn_line
from nas.search.run.runner import run_worker
from nas.search.run.storage import (
    MAX_RERUNS,
    StorageError,
    budget_used,
    fail_stale_trials,
    open_storage,
)
from nas.search.run.study import open_study
from nas.search.spec.studyfile_reader import load_study_file
from tests.commands import nas_here

LOCAL_POSTGRES = "postgresql://nas:nas@127.0.0.1:5432/nas_test"
SMALL_SPACE = """
name = "small"
[fixed]
stem = "cifar"
block_config = [2, 2]
bn_size = 0
[knobs.connectivity]
choices = ["plain", "residual", "dense", "osp"]
[knobs.growth_rate]
choices = [4, 8]
[knobs.init_features]
choices = [8, 12]
"""
ONE_NET_SPACE = """
name = "one"
[fixed]
stem = "cifar"
block_config = [2, 2]
growth_rate = 8
init_features = 8
[knobs.connectivity]
choices = ["dense"]
"""

# 4 x 61 x 57 networks: two draws are one network about once in 14,000.
WIDE_SPACE = """
name = "wide"
[fixed]
stem = "cifar"
block_config = [2, 2]
bn_size = 0
[knobs.connectivity]
choices = ["plain", "residual", "dense", "osp"]
[knobs.growth_rate]
type = "int"
low = 4
high = 64
[knobs.init_features]
type = "int"
low = 8
high = 64
"""


def postgres_url() -> str | None:
    url = os.environ.get("NAS_TEST_POSTGRES_URL")
    if url:
        return url
    import sqlalchemy

    try:
        with sqlalchemy.create_engine(LOCAL_POSTGRES).connect():
            return LOCAL_POSTGRES
    except Exception:
        return None


@pytest.fixture(params=["journal", "postgresql"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "journal":
        return str(tmp_path / "runs" / "journal.log")
    url = postgres_url()
    if url is None:
        pytest.skip("no PostgreSQL: set NAS_TEST_POSTGRES_URL or run .ci/postgres.sh")
    return url


def study_file(tmp_path: Path, *, trials: int, space: str = SMALL_SPACE, extra: str = "") -> Path:
    (tmp_path / "space.toml").write_text(space)
    name = f"s{uuid.uuid4().hex[:10]}"  # fresh in a shared PostgreSQL database
    path = tmp_path / f"{name}.toml"
    path.write_text(f"""
[study]
name = "{name}"
space = "space.toml"
objectives = ["val_accuracy", "flops"]
sampler = "random"
trials = {trials}
seed = 0
device = "cpu"
heartbeat_seconds = 1
{extra}
[data]
name = "digits"
[recipe]
epochs = 1
batch_size = 128
lr = 0.2
measure_latency = false
""")
    return path


def nas(*args: str, cwd: Path, faults: str = "", wait: bool = True) -> subprocess.Popen[str]:
    env = {**os.environ, "NAS_INJECT_FAULTS": faults}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nas.cli", *args],
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    if wait:
        proc.wait(timeout=600)
    return proc


def load(path: Path, storage: str) -> optuna.Study:
    return optuna.load_study(study_name=load_study_file(path).name, storage=open_storage(storage))


def wait_for_running(path: Path, storage: str, number: int, timeout: float = 120) -> int:
    """The pid of the worker running trial `number`, once it has drawn its network (params stored)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            for t in load(path, storage).get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                if t.number == number and WORKER in t.user_attrs and R.ARCH_HASH in t.user_attrs:
                    return int(t.user_attrs[WORKER]["pid"])
        except KeyError:
            pass  # the study is not created yet
        time.sleep(0.3)
    raise AssertionError(f"trial {number} never ran")


def trained_hashes(study: optuna.Study) -> list[str]:
    return [t.user_attrs[R.ARCH_HASH] for t in study.trials if t.user_attrs.get(R.STATUS) == "complete"]


def test_four_workers_run_exactly_the_budget(tmp_path: Path, storage: str) -> None:
    path = study_file(tmp_path, trials=10)
    run = nas("run", str(path), "--workers", "4", "--storage", storage, "--no-report", cwd=tmp_path)
    assert run.returncode == 0, run.stderr.read() if run.stderr else ""
    study = load(path, storage)
    numbers = sorted(t.number for t in study.trials)
    assert numbers == list(range(10))  # exactly the budget, numbers unique
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    hashes = trained_hashes(study)
    assert len(hashes) == len(set(hashes))  # no network trained twice: the rest were reused
    assert {t.user_attrs[R.STATUS] for t in study.trials} <= {"complete", "reused"}


def test_workers_seeded_alike_draw_their_own_architectures(tmp_path: Path, storage: str) -> None:
    path = study_file(tmp_path, trials=2, space=WIDE_SPACE)
    # Each worker hangs in its first trial, so trials 0 and 1 are drawn by different workers.
    workers = [
        nas("worker", str(path), "--storage", storage, cwd=tmp_path, faults="0:hang,1:hang", wait=False)
        for _ in range(2)
    ]
    try:
        assert len({wait_for_running(path, storage, n) for n in (0, 1)}) == 2
        first, second = sorted(load(path, storage).trials, key=lambda t: t.number)
        assert first.params != second.params  # one seed in the study file, yet not the same sequence
    finally:
        for w in workers:
            w.kill()
            w.wait()


def test_killed_worker_trial_is_rerun_with_the_same_parameters(tmp_path: Path, storage: str) -> None:
    path = study_file(tmp_path, trials=4, space=WIDE_SPACE)
    # Trial 1 hangs, so its worker is certainly inside it when it is killed (a wide space: it draws
    # a network of its own, not one it could reuse without training).
    workers = [
        nas("worker", str(path), "--storage", storage, cwd=tmp_path, faults="1:hang", wait=False) for _ in range(2)
    ]
    victim = wait_for_running(path, storage, 1)
    os.kill(victim, signal.SIGKILL)  # not reaped until the survivor is done: a zombie counts as dead
    survivor = next(w for w in workers if w.pid != victim)
    survivor.wait(timeout=300)
    for w in workers:
        w.wait(timeout=60)
    study = load(path, storage)
    lost = next(t for t in study.trials if t.number == 1)
    assert lost.state == TrialState.FAIL
    rerun = [t for t in study.trials if t.system_attrs.get(FAILED_TRIAL) == 1]
    assert len(rerun) == 1 and rerun[0].state == TrialState.COMPLETE
    assert rerun[0].params == lost.params
    assert budget_used(study.trials) == 4 and len(study.trials) == 5
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    record = next(r for r in trial_record.load_records(study) if r.number == 1)
    assert record.status == "failed" and record.reason and "re-" in record.reason


def test_trial_whose_worker_died_before_its_first_beat_is_rerun(tmp_path: Path, storage: str) -> None:
    path = study_file(tmp_path, trials=3)
    study = open_study(load_study_file(path), storage=storage)
    study.ask()  # claimed, then its worker died before the heartbeat started
    # A database re-run starts with a copy of the dead trial's attrs, its worker's included.
    study.ask().set_user_attr(WORKER, {"host": socket.gethostname(), "pid": os.getpid(), "trial": 99})
    time.sleep(4.5)  # past the grace of 4 heartbeats (heartbeat_seconds = 1)
    run = nas("run", str(path), "--storage", storage, "--no-report", cwd=tmp_path)
    assert run.returncode == 0, run.stderr.read() if run.stderr else ""
    study = load(path, storage)
    records = {r.number: r for r in trial_record.load_records(study)}
    for lost in (0, 1):
        assert records[lost].status == "failed"
        assert "before the trial's first heartbeat" in (records[lost].reason or "")
    assert sorted(t.system_attrs.get(FAILED_TRIAL, -1) for t in study.trials) == [-1, -1, -1, 0, 1]
    assert budget_used(study.trials) == 3 and len(study.trials) == 5
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))


def test_a_trial_whose_workers_keep_dying_is_not_requeued_forever(tmp_path: Path, storage: str) -> None:
    study = open_study(load_study_file(study_file(tmp_path, trials=1)), storage=storage)
    for _ in range(MAX_RERUNS + 1):
        trial = study.ask()  # the lost trial's re-run first; its worker dies before the first beat
        time.sleep(1.2)  # past the grace of 4 heartbeats of 0.25 s
        lost = fail_stale_trials(study, heartbeat_seconds=0.25)
        assert list(lost) == [trial.number]
    assert lost[trial.number].endswith(
        "not re-queued: 4 workers died running these parameters (does the network crash them?)"
    )
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert budget_used(study.trials) == 1  # the chain counts once, as the failed trial it ends in
    record = next(r for r in trial_record.load_records(study) if r.number == trial.number)
    assert record.status == "failed" and "not re-queued" in (record.reason or "")


def test_journal_next_run_requeues_a_killed_trial(tmp_path: Path) -> None:
    storage = str(tmp_path / "runs" / "journal.log")
    path = study_file(tmp_path, trials=3, space=WIDE_SPACE)  # trial 1 trains (and hangs): no twin to reuse
    worker = nas("worker", str(path), "--storage", storage, cwd=tmp_path, faults="1:hang", wait=False)
    os.kill(wait_for_running(path, storage, 1), signal.SIGKILL)
    worker.wait(timeout=60)
    assert load(path, storage).get_trials(states=(TrialState.RUNNING,))  # left behind by the crash
    again = nas("run", str(path), "--storage", storage, "--no-report", cwd=tmp_path)
    assert again.returncode == 0
    study = load(path, storage)
    assert budget_used(study.trials) == 3
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in study.trials)
    assert any(t.system_attrs.get(FAILED_TRIAL) == 1 and t.state == TrialState.COMPLETE for t in study.trials)


def test_budget_holds_with_failures_workers_and_restarts(tmp_path: Path, storage: str) -> None:
    # A wide space: in the small one, trial 1 (seeded by its worker's pid) could draw a network another trial had
    # finished, reuse it and never meet its fault (CI saw 1 failure instead of 2).
    path = study_file(tmp_path, trials=6, space=WIDE_SPACE)
    run = nas(
        "run", str(path), "--workers", "2", "--storage", storage, "--no-report", cwd=tmp_path, faults="0:error,1:nan"
    )
    assert run.returncode == 0
    study = load(path, storage)
    assert len(study.trials) == 6  # failed ones count too
    assert sum(t.state == TrialState.FAIL for t in study.trials) == 2
    again = nas("run", str(path), "--workers", "2", "--storage", storage, "--no-report", cwd=tmp_path)
    assert again.returncode == 0
    assert len(load(path, storage).trials) == 6  # a finished study gains nothing


def test_failures_are_recorded_and_the_worker_goes_on(tmp_path: Path) -> None:
    storage = str(tmp_path / "runs" / "journal.log")
    path = study_file(tmp_path, trials=4)
    run = nas("run", str(path), "--storage", storage, "--no-report", cwd=tmp_path, faults="0:nan,1:error")
    assert run.returncode == 0
    records = {r.number: r for r in trial_record.load_records(load(path, storage))}
    assert records[0].status == "failed" and "non-finite training loss" in (records[0].reason or "")
    assert records[1].status == "failed" and "injected failure in user code" in (records[1].reason or "")
    assert {records[2].status, records[3].status} <= {"complete", "reused"}


def test_out_of_memory_network_is_infeasible_and_never_retried(tmp_path: Path) -> None:
    storage = str(tmp_path / "runs" / "journal.log")
    path = study_file(tmp_path, trials=3, space=ONE_NET_SPACE)
    run = nas("run", str(path), "--storage", storage, "--no-report", cwd=tmp_path, faults="0:oom")
    assert run.returncode == 0
    study = load(path, storage)
    records = sorted(trial_record.load_records(study), key=lambda r: r.number)
    assert [r.status for r in records] == ["infeasible", "infeasible", "infeasible"]
    assert "out of memory" in (records[0].reason or "")
    assert all(r.reused_from == 0 for r in records[1:])  # the sampler's answer, not a retry
    assert all(r.constraints["memory"] > 0 for r in records)
    assert study.best_trials == []


def test_hung_trial_is_stopped_by_the_time_limit(tmp_path: Path) -> None:
    """A hung trial fails at the limit and the next trains. 9 s, not 3: on a loaded 2-core machine a normal
    digits trial took over 3 s and failed too."""
    storage = str(tmp_path / "runs" / "journal.log")
    path = study_file(tmp_path, trials=2, extra="trial_timeout_minutes = 0.15")
    start = time.monotonic()
    run = nas("run", str(path), "--storage", storage, "--no-report", cwd=tmp_path, faults="0:hang")
    assert run.returncode == 0 and time.monotonic() - start < 120
    records = {r.number: r for r in trial_record.load_records(load(path, storage))}
    assert records[0].status == "failed" and "per-trial time limit of 0.15 minutes" in (records[0].reason or "")
    assert records[1].status == "complete"


def test_torn_journal_line_is_repaired(tmp_path: Path) -> None:
    storage = tmp_path / "runs" / "journal.log"
    path = study_file(tmp_path, trials=2)
    assert nas("run", str(path), "--storage", str(storage), "--no-report", cwd=tmp_path).returncode == 0
    intact = storage.read_bytes()
    with storage.open("ab") as f:
        f.write(b'{"op_code": 5, "worker_id": "crash", "trial_id": 1, "us')  # a crash mid-write
    assert cut_torn_line(storage) > 0
    assert storage.read_bytes() == intact
    assert (tmp_path / "runs" / "journal.log.torn").read_bytes().startswith(b'{"op_code": 5')
    with storage.open("ab") as f:
        f.write(b'{"op_code": 5, "worker_id": "crash"')
    run = nas("run", str(path), "--storage", str(storage), "--trials", "3", "--no-report", cwd=tmp_path)
    assert run.returncode == 0
    assert len(load(path, str(storage)).trials) == 3


def test_report_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = str(tmp_path / "runs" / "journal.log")
    path = study_file(tmp_path, trials=1)
    assert nas("run", str(path), "--storage", storage, "--no-report", cwd=tmp_path).returncode == 0
    data = compute_report_data(study=load(path, storage))
    out = tmp_path / "reports"
    report = write_report(data=data, out_dir=out)
    before = report.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_report(data=data, out_dir=out)
    assert report.read_bytes() == before  # the old report is whole
    assert sorted(p.name for p in out.iterdir()) == [report.name]  # no half file left


def test_same_seed_same_parameters_and_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runs = []
    for i in range(2):
        (tmp_path / str(i)).mkdir()
        path = study_file(tmp_path / str(i), trials=4)
        study = run_worker(load_study_file(path), storage=str(tmp_path / str(i) / "journal.log"))
        runs.append([(t.params, t.values) for t in sorted(study.trials, key=lambda t: t.number)])
    assert runs[0] == runs[1]


def test_bad_input_never_crashes_a_worker_or_touches_storage(tmp_path: Path, storage: str) -> None:
    path = study_file(tmp_path, trials=1)
    assert nas_here("run", str(path), "--storage", storage, "--no-report", cwd=tmp_path).returncode == 0
    before = [(t.number, t.state, t.values) for t in load(path, storage).trials]
    bad = tmp_path / "bad.toml"
    for text, message in [
        (path.read_text().replace("[recipe]", "[recipe]\nepoch = 3"), "unknown key recipe.epoch"),
        (path.read_text().replace("trials = 1", 'trials = "one"'), "study.trials"),
        (path.read_text().replace(f'name = "{load_study_file(path).name}"', 'name = "../evil"'), "study.name"),
        (path.read_text().replace(f'name = "{load_study_file(path).name}"', 'name = "<b>x</b>"'), "study.name"),
    ]:
        bad.write_text(text)
        run = nas_here("worker", str(bad), "--storage", storage, cwd=tmp_path)
        assert run.returncode == 2 and message in run.stderr, run.stderr
    for url in ("postgresql://nas:nas@127.0.0.1:1/none", "sqlite:////nonexistent-dir/x.db"):
        run = nas_here("worker", str(path), "--storage", url, cwd=tmp_path)
        assert run.returncode == 2 and f"cannot open storage {url}" in run.stderr, run.stderr
    assert [(t.number, t.state, t.values) for t in load(path, storage).trials] == before


def test_a_machine_failure_requeues_the_trial_and_stops_the_worker(tmp_path: Path) -> None:
    storage = str(tmp_path / "runs" / "journal.log")
    path = study_file(tmp_path, trials=2)
    run = nas("run", str(path), "--storage", storage, "--no-report", cwd=tmp_path, faults="0:disk")
    _, err = run.communicate()
    assert run.returncode == 2
    assert err.strip().splitlines() == ["nas run: error: No space left on device (injected)"]
    study = load(path, storage)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.WAITING]  # nothing else ran
    assert budget_used(study.trials) == 1  # the failure is the machine's: its re-run counts, not it
    record = trial_record.load_records(study)[0]
    assert record.status == "failed" and (record.reason or "").startswith("the machine failed, not the network")
    again = nas("run", str(path), "--storage", storage, "--no-report", cwd=tmp_path)
    assert again.returncode == 0
    study = load(path, storage)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert study.trials[1].params == study.trials[0].params


def test_a_baseline_that_failed_runs_again_on_the_next_run(tmp_path: Path) -> None:
    storage = str(tmp_path / "runs" / "journal.log")
    path = study_file(tmp_path, trials=1, extra='baselines = ["preact_resnet20"]')
    first = nas("run", str(path), "--storage", storage, "--no-report", cwd=tmp_path, faults="0:error")
    assert first.returncode == 0
    assert [trial_record.stored(t).status for t in load(path, storage).trials] == ["failed"]
    again = nas("run", str(path), "--storage", storage, "--no-report", cwd=tmp_path)
    assert again.returncode == 0
    trials = load(path, storage).trials
    assert [(trial_record.stored(t).baseline, trial_record.stored(t).status) for t in trials] == [
        ("preact_resnet20", "failed"),
        ("preact_resnet20", "complete"),
    ]


def test_machine_failures_are_told_from_the_network_s() -> None:
    from nas.search.run.trial_life import machine_failure

    assert machine_failure(OSError(28, "No space left on device"))
    assert machine_failure(RuntimeError("CUDA error: an illegal memory access was encountered"))
    assert not machine_failure(RuntimeError("injected failure in user code"))
    assert not machine_failure(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not machine_failure(ValueError("bad value"))


def test_read_only_commands_refuse_a_database_without_studies_and_create_nothing(tmp_path: Path) -> None:
    # A mistyped database: `nas status` and `nas report` said "no study" after creating Optuna's tables there.
    import sqlalchemy

    path = study_file(tmp_path, trials=1)
    sqlite = tmp_path / "typo.db"
    urls = [f"sqlite:///{sqlite}"]
    url = postgres_url()
    schema = f"empty_{uuid.uuid4().hex[:10]}"  # a database of its own: the search path starts in an empty schema
    if url is not None:
        engine = sqlalchemy.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
        urls.append(f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}")
    try:
        for storage in urls:
            for command in ("status", "report"):
                run = nas_here(command, str(path), "--storage", storage, cwd=tmp_path)
                assert run.returncode == 2, run.stderr
                assert run.stderr.splitlines() == [
                    f"nas {command}: error: no study {path.stem!r}: the database {storage} holds no Optuna study "
                    f"at all (is the URL right?); run `nas run {path}` first"
                ]
        assert not sqlite.exists()
        if url is not None:
            with engine.connect() as conn:
                assert sqlalchemy.inspect(conn).get_table_names(schema=schema) == []
    finally:
        if url is not None:
            with engine.begin() as conn:
                conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
            engine.dispose()


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("postgresql://nas:nas@127.0.0.1:1/none", False),  # psycopg is installed: the server is simply not there
        ("postgresql+psycopg2://nas:nas@127.0.0.1:1/none", True),  # a driver this venv does not have
    ],
)
def test_the_install_hint_only_for_a_missing_driver(url: str, hint: bool) -> None:
    with pytest.raises(StorageError) as err:
        open_storage(url)
    assert str(err.value).startswith(f"cannot open storage {url}: ")
    assert ('pip install "psycopg[binary]"' in str(err.value)) is hint

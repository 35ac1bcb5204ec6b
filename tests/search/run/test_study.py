"""Search studies on digits, for real: the CLI end to end, resume, rejection, reuse, pruning."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import optuna
import pandas
import pytest
from optuna.trial import TrialState

from nas.data.datasets import DataConfig, load_data
from nas.search.results import optuna_internals, study_attrs, trial_record
from nas.search.results import records as R
from nas.search.results.trial_record import stored
from nas.search.run.runner import run_worker
from nas.search.run.shares import own_cores, plan_shares
from nas.search.run.storage import ClaimLock, StorageError, open_storage
from nas.search.run.study import open_study
from nas.search.run.trial_objective import Objective, recipe_hash
from nas.search.spec.studyfile_reader import load_study_file
from nas.train.results import EpochMetrics
from tests.commands import nas, nas_here

ONE_NET_SPACE = """
name = "one_net"
[fixed]
stem = "cifar"
block_config = [2, 2]
growth_rate = 8
init_features = 8
[knobs.connectivity]
choices = ["dense"]
"""


def write_study(
    tmp_path: Path,
    *,
    name: str = "t",
    trials: int = 4,
    space: str = "densenet_family",
    extra: str = "",
    baselines: str = "[]",
    epochs: int = 2,
    sampler: str = "tpe",
    device: str = "cpu",
) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f"""
[study]
name = "{name}"
space = "{space}"
objectives = ["val_accuracy", "flops"]
sampler = "{sampler}"
trials = {trials}
seed = 0
device = "{device}"
baselines = {baselines}

[data]
name = "digits"

[recipe]
epochs = {epochs}
batch_size = 64
lr = 0.2
measure_latency = false
{extra}
""")
    return path


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # runs/<study>/journal.log and reports/ land in the test's folder


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))


def test_cli_run_then_resume_then_nothing_more(tmp_path: Path) -> None:
    path = write_study(tmp_path, trials=3)
    first = nas_here("run", str(path), "--out", str(tmp_path / "reports"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "[3/3]" in first.stdout
    report = Path(first.stdout.strip().splitlines()[-1].removeprefix("report: "))
    assert report.is_file() and report.parent == tmp_path / "reports"
    sf = load_study_file(path)
    study = open_study(sf)
    assert study.metric_names == ["val_accuracy", "flops"]  # optuna-dashboard labels its axes with these
    before = {t.number: (t.values, stored(t).arch_hash) for t in finished(study)}
    assert sorted(before) == [0, 1, 2]

    resumed = nas_here("run", str(path), "--trials", "5", "--no-report", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    study = open_study(sf)
    after = {t.number: (t.values, stored(t).arch_hash) for t in finished(study)}
    assert sorted(after) == [0, 1, 2, 3, 4]
    assert {n: after[n] for n in before} == before  # nothing retrained or changed

    again = nas_here("run", str(path), "--trials", "5", "--no-report", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(open_study(sf).trials) == 5


TWO_NET_GRID = """
name = "two_nets"
[fixed]
stem = "cifar"
block_config = [2]
growth_rate = 8
init_features = 8
[knobs.connectivity]
choices = ["dense", "residual"]
"""


def test_grid_study_ends_cleanly_at_the_end_of_the_grid(tmp_path: Path) -> None:
    """A budget larger than the grid: every point trained once, then a clean end with the report."""
    (tmp_path / "two_nets.toml").write_text(TWO_NET_GRID)
    path = write_study(tmp_path, trials=4, space="two_nets.toml", sampler="grid", epochs=1)
    run = nas_here("run", str(path), "--out", str(tmp_path / "reports"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "the grid is done: every point of the search space was trained once" in run.stdout
    assert run.stdout.strip().splitlines()[-1].startswith("report: ")
    trials = open_study(load_study_file(path)).trials
    assert sorted(stored(t).connectivity or "" for t in trials) == ["dense", "residual"]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    again = nas_here("run", str(path), "--no-report", cwd=tmp_path)  # resuming a finished grid trains nothing
    assert again.returncode == 0, again.stderr
    assert len(open_study(load_study_file(path)).trials) == 2


def test_trials_carry_config_metrics_history_and_environment(tmp_path: Path) -> None:
    sf = load_study_file(write_study(tmp_path, trials=2))
    study = run_worker(sf)
    for t in finished(study):
        attrs = t.user_attrs
        if attrs[R.STATUS] != "complete":
            continue
        assert attrs[R.ARCH]["connectivity"] == attrs[R.CONNECTIVITY]
        assert set(attrs[R.METRICS]) >= {"val_accuracy", "params", "flops", "process_peak_rss", "train_time"}
        assert "peak_memory" not in attrs[R.METRICS]  # CPU has no per-trial peak
        assert [h["epoch"] for h in attrs[R.HISTORY]] == [1, 2]
        assert attrs[R.ENVIRONMENT]["device"] == "cpu"
        assert t.values == [attrs[R.METRICS]["val_accuracy"], attrs[R.METRICS]["flops"]]
    assert study.user_attrs[study_attrs.STUDY_PROVENANCE]["dataset"] == "digits"


def test_over_budget_candidates_are_rejected_without_training(tmp_path: Path) -> None:
    sf = load_study_file(write_study(tmp_path, trials=4, extra="[constraints]\nmax_params = 100\n"))
    study = run_worker(sf)
    trials = finished(study)
    assert len(trials) == 4
    for t in trials:
        assert t.user_attrs[R.STATUS] == "rejected"
        assert "over budget before training" in t.user_attrs[R.REASON]
        assert R.HISTORY not in t.user_attrs  # never trained
        assert optuna_internals.named_constraints(t)["params"] > 0
    assert study.best_trials == []  # infeasible trials are never on the front


def test_duplicate_architectures_train_once(tmp_path: Path) -> None:
    (tmp_path / "one_net.toml").write_text(ONE_NET_SPACE)
    sf = load_study_file(write_study(tmp_path, trials=3, space=str(tmp_path / "one_net.toml")))
    study = run_worker(sf)
    trials = sorted(finished(study), key=lambda t: t.number)
    assert [t.user_attrs[R.STATUS] for t in trials] == ["complete", "reused", "reused"]
    assert all(t.user_attrs[R.REUSED_FROM] == 0 for t in trials[1:])
    assert all(t.values == trials[0].values for t in trials)
    assert all(t.user_attrs[R.HISTORY] == trials[0].user_attrs[R.HISTORY] for t in trials)


FLOAT_COMPRESSION = """
[knobs.compression]
type = "float"
low = 0.3
high = 1.0
"""


def test_compressions_that_give_the_same_widths_train_once(tmp_path: Path) -> None:
    # 0.4447 and 0.4468 both take the first stage's 24 channels to 10: one network, trained once.
    (tmp_path / "one_net.toml").write_text(ONE_NET_SPACE + FLOAT_COMPRESSION)
    sf = load_study_file(write_study(tmp_path, trials=2, space=str(tmp_path / "one_net.toml")))
    study = open_study(sf, data=load_data(DataConfig(name="digits")))
    for compression in (0.4447, 0.4468):
        study.enqueue_trial({"connectivity": "dense", "compression": compression})
    trials = sorted(finished(run_worker(sf)), key=lambda t: t.number)
    assert [t.params["compression"] for t in trials] == [0.4447, 0.4468]
    assert [t.user_attrs[R.STATUS] for t in trials] == ["complete", "reused"]
    assert trials[1].user_attrs[R.REUSED_FROM] == 0 and trials[1].values == trials[0].values


def two_twins(tmp_path: Path) -> tuple[optuna.Study, Objective, optuna.Trial, optuna.Trial]:
    """Trials 0 and 1, running, that drew the same network with the same recipe."""
    sf = load_study_file(write_study(tmp_path, trials=2))
    data = load_data(DataConfig(name="digits"))
    study = open_study(sf, data=data)
    objective = Objective(sf, data, device="cpu", lock=ClaimLock(sf.storage_url(), sf.name))
    first, second = study.ask(), study.ask()
    for t in (first, second):
        t.set_user_attr(R.ARCH_HASH, "same")
        t.set_user_attr(R.RECIPE_HASH, objective.recipe_hash)
    return study, objective, first, second


def test_twin_drawn_later_under_a_lower_number_waits_for_the_one_training(tmp_path: Path) -> None:
    # Worker B asked trial 1 and started training its network before worker A, holding trial 0,
    # drew the same network: A must wait and reuse, not train it a second time.
    study, objective, first, second = two_twins(tmp_path)
    assert objective._wait_for_twin(second, "same") is None  # no twin trains it: trial 1 does
    waited: list[optuna.trial.FrozenTrial | None] = []
    waiter = threading.Thread(target=lambda: waited.append(objective._wait_for_twin(first, "same")))
    waiter.start()
    waiter.join(timeout=3.0)
    assert waiter.is_alive()  # trial 0 waits for trial 1 although its number is lower
    second.set_user_attr(R.STATUS, "complete")
    study.tell(second, [0.9, 100.0])
    waiter.join(timeout=30.0)
    assert [t.number for t in waited if t is not None] == [1]
    assert study.trials[0].user_attrs[R.TRAINS] is False and study.trials[1].user_attrs[R.TRAINS] is True


def test_twin_takes_over_when_the_one_training_fails(tmp_path: Path) -> None:
    study, objective, first, second = two_twins(tmp_path)
    assert objective._wait_for_twin(first, "same") is None
    study.tell(first, state=TrialState.FAIL)
    assert objective._wait_for_twin(second, "same") is None  # nobody else trains it now


def test_network_stopped_early_once_is_not_trained_again(tmp_path: Path) -> None:
    (tmp_path / "one_net.toml").write_text(ONE_NET_SPACE)
    sf = load_study_file(write_study(tmp_path, trials=2, space=str(tmp_path / "one_net.toml")))
    data = load_data(DataConfig(name="digits"))
    study = open_study(sf, data=data)
    objective = Objective(sf, data, device="cpu", lock=ClaimLock(sf.storage_url(), sf.name))
    net = sf.space.config({"connectivity": "dense"}, in_channels=1, num_classes=10)
    history = [{"epoch": 1, "val_accuracy": 0.125}]  # no real run ends with exactly this
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.PRUNED,
            user_attrs={
                R.ARCH_HASH: net.arch_hash(),
                R.RECIPE_HASH: objective.recipe_hash,
                R.STATUS: "pruned",
                R.REASON: "cannot reach the front",
                R.HISTORY: history,
            },
        )
    )
    run_worker(sf)
    again = study.trials[1]
    assert again.state == TrialState.PRUNED
    assert again.user_attrs[R.STATUS] == "pruned" and again.user_attrs[R.REUSED_FROM] == 0
    assert again.user_attrs[R.REASON].endswith("stopped early there: cannot reach the front")
    assert again.user_attrs[R.HISTORY] == history  # copied, not trained


def test_baselines_are_enqueued_once_and_trained_with_the_recipe(tmp_path: Path) -> None:
    path = write_study(tmp_path, trials=2, baselines='["plain20", "torchvision:resnet18"]', epochs=1)
    sf = load_study_file(path)
    study = run_worker(sf)
    open_study(sf)  # opening again must not enqueue them again
    trials = sorted(open_study(sf).trials, key=lambda t: t.number)
    assert [t.user_attrs.get(R.BASELINE) for t in trials] == ["plain20", "torchvision:resnet18"]
    resnet = trials[1]
    assert resnet.user_attrs[R.STATUS] == "complete"
    assert resnet.user_attrs[R.METRICS]["params"] == 11_689_512 - 990 * 513 - 2 * 64 * 49  # 10 classes, 1 channel in
    assert study.user_attrs[study_attrs.STUDY_OBJECTIVES] == ["val_accuracy", "flops"]


def test_pareto_aware_stopping_rule(tmp_path: Path) -> None:
    sf = load_study_file(
        write_study(tmp_path, trials=1, extra='[pruning]\nmethod = "pareto_stop"\nmin_epochs = 1\nmargin = 0.02\n')
    )
    data = load_data(DataConfig(name="digits"))
    study = open_study(sf, data=data)
    front = optuna.trial.create_trial(
        values=[0.95, 1000.0],
        user_attrs={R.METRICS: {"val_accuracy": 0.95, "flops": 1000, "params": 50}},
        system_attrs={"constraints:memory": -1.0},
    )
    study.add_trial(front)
    objective = Objective(sf, data, device="cpu", lock=ClaimLock(sf.storage_url(), sf.name))
    trial = study.ask()

    def epoch(e: int, acc: float) -> EpochMetrics:
        return EpochMetrics(e, 1.0, acc, 1.0, acc, 1.0, 1.0, 0.1)

    # Costs more than the front trial in both: stopped, 0.50 + 0.02 + 0.50 gain x 1 epoch left < 0.95? No:
    # 1.02 is not below 0.95, so the first epoch never stops a trial that gained 50 points.
    assert objective._should_stop(trial, epoch(1, 0.50), {"flops": 2000.0, "params": 60.0}, []) is None
    # A trial that gained nothing in its last epoch cannot plausibly reach 0.95.
    reason = objective._should_stop(trial, epoch(1, 0.60), {"flops": 2000.0, "params": 60.0}, [0.60])
    assert reason is not None and "below trial 0's 95.00%" in reason
    # Cheaper in FLOPs than every front trial: never stopped, whatever its accuracy.
    assert objective._should_stop(trial, epoch(1, 0.10), {"flops": 500.0, "params": 60.0}, [0.10]) is None
    # The last epoch is never stopped (there is nothing left to save).
    assert objective._should_stop(trial, epoch(2, 0.10), {"flops": 2000.0, "params": 60.0}, [0.10]) is None


def test_the_median_pruner_never_stops_a_baseline(tmp_path: Path) -> None:
    """A single-objective study's median pruner stopped whatever fell below the median, baselines too (the
    references a reader asked for); a baseline is neither stopped nor one of the curves the median compares."""
    text = write_study(tmp_path, trials=1, extra='[pruning]\nmethod = "pareto_stop"\nmin_epochs = 1\n').read_text()
    path = tmp_path / "single.toml"
    path.write_text(text.replace('objectives = ["val_accuracy", "flops"]', 'objectives = ["val_accuracy"]'))
    sf = load_study_file(path)
    data = load_data(DataConfig(name="digits"))
    study = open_study(sf, data=data)
    for _ in range(6):  # past the pruner's 5 start-up trials, each at 90% after epoch 1
        study.add_trial(optuna.trial.create_trial(value=0.9, intermediate_values={1: 0.9}))
    objective = Objective(sf, data, device="cpu", lock=ClaimLock(sf.storage_url(), sf.name))
    low = EpochMetrics(1, 1.0, 0.1, 1.0, 0.1, 1.0, 1.0, 0.1)
    searched, baseline = study.ask(), study.ask()
    assert objective._should_stop(searched, low, {"flops": 2000.0, "params": 60.0}, []) == (
        "median pruner after epoch 1"
    )
    assert objective._should_stop(baseline, low, {}, []) is None  # a baseline has no costs before training
    assert study.trials[baseline.number].intermediate_values == {}


def test_a_study_resumes_under_another_early_stopping_and_keeps_the_one_it_was_created_with(tmp_path: Path) -> None:
    # Settings a resumed study must keep (space, recipe, data) say nothing of early stopping: it decides
    # which trials finish, not what a finished trial measured, so a study stored before the pruning
    # methods existed, or created with another one, resumes. Its provenance records the one it began with.
    old = write_study(tmp_path, extra="[pruning]\nenabled = true\nmargin = 0.02\n")  # written before `method`
    data = load_data(DataConfig(name="digits"))
    study = open_study(load_study_file(old), data=data)
    assert set(study_attrs.study_settings(study) or {}) == {"space", "recipe", "data"}
    created = {"method": "pareto_stop", "min_epochs": 1, "eta": 3, "margin": 0.02}
    assert study.user_attrs[study_attrs.STUDY_PROVENANCE]["pruning"] == created
    for table in ('method = "mo_asha"\neta = 2', "enabled = false", 'margin = "auto"'):
        new = tmp_path / "new.toml"
        new.write_text(old.read_text().replace("enabled = true\nmargin = 0.02", table))
        resumed = open_study(load_study_file(new), data=data)
        assert resumed.user_attrs[study_attrs.STUDY_PROVENANCE]["pruning"] == created


SMALL_NETS_SPACE = """
name = "small_nets"
[fixed]
stem = "cifar"
block_config = [1, 1]
init_features = 8
[knobs.connectivity]
choices = ["dense", "residual", "plain"]
[knobs.growth_rate]
choices = [4, 8]
"""


def test_mo_asha_study_stops_trials_against_the_curves_of_running_ones(tmp_path: Path) -> None:
    (tmp_path / "small_nets.toml").write_text(SMALL_NETS_SPACE)
    extra = '[pruning]\nmethod = "mo_asha"\nmin_epochs = 1\neta = 3\n'
    space = str(tmp_path / "small_nets.toml")
    path = write_study(tmp_path, trials=4, epochs=4, space=space, extra=extra)  # rungs after epochs 1 and 3
    path.write_text(path.read_text().replace('name = "digits"', 'name = "digits"\ntrain_subset = 320'))  # quick
    sf = load_study_file(path)
    data = load_data(sf.data)
    study = open_study(sf, data=data)
    # Another worker's trial, still running, that wrote its curve at rung 1: more accurate and cheaper than
    # any network of the space. This process is its worker, so no one fails it as lost.
    ahead = study.ask()
    R.write_worker(ahead)
    R.write_curve(ahead, curve=[1.0], costs={"flops": 1.0, "params": 1.0})

    def finish_it_once_the_budget_is_spent() -> None:  # it counts against the budget: 3 trials run beside it
        other = optuna.load_study(study_name=sf.name, storage=open_storage(sf.storage_url()))
        while len(other.trials) < sf.trials or len(finished(other)) < sf.trials - 1:
            time.sleep(0.2)
        other.tell(ahead.number, state=TrialState.FAIL)  # the worker waits for running trials before it ends

    finisher = threading.Thread(target=finish_it_once_the_budget_is_spent, daemon=True)
    finisher.start()
    run_worker(sf, data=data)
    finisher.join(timeout=30)
    trained = [t for t in finished(study) if t.number != ahead.number and R.REUSED_FROM not in t.user_attrs]
    first = min(trained, key=lambda t: t.number)
    # Without the running trial's curve it would have been the first at rung 1, and continued.
    assert first.state == TrialState.PRUNED
    assert first.user_attrs[R.REASON] == (
        "MO-ASHA stop at epoch 1 (rung 1 of 2): ranked 2 of 2 at this rung, outside the top 1/3"
    )
    for t in trained:  # each wrote its curve at every rung it reached, for the other workers
        curve = trial_record.curve_of(t)
        assert t.user_attrs[R.CURVE] == {
            "val_accuracy": curve[: 3 if len(curve) >= 3 else 1],
            "costs": trial_record.costs_of(t),
        }
        if t.state == TrialState.PRUNED:
            assert t.user_attrs[R.REASON].startswith("MO-ASHA stop at epoch ") and len(curve) in (1, 3)
        else:
            assert len(curve) == 4


OWNS = re.compile(
    r"^(w\d) owns GPU (\S+), cores? ([\d,-]+)( \(shared with the other workers\))?, "
    r"(\d+) torch threads? \((\d+) inter-op\), (?:up to (\d+)|no) DataLoader workers?$"
)


def _cores(ranges: str) -> tuple[int, ...]:
    """0-2,5 -> (0, 1, 2, 5)"""
    cores: list[int] = []
    for part in ranges.split(","):
        first, _, last = part.partition("-")
        cores += range(int(first), int(last or first) + 1)
    return tuple(cores)


def test_two_workers_share_one_journal_each_on_its_own_gpu_and_cores(tmp_path: Path) -> None:
    # Two faked GPUs: each worker sees only its own (CUDA_VISIBLE_DEVICES), which on this machine is no
    # real GPU, so device "auto" trains on the CPU, on the cores the worker is pinned to.
    path = write_study(tmp_path, trials=4, epochs=1, device="auto")
    run = nas("run", str(path), "--workers", "2", "--no-report", cwd=tmp_path, env={"CUDA_VISIBLE_DEVICES": "3,5"})
    assert run.returncode == 0, run.stderr
    study = open_study(load_study_file(path))
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(len(numbers))) and len(numbers) >= 4
    assert all(t.state != TrialState.RUNNING for t in study.trials)
    starts = sorted(m.groups() for m in map(OWNS.match, run.stdout.splitlines()) if m)
    plan = plan_shares(workers=2, gpus=["3", "5"], cores=own_cores())
    assert [
        (label, gpu, _cores(cores), bool(shared), int(threads), int(interop), int(loaders or 0))
        for label, gpu, cores, shared, threads, interop, loaders in starts
    ] == [
        (f"w{i}", s.gpu, s.cores, s.cores_shared, s.threads, s.interop_threads, s.loader_workers)
        for i, s in enumerate(plan)
    ]
    assert [s.gpu for s in plan] == ["3", "5"] and all(s.threads >= 1 for s in plan)
    if len(own_cores()) >= 2:  # each owns its cores alone, one torch thread per core
        assert set(plan[0].cores).isdisjoint(plan[1].cores)
        assert all(s.threads == len(s.cores) for s in plan)


def test_unreachable_storage_is_a_clear_error(tmp_path: Path) -> None:
    sf = load_study_file(write_study(tmp_path))
    url = "sqlite:////nonexistent-dir/x/study.db"
    with pytest.raises(StorageError, match=re.escape(f"cannot open storage {url}")):
        open_study(sf, storage=url)
    run = nas_here("run", str(write_study(tmp_path)), "--storage", url, cwd=tmp_path)
    assert run.returncode == 2 and "nonexistent-dir" in run.stderr and "Traceback" not in run.stderr


def test_bad_study_file_is_refused_before_anything_runs(tmp_path: Path) -> None:
    path = write_study(tmp_path, extra="[recipe2]\nepochs = 1\n")
    run = nas_here("run", str(path), cwd=tmp_path)
    assert run.returncode == 2 and "recipe2" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "runs").exists()


def test_report_and_trials_commands(tmp_path: Path) -> None:
    path = write_study(tmp_path, trials=2)
    assert nas_here("run", str(path), "--no-report", cwd=tmp_path).returncode == 0
    rep = nas_here("report", str(path), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    assert (tmp_path / "out" / "t.html").is_file()
    exp = nas_here("trials", str(path), "--csv", str(tmp_path / "t.csv"), cwd=tmp_path)
    assert exp.returncode == 0, exp.stderr
    assert len((tmp_path / "t.csv").read_text().strip().splitlines()) == 3
    exported = pandas.read_csv(tmp_path / "t.csv")  # which recipe trained each trial, for studies resumed with another
    assert list(exported["recipe_hash"]) == [recipe_hash(load_study_file(path))] * 2
    status = nas_here("status", str(path), cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "study t: 2 trials counted against the budget" in status.stdout and "Pareto front:" in status.stdout
    # Each objective as the progress lines show it: a percentage and its interval, FLOPs in K/M (was "val_accuracy
    # 1 [0.974-1.000]" beside four-decimal values).
    assert re.search(r"trial \d: \w+, val [0-9.]+% \[[0-9.]+-[0-9.]+%\], [0-9.]+[KM]? FLOPs", status.stdout), (
        status.stdout
    )
    missing = write_study(tmp_path, name="never_run")
    none = nas_here("report", str(missing), cwd=tmp_path)
    assert none.returncode == 2 and "no study 'never_run'" in none.stderr


def test_single_objective_study_stops_at_its_time_limit(tmp_path: Path) -> None:
    path = tmp_path / "so.toml"
    text = write_study(tmp_path, name="so", trials=50).read_text()
    text = text.replace(
        'objectives = ["val_accuracy", "flops"]', 'objectives = ["val_accuracy"]\ntime_limit_minutes = 0.02'
    )
    path.write_text(text)
    run = nas_here("run", str(path), "--no-report", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    study = optuna.load_study(study_name="so", storage=open_storage(str(tmp_path / "runs" / "so" / "journal.log")))
    assert 1 <= len(study.trials) < 50  # stopped by the 1.2 s limit, not the budget
    assert study.best_trial.values == [max(t.values[0] for t in study.trials if t.values)]
    left = 50 - len(study.trials)
    assert run.stdout.splitlines()[-2] == (  # what it did, what is left and how to go on (it said only the first)
        f"time limit of 0.02 minutes reached (it bounds each run): {left} trials of the budget left; "
        f"run `nas run {path}` again to go on"
    )
    for line in run.stdout.splitlines()[:-2]:  # each progress line's time left stops at the limit
        assert float(line.rsplit("~", 1)[1].removesuffix("s left")) <= 1.2, line


def test_cifar_stem_resnet_baseline() -> None:
    from nas.arch.cost import count_params
    from nas.arch.external import ExternalNet, resolve_baseline

    net = resolve_baseline("torchvision:resnet18:cifar", in_channels=1, num_classes=10)
    assert isinstance(net, ExternalNet) and net.cifar_stem and net.to_dict()["model"] == "torchvision:resnet18:cifar"
    model = net.build()
    # torchvision's resnet18 with 10 classes, its 7x7 stem conv (3 -> 64) swapped for a 3x3 one (1 -> 64).
    assert count_params(model) == 11_689_512 - 990 * 513 - 3 * 64 * 49 + 1 * 64 * 9
    import torch

    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError, match=r"the :cifar stem is for ResNet-style models"):
        resolve_baseline("torchvision:vgg11:cifar", in_channels=3, num_classes=10)

"""Bookkeeping per trial and per epoch in a large study: a journal padded with copies of real trials.

    python benchmarks/study_overhead.py                          # studies of 2,000 and 20,000 trials
    python benchmarks/study_overhead.py --sizes 300 --trials 3 --out overhead.json

The quickstart study (studies/quickstart.toml, digits, CPU) runs for real once, and its finished
trials are copied with every attribute into journals of each size; the real run and the padded
journals are cached in --cache (default .bench_cache/; delete it to rebuild them), and every
measurement works on a fresh copy. New trials then run as a worker runs them
(nas.search.run.runner.run_worker's loop), each step timed: the stale-trial check, the claim, the trial
(its storage writes, the reuse lookup, the tell) and the progress line. Training is replaced by a
replay of a real trial's learning curve, so only bookkeeping is timed, and every new trial is replayed
(the reuse lookup runs in full, its answer is set aside) so that every trial has epochs for the
Pareto-aware stop check, timed on each epoch it judges. The sampler's own time (TPE's proposal, in
Optuna) is shown beside the bookkeeping, not in it. Prints a markdown table; --out FILE.json keeps
every timing.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import optuna
import torch
from optuna.trial import TrialState

import nas.search.run.trial_objective as trial_objective_module
from nas.arch import ArchConfig
from nas.arch.cost import estimate
from nas.arch.external import ExternalNet
from nas.cli.main import configure_libraries
from nas.data.datasets import LoadedData, load_data
from nas.search.results import trial_record
from nas.search.run import runner, trial_life
from nas.search.run.storage import ClaimLock, fail_stale_trials, open_storage
from nas.search.run.study import open_study
from nas.search.run.trial_objective import Objective
from nas.search.spec.studyfile import StudyFile
from nas.search.spec.studyfile_reader import load_study_file
from nas.train.recipe import Recipe
from nas.train.results import EpochMetrics, TrialResult

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "studies" / "quickstart.toml"
REAL_TRIALS = 12  # quickstart trials run for real, then copied
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
STEPS = ("stale check", "claim", "reuse lookup", "writes and tell", "progress line")


class Clock:
    """Seconds spent per named step, one dict per new trial."""

    def __init__(self) -> None:
        self.trials: list[dict[str, float]] = []
        self.epochs: list[float] = []

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            row = self.trials[-1]
            row[name] = row.get(name, 0.0) + time.perf_counter() - start


def real_journal(cache: Path, data: LoadedData) -> Path:
    """A journal of the quickstart study run for real, without its time limit (cached)."""
    path = cache / "quickstart-real.log"
    if not path.is_file():
        print(f"running {REAL_TRIALS} quickstart trials for real into {path} ...", file=sys.stderr, flush=True)
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        sf = dataclasses.replace(load_study_file(str(QUICKSTART)), time_limit_minutes=None)
        with contextlib.redirect_stdout(sys.stderr):  # its progress lines are not the figures
            runner.run_worker(sf, storage=str(partial), trials=REAL_TRIALS, data=data)
        partial.rename(path)
    return path


def padded_journal(cache: Path, size: int, data: LoadedData) -> Path:
    """A quickstart study of `size` trials, copies of the real ones with every attribute (cached)."""
    path = cache / f"quickstart-{size}.log"
    if path.is_file():
        return path
    real = optuna.load_study(study_name="quickstart", storage=open_storage(str(real_journal(cache, data))))
    finished = real.get_trials(deepcopy=False, states=FINISHED)
    print(f"padding {path} to {size:,} trials ...", file=sys.stderr, flush=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    study = optuna.create_study(study_name="quickstart", storage=open_storage(str(partial)), directions=real.directions)
    for key, value in real.user_attrs.items():
        study.set_user_attr(key, value)
    study.set_metric_names(list(real.metric_names or []))
    copies = [finished[i % len(finished)] for i in range(size)]
    study.add_trials(
        [
            optuna.trial.create_trial(
                state=t.state,
                values=t.values,
                params=t.params,
                distributions=t.distributions,
                user_attrs=t.user_attrs,
                system_attrs=t.system_attrs,
                intermediate_values=t.intermediate_values,
            )
            for t in copies
        ]
    )
    partial.rename(path)
    return path


def replay(curves: list[list[dict[str, Any]]], clock: Clock, sf: StudyFile) -> Callable[..., TrialResult]:
    """Stands in for nas.train.trainer.train_trial: a real trial's learning curve, epoch by epoch, with the
    same on_epoch calls (each judged one timed); costs from the closed form, no training."""
    used = [0]

    def train_trial(*, config: ArchConfig | ExternalNet, data: LoadedData, recipe: Recipe, **kw: Any) -> TrialResult:
        curve = curves[used[0] % len(curves)]
        used[0] += 1
        params, flops = (0, 0)
        if isinstance(config, ArchConfig):
            est = estimate(config, input_size=data.input_size)
            params, flops = est.params, est.flops
        history: list[EpochMetrics] = []
        status, reason = "complete", None
        for h in curve:
            m = EpochMetrics(**h)
            history.append(m)
            start = time.perf_counter()
            reason = kw["on_epoch"](m)
            if sf.pruning.min_epochs <= m.epoch < recipe.epochs:
                clock.epochs.append(time.perf_counter() - start)
            if reason:
                status = "pruned"
                break
        best = max(history, key=lambda m: m.val_accuracy)
        return TrialResult(
            status=status,
            reason=reason,
            config=config.to_dict(),
            arch_hash=config.arch_hash(),
            best_val_accuracy=best.val_accuracy,
            best_epoch=best.epoch,
            params=params,
            flops=flops,
            history=history,
            batch_size=recipe.batch_size,
        )

    return train_trial


class TimedObjective(Objective):
    """The worker's trial function, with the sampler's proposal and the reuse lookup timed apart; a twin
    found is set aside, so every trial replays its epochs."""

    clock: Clock

    def _network(self, trial: optuna.Trial) -> ArchConfig | ExternalNet:
        start = time.perf_counter()
        try:
            return super()._network(trial)
        finally:
            self.clock.trials[-1]["sampler"] = time.perf_counter() - start

    def _wait_for_twin(self, trial: optuna.Trial, arch_hash: str) -> optuna.trial.FrozenTrial | None:
        with self.clock.step("reuse lookup"):
            super()._wait_for_twin(trial, arch_hash)
        return None


def measure(journal: Path, size: int, new_trials: int, data: LoadedData, folder: Path) -> dict[str, Any]:
    """New trials on a copy of the padded journal, as run_worker runs them, every step timed."""
    work = folder / f"work-{size}.log"
    shutil.copyfile(journal, work)
    sf = dataclasses.replace(load_study_file(str(QUICKSTART)), time_limit_minutes=None)
    start = time.perf_counter()
    study = open_study(sf, storage=str(work), data=data)
    opened = time.perf_counter() - start
    real = study.get_trials(deepcopy=False, states=FINISHED)
    curves = [trial_record.stored(t).history for t in real[:REAL_TRIALS] if trial_record.stored(t).history]
    clock = Clock()
    lock = ClaimLock(str(work), sf.name)
    objective = TimedObjective(sf, data, device="cpu", lock=lock)
    objective.clock = clock
    budget = size + new_trials + 100
    progress = runner._Progress(budget, len(real), "")
    training = mock.patch.object(trial_objective_module, "train_trial", replay(curves, clock, sf))  # not measured
    with training, contextlib.redirect_stdout(io.StringIO()):
        for _ in range(new_trials):
            clock.trials.append({})
            epochs_before, start = len(clock.epochs), time.perf_counter()
            with clock.step("stale check"):
                fail_stale_trials(study, heartbeat_seconds=sf.heartbeat_seconds)
            with clock.step("claim"):
                trial = trial_life.claim(study, lock, budget)
            if trial is None:
                raise RuntimeError("the claim refused a trial: the budget should leave room")
            with clock.step("trial"):
                frozen = trial_life.run_claimed_trial(study, trial, objective, sf)
            with clock.step("progress line"):
                progress(study, frozen)
            row = clock.trials[-1]
            checks = sum(clock.epochs[epochs_before:])
            row["epoch checks"] = checks
            row["writes and tell"] = row.pop("trial") - row["sampler"] - row["reuse lookup"] - checks
            row["bookkeeping"] = time.perf_counter() - start - row["sampler"] - checks
    return {"trials_in_study": size, "open_seconds": opened, "trials": clock.trials, "epoch_checks": clock.epochs}


def summary(results: list[dict[str, Any]]) -> str:
    def med(xs: list[float]) -> str:
        return f"{statistics.median(xs):.3f}" if xs else "-"

    def med_max(xs: list[float]) -> str:
        return f"{statistics.median(xs):.3f} / {max(xs):.3f}" if xs else "-"

    head = [
        "trials in study",
        "open (once per worker)",
        "bookkeeping per trial, median / max",
        *STEPS,
        "stop check per epoch, median / max",
        "sampler per trial (TPE, not bookkeeping)",
    ]
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in results:
        col = {step: [t.get(step, 0.0) for t in r["trials"]] for step in (*STEPS, "bookkeeping", "sampler")}
        cells = [
            f"{r['trials_in_study']:,}",
            f"{r['open_seconds']:.2f}",
            med_max(col["bookkeeping"]),
            *(med(col[s]) for s in STEPS),
            med_max(r["epoch_checks"]),
            med(col["sampler"]),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n\nseconds; medians over the new trials (the first also builds each worker's front once)"


def main() -> None:
    configure_libraries()  # as the nas command does: no Optuna info lines between the figures
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000], help="trials in the padded studies")
    parser.add_argument("--trials", type=int, default=5, help="new trials timed per study")
    parser.add_argument("--cache", default=str(ROOT / ".bench_cache"), help="where the padded journals are kept")
    parser.add_argument("--out", help="write every timing here as JSON")
    args = parser.parse_args()
    if any(n < 1 for n in args.sizes) or args.trials < 1:
        parser.error("--sizes and --trials must be at least 1")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    sf = load_study_file(str(QUICKSTART))
    data = load_data(sf.data)
    results = []
    with tempfile.TemporaryDirectory(prefix="overhead-") as folder:
        for size in args.sizes:
            journal = padded_journal(cache, size, data)
            print(f"timing {args.trials} new trials in a study of {size:,} ...", file=sys.stderr, flush=True)
            results.append(measure(journal, size, args.trials, data, Path(folder)))
    table = summary(results)
    print(table)
    if args.out:
        meta = {
            "machine": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "optuna": optuna.__version__,
            "date": time.strftime("%Y-%m-%d"),
        }
        Path(args.out).write_text(json.dumps({**meta, "results": results, "table": table}, indent=2))


if __name__ == "__main__":
    main()

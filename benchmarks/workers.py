"""One process against several workers on the same search: the quickstart study with more trials.

    python benchmarks/workers.py                  # 36 trials, 1 process then --workers 3
    python benchmarks/workers.py --trials 6 --workers 2

Copies studies/quickstart.toml into a temporary folder with the trial budget set and the time
limit lifted (so both runs finish the budget), runs it with `nas run` from fresh storage once in
one process and once with `--workers N`, and prints, last, a markdown table: workers, trials
finished, wall seconds, seconds per trial, and the CPU seconds of `nas run` and its workers (less
sensitive to other load on the machine than wall time). The target (issue 10): N workers no slower in total
than one, on a 2-core machine too.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch

from nas.cli.main import configure_libraries
from nas.search.results.trial_record import replaced_trials
from nas.search.run.storage import open_storage

QUICKSTART = Path(__file__).resolve().parents[1] / "studies" / "quickstart.toml"


def study_copy(folder: Path, *, trials: int) -> Path:
    """The quickstart study with `trials` and no time limit, in `folder` (its space is found by name)."""
    text = QUICKSTART.read_text()
    text, budgets = re.subn(r"(?m)^trials = \d+$", f"trials = {trials}", text)
    text, limits = re.subn(r"(?m)^time_limit_minutes = .*$", "", text)
    if (budgets, limits) != (1, 1):
        raise SystemExit(f"{QUICKSTART}: expected one `trials =` and one `time_limit_minutes =` line")
    path = folder / "quickstart.toml"
    path.write_text(text)
    return path


def finished(storage: str) -> int:
    """Trials that finished and keep their result (a re-queued one does not)."""
    study = optuna.load_study(study_name="quickstart", storage=open_storage(storage))
    trials = study.get_trials(deepcopy=False)
    return sum(t.state.is_finished() for t in trials) - len(replaced_trials(trials))


def run(path: Path, *, workers: int, show: bool) -> tuple[int, float, float]:
    """`nas run` from fresh storage: (trials finished, wall seconds, CPU seconds of it and its workers)."""
    storage = str(path.parent / f"journal-{workers}.log")
    cmd = [sys.executable, "-m", "nas.cli", "run", str(path), "--storage", storage, "--no-report"]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    start, cpu = time.monotonic(), _children_cpu()
    done = subprocess.run(cmd, cwd=path.parent, capture_output=not show, text=True)
    seconds, cpu = time.monotonic() - start, _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr or ''}")
    return finished(storage), seconds, cpu


def _children_cpu() -> float:
    """User + system seconds of every finished child process (workers are reaped by `nas run`, so counted)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    configure_libraries()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=36)
    parser.add_argument("--workers", type=int, default=3, help="the workers compared with one process")
    parser.add_argument("--show", action="store_true", help="print the runs' own output")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="workers-") as folder:
        path = study_copy(Path(folder), trials=args.trials)
        rows = [(workers, *run(path, workers=workers, show=args.show)) for workers in (1, args.workers)]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"\n{platform.machine()}, {cores} cores, torch {torch.__version__}, {datetime.date.today()}: "
        f"studies/quickstart.toml with trials = {args.trials}, no time limit"
    )
    print("\n| workers | trials finished | wall s | s per trial | CPU s |\n| --- | --- | --- | --- | --- |")
    for workers, trials, seconds, cpu in rows:
        print(f"| {workers} | {trials} | {seconds:.1f} | {seconds / max(trials, 1):.2f} | {cpu:.1f} |")


if __name__ == "__main__":
    main()

"""A search under fire: N workers on one study, some killed with SIGKILL mid-trial and restarted.

    python benchmarks/chaos_study.py --storage postgresql://nas:nas@127.0.0.1:5432/nas_test
    python benchmarks/chaos_study.py                       # a journal file in a temporary folder

Prints, last, the trials asked for, the trials in storage, the kills, the trials lost and
re-run, whether any canonical network was trained twice, and the time taken.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import optuna
from optuna.trial import TrialState

from nas.cli.main import configure_libraries
from nas.search.results.records import FAILED_TRIAL
from nas.search.results.trial_record import replaced_trials, stored
from nas.search.run.storage import budget_used, open_storage

STUDY = """
[study]
name = "{name}"
space = "densenet_family"
objectives = ["val_accuracy", "flops"]
sampler = "tpe"
trials = {trials}
device = "cpu"
heartbeat_seconds = 2
[data]
name = "digits"
[recipe]
epochs = 2
batch_size = 64
lr = 0.2
measure_latency = false
"""


def main() -> None:
    configure_libraries()  # as the nas command does: Optuna's experimental warnings are not news here
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", help="an Optuna storage URL (default: a journal file in a temporary folder)")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kills", type=int, default=3, help="workers killed mid-trial (each one restarted)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="chaos-"))
    name = f"chaos{uuid.uuid4().hex[:8]}"
    path = folder / f"{name}.toml"
    path.write_text(STUDY.format(name=name, trials=args.trials))
    storage = args.storage or str(folder / "journal.log")
    cmd = [sys.executable, "-m", "nas.cli", "worker", str(path), "--storage", storage]

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(cmd, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    begin = time.monotonic()
    workers = [start() for _ in range(args.workers)]
    rng = random.Random(0)
    kills = 0
    while kills < args.kills and any(w.poll() is None for w in workers):
        time.sleep(rng.uniform(3, 8))
        try:
            study = optuna.load_study(study_name=name, storage=open_storage(storage))
        except KeyError:
            continue
        running = [t for t in study.get_trials(states=(TrialState.RUNNING,)) if stored(t).worker]
        live = {w.pid: w for w in workers if w.poll() is None}
        targets = [t for t in running if stored(t).worker["pid"] in live]
        if not targets:
            continue
        victim = live[stored(rng.choice(targets)).worker["pid"]]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        kills += 1
        workers.append(start())
    for w in workers:
        w.wait()
    seconds = time.monotonic() - begin

    study = optuna.load_study(study_name=name, storage=open_storage(storage))
    trials = study.get_trials()
    lost = sorted(replaced_trials(trials))
    reruns = [t for t in trials if FAILED_TRIAL in t.system_attrs]
    trained = [stored(t).arch_hash for t in trials if stored(t).status == "complete"]
    kind = "PostgreSQL" if "://" in storage else "journal file"
    print(f"\nchaos study on {kind}: {args.workers} workers, {kills} killed with SIGKILL mid-trial and restarted")
    print(f"trials asked for          {args.trials}")
    print(f"trials counted (budget)   {budget_used(trials)}")
    print(f"trials in storage         {len(trials)}")
    print(f"lost with a killed worker {len(lost)} {lost}")
    print(f"re-runs and their states  {len(reruns)}, {sorted(t.state.name.lower() for t in reruns)}")
    print(f"still running or waiting  {sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)}")
    print(f"networks trained twice    {len(trained) - len(set(trained))}")
    print(f"time taken                {seconds:.0f} s")


if __name__ == "__main__":
    main()

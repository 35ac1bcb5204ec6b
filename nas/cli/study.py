"""The `nas` commands that work on studies: run, worker and ablate here, which run trials; report, trials, repair
and status (on a stored study) in `nas.cli.stored`."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

from nas.cli.arch import int_arg
from nas.cli.stored import _study_args, _study_file, _writable_folder, _write_report, add_stored_commands
from nas.errors import UsageError
from nas.search.spec.studyfile import StudyFile
from nas.text import command, plural


def _at_least_one(option: str, value: int | None) -> None:
    """A count given on the command line (--trials, --workers) must be >= 1; None keeps the study file's."""
    if value is not None and value < 1:
        raise UsageError(owner=option, value=value, allowed="an integer >= 1 is required")


def _stop_on_sigterm() -> None:
    """SIGTERM stops a study as Ctrl-C does: running trials are re-queued, workers stopped, nothing lost."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _workers(text: str) -> int | str:
    """--workers, --trials-per-gpu: a count or `auto`."""
    if text == "auto":
        return text
    try:
        int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: an integer >= 1 or auto is required") from None
    return int_arg(text)


def cmd_run(args: argparse.Namespace) -> int:
    from nas.search.run.runner import run_study

    _at_least_one("--trials", args.trials)
    if args.workers != "auto" and args.workers < 1:
        raise UsageError(owner="--workers", value=args.workers, allowed="an integer >= 1 or auto is required")
    _at_least_one("--workers-per-gpu", args.workers_per_gpu)
    if not args.no_report:
        _writable_folder("--out", Path(args.out))
    sf = _study_file(args.study)
    start = time.monotonic()
    _stop_on_sigterm()
    try:
        study = run_study(
            sf,
            trials=args.trials,
            workers=args.workers,
            workers_per_gpu=args.workers_per_gpu,
            trials_per_gpu=args.trials_per_gpu,
            storage=args.storage,
            device=args.device,
            allow_changed=tuple(args.allow_changed),
        )
    except KeyboardInterrupt:
        kept = _finished_trials(sf, args.storage)
        again = command("nas", "run", args.study, storage=args.storage)
        print(f"interrupted: {plural(kept, 'trial')} kept, run `{again}` again to resume", file=sys.stderr)
        return 130
    stored = len(study.get_trials(deepcopy=False))
    print(f"study {sf.name}: {plural(stored, 'trial')} in storage, {time.monotonic() - start:.0f} s this run")
    if not args.no_report:
        print(f"report: {_write_report(study, Path(args.out))}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from nas.search.run import shares
    from nas.search.run.runner import run_worker

    share = None
    if args.share is not None:  # started by `nas run --workers N`: take its share before any parallel work
        share = shares.WorkerShare.from_json(args.share)
        shares.apply_share(share)
    _at_least_one("--trials", args.trials)
    sf = _study_file(args.study)
    if share is not None:
        sf = shares.cap_loader_workers(sf, share)
    # One write: with PYTHONUNBUFFERED, print() writes the newline apart, and workers share the terminal.
    print(shares.ownership(args.label or "this worker ", share) + "\n", end="", flush=True)
    _stop_on_sigterm()
    # A worker shares its study with others (`nas run --workers N`, other machines): its own seed.
    run_worker(
        sf,
        storage=args.storage,
        device=args.device,
        trials=args.trials,
        label=args.label,
        distinct_seed=True,
        allow_changed=tuple(args.allow_changed),
        trials_at_once=args.trials_per_gpu,
    )
    return 0


def _finished_trials(sf: StudyFile, storage: str | None) -> int:
    """Finished trials in the study's storage that keep their result (a re-queued one does not)."""
    import optuna

    from nas.search.results.generations import current_name
    from nas.search.run.storage import open_storage

    try:
        opened = open_storage(storage or sf.storage_url())
        study = optuna.load_study(study_name=current_name(opened, sf.name), storage=opened)
    except KeyError:
        return 0
    from nas.search.results.trial_record import replaced_trials

    trials = study.get_trials(deepcopy=False)
    return sum(t.state.is_finished() for t in trials) - len(replaced_trials(trials))


def cmd_ablate(args: argparse.Namespace) -> int:
    from nas.search.run.ablate import run_ablation

    if not args.no_report:
        _writable_folder("--out", Path(args.out))
    sf = _study_file(args.study)
    study, rows, csv_path = run_ablation(sf, storage=args.storage, device=args.device)
    print(f"ablation table: {csv_path}")
    if not args.no_report:
        print(f"report: {_write_report(study, Path(args.out), rows)}")
    return 0


ALLOW_CHANGED_HELP = (
    "resume although the study file changed this setting since the study was created "
    "(e.g. recipe.epochs, or a whole section: recipe); repeatable"
)


def _trials_per_gpu_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trials-per-gpu",
        type=_workers,
        default=1,
        metavar="K|auto",
        help="trials each worker trains at once, each in its own thread and CUDA stream "
        "(auto: as many as the space's largest network fits in the GPU's memory, at most 8; default: 1)",
    )


def add_study_commands(sub: Any) -> None:
    """Register the study commands on the `nas` subparsers."""
    run = sub.add_parser("run", help="create or resume a search study and run it, then write its report")
    _study_args(run, out=True)
    run.add_argument("--trials", type=int_arg, help="trial budget (default: the study file's)")
    run.add_argument(
        "--allow-changed",
        action="append",
        default=[],
        metavar="KEY",
        help=ALLOW_CHANGED_HELP,
    )
    run.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N|auto",
        help="worker processes on this machine, each owning its GPU and cores; auto: one per GPU "
        "(default: 1, this process, owning the machine)",
    )
    run.add_argument(
        "--workers-per-gpu",
        type=int_arg,
        metavar="K",
        help="with --workers auto: K workers per GPU (default 1); with --workers N: at most K on each GPU",
    )
    _trials_per_gpu_arg(run)
    run.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the study file's)")
    run.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    run.set_defaults(func=cmd_run)

    worker = sub.add_parser("worker", help="join a study's storage and run trials (one per machine or process)")
    _study_args(worker)
    worker.add_argument("--trials", type=int_arg, help="trial budget of the whole study (default: the study file's)")
    worker.add_argument(
        "--allow-changed",
        action="append",
        default=[],
        metavar="KEY",
        help=ALLOW_CHANGED_HELP,
    )
    _trials_per_gpu_arg(worker)
    worker.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    worker.add_argument("--label", default="", help=argparse.SUPPRESS)
    worker.add_argument("--share", help=argparse.SUPPRESS)  # JSON of the WorkerShare `nas run` gave it
    worker.set_defaults(func=cmd_worker)

    add_stored_commands(sub)  # report, trials, repair, status

    ablate = sub.add_parser("ablate", help="compare connectivity modes at matched parameters or FLOPs")
    _study_args(ablate, out=True)
    ablate.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    ablate.add_argument("--no-report", action="store_true")
    ablate.set_defaults(func=cmd_ablate)

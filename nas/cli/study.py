"""The `nas` commands that work on studies: run, worker, report, trials, ablate."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.cli.arch import int_arg
from nas.errors import UsageError
from nas.search.spec.studyfile import StudyFile
from nas.text import command, plural

if TYPE_CHECKING:
    from nas.search.results.trial_record import TrialRecord


def _study_file(path: str) -> StudyFile:
    from nas.search.spec.studyfile_reader import load_study_file

    return load_study_file(path)


def _write_report(study: Any, out_dir: Path, ablation: list[dict[str, Any]] | None = None) -> Path:
    from nas.report.data import compute_report_data
    from nas.report.page import write_report

    return write_report(data=compute_report_data(study=study, ablation=ablation), out_dir=out_dir)


def _at_least_one(option: str, value: int | None) -> None:
    """A count given on the command line (--trials, --workers) must be >= 1; None keeps the study file's."""
    if value is not None and value < 1:
        raise UsageError(owner=option, value=value, allowed="an integer >= 1 is required")


def _writable_folder(option: str, path: Path) -> None:
    """A folder the command will write into: refused now, not after an hour of trials."""
    if path.exists() and not path.is_dir():
        raise UsageError(owner=option, value=str(path), allowed="a folder (this is a file)")
    parent = next(p for p in (path, *path.parents) if p.exists())
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(
            owner=option, value=str(path), allowed=f"a folder this user can write ({parent} is not writable)"
        )


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


def _load_existing(args: argparse.Namespace) -> Any:
    """The study as stored; read-only commands create nothing (no journal file, no folder)."""
    return _open_existing(args.study, args.storage)


def _open_existing(path: str, storage: str | None) -> Any:
    from nas.search.run.storage import holds_no_studies, is_journal, open_storage

    sf = _study_file(path)
    url = storage or sf.storage_url()
    if is_journal(url) and not Path(url).is_file():
        raise UsageError(f"no study {sf.name!r}: {url} does not exist; run `{command('nas', 'run', path)}` first")
    if not is_journal(url) and holds_no_studies(url):
        raise UsageError(
            f"no study {sf.name!r}: the database {url} holds no Optuna study at all (is the URL right?); "
            f"run `{command('nas', 'run', path)}` first"
        )
    import optuna

    from nas.search.results.generations import current_name

    opened = open_storage(url)
    try:
        return optuna.load_study(study_name=current_name(opened, sf.name), storage=opened)  # its newest generation
    except KeyError as err:
        raise UsageError(f"no study {sf.name!r} in {url}: run `{command('nas', 'run', path)}` first") from err


def _ablation(path: str) -> list[dict[str, Any]] | None:
    """The study's ablation table (runs/<study>/ablation.json), when `nas ablate` wrote one."""
    from nas.search.run.ablate import bounded_rows

    table = _study_file(path).run_dir() / "ablation.json"
    if not table.is_file():
        return None
    # Written by an older version, its intervals may leave [0, 1]: bound them as now.
    rows: list[dict[str, Any]] = bounded_rows(json.loads(table.read_text())["rows"])
    return rows


def cmd_report(args: argparse.Namespace) -> int:
    paths: list[str] = args.study
    if args.storage is not None and len(paths) > 1:
        raise UsageError(
            owner="--storage", value=args.storage, allowed=f"one study only ({len(paths)} study files given)"
        )
    _writable_folder("--out", Path(args.out))
    # Every study is read before anything is written: a missing one leaves no half-written folder.
    loaded = [(path, _open_existing(path, args.storage), _ablation(path)) for path in paths]
    if len(loaded) == 1:
        _, study, ablation = loaded[0]
        print(f"report: {_write_report(study, Path(args.out), ablation)}")
        return 0
    from nas.cli.compare import labels_for, write_reports

    labelled = [(label, study, ablation) for label, (_, study, ablation) in zip(labels_for(paths), loaded, strict=True)]
    *reports, comparison = write_reports(studies=labelled, out_dir=Path(args.out))
    for path in reports:
        print(f"report: {path}")
    print(f"comparison: {comparison}")
    return 0


def cmd_trials(args: argparse.Namespace) -> int:
    from nas.report.export import export_trials

    if bool(args.csv) == bool(args.parquet):
        raise UsageError("give exactly one of --csv PATH or --parquet PATH")
    study = _load_existing(args)
    path, fmt = (Path(args.csv), "csv") if args.csv else (Path(args.parquet), "parquet")
    print(f"wrote {export_trials(study=study, path=path, fmt=fmt)}")
    return 0


def cmd_repair(args: argparse.Namespace) -> int:
    from nas.search.run.journal import repair_journal
    from nas.search.run.storage import is_journal

    target = Path(args.target)
    if target.suffix == ".toml":  # a study file: its journal (or --storage)
        url = args.storage or _study_file(args.target).storage_url()
        if not is_journal(url):
            raise UsageError(
                f"nas repair: study {args.target} is stored in a database ({url}), which keeps its own integrity; "
                "only a journal file is repaired",
                owner="nas repair",
                value=args.target,
                allowed="a study file stored in a journal, or a journal file",
            )
        target = Path(url)
    elif args.storage:
        raise UsageError("nas repair: --storage goes with a study file, not with a journal file", owner="--storage")
    print(repair_journal(target).summary())
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from collections import Counter

    from nas.search.results.study_attrs import generation_number
    from nas.search.results.tally import StudyTally
    from nas.search.results.trial_record import load_records, replaces, stored
    from nas.search.results.twins import fold_twins
    from nas.search.run.storage import budget_used
    from nas.search.spec.objectives import ACCURACY, OBJECTIVES, PARAMS

    study = _load_existing(args)
    records = load_records(study)
    counts = Counter(r.status for r in records)
    used = budget_used(study.get_trials(deepcopy=False))
    print(f"study {study.study_name}: {plural(used, 'trial')} counted against the budget")
    generation = generation_number(study.study_name)
    if generation > 1:  # a grown search space (nas.search.results.generations)
        carried = Counter(r.generation for r in records if r.generation is not None)
        earlier = ", ".join(f"{plural(n, 'trial')} from generation {g}" for g, n in sorted(carried.items()))
        print(f"  generation {generation}: {earlier or 'no trial'} carried over, not retrained")
    print("  " + ", ".join(f"{status} {n}" for status, n in sorted(counts.items())))
    now = time.time()
    for r, t in zip(records, study.get_trials(deepcopy=False), strict=True):
        what = r.baseline or r.connectivity or r.params.get("connectivity") or "network not drawn yet"
        if r.status == "running":
            attrs = stored(t)
            where = f" on {attrs.worker['host']}:{attrs.worker['pid']}" if attrs.worker else ""
            beat = f", last heartbeat {now - attrs.heartbeat:.0f} s ago" if attrs.heartbeat is not None else ""
            since = t.datetime_start.strftime("%Y-%m-%d %H:%M:%S") if t.datetime_start else "?"
            print(f"  running: trial {r.number} {what}{where} since {since}{beat}")
        elif r.status == "queued":
            rerun = f", re-run of trial {replaces(t)[-1]}" if replaces(t) else ""
            print(f"  queued: trial {r.number} {what}{rerun} (waits for a worker)")
    by_number = {r.number: r for r in records}
    best = StudyTally(study).update().front
    networks = fold_twins((t.number, by_number[t.number].reused_from) for t in best)
    front = sorted((by_number[n] for n in networks), key=lambda r: r.values[ACCURACY], reverse=True)
    print(f"  Pareto front: {plural(len(front), 'network')}")
    for r in front[:10]:
        params = r.metrics.get(PARAMS)
        values = (
            OBJECTIVES[name].show(value) + (_interval(r) if name == ACCURACY else "")
            for name, value in r.values.items()
        )
        twins = [n for n in networks[r.number] if n != r.number]
        print(
            f"    trial {r.number}: {r.baseline or r.connectivity}, "
            + ", ".join(values)
            + (f" ({params:,} params)" if params else "")
            + (f", reused by {plural(len(twins), 'trial')} ({', '.join(map(str, twins))})" if twins else "")
        )
    return 0


def _interval(record: TrialRecord) -> str:
    """An accuracy's 95% interval, as the accuracy is shown: " [91.1-95.4%]" (nothing when it is not known)."""
    low, high = record.val_accuracy_low, record.val_accuracy_high
    return f" [{low:.1%}-{high:.1%}]".replace("%-", "-") if low is not None and high is not None else ""


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


def _study_args(p: argparse.ArgumentParser, *, out: bool = False) -> None:
    p.add_argument("study", help="a study file (TOML), e.g. studies/quickstart.toml")
    p.add_argument("--storage", help="an Optuna storage URL (default: the study file's, else runs/<study>/journal.log)")
    if out:
        p.add_argument("--out", default="reports", help="folder for the HTML report (default: reports)")


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

    report = sub.add_parser(
        "report", help="write the HTML report of a study; of two or more, each one's and a comparison (compare.html)"
    )
    report.add_argument("study", nargs="+", help="one or more study files (TOML), e.g. studies/quickstart.toml")
    report.add_argument(
        "--storage",
        help="an Optuna storage URL, one study only (default: the study file's, else runs/<study>/journal.log)",
    )
    report.add_argument("--out", default="reports", help="folder for the HTML reports (default: reports)")
    report.set_defaults(func=cmd_report)

    trials = sub.add_parser("trials", help="export every trial of a study as CSV or Parquet")
    _study_args(trials)
    trials.add_argument("--csv", help="write a CSV file here")
    trials.add_argument("--parquet", help="write a Parquet file here")
    trials.set_defaults(func=cmd_trials)

    repair = sub.add_parser(
        "repair", help="set aside the lines of a study's journal that are not records, keeping every other one"
    )
    repair.add_argument(
        "target", help="a study file (TOML; its journal) or a journal file, e.g. runs/quickstart/journal.log"
    )
    repair.add_argument("--storage", help="with a study file: its journal, when not the default")
    repair.set_defaults(func=cmd_repair)

    status = sub.add_parser("status", help="trials per status, running trials and the front so far")
    _study_args(status)
    status.set_defaults(func=cmd_status)

    ablate = sub.add_parser("ablate", help="compare connectivity modes at matched parameters or FLOPs")
    _study_args(ablate, out=True)
    ablate.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    ablate.add_argument("--no-report", action="store_true")
    ablate.set_defaults(func=cmd_ablate)

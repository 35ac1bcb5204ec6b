"""The `nas` commands on a stored study that run no trial: report, trials, repair, status; and what every study
command shares (reading the study file, opening a stored study, writing a report)."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import UsageError
from nas.search.spec.studyfile import StudyFile
from nas.text import command, plural

if TYPE_CHECKING:
    from nas.search.results.trial_record import TrialRecord


def _study_file(path: str) -> StudyFile:
    from nas.search.spec.studyfile_reader import load_study_file

    return load_study_file(path)


def _write_report(study: Any, out_dir: Path, ablation: list[dict[str, Any]] | None = None) -> Path:
    """reports/<study>.html, whichever generation the study is in: the newest reads every generation as one search,
    so it replaces the page of the one before (a grown study's page was <study>_2.html beside a stale <study>.html)."""
    from nas.report.data import compute_report_data
    from nas.report.page import write_report
    from nas.search.results.generations import base_name

    data = compute_report_data(study=study, ablation=ablation)
    return write_report(data=data, out_dir=out_dir, filename=f"{base_name(study.study_name)}.html")


def _writable_folder(option: str, path: Path) -> None:
    """A folder the command will write into: refused now, not after an hour of trials."""
    if path.exists() and not path.is_dir():
        raise UsageError(owner=option, value=str(path), allowed="a folder (this is a file)")
    parent = next(p for p in (path, *path.parents) if p.exists())
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(
            owner=option, value=str(path), allowed=f"a folder this user can write ({parent} is not writable)"
        )


def _study_args(p: argparse.ArgumentParser, *, out: bool = False) -> None:
    p.add_argument("study", help="a study file (TOML), e.g. studies/quickstart.toml")
    p.add_argument("--storage", help="an Optuna storage URL (default: the study file's, else runs/<study>/journal.log)")
    if out:
        p.add_argument("--out", default="reports", help="folder for the HTML report (default: reports)")


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

    from nas.search.results.proxy_ranking import prescreen_notes
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
    for line in prescreen_notes(records):
        print(f"  {line}")
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
        elif r.over_budgets:  # a reference trained whatever the budgets say: on no front, but not lost either
            budgets = " and ".join(r.over_budgets)
            print(f"  over budget: trial {r.number} {what} is over the study's {budgets} (a reference, on no front)")
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


def add_stored_commands(sub: Any) -> None:
    """Register report, trials, repair and status on the `nas` subparsers."""
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

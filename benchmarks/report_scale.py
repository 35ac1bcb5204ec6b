"""How long a report takes, and how large it is, in a large study: the quickstart padded to many trials.

    python benchmarks/report_scale.py                                  # studies of 2,000 and 20,000 trials
    python benchmarks/report_scale.py --sizes 2000 --cache /work/main/.bench_cache --out scale.json
    python benchmarks/report_scale.py --sizes 20000 --distinct --keep /tmp/reports   # no ties; keep the pages

The padded journals are `benchmarks/study_overhead.py`'s (copies of 12 real quickstart trials with every
attribute, cached in --cache); each is copied to a temporary folder before it is opened. Each step `nas report`
takes is timed once: opening the study, `compute_report_data` (and its parts: the records, the fronts, the
hypervolume history, the importances), `render`, the write; then the file's size. Prints a markdown table;
--out FILE.json keeps every figure.

The padded study copies the real trials exactly, so most trials tie exactly with many others: the front
holds every tied copy of each front network (as `study.best_trials` does), and the charts draw each tie once.
--distinct nudges every copy apart (cached beside the padded journal), so every trial is its own marker.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import platform
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))  # study_overhead, run as a script or imported
from study_overhead import QUICKSTART, padded_journal

from nas.cli.main import configure_libraries
from nas.data.datasets import load_data
from nas.report.data import compute_report_data
from nas.report.page import render
from nas.search.run.storage import open_storage
from nas.search.spec.studyfile_reader import load_study_file

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("open", "report data", "render", "write")


def distinct_journal(cache: Path, size: int, padded: Path) -> Path:
    """The padded study with every copy nudged apart (accuracy down and costs up by under 0.1%), so no two
    trials tie: the worst case for the charts, one marker per trial (cached)."""
    path = cache / f"quickstart-{size}-distinct.log"
    if path.is_file():
        return path
    source = optuna.load_study(study_name="quickstart", storage=open_storage(str(padded)))
    print(f"nudging {path} apart ...", file=sys.stderr, flush=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    study = optuna.create_study(
        study_name="quickstart", storage=open_storage(str(partial)), directions=source.directions
    )
    for key, value in source.user_attrs.items():
        study.set_user_attr(key, value)
    study.set_metric_names(list(source.metric_names or []))
    objectives = list(source.user_attrs.get("objectives", []))
    trials = []
    for t in source.get_trials(deepcopy=False):
        nudge = 1e-3 * t.number / size
        metrics = dict(t.user_attrs.get("metrics") or {})
        for name, value in metrics.items():
            if name in ("val_accuracy", "flops", "params") and isinstance(value, int | float):
                metrics[name] = value * (1 - nudge) if name == "val_accuracy" else value * (1 + nudge)
        values = [metrics.get(name, v) for name, v in zip(objectives, t.values, strict=True)] if t.values else None
        trials.append(
            optuna.trial.create_trial(
                state=t.state,
                values=values,
                params=t.params,
                distributions=t.distributions,
                user_attrs={**t.user_attrs, "metrics": metrics},
                system_attrs=t.system_attrs,
                intermediate_values=t.intermediate_values,
            )
        )
    study.add_trials(trials)
    partial.rename(path)
    return path


def measure(journal: Path, size: int, folder: Path, profile: bool, keep: Path | None) -> dict[str, Any]:
    """Every step of a report on a fresh copy of the padded journal, each timed once."""
    work = folder / f"report-{size}.log"
    shutil.copyfile(journal, work)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    study = optuna.load_study(study_name="quickstart", storage=open_storage(str(work)))
    seconds["open"] = time.perf_counter() - start
    profiler = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    data = compute_report_data(study=study)
    if profiler is not None:
        profiler.disable()
    seconds["report data"] = time.perf_counter() - start
    start = time.perf_counter()
    page = render(data)
    seconds["render"] = time.perf_counter() - start
    start = time.perf_counter()
    out = folder / f"report-{size}.html"
    out.write_text(page, encoding="utf-8")
    seconds["write"] = time.perf_counter() - start
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, keep / out.name)
    result: dict[str, Any] = {
        "trials": size,
        "seconds": seconds,
        "total_seconds": sum(seconds.values()),
        "bytes": out.stat().st_size,
        "pareto_set": len(data.pareto_numbers),
        "front_points": [len(p.pareto) for p in data.panels],
    }
    if profiler is not None:
        stats = pstats.Stats(profiler)
        rows = stats.stats.items()  # type: ignore[attr-defined]
        ours = [(key, row) for key, row in rows if "importlib" not in key[0] and not key[0].startswith(("<", "~"))]
        result["profile"] = [
            {"function": f"{path.split('/')[-1]}:{line} {name}", "cumulative_s": round(row[3], 3)}
            for (path, line, name), row in sorted(ours, key=lambda kv: kv[1][3], reverse=True)[:20]
        ]
    return result


def summary(results: list[dict[str, Any]]) -> str:
    head = ["trials", *(f"{s} (s)" for s in STEPS), "total (s)", "file (MB)", "Pareto set"]
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in results:
        cells = [
            f"{r['trials']:,}",
            *(f"{r['seconds'][s]:.2f}" for s in STEPS),
            f"{r['total_seconds']:.1f}",
            f"{r['bytes'] / 1e6:.1f}",
            f"{r['pareto_set']:,}",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    configure_libraries()  # as the nas command does
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000], help="trials in the padded studies")
    parser.add_argument("--cache", default=str(ROOT / ".bench_cache"), help="where the padded journals are kept")
    parser.add_argument("--profile", action="store_true", help="profile compute_report_data (slower)")
    parser.add_argument("--out", help="write every figure here as JSON")
    parser.add_argument("--distinct", action="store_true", help="nudge the copies apart: no exact ties")
    parser.add_argument("--keep", help="keep the reports in this folder (report-SIZE.html)")
    args = parser.parse_args()
    if any(n < 1 for n in args.sizes):
        parser.error("--sizes must be at least 1")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="report-scale-") as folder:
        for size in args.sizes:
            journal = cache / f"quickstart-{size}.log"
            if not journal.is_file():
                journal = padded_journal(cache, size, load_data(load_study_file(str(QUICKSTART)).data))
            if args.distinct:
                journal = distinct_journal(cache, size, journal)
            print(f"reporting on a study of {size:,} trials ...", file=sys.stderr, flush=True)
            results.append(measure(journal, size, Path(folder), args.profile, Path(args.keep) if args.keep else None))
    table = summary(results)
    print(table)
    for r in results:
        for row in r.get("profile", []):
            print(f"  {r['trials']:>6} {row['cumulative_s']:8.2f} s  {row['function']}", file=sys.stderr)
    if args.out:
        meta = {
            "machine": platform.platform(),
            "python": platform.python_version(),
            "optuna": optuna.__version__,
            "date": time.strftime("%Y-%m-%d"),
        }
        Path(args.out).write_text(json.dumps({**meta, "results": results, "table": table}, indent=2))


if __name__ == "__main__":
    main()

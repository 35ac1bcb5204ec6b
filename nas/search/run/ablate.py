"""Fair comparison of connectivity modes: same cost, several seeds, intervals not anecdotes.

For each mode the width knob (growth rate for the concatenating modes, initial features for the
width-preserving ones) is solved from the closed-form cost so that parameters, or FLOPs, match
the target within the stated tolerance; each mode then trains with `seeds` seeds under the same
recipe. The table gives mean, standard deviation and a 95% Student-t interval of validation
accuracy (clipped to [0, 1]) with the measured costs. Runs are trials of the study, so an interrupted ablation
resumes and nothing is trained twice.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math
import os
import statistics
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from nas.arch import MODES, ArchConfig
from nas.arch.cost import estimate
from nas.data.datasets import LoadedData, load_data
from nas.errors import UsageError
from nas.search.results import records, trial_record
from nas.search.run.runner import check_before_trials
from nas.search.run.storage import ClaimLock
from nas.search.run.study import open_study
from nas.search.run.trial_life import run_claimed_trial
from nas.search.run.trial_objective import Objective
from nas.search.spec.objectives import ACCURACY, FLOPS, MEASURED_COSTS, PARAMS
from nas.search.spec.space_file import load_space, resolve_space_path
from nas.search.spec.studyfile import StudyFile

MAX_WIDTH = 4096


@dataclasses.dataclass(frozen=True)
class Matched:
    config: ArchConfig
    widths: dict[str, int]  # the knobs solved and their values
    cost: int  # of the matched kind (params or FLOPs)
    relative_error: float
    params: int
    flops: int


def base_config(sf: StudyFile, data: LoadedData) -> ArchConfig:
    """The space's fixed fields and single-choice knobs, sized for the dataset."""
    if sf.ablation is None:
        raise UsageError(
            f"{sf.path} has no [ablation] table", owner=sf.path, field="ablation", allowed="an [ablation] table"
        )
    space = sf.space
    if sf.ablation.base:
        space = load_space(resolve_space_path(sf.ablation.base, relative_to=Path(sf.path).parent))
    fields: dict[str, Any] = dict(space.fixed)
    for knob in space.knobs:
        if knob.choices is not None and len(knob.choices) == 1:
            fields[knob.name] = knob.choices[0]
    c, _, _ = data.input_size
    fields.update(in_channels=c, num_classes=data.num_classes)
    return ArchConfig(**fields)


def _cost(cfg: ArchConfig, match: str, input_size: tuple[int, int, int]) -> float:
    return float(getattr(estimate(cfg, input_size=input_size), match))


def _bisect(base: ArchConfig, knob: str, match: str, target: float, input_size: tuple[int, int, int]) -> ArchConfig:
    """The value of `knob` whose cost is closest to `target` (costs grow with width)."""

    def cost(width: int) -> float:
        try:
            return _cost(base.replace(**{knob: width}), match, input_size)
        except ValueError:  # too narrow to build (a transition rounds to zero channels)
            return -math.inf

    lo, hi = 1, MAX_WIDTH
    while lo < hi:  # smallest width with cost >= target
        mid = (lo + hi) // 2
        if cost(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    best = min((w for w in (lo - 1, lo) if w >= 1 and cost(w) > -math.inf), key=lambda w: abs(cost(w) - target))
    return base.replace(**{knob: best})


def match_width(
    base: ArchConfig, mode: str, *, match: str, target: float, tolerance: float, input_size: tuple[int, int, int]
) -> Matched:
    """Solve the mode's width knob for the target cost; when its integer steps are too coarse
    for the tolerance, also search the secondary knob (as close to the base value as works)."""
    primary, secondary = MODES[mode].width_knobs
    start = base.replace(connectivity=mode)
    best = _bisect(start, primary, match, target, input_size)

    def error(cfg: ArchConfig) -> float:
        return abs(_cost(cfg, match, input_size) - target) / target

    if error(best) > tolerance:
        origin = getattr(start, secondary)
        for value in sorted(range(1, 4 * origin + 2), key=lambda v: abs(v - origin)):
            try:
                candidate = _bisect(start.replace(**{secondary: value}), primary, match, target, input_size)
            except ValueError:
                continue
            if error(candidate) < error(best):
                best = candidate
            if error(best) <= tolerance:
                break
    est = estimate(best, input_size=input_size)
    value = int(getattr(est, match))
    widths = {primary: getattr(best, primary), secondary: getattr(best, secondary)}
    return Matched(best, widths, value, abs(value - target) / target, est.params, est.flops)


def _interval(values: list[float]) -> tuple[float, float, float, float]:
    """(mean, std, low, high): sample std and a 95% Student-t interval of the mean, clipped to [0, 1].

    Clipped rather than computed on the logit scale: with few seeds the t-interval easily passes 1 (or
    0), which no accuracy can, and a logit interval has no value once one seed scores exactly 0 or 1.
    Inside [0, 1] the bounds are the plain t-interval's."""
    from scipy import stats

    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return mean, 0.0, mean, mean
    std = statistics.stdev(values)
    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return mean, std, max(0.0, mean - half), min(1.0, mean + half)


def bounded_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ablation rows with their intervals clipped to [0, 1], as `_interval` gives them now (for a table
    written by an older version, whose intervals could leave it)."""
    return [{k: _clip(v) if k in records.ABLATION_INTERVAL_COLUMNS else v for k, v in row.items()} for row in rows]


def _clip(value: Any) -> Any:
    """A number into [0, 1]; NaN (a mode with no finished run) and anything else as it is."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return value
    return min(1.0, max(0.0, float(value)))


def run_ablation(
    sf: StudyFile, *, storage: str | None = None, device: str | None = None
) -> tuple[optuna.Study, list[dict[str, Any]], Path]:
    """Train every mode at the matched cost with every seed; returns the study, the table and its CSV."""
    if sf.ablation is None:
        raise UsageError(
            f"{sf.path} has no [ablation] table", owner=sf.path, field="ablation", allowed="an [ablation] table"
        )
    ab = sf.ablation
    data = load_data(sf.data)
    check_before_trials(sf, data, device=device or sf.device)
    base = base_config(sf, data)
    matched = {
        m: match_width(base, m, match=ab.match, target=ab.target, tolerance=ab.tolerance, input_size=data.input_size)
        for m in ab.modes
    }
    for mode, m in matched.items():  # before the study exists: nothing is trained for an impossible target
        _check_reachable(sf, base, mode, m, data.input_size)
    # Ablation runs are fixed networks told to the study directly; no sampler proposes them.
    study = open_study(dataclasses.replace(sf, sampler="random"), storage=storage, data=data)
    lock = ClaimLock(storage or sf.storage_url(), sf.name)
    no_pruning = dataclasses.replace(sf.pruning, method="none")  # a fair comparison trains every run fully
    done = {json.dumps(key, sort_keys=True) for key, _ in _ablation_runs(study)}
    for mode, m in matched.items():
        for seed in range(ab.seeds):
            key = {"mode": mode, "seed": seed, "match": ab.match, "target": ab.target}
            if json.dumps(key, sort_keys=True) in done:
                continue
            seeded = dataclasses.replace(
                sf, recipe=dataclasses.replace(sf.recipe, seed=sf.recipe.seed + seed), pruning=no_pruning
            )
            widths = ", ".join(f"{k}={v}" for k, v in m.widths.items())
            print(f"ablation: {mode} {widths} ({ab.match} {m.cost:,}), seed {seed}", flush=True)
            objective = Objective(seeded, data, device=device or sf.device, lock=lock)
            trial = study.ask()
            records.write_ablation(trial, key)
            run_claimed_trial(study, trial, functools.partial(objective.run_network, net=m.config), seeded)
    rows = ablation_table(study, matched, tolerance=ab.tolerance)
    return study, rows, _write_csv(sf.run_dir() / "ablation.csv", rows)


def _check_reachable(sf: StudyFile, base: ArchConfig, mode: str, m: Matched, input_size: tuple[int, int, int]) -> None:
    """Refuse a target outside what the mode's width knob can reach; warn when it is reached but not
    within the tolerance (the integer widths step past it)."""
    ab = sf.ablation
    assert ab is not None  # run_ablation checked it
    if m.relative_error <= ab.tolerance:
        return
    knob = MODES[mode].width_knobs[0]
    start = base.replace(connectivity=mode)
    widths = [w for w in (1, 2, 4, 8) if _buildable(start, knob, w)]
    low = min(_cost(start.replace(**{knob: w}), ab.match, input_size) for w in widths) if widths else math.inf
    high = _cost(start.replace(**{knob: MAX_WIDTH}), ab.match, input_size)
    if not low <= ab.target <= high:
        raise UsageError(
            f"{sf.path}: ablation.target = {ab.target:g} is out of reach for {mode}: its {knob} from 1 to "
            f"{MAX_WIDTH} gives {ab.match} from {low:,.0f} to {high:,.0f}",
            owner=sf.path,
            field="ablation.target",
            value=ab.target,
            allowed=f"a {ab.match} count every mode can reach (for {mode}: {low:,.0f} to {high:,.0f})",
        )
    print(
        f"warning: ablation: {mode} matched at {m.cost:,} {ab.match}, {m.relative_error:.1%} from the target "
        f"{ab.target:,.0f}, outside the tolerance of {ab.tolerance:.0%}",
        flush=True,
    )


def _buildable(config: ArchConfig, knob: str, width: int) -> bool:
    try:
        config.replace(**{knob: width})
    except ValueError:
        return False
    return True


def _ablation_runs(study: optuna.Study) -> list[tuple[dict[str, Any], trial_record.Stored]]:
    """(ablation key, stored attributes) of every finished ablation run."""
    finished = [trial_record.stored(t) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    return [(attrs.ablation, attrs) for attrs in finished if attrs.ablation is not None]


def ablation_table(study: optuna.Study, matched: dict[str, Matched], *, tolerance: float) -> list[dict[str, Any]]:
    """One row per mode from the study's finished ablation runs."""
    finished = _ablation_runs(study)
    rows = []
    for mode, m in matched.items():
        runs = [
            attrs.metrics
            for key, attrs in finished
            if key.get("mode") == mode and attrs.arch_hash == m.config.arch_hash()
        ]
        accs = [float(r[ACCURACY]) for r in runs if ACCURACY in r]
        mean, std, low, high = _interval(accs) if accs else (math.nan, math.nan, math.nan, math.nan)
        row: dict[str, Any] = {
            "mode": mode,
            **m.widths,
            PARAMS: m.params,
            FLOPS: m.flops,
            "cost_error": round(m.relative_error, 4),
            "within_tolerance": m.relative_error <= tolerance,
            "seeds": len(accs),
            records.ABLATION_MEAN_COLUMN: mean,
            f"{ACCURACY}_std": std,
            records.ABLATION_INTERVAL_COLUMNS[0]: low,
            records.ABLATION_INTERVAL_COLUMNS[1]: high,
        }
        for metric in MEASURED_COSTS:
            vals = [float(r[metric]) for r in runs if r.get(metric) is not None]
            row[f"{metric}_mean"] = statistics.fmean(vals) if vals else None
        rows.append(row)
    return rows


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """The table as CSV, and as JSON for `nas report`; each written whole, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["mode"])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    js = path.with_suffix(".json")
    tmp_js = js.with_name(f".{js.name}.tmp{os.getpid()}")
    tmp_js.write_text(json.dumps({"rows": rows}, indent=2, default=str))
    os.replace(tmp_js, js)
    return path

"""What a study report shows, computed from the stored records before anything is drawn.

Following Optuna's own plots (visualization/_pareto_front.py), the numbers come first as a plain
structure: tests check the fronts, hypervolumes and table here, and `nas.report.page` only draws them.

Objectives are compared in minimisation form: a maximised objective (validation accuracy) is
negated, so accuracy 0.93 is -0.93. Pareto sets follow Optuna: a trial is dominated when another
is no worse in every objective and better in one, so ties stay on the front together.
"""

from __future__ import annotations

import importlib.metadata
import math
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import TrialState

from nas.report.final import FinalEvaluation, final_evaluation
from nas.report.networks import FrontNetwork, front_networks
from nas.report.rows import measured, trial_rows
from nas.search.results import optuna_internals
from nas.search.results.proxy_ranking import StoredRankings, prescreen_notes, stored_rankings
from nas.search.results.records import INTERVAL_KEYS, STATUSES, UNFINISHED
from nas.search.results.study_attrs import (
    generation_number,
    proxy_scores,
    study_objectives,
    study_provenance,
    study_settings,
)
from nas.search.results.trial_record import TrialRecord, load_records
from nas.search.results.twins import fold_twins
from nas.search.spec.objectives import ACCURACY, COSTS_BEFORE_TRAINING, OBJECTIVES
from nas.search.spec.space import stored_modes
from nas.text import plural


@dataclass(frozen=True)
class FrontPoint:
    """One feasible trial as a point: its measured objectives and everything to show on hover."""

    number: int
    connectivity: str | None
    baseline: str | None
    values: dict[str, float]  # objective name -> value, from the trial's values or metrics
    hover: dict[str, Any]  # trial, mode, every arch knob and metric (raw: the drawing escapes)
    interval: tuple[float, float] | None = None  # 95% Wilson interval of the accuracy; None if not known
    reused_by: tuple[int, ...] = ()  # the twins folded into this point (trials that reused its result)
    over: tuple[str, ...] = ()  # the study's budgets a baseline exceeds (max_params, ...): drawn hollow, on no front


@dataclass(frozen=True)
class FrontPanel:
    """One chart: validation accuracy (y) against one cost (x)."""

    cost: str
    points: tuple[
        FrontPoint, ...
    ]  # every feasible trial with this cost and accuracy measured, and over-budget baselines
    pareto: tuple[int, ...]  # trial numbers on the 2-D front (max accuracy, min cost), by cost; feasible only
    mode_fronts: dict[str, tuple[int, ...]]  # group (mode, or baseline name) -> its own 2-D front; feasible only
    # True when accuracy and this cost are the study's only objectives, so the chart's 2-D front is the study's
    # Pareto set; otherwise it is only this chart's front (a third objective, or a cost nobody optimised).
    is_study_front: bool = True


@dataclass(frozen=True)
class ReportData:
    study_name: str
    objectives: tuple[str, ...]
    directions: tuple[str, ...]
    pareto_numbers: tuple[int, ...]  # Pareto set over all objectives: study.best_trials, reused twins folded
    panels: tuple[FrontPanel, ...]
    hypervolume_history: tuple[tuple[int, float], ...]  # (trial number, hypervolume so far), finished trials
    reference_point: tuple[float, ...]  # minimisation form (accuracy negated); see reference_point()
    importances: dict[str, dict[str, float]]  # objective -> param -> importance
    learning_curves: dict[int, tuple[tuple[int, float], ...]]  # Pareto trial -> ((epoch, val_accuracy), ...)
    table: tuple[dict[str, Any], ...]  # every trial, every status, same keys in every row
    ablation: tuple[dict[str, Any], ...] | None
    provenance: dict[str, Any]
    notes: tuple[str, ...]
    val_images: tuple[int, ...] = ()  # validation split sizes of the trials with intervals (one, unless it changed)
    final: FinalEvaluation | None = None  # the runs of `nas finalize`; None when nothing was finalized
    networks: tuple[FrontNetwork, ...] = ()  # the front's networks and the baselines, to draw
    input_size: tuple[int, int, int] | None = None  # what the study trained at (its provenance), for the drawings
    space_modes: tuple[str, ...] | None = None  # the modes the study's space can sample; None for an older study
    proxies: StoredRankings | None = None  # how the zero-cost proxy scores the study holds rank its accuracies


def group_of(point: FrontPoint) -> str:
    """The colour group of a point: its connectivity mode, or its own name for a baseline."""
    return point.baseline or point.connectivity or "unknown"


def finite_values(record: TrialRecord) -> dict[str, float]:
    """Every objective the trial measured as a finite number: what a point on a chart can stand on."""
    return {n: v for n in OBJECTIVES if (v := measured(record, n)) is not None and math.isfinite(v)}


def non_dominated(loss: np.ndarray) -> np.ndarray:
    """Mask of the rows of `loss` (minimised) that no other row dominates; equal rows both stay.

    Optuna's own front rule (`optuna_internals.on_front`, what `study.best_trials` applies), so the
    report's fronts are Optuna's by construction; it sorts once, never compares every pair."""
    loss = np.asarray(loss, dtype=float)
    if len(loss) == 0:
        return np.ones(0, dtype=bool)
    return optuna_internals.on_front(loss)


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact volume dominated by minimisation `points` inside the box bounded by `reference`.

    Points outside the box add nothing (Optuna's version refuses them). Two dimensions are swept
    here; three and more go to Optuna's exact WFG implementation.
    """
    ref = np.asarray(reference, dtype=float).reshape(-1)
    pts = np.asarray(points, dtype=float).reshape(-1, ref.size)
    pts = pts[np.all(pts < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    if ref.size == 1:
        return float(ref[0] - pts[:, 0].min())
    if ref.size == 2:
        area, y_best = 0.0, float(ref[1])
        for x, y in pts[np.lexsort((pts[:, 1], pts[:, 0]))]:
            if y < y_best:  # a new step of the staircase, reaching to the reference in x
                area += (ref[0] - x) * (y_best - y)
                y_best = float(y)
        return float(area)
    front = np.unique(pts[non_dominated(pts)], axis=0)
    return optuna_internals.hypervolume(front, ref)


def reference_point(loss: np.ndarray) -> np.ndarray:
    """Worst value per objective plus 10% of its range (10% of |worst|, or 1, when the range is 0).

    Computed once from every feasible trial, so the history is measured against one fixed box and
    never decreases, and the worst trials still add volume (a reference on them would not).
    """
    worst, best = loss.max(axis=0), loss.min(axis=0)
    margin = 0.1 * (worst - best)
    flat = margin == 0
    margin[flat] = np.where(worst[flat] != 0, 0.1 * np.abs(worst[flat]), 1.0)
    return np.asarray(worst + margin, dtype=float)


def _pareto_2d(points: list[FrontPoint], cost: str) -> tuple[int, ...]:
    if not points:
        return ()
    loss = np.array([[-p.values[ACCURACY], p.values[cost]] for p in points])
    on_front = [(p.values[cost], p.number) for p, keep in zip(points, non_dominated(loss), strict=True) if keep]
    return tuple(number for _, number in sorted(on_front))


def _point(record: TrialRecord, twins: tuple[int, ...]) -> FrontPoint:
    values = finite_values(record)
    hover: dict[str, Any] = {"trial": record.number, "connectivity": record.connectivity}
    if record.baseline:
        hover["baseline"] = record.baseline
    if record.over_budgets:
        hover["over"] = ", ".join(record.over_budgets)
    if record.reused_from is not None:
        hover["reused_from"] = record.reused_from
    if twins:
        hover["reused_by"] = f"{plural(len(twins), 'trial')} ({', '.join(map(str, twins))})"
    hover.update({key: getattr(record, key) for key in INTERVAL_KEYS if getattr(record, key) is not None})
    for source, prefix in ((record.arch, "arch_"), (record.metrics, "metric_")):
        for key, value in source.items():
            if key not in hover or hover[key] != value:
                hover[key if key not in hover else prefix + key] = value
    return FrontPoint(
        number=record.number,
        connectivity=record.connectivity,
        baseline=record.baseline,
        values=values,
        hover=hover,
        interval=_interval(record),
        reused_by=twins,
        over=record.over_budgets,
    )


def _interval(record: TrialRecord) -> tuple[float, float] | None:
    low, high = record.val_accuracy_low, record.val_accuracy_high
    return (low, high) if low is not None and high is not None else None


def _panel(points: list[FrontPoint], cost: str, objectives: tuple[str, ...]) -> FrontPanel:
    mine = [p for p in points if ACCURACY in p.values and cost in p.values]
    groups: dict[str, list[FrontPoint]] = {}
    for p in mine:
        if not p.over:
            groups.setdefault(group_of(p), []).append(p)
    return FrontPanel(
        cost=cost,
        points=tuple(mine),
        pareto=_pareto_2d([p for p in mine if not p.over], cost),
        mode_fronts={g: _pareto_2d(ps, cost) for g, ps in sorted(groups.items())},
        is_study_front=set(objectives) == {ACCURACY, cost},
    )


def _loss(record: TrialRecord, objectives: tuple[str, ...], directions: tuple[str, ...]) -> list[float]:
    """The trial's values in minimisation form (maximised ones negated)."""
    pairs = zip(objectives, directions, strict=True)
    return [-record.values[n] if d == "maximize" else record.values[n] for n, d in pairs]


def _hypervolume_history(
    records: list[TrialRecord], objectives: tuple[str, ...], directions: tuple[str, ...], notes: list[str]
) -> tuple[tuple[tuple[int, float], ...], tuple[float, ...]]:
    usable = [r for r in records if r.feasible and all(n in r.values for n in objectives)]
    finite = [r for r in usable if all(math.isfinite(r.values[n]) for n in objectives)]
    if len(finite) < len(usable):
        left_out = plural(len(usable) - len(finite), "feasible trial")
        notes.append(f"hypervolume leaves out {left_out} with non-finite values")
    finished = [r for r in records if r.status not in UNFINISHED]
    if not finite:
        return tuple((r.number, 0.0) for r in finished), ()
    ref = reference_point(np.array([_loss(r, objectives, directions) for r in finite]))
    counted = {r.number for r in finite}
    front = np.empty((0, len(objectives)))
    volume, history = 0.0, []
    for r in finished:
        if r.number in counted:
            p = np.array(_loss(r, objectives, directions))
            if not np.any(np.all(front <= p, axis=1)):  # not weakly dominated: the front grows
                front = np.vstack([front[~np.all(p <= front, axis=1)], p])
                volume = hypervolume(front, ref)
        history.append((r.number, volume))
    return tuple(history), tuple(float(v) for v in ref)


def _importances(
    records: list[TrialRecord],
    study: optuna.Study,
    objectives: tuple[str, ...],
    directions: tuple[str, ...],
    notes: list[str],
) -> dict[str, dict[str, float]]:
    """PED-ANOVA importances per objective, over feasible trials only, each in minimisation form.

    Read from the study itself through PED-ANOVA's `target` (NaN leaves a trial out), not from a copy:
    copying 20,000 trials into a new study took most of a large report's time."""
    complete = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    usable = [r for r in records if r.feasible and r.params and r.number in complete]
    if len(usable) < 2:
        notes.append(f"parameter importance skipped: {plural(len(usable), 'feasible trial')} with parameters, need 2")
        return {}
    params = sorted({name for r in usable for name in complete[r.number].distributions})
    result: dict[str, dict[str, float]] = {}
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        for name, direction in zip(objectives, directions, strict=True):
            sign = -1.0 if direction == "maximize" else 1.0  # PED-ANOVA takes a low target as good
            values = {r.number: sign * v for r in usable if (v := r.values.get(name)) is not None and math.isfinite(v)}

            def target(trial: optuna.trial.FrozenTrial, values: dict[int, float] = values) -> float:
                return values.get(trial.number, math.nan)

            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result[name] = dict(optuna.importance.get_param_importances(study, params=params, target=target))
            except Exception as error:  # a report never fails on importance
                notes.append(f"parameter importance for {name} skipped: {type(error).__name__}: {error}")
    finally:
        optuna.logging.set_verbosity(verbosity)
    return result


def _provenance(study: optuna.Study, records: list[TrialRecord]) -> dict[str, Any]:
    provenance = study_provenance(study)
    for package in ("optuna", "torch"):
        try:
            provenance[f"report_{package}_version"] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            provenance[f"report_{package}_version"] = None
    counts = Counter(r.status for r in records)
    provenance["trials"] = len(records)
    for status in (*STATUSES, *sorted(set(counts) - set(STATUSES))):
        provenance[f"trials_{status}"] = counts.get(status, 0)
    return provenance


def _input_size(provenance: dict[str, Any]) -> tuple[int, int, int] | None:
    size = provenance.get("input_size")
    if isinstance(size, list | tuple) and len(size) == 3 and all(isinstance(v, int) and v > 0 for v in size):
        return (size[0], size[1], size[2])
    return None


def compute_report_data(*, study: optuna.Study, ablation: list[dict[str, Any]] | None = None) -> ReportData:
    """Everything the report draws, from the study's records (see nas.search.results.trial_record)."""
    records = sorted(load_records(study), key=lambda r: r.number)
    objectives = tuple(study_objectives(study))
    directions = tuple("maximize" if d == StudyDirection.MAXIMIZE else "minimize" for d in study.directions)
    notes: list[str] = []
    carried = sum(r.generation is not None for r in records)
    if carried:  # a grown search space (nas.search.results.generations): one search across the generations
        notes.append(
            f"generation {generation_number(study.study_name)} of this study: {plural(carried, 'trial')} of earlier "
            "generations carried over into it (their networks fit the grown space; nothing retrained) are shown with "
            "the trials trained since"
        )

    notes.extend(prescreen_notes(records))
    complete = [r for r in records if r.feasible and all(n in r.values for n in objectives)]
    loss = np.array([_loss(r, objectives, directions) for r in complete]).reshape(len(complete), len(objectives))
    on_front = [(r.number, r.reused_from) for r, keep in zip(complete, non_dominated(loss), strict=True) if keep]
    front_twins = fold_twins(on_front)
    pareto = tuple(sorted(front_twins))

    # One point per network: a reused twin folds into the trial that trained it (the table keeps both).
    drawn = {r.number: r for r in records if r.feasible or r.over_budgets}
    networks = fold_twins((r.number, r.reused_from) for r in drawn.values())
    points = [_point(drawn[n], tuple(m for m in members if m != n)) for n, members in sorted(networks.items())]
    for p in points:
        if p.over:
            notes.append(
                f"baseline {p.baseline} (trial {p.number}) is over the study's {' and '.join(p.over)}: trained as "
                "a reference all the same, drawn as a hollow marker on no front, and listed as over budget in "
                "the budget tables"
            )
    costs = [*COSTS_BEFORE_TRAINING]  # counted for every trained network
    for cost, spec in OBJECTIVES.items():
        if cost == ACCURACY or spec.before_training:
            continue
        wanted = spec.panel_when_measured or cost in objectives
        if wanted and any(cost in p.values for p in points):
            costs.append(cost)
        elif cost in objectives:  # a cost nobody asked for needs no word when it is not there
            notes.append(f"no panel for {cost}: no feasible trial measured it")
    panels = tuple(_panel(points, cost, objectives) for cost in costs)

    history, ref = _hypervolume_history(records, objectives, directions, notes)
    by_number = {r.number: r for r in records}
    curves = {
        n: tuple(
            (int(h["epoch"]), float(h[ACCURACY]))
            for h in by_number[n].history
            if isinstance(h.get("epoch"), int) and isinstance(h.get(ACCURACY), int | float)
        )
        for n in pareto
    }
    provenance = _provenance(study, records)
    if any(group_of(p) == "unknown" for p in points):
        notes.append("some feasible trials record no connectivity mode: drawn as 'unknown'")
    return ReportData(
        study_name=study.study_name,
        objectives=objectives,
        directions=directions,
        pareto_numbers=pareto,
        panels=panels,
        hypervolume_history=history,
        reference_point=ref,
        importances=_importances(records, study, objectives, directions, notes),
        learning_curves=curves,
        table=trial_rows(records, objectives),
        ablation=tuple(dict(row) for row in ablation) if ablation is not None else None,
        provenance=provenance,
        notes=tuple(notes),
        val_images=tuple(sorted({r.val_images for r in records if r.val_images is not None})),
        final=final_evaluation(study),
        networks=front_networks(records=records, pareto=pareto, twins=front_twins),
        input_size=_input_size(provenance),
        space_modes=stored_modes((study_settings(study) or {}).get("space")),
        proxies=stored_rankings(records=records, stored=proxy_scores(study)),
    )

"""Several studies side by side, computed before anything is drawn (`nas report A.toml B.toml ...`).

Two search spaces, two datasets or two recipes answer the same question only on what they share:
the charts are validation accuracy against each cost every study measured (the costs a single
report draws), and the hypervolume is over the objectives every study lists with the same
direction, each study's against one reference point computed from the union of their feasible
networks, so the numbers compare. Studies whose objectives share no cost still compare on the
costs counted for every trained network (parameters, FLOPs) when each of them has them.

A reused twin (a trial that copied another's result) is the same network as its source: it is
folded into it, so each network is one point and counts once. `nas.report.compare_page` draws this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.study import StudyDirection

from nas.errors import bad_value
from nas.report.data import finite_values, hypervolume, non_dominated, reference_point
from nas.search.results.study_attrs import study_objectives
from nas.search.results.trial_record import TrialRecord, load_records
from nas.search.results.twins import fold_twins
from nas.search.spec.objectives import ACCURACY, COSTS_BEFORE_TRAINING, OBJECTIVES
from nas.text import plural


@dataclass(frozen=True)
class Network:
    """One feasible network of a study: the trial that trained it, with its twins folded in."""

    number: int  # the trial that trained it (or, when that one is not feasible, the first twin)
    group: str  # its connectivity mode, or the baseline's name
    values: dict[str, float]  # objective name -> measured value (finite), from the trial's values or metrics
    reuses: int  # twins folded into it


@dataclass(frozen=True)
class ComparedStudy:
    label: str  # the study file's stem (or the study's name): what the page calls it
    study_name: str
    objectives: tuple[str, ...]  # as the study lists them
    directions: tuple[str, ...]
    trials: int  # every stored trial, any status
    networks: tuple[Network, ...]  # feasible networks, twins folded, by trial number
    twins: int  # feasible reused trials folded into their sources
    points: dict[str, tuple[int, ...]]  # shared cost -> networks with accuracy and that cost, by trial number
    fronts: dict[str, tuple[int, ...]]  # shared cost -> the 2-D front (max accuracy, min cost), by cost
    front: tuple[int, ...]  # the Pareto set over the shared objectives (the hypervolume's), by trial number
    hypervolume: float | None  # against Comparison.reference_point; None when nothing could be compared

    def network(self, number: int) -> Network:
        return next(n for n in self.networks if n.number == number)


@dataclass(frozen=True)
class Comparison:
    studies: tuple[ComparedStudy, ...]
    costs: tuple[str, ...]  # one chart each: accuracy against this cost
    objectives: tuple[str, ...]  # what the hypervolume is over, in the first study's order
    directions: tuple[str, ...]
    reference_point: tuple[float, ...]  # minimisation form (maximised objectives negated); () when none
    notes: tuple[str, ...]  # what was left out, and why


def _group(record: TrialRecord) -> str:
    return record.baseline or record.connectivity or "unknown"


def networks_of(records: Sequence[TrialRecord]) -> list[Network]:
    """The feasible records as networks: each reused twin folded into the trial it copied (`fold_twins`)."""
    feasible = {r.number: r for r in records if r.feasible}
    networks = []
    for number, members in fold_twins((r.number, r.reused_from) for r in feasible.values()).items():
        lead = feasible[number]
        networks.append(Network(number=number, group=_group(lead), values=finite_values(lead), reuses=len(members) - 1))
    return sorted(networks, key=lambda n: n.number)


@dataclass(frozen=True)
class _Loaded:
    label: str
    study_name: str
    objectives: tuple[str, ...]
    directions: tuple[str, ...]
    trials: int
    networks: tuple[Network, ...]
    twins: int


def _load(label: str, study: optuna.Study) -> _Loaded:
    records = load_records(study)
    networks = networks_of(records)
    feasible = sum(r.feasible for r in records)
    return _Loaded(
        label=label,
        study_name=study.study_name,
        objectives=tuple(study_objectives(study)),
        directions=tuple("maximize" if d == StudyDirection.MAXIMIZE else "minimize" for d in study.directions),
        trials=len(records),
        networks=tuple(networks),
        twins=feasible - len(networks),
    )


def _shared_objectives(compared: list[_Loaded], notes: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Objectives every study lists with the same direction; the costs counted for every network when no cost is."""
    first = compared[0]
    shared = [
        (name, direction)
        for name, direction in zip(first.objectives, first.directions, strict=True)
        if all(dict(zip(s.objectives, s.directions, strict=True)).get(name) == direction for s in compared)
    ]
    if all(name == ACCURACY for name, _ in shared):
        counted = [c for c in COSTS_BEFORE_TRAINING if all(any(c in n.values for n in s.networks) for s in compared)]
        shared += [(c, OBJECTIVES[c].direction) for c in counted]
        if counted:
            notes.append(
                f"the studies share no cost objective: the hypervolume is over {', '.join(n for n, _ in shared)} "
                "(counted for every trained network)"
            )
    names = {name for name, _ in shared}  # after the fallback, so no note contradicts it
    for s in compared:
        if left := [n for n in s.objectives if n not in names]:
            notes.append(
                f"{s.label}: objective {', '.join(left)} not shared by every study, left out of the hypervolume"
            )
    return tuple(n for n, _ in shared), tuple(d for _, d in shared)


def _shared_costs(compared: list[_Loaded], notes: list[str]) -> tuple[str, ...]:
    """The costs a single report would draw for every study (see compute_report_data), in registry order."""
    costs = []
    for cost, spec in OBJECTIVES.items():
        if cost == ACCURACY:
            continue
        drawn = [
            s
            for s in compared
            if (spec.before_training or spec.panel_when_measured or cost in s.objectives)
            and any(cost in n.values and ACCURACY in n.values for n in s.networks)
        ]
        if len(drawn) == len(compared):
            costs.append(cost)
        elif drawn:
            missing = ", ".join(s.label for s in compared if s not in drawn)
            notes.append(f"no chart for {cost}: not measured by every study (not by {missing})")
    return tuple(costs)


def _loss(network: Network, objectives: tuple[str, ...], directions: tuple[str, ...]) -> list[float] | None:
    """The network's values over `objectives` in minimisation form; None when one is missing."""
    if not all(n in network.values for n in objectives):
        return None
    return [
        -network.values[n] if d == "maximize" else network.values[n]
        for n, d in zip(objectives, directions, strict=True)
    ]


def _front_2d(networks: list[Network], cost: str) -> tuple[int, ...]:
    if not networks:
        return ()
    loss = np.array([[-n.values[ACCURACY], n.values[cost]] for n in networks])
    kept = [(n.values[cost], n.number) for n, keep in zip(networks, non_dominated(loss), strict=True) if keep]
    return tuple(number for _, number in sorted(kept))


def compute_comparison(*, studies: Sequence[tuple[str, optuna.Study]]) -> Comparison:
    """Every study's fronts on the costs they share, and hypervolumes against one reference point."""
    if not studies:
        raise bad_value("compute_comparison", "studies", [], "at least one (label, study) pair")
    labels = [label for label, _ in studies]
    if any(not label for label in labels) or len(set(labels)) < len(labels):
        raise bad_value("compute_comparison", "labels", labels, "distinct, non-empty labels")
    loaded = [_load(label, study) for label, study in studies]
    notes: list[str] = []
    compared = [s for s in loaded if s.networks]
    for s in loaded:
        if not s.networks:
            notes.append(f"{s.label}: no feasible trial, left out of the charts and the hypervolume")
    if not compared:
        compared = loaded  # nothing to draw; the objectives still say what would have been compared
    objectives, directions = _shared_objectives(compared, notes)
    costs = _shared_costs(compared, notes) if compared[0].networks else ()

    losses: dict[str, list[tuple[Network, list[float]]]] = {}
    for s in compared:
        usable = [(n, loss) for n in s.networks if (loss := _loss(n, objectives, directions)) is not None]
        if len(usable) < len(s.networks):
            left = plural(len(s.networks) - len(usable), "feasible network")
            notes.append(f"{s.label}: {left} without every shared objective, left out of the hypervolume")
        losses[s.label] = usable
    union = [loss for usable in losses.values() for _, loss in usable]
    reference = reference_point(np.array(union)) if union and objectives else None

    result = []
    for s in loaded:
        usable = losses.get(s.label, [])
        front: tuple[int, ...] = ()
        volume = None
        if reference is not None and usable:
            mine = np.array([row for _, row in usable])
            keep = non_dominated(mine)
            front = tuple(n.number for (n, _), k in zip(usable, keep, strict=True) if k)
            volume = hypervolume(mine[keep], reference)
        points = {cost: [n for n in s.networks if ACCURACY in n.values and cost in n.values] for cost in costs}
        result.append(
            ComparedStudy(
                label=s.label,
                study_name=s.study_name,
                objectives=s.objectives,
                directions=s.directions,
                trials=s.trials,
                networks=s.networks,
                twins=s.twins,
                points={cost: tuple(n.number for n in ns) for cost, ns in points.items()},
                fronts={cost: _front_2d(ns, cost) for cost, ns in points.items()},
                front=front,
                hypervolume=volume,
            )
        )
    return Comparison(
        studies=tuple(result),
        costs=costs,
        objectives=objectives,
        directions=directions,
        reference_point=tuple(float(v) for v in reference) if reference is not None else (),
        notes=tuple(notes),
    )

"""Early-stopping rules for multi-objective studies, as pure functions over plain data.

Each trial's objective (`nas.search.run.trial_objective.Objective`) builds an `Evidence` for every other trial it
may learn from and asks `stop_reason` after each epoch; a replay of recorded learning curves
(`benchmarks/search_efficiency.py`) calls the same function with the same data, so both decide alike.
Nothing here reads a study or imports Optuna.

Two rules (`METHODS`; a study file's `[pruning] method`):

- `pareto_stop`: after epoch e >= min_epochs, stop when some trial that completed feasibly costs no
  more in every cost known before training and reached a final accuracy above what this trial can
  plausibly reach: a_e + margin + max(0, a_e - a_(e-1)) x (epochs left). With `margin = "auto"` the
  split's resolution decides instead of a fixed allowance: the other trial's accuracy is replaced by
  its 95% Wilson lower bound on the validation images (`nas.stats.wilson_interval`), margin 0.
- `mo_asha`: MO-ASHA in its stopping variant (Schmucker et al. 2021, "Multi-objective Asynchronous
  Successive Halving", arXiv 2106.12639; as Syne Tune's MOASHA). Rungs sit at epochs min_epochs x eta^i
  below the last epoch. A trial reaching a rung is ranked among every trial whose curve reached that
  rung (their accuracy AT the rung, even if they went further) plus itself, by `nondominated_order` on
  (-accuracy, costs known before training); the first trial at a rung continues, later ones stop when
  0-based rank / count > 1/eta. Costs are ranked as log(1 + cost): FLOPs and parameters span orders of
  magnitude, and the epsilon-net tie-break measures distances, which a log scale keeps even-handed
  (the fronts themselves do not depend on it).

A trial without costs known before training (a baseline) is never stopped, and the last epoch never
is (there is nothing left to save).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nas.stats import wilson_interval

if TYPE_CHECKING:  # studyfile validates `Pruning.method` against METHODS below: no import cycle at run time
    from nas.search.spec.studyfile import Pruning

__all__ = ["METHODS", "Evidence", "front_numbers", "judges_at", "nondominated_order", "rung_epochs", "stop_reason"]

METHODS: dict[str, str] = {
    "pareto_stop": "Pareto-aware stop: a finished trial that costs no more beats what this trial can still reach",
    "mo_asha": "MO-ASHA (Schmucker et al. 2021, arXiv 2106.12639): at rungs min_epochs x eta^i only the top 1/eta "
    "of the trials at the rung, by non-dominated sorting on (accuracy, costs), continue",
    "none": "no early stopping: every trial trains for the recipe's epochs",
}


@dataclass(frozen=True)
class Evidence:
    """What a stopping rule knows of another trial of the study."""

    number: int
    costs: Mapping[str, float]  # the costs known before training (COSTS_BEFORE_TRAINING names)
    curve: Sequence[float]  # validation accuracy after epoch 1, 2, ... so far (finished or running)
    final: float | None  # final validation accuracy of a trial that completed feasibly; else None


def rung_epochs(*, min_epochs: int, eta: int, max_epochs: int) -> tuple[int, ...]:
    """The MO-ASHA rungs: min_epochs x eta^i strictly below max_epochs (the last epoch stops nothing)."""
    for name, value, least in (("min_epochs", min_epochs, 1), ("eta", eta, 2), ("max_epochs", max_epochs, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ValueError(f"rung_epochs: {name} = {value!r}: an integer >= {least} is required")
    rungs = []
    epoch = min_epochs
    while epoch < max_epochs:
        rungs.append(epoch)
        epoch *= eta
    return tuple(rungs)


def nondominated_order(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of `points` (every coordinate lower is better) best first: non-dominated fronts in order;
    inside a front an epsilon-net order, seeded by the point with the lowest first coordinate, then
    always the point farthest from those already taken, on coordinates scaled to [0, 1] by the points'
    own range (Euclidean). Ties go to the lower index, so the order is deterministic."""
    if len(points) == 0:
        return []
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or pts.shape[1] == 0 or not np.isfinite(pts).all():
        raise ValueError("nondominated_order: points must be finite numbers, each of the same length")
    low, span = pts.min(axis=0), np.ptp(pts, axis=0)
    scaled = (pts - low) / np.where(span > 0, span, 1.0)
    fronts = _fronts(pts)
    order: list[int] = []
    for front in range(int(fronts.max()) + 1):
        order += _epsilon_net(pts, scaled, np.flatnonzero(fronts == front))
    return order


_BLOCK = 256  # points whose dominators one numpy step finds: bounds the step's memory to _BLOCK x n booleans


def front_numbers(points: Sequence[Sequence[float]]) -> list[int]:
    """Each point's non-dominated front (0: no other point is at least as low everywhere and lower somewhere;
    every coordinate lower is better)."""
    if len(points) == 0:
        return []
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or pts.shape[1] == 0 or np.isnan(pts).any():
        raise ValueError("front_numbers: points must be numbers, each of the same length")
    return [int(f) for f in _fronts(pts)]


def _fronts(pts: np.ndarray) -> np.ndarray:
    """Each point's front (0 = non-dominated): 1 + the highest front of the points dominating it.

    A point's dominators come before it in lexicographic order, so the points are numbered in that
    order, a block at a time: against the points before the block in one step, then inside the block by
    relaxing its (short) dominance chains. O(n^2) comparisons, n / _BLOCK numpy steps."""
    order = np.lexsort(pts.T[::-1])  # first coordinate first; stable, so equal points keep index order
    ranked = pts[order]
    fronts = np.zeros(len(pts), dtype=np.int64)
    for start in range(0, len(pts), _BLOCK):
        block = ranked[start : start + _BLOCK]
        upto = start + len(block)
        no_worse = np.ones((len(block), upto), dtype=bool)
        better = np.zeros((len(block), upto), dtype=bool)
        for k in range(pts.shape[1]):
            column, mine = ranked[:upto, k][None, :], block[:, k][:, None]
            no_worse &= column <= mine
            better |= column < mine
        dominated_by = no_worse & better  # [i, j]: point j (in sorted order) dominates block point i
        base = np.where(dominated_by[:, :start], fronts[None, :start] + 1, 0).max(axis=1, initial=0)
        inside, numbers = dominated_by[:, start:], base
        while True:
            relaxed = np.maximum(base, np.where(inside, numbers[None, :] + 1, 0).max(axis=1))
            if np.array_equal(relaxed, numbers):
                break
            numbers = relaxed
        fronts[start:upto] = numbers
    result = np.empty(len(pts), dtype=np.int64)
    result[order] = fronts
    return result


def _epsilon_net(pts: np.ndarray, scaled: np.ndarray, members: np.ndarray) -> list[int]:
    """`members` (ascending indices of one front) in greedy farthest-point order, seeded by the lowest first
    coordinate of the unscaled points."""
    seed = int(members[np.argmin(pts[members, 0])])  # argmin takes the first: the lowest index among ties
    taken = [seed]
    nearest = np.linalg.norm(scaled[members] - scaled[seed], axis=1)  # distance to the closest taken point
    nearest[members == seed] = -1.0
    for _ in range(len(members) - 1):
        pick = int(np.argmax(nearest))  # argmax takes the first: the lowest index among ties
        taken.append(int(members[pick]))
        nearest = np.minimum(nearest, np.linalg.norm(scaled[members] - scaled[members[pick]], axis=1))
        nearest[pick] = -1.0  # taken points stay at -1: the minimum keeps them there
    return taken


def judges_at(pruning: Pruning, *, epoch: int, max_epochs: int) -> bool:
    """Whether the rule may stop a trial after `epoch`: the caller reads (and, for MO-ASHA, writes) the
    evidence only then."""
    if pruning.method == "none" or epoch >= max_epochs or epoch < pruning.min_epochs:
        return False
    if pruning.method == "mo_asha":
        return epoch in rung_epochs(min_epochs=pruning.min_epochs, eta=pruning.eta, max_epochs=max_epochs)
    return True


def stop_reason(
    pruning: Pruning,
    *,
    epoch: int,
    max_epochs: int,
    curve: Sequence[float],
    costs: Mapping[str, float],
    others: Sequence[Evidence],
    val_images: int,
) -> str | None:
    """Why the trial whose validation curve so far is `curve` (len == epoch) stops now, or None.

    `curve[-1]` is its accuracy after `epoch`, `curve[-2]` the one before (0 before epoch 1); `others`
    never holds the trial itself; `val_images` is the size of the validation split ("auto" margin)."""
    if not curve:
        raise ValueError("stop_reason: curve is empty: the accuracy after this epoch is required")
    if not costs or not judges_at(pruning, epoch=epoch, max_epochs=max_epochs):
        return None
    if pruning.method == "mo_asha":
        return _mo_asha(pruning, epoch=epoch, max_epochs=max_epochs, accuracy=curve[-1], costs=costs, others=others)
    return _pareto_stop(
        pruning, epoch=epoch, max_epochs=max_epochs, curve=curve, costs=costs, others=others, n=val_images
    )


def _pareto_stop(
    pruning: Pruning,
    *,
    epoch: int,
    max_epochs: int,
    curve: Sequence[float],
    costs: Mapping[str, float],
    others: Sequence[Evidence],
    n: int,
) -> str | None:
    accuracy, previous = curve[-1], curve[-2] if len(curve) > 1 else 0.0
    auto = pruning.margin == "auto"
    margin = 0.0 if auto else float(pruning.margin)
    reachable = min(1.0, accuracy + margin + max(0.0, accuracy - previous) * (max_epochs - epoch))
    beaten: tuple[int, float, float] | None = None  # (number, final, bar) of the lowest-numbered trial beating it
    for other in others:
        if other.final is None or (beaten is not None and other.number > beaten[0]):
            continue
        if not all(other.costs.get(k, math.inf) <= value for k, value in costs.items()):
            continue
        bar = wilson_interval(accuracy=other.final, n=n)[0] if auto else other.final
        if bar > reachable:
            beaten = (other.number, other.final, bar)
    if beaten is None:
        return None
    number, final, bar = beaten
    resolution = f" (at least {bar:.2%} on {n} validation images)" if auto else ""
    return (
        f"Pareto-aware stop after epoch {epoch}: val accuracy {accuracy:.2%}, at most ~{reachable:.2%} by epoch "
        f"{max_epochs}, below trial {number}'s {final:.2%}{resolution} at no more {' and '.join(costs)}"
    )


def _mo_asha(
    pruning: Pruning,
    *,
    epoch: int,
    max_epochs: int,
    accuracy: float,
    costs: Mapping[str, float],
    others: Sequence[Evidence],
) -> str | None:
    names = list(costs)

    def point(acc: float, of: Mapping[str, float]) -> tuple[float, ...]:
        return (-acc, *(math.log1p(max(0.0, of[k])) for k in names))

    points = [
        point(o.curve[epoch - 1], o.costs) for o in others if len(o.curve) >= epoch and all(k in o.costs for k in names)
    ]
    if not points:  # the first trial at a rung continues
        return None
    points.append(point(accuracy, costs))
    rank = nondominated_order(points).index(len(points) - 1)
    if rank * pruning.eta <= len(points):  # rank / count <= 1 / eta: in the top 1/eta
        return None
    rungs = rung_epochs(min_epochs=pruning.min_epochs, eta=pruning.eta, max_epochs=max_epochs)
    return (
        f"MO-ASHA stop at epoch {epoch} (rung {rungs.index(epoch) + 1} of {len(rungs)}): ranked {rank + 1} of "
        f"{len(points)} at this rung, outside the top 1/{pruning.eta}"
    )

"""Early-stopping rules as pure functions: rungs, the MO-ASHA ranking, synthetic learning curves, Pareto stop."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from nas.search.spec.stopping import METHODS, Evidence, judges_at, nondominated_order, rung_epochs, stop_reason
from nas.search.spec.studyfile import Pruning
from nas.stats import wilson_interval

PARAMS = 1000.0  # every synthetic trial has as many parameters: FLOPs and accuracy decide


@pytest.mark.parametrize(
    ("min_epochs", "eta", "max_epochs", "rungs"),
    [
        (1, 3, 9, (1, 3)),  # 9 is the last epoch: never a rung
        (1, 3, 10, (1, 3, 9)),
        (1, 2, 8, (1, 2, 4)),
        (2, 3, 20, (2, 6, 18)),
        (3, 3, 4, (3,)),
        (1, 4, 100, (1, 4, 16, 64)),
        (1, 3, 1, ()),
        (5, 2, 5, ()),
    ],
)
def test_rung_epochs(min_epochs: int, eta: int, max_epochs: int, rungs: tuple[int, ...]) -> None:
    assert rung_epochs(min_epochs=min_epochs, eta=eta, max_epochs=max_epochs) == rungs


def test_rung_epochs_refuses_an_eta_below_2() -> None:
    with pytest.raises(ValueError, match="eta = 1: an integer >= 2"):
        rung_epochs(min_epochs=1, eta=1, max_epochs=9)


def test_nondominated_order_fronts_in_order_epsilon_net_inside() -> None:
    # Front 0 is {0, 1, 3}; (2, 2) is dominated by (1, 1) only; (4, 4) by everything else.
    # Inside front 0: seeded by the lowest first coordinate (0), then the farthest point (3), then 1,
    # not 0, 1, 3 as the first coordinate alone would order them.
    assert nondominated_order([(0, 3), (1, 1), (2, 2), (3, 0), (4, 4)]) == [0, 3, 1, 2, 4]


def test_nondominated_order_ties_go_to_the_lower_index() -> None:
    # Equal points share a front; 1 seeds it (lowest first coordinate), 3 is farthest, then 0 and 2 are
    # equally far from both and the lower index goes first.
    assert nondominated_order([(1, 1), (0, 2), (1, 1), (2, 0)]) == [1, 3, 0, 2]
    assert nondominated_order([(1, 0), (0, 1), (0, 1)]) == [1, 0, 2]  # two seeds tie: the lower index
    assert nondominated_order([(5, 5), (5, 5), (5, 5)]) == [0, 1, 2]


def test_nondominated_order_scales_each_coordinate_by_its_range() -> None:
    # One front, seed 0, then 3 (the other end). Unscaled the second coordinate (range 1,000) decides and 1
    # is farther from both ends (500 against 400); scaled to [0, 1] each, 2 is (0.64 against 0.51).
    points = [(0.0, 1000.0), (0.1, 500.0), (0.5, 400.0), (1.0, 0.0)]
    assert nondominated_order(points) == [0, 3, 2, 1]


def peeled_fronts(points: np.ndarray) -> list[set[int]]:
    """The fronts by their definition: the non-dominated points, removed, again, until none is left."""
    left, fronts = np.arange(len(points)), []
    while len(left):
        p = points[left]
        dominated = ((p[None, :, :] <= p[:, None, :]).all(axis=2) & (p[None, :, :] < p[:, None, :]).any(axis=2)).any(1)
        fronts.append(set(left[~dominated].tolist()))
        left = left[dominated]
    return fronts


@pytest.mark.parametrize("seed", range(4))
def test_nondominated_order_lists_the_fronts_of_the_definition_over_several_blocks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 8, size=(700, 3)).astype(float)  # many ties, more points than one numpy block
    order = nondominated_order(points.tolist())
    assert sorted(order) == list(range(700))
    at = 0
    for front in peeled_fronts(points):
        assert set(order[at : at + len(front)]) == front
        at += len(front)


def test_nondominated_order_small_cases_and_bad_input() -> None:
    assert nondominated_order([]) == []
    assert nondominated_order([(3.0, 1.0, 2.0)]) == [0]
    assert nondominated_order([(1, 1, 1), (0, 1, 1), (0, 0, 1), (0, 0, 0)]) == [3, 2, 1, 0]  # a chain
    with pytest.raises(ValueError, match="finite numbers"):
        nondominated_order([(0.0, float("nan"))])


# ----- MO-ASHA on synthetic learning curves -------------------------------------------------------------


@dataclass(frozen=True)
class Synthetic:
    flops: float
    curve: tuple[float, ...]  # validation accuracy after each epoch, to the last


def one_after_another(trials: list[Synthetic], pruning: Pruning, *, max_epochs: int) -> list[tuple[int, str] | None]:
    """Trials run as one worker runs them, each to its last epoch or until stopped: (epoch, reason) or None."""
    seen: list[Evidence] = []
    outcome: list[tuple[int, str] | None] = []
    for number, t in enumerate(trials):
        costs = {"flops": t.flops, "params": PARAMS}
        stopped = None
        for epoch in range(1, max_epochs + 1):
            reason = stop_reason(
                pruning,
                epoch=epoch,
                max_epochs=max_epochs,
                curve=t.curve[:epoch],
                costs=costs,
                others=seen,
                val_images=100,
            )
            if reason is not None:
                stopped = (epoch, reason)
                break
        ran = t.curve[: stopped[0]] if stopped else t.curve
        seen.append(Evidence(number=number, costs=costs, curve=ran, final=None if stopped else t.curve[-1]))
        outcome.append(stopped)
    return outcome


def rise(first: float, third: float, final: float) -> tuple[float, ...]:
    """Nine epochs: `first` after epoch 1, `third` after epoch 3, `final` after epoch 9."""
    step = (final - third) / 6
    return (first, (first + third) / 2, third, *(round(third + step * i, 4) for i in range(1, 7)))


def test_mo_asha_stops_exactly_the_trials_outside_the_top_third_of_their_rung() -> None:
    pruning = Pruning(method="mo_asha", min_epochs=1, eta=3)  # 9 epochs: rungs at epochs 1 and 3
    trials = [
        Synthetic(flops=100, curve=rise(0.50, 0.70, 0.90)),  # A: first at both rungs, so it continues
        Synthetic(flops=100, curve=rise(0.40, 0.60, 0.80)),  # B: as costly as A, less accurate: rank 2 of 2
        Synthetic(flops=10, curve=rise(0.30, 0.40, 0.50)),  # C: cheap, non-dominated: rank 2 of 3 survives
        # D: the most accurate at both rungs. At rung 3 A counts with its 0.70 there, not its final 0.90
        # (which would dominate D's 0.85 at lower cost).
        Synthetic(flops=200, curve=rise(0.80, 0.85, 0.95)),
        Synthetic(flops=300, curve=rise(0.45, 0.60, 0.70)),  # E: dominated by A and D: rank 4 of 5
    ]
    outcome = one_after_another(trials, pruning, max_epochs=9)
    assert outcome == [
        None,
        (1, "MO-ASHA stop at epoch 1 (rung 1 of 2): ranked 2 of 2 at this rung, outside the top 1/3"),
        # C survived rung 1 (rank 1 of 3 is the top third: 1/3 <= 1/3), but at rung 3 only A and C
        # have reached epoch 3 (B stopped at 1), and C ranks 2 of 2 there.
        (3, "MO-ASHA stop at epoch 3 (rung 2 of 2): ranked 2 of 2 at this rung, outside the top 1/3"),
        None,
        (1, "MO-ASHA stop at epoch 1 (rung 1 of 2): ranked 4 of 5 at this rung, outside the top 1/3"),
    ]


def test_mo_asha_counts_running_trials_at_the_rung_and_judges_only_at_rungs() -> None:
    pruning = Pruning(method="mo_asha", min_epochs=1, eta=3)
    costs = {"flops": 200.0, "params": PARAMS}
    better = Evidence(number=0, costs={"flops": 100.0, "params": PARAMS}, curve=(0.9, 0.9), final=None)  # running
    not_there = Evidence(number=1, costs={"flops": 100.0, "params": PARAMS}, curve=(), final=None)  # before epoch 1

    def judged(epoch: int, others: list[Evidence], max_epochs: int = 9) -> str | None:
        curve = [0.5] * epoch
        return stop_reason(
            pruning, epoch=epoch, max_epochs=max_epochs, curve=curve, costs=costs, others=others, val_images=100
        )

    assert judged(1, [not_there]) is None  # the first at the rung continues
    assert judged(1, [better, not_there]) == (
        "MO-ASHA stop at epoch 1 (rung 1 of 2): ranked 2 of 2 at this rung, outside the top 1/3"
    )
    assert judged(2, [better]) is None  # not a rung
    assert judged(3, [better]) is None  # `better` has not reached epoch 3: the first there continues
    assert judged(9, [better], max_epochs=9) is None  # the last epoch is never judged
    baseline = stop_reason(pruning, epoch=1, max_epochs=9, curve=[0.1], costs={}, others=[better], val_images=100)
    assert baseline is None  # no costs known before training: never stopped
    # A cheaper trial is non-dominated whatever its accuracy; two others keep it in the top third.
    cheap = {"flops": 10.0, "params": PARAMS}
    third = Evidence(number=2, costs=costs, curve=(0.4,), final=None)
    assert (
        stop_reason(pruning, epoch=1, max_epochs=9, curve=[0.1], costs=cheap, others=[better, third], val_images=1)
        is None
    )


def test_methods_registry_and_judged_epochs() -> None:
    assert list(METHODS) == ["pareto_stop", "mo_asha", "none"]
    assert "arXiv 2106.12639" in METHODS["mo_asha"]
    pareto, asha, off = (
        Pruning(method="pareto_stop", min_epochs=2),
        Pruning(method="mo_asha", min_epochs=2),
        Pruning(method="none"),
    )
    assert [e for e in range(1, 21) if judges_at(pareto, epoch=e, max_epochs=20)] == list(range(2, 20))
    assert [e for e in range(1, 21) if judges_at(asha, epoch=e, max_epochs=20)] == [2, 6, 18]
    assert not any(judges_at(off, epoch=e, max_epochs=20) for e in range(1, 21))


# ----- the Pareto-aware stop -------------------------------------------------------------------------------


COSTLY = {"flops": 2000.0, "params": 60.0}
FRONT = Evidence(number=4, costs={"flops": 1000.0, "params": 50.0}, curve=(0.9, 0.95), final=0.95)


def pareto(
    margin: float | str, curve: list[float], *, others: list[Evidence] | None = None, epoch: int = 1
) -> str | None:
    return stop_reason(
        Pruning(method="pareto_stop", margin=margin),
        epoch=epoch,
        max_epochs=3,
        curve=curve,
        costs=COSTLY,
        others=[FRONT] if others is None else others,
        val_images=100,
    )


def test_pareto_stop_numeric_margin_keeps_its_rule_and_reason() -> None:
    # 0.60 + 0.02 + no gain x 2 epochs left = 0.62 < 0.95
    assert pareto(0.02, [0.60, 0.60], epoch=2) == (
        "Pareto-aware stop after epoch 2: val accuracy 60.00%, at most ~62.00% by epoch 3, below trial 4's "
        "95.00% at no more flops and params"
    )
    assert pareto(0.02, [0.50]) is None  # gained 0.50 in epoch 1: 0.50 + 0.02 + 0.50 x 2 reaches 1
    assert pareto(0.02, [0.93, 0.93], epoch=2) is None  # 0.95 is not above 0.95
    assert pareto(0.02, [0.92, 0.92], epoch=2) is not None
    cheaper = {"flops": 500.0, "params": 60.0}
    assert (
        stop_reason(
            Pruning(method="pareto_stop", margin=0.02),
            epoch=1,
            max_epochs=3,
            curve=[0.1],
            costs=cheaper,
            others=[FRONT],
            val_images=9,
        )
        is None
    )
    running = Evidence(number=1, costs=FRONT.costs, curve=(0.99,), final=None)
    assert pareto(0.02, [0.1, 0.1], others=[running], epoch=2) is None  # only finished trials beat it
    assert pareto(0.02, [0.1, 0.1], epoch=3) is None  # the last epoch


def test_pareto_stop_names_the_lowest_numbered_trial_that_beats_it() -> None:
    first = Evidence(number=2, costs=FRONT.costs, curve=(), final=0.90)
    reason = pareto(0.02, [0.60, 0.60], others=[FRONT, first], epoch=2)
    assert reason is not None and "below trial 2's 90.00%" in reason


def test_pareto_stop_auto_margin_is_the_wilson_lower_bound_of_the_other_trial() -> None:
    low, _ = wilson_interval(accuracy=0.95, n=100)  # 0.888: what 100 validation images can tell from 0.95
    # No gain in the last epoch: the trial can plausibly reach what it has now, with no allowance.
    assert pareto("auto", [low - 1e-6, low - 1e-6], epoch=2) == (
        f"Pareto-aware stop after epoch 2: val accuracy {low - 1e-6:.2%}, at most ~{low - 1e-6:.2%} by epoch 3, "
        f"below trial 4's 95.00% (at least {low:.2%} on 100 validation images) at no more flops and params"
    )
    assert pareto("auto", [low, low], epoch=2) is None  # the bound is not above it
    # The fixed margin would have stopped it: 0.8882 + 0.02 < 0.95.
    assert pareto(0.02, [low, low], epoch=2) is not None
    # More validation images, a tighter bound: the same trial is stopped.
    bigger = stop_reason(
        Pruning(method="pareto_stop"),
        epoch=2,
        max_epochs=3,
        curve=[low, low],
        costs=COSTLY,
        others=[FRONT],
        val_images=10_000,
    )
    assert bigger is not None and "on 10000 validation images" in bigger


def test_no_method_stops_nothing() -> None:
    off = Pruning(method="none")
    assert stop_reason(off, epoch=2, max_epochs=3, curve=[0.1, 0.1], costs=COSTLY, others=[FRONT], val_images=1) is None
    with pytest.raises(ValueError, match="curve is empty"):
        stop_reason(off, epoch=1, max_epochs=3, curve=[], costs=COSTLY, others=[], val_images=1)

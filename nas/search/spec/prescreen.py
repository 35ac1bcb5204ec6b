"""Pre-screening (issue 22): each trial trains the best of `pool` sampler proposals by a zero-cost proxy.

A proposal is a network the study's sampler would have given the trial; scoring it costs one minibatch at
initialisation, training it costs a trial. So the sampler proposes `pool` networks, a proxy
(`nas.train.proxies.PROXIES`) scores each, and one rule of `SELECTS` picks the one the trial trains; the others
are forgotten, never trials. The rules are pure functions of the proposals, in the sampler's order, so the
replay of benchmarks/search_efficiency.py uses them as a study does (the proposing: nas.search.run.prescreen).

Two kinds of proposal go last whatever their score: one over a budget constraint (the trial would be rejected
unmeasured) and one whose network the study already has (its result would be reused: a trial spent, nothing
learnt); a proposal without a score (the proxy is undefined for it) goes after those that have one.

Measured on two recorded tables (benchmarks/RESULTS.md): no proxy ranked networks of equal cost better than
chance, and no pre-screen beat plain TPE, so a study pre-screens only when its file asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nas.checks import bad_value, is_int
from nas.search.spec.stopping import front_numbers
from nas.train.proxies import MIN_BATCH, PROXIES

MAX_POOL = 4096  # proposals per trial at most: beyond this the proposing itself (the sampler) costs minutes


@dataclass(frozen=True)
class Proposal:
    """One network the sampler proposed, as the rules see it."""

    score: float | None  # the proxy's value (higher is better); None where the proxy is undefined
    costs: tuple[float, ...]  # the study's cost objectives known before training (params, FLOPs), lower is better
    over_budget: bool = False  # breaks max_params or max_flops: the trial would be rejected unmeasured
    known: bool = False  # the study already has this network: its result would be reused


def _eligible(proposals: Sequence[Proposal]) -> list[int]:
    """The proposals worth a trial: within budget, new to the study, scored; failing that the best of what
    there is, in that order of preference."""
    every = list(range(len(proposals)))
    for keep in (
        lambda p: not p.over_budget and not p.known and p.score is not None,
        lambda p: not p.over_budget and not p.known,
        lambda p: not p.over_budget,
    ):
        chosen = [i for i in every if keep(proposals[i])]
        if chosen:
            return chosen
    return every


def by_proxy(proposals: Sequence[Proposal]) -> int:
    """The highest score; ties (and no score at all) go to the sampler's earlier proposal."""
    eligible = _eligible(proposals)
    return max(eligible, key=lambda i: (_score(proposals[i]), -i))


def by_pareto(proposals: Sequence[Proposal]) -> int:
    """The sampler's earliest proposal that no other beats on the proxy and every cost at once: the sampler
    keeps its say (where to explore), the proxy only vetoes a proposal another one dominates."""
    eligible = _eligible(proposals)
    points = [(-_score(proposals[i]), *proposals[i].costs) for i in eligible]
    fronts = front_numbers(points)
    return next(i for i, front in zip(eligible, fronts, strict=True) if front == 0)


def _score(p: Proposal) -> float:
    return p.score if p.score is not None else -float("inf")


# name -> (what it picks, the rule); `[prescreen] select` names one.
SELECTS: dict[str, tuple[str, Callable[[Sequence[Proposal]], int]]] = {
    "proxy": ("the proposal with the best proxy score", by_proxy),
    "pareto": ("the sampler's earliest proposal that no other beats on both the proxy and the cost", by_pareto),
}


@dataclass(frozen=True)
class Prescreen:
    """A study file's [prescreen] table: which proxy ranks how many proposals, and how one is picked."""

    proxy: str  # a name of nas.train.proxies.PROXIES
    pool: int = 64  # sampler proposals per trial; the one trained is picked among them
    select: str = "proxy"  # a name of SELECTS
    batch_size: int = 64  # images of the seeded minibatch the proxy scores each proposal on

    def __post_init__(self) -> None:
        if self.proxy not in PROXIES:
            raise bad_value("Prescreen", "proxy", self.proxy, f"choose one of {', '.join(PROXIES)}")
        if not is_int(self.pool) or not 2 <= self.pool <= MAX_POOL:
            raise bad_value("Prescreen", "pool", self.pool, f"an integer from 2 to {MAX_POOL} is required")
        if self.select not in SELECTS:
            raise bad_value("Prescreen", "select", self.select, f"choose one of {', '.join(SELECTS)}")
        if not is_int(self.batch_size) or self.batch_size < MIN_BATCH:
            raise bad_value("Prescreen", "batch_size", self.batch_size, f"an integer >= {MIN_BATCH} is required")

    def choose(self, proposals: Sequence[Proposal]) -> int:
        """The index of the proposal the trial trains."""
        if not proposals:
            raise ValueError("Prescreen.choose: no proposals to choose from")
        return SELECTS[self.select][1](proposals)


__all__ = ["MAX_POOL", "SELECTS", "Prescreen", "Proposal", "by_pareto", "by_proxy"]

"""How well zero-cost proxy scores rank what training measured (issue 22): pure computations on scored networks, for
`nas proxies` (nas.search.run.scoring scores them) and the report's section on a study's stored scores.

Each proxy is judged by its Spearman and Kendall correlation with validation accuracy (95% bootstrap intervals), the
same at equal cost (against the residual of accuracy after a quadratic fit on log FLOPs: a multi-objective search
already knows each network's cost, so a proxy helps only by ranking networks of the same cost), the share of the top
10% by accuracy that its top 10% finds, and within each connectivity mode. The parameter count is the proxy every
other must beat (ZiCo, ICLR 2023).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nas.arch import ArchConfig
from nas.arch.external import ExternalNet
from nas.search.results.trial_record import TrialRecord
from nas.search.spec.objectives import ACCURACY, FLOPS
from nas.stats import Correlation, equal_cost_correlation, rank_correlation, top_overlap
from nas.text import plural
from nas.train.proxies import ProxyScore

TOP_FRACTION = 0.1  # the top of a ranking that matters to a search: its best tenth
MIN_NETWORKS = 3  # fewer and no correlation is computed


@dataclass(frozen=True)
class Candidate:
    """A network to score: where it comes from and, for a trained trial, what it measured."""

    label: str  # "trial 12", "draw 3", "network 7"
    network: ArchConfig | ExternalNet | None  # None: only its stored scores are known (a study's report)
    accuracy: float | None = None  # the trial's validation accuracy; None before training


@dataclass(frozen=True)
class Scored:
    candidate: Candidate
    connectivity: str
    flops: float
    scores: dict[str, ProxyScore]


@dataclass(frozen=True)
class ProxyRanking:
    """How one proxy's scores rank the trained networks' accuracies."""

    proxy: str
    networks: int  # trained networks with a value of this proxy
    spearman: Correlation | None
    kendall: Correlation | None
    equal_cost: Correlation | None  # Spearman with accuracy at equal cost (FLOPs)
    top: float | None  # share of the top TOP_FRACTION by accuracy found in its own top TOP_FRACTION
    per_mode: dict[str, Correlation]  # Spearman within each connectivity mode with enough networks
    seconds: float  # median seconds per network


@dataclass(frozen=True)
class StoredRankings:
    """What a study's report shows of proxies: where the scores come from, and each proxy's ranking."""

    source: str  # "nas proxies" (every proxy it scored) or "prescreen" (the score each trial was picked by)
    rankings: tuple[ProxyRanking, ...]
    networks: int  # trained networks with stored scores


def stored_scores(*, scores: dict[str, Any], names: Sequence[str], seconds: dict[str, float]) -> dict[str, Any]:
    """What `nas proxies STUDY` stores in the study (study_attrs.PROXY_SCORES): by arch hash, each proxy's value
    (None where undefined), with the proxies' median seconds per network."""
    return {"proxies": list(names), "seconds": dict(seconds), "networks": scores}


def stored_rankings(
    *, records: Sequence[TrialRecord], stored: dict[str, Any] | None, seed: int = 0
) -> StoredRankings | None:
    """The rankings of the scores a study holds: those `nas proxies STUDY` stored, else those its pre-screen
    recorded on each trial; None when it holds none."""
    trained = trained_networks(records)
    rows: list[Scored] = []
    if stored is not None:
        names, seconds, networks = list(stored["proxies"]), stored["seconds"], stored["networks"]
        for key, r in trained.items():
            if key in networks:
                values = {n: networks[key].get(n) for n in names}
                rows.append(_scored(r, {n: (values[n], float(seconds.get(n, 0.0))) for n in names}))
        source = "nas proxies"
    else:
        picked = {key: r.prescreen for key, r in trained.items() if r.prescreen}
        names = list(dict.fromkeys(p["proxy"] for p in picked.values()))
        for key, p in picked.items():
            spent = p.get("score_seconds", p.get("seconds", 0.0))  # the scoring alone, not the sampler's proposing
            per_network = float(spent) / max(int(p.get("scored") or 1), 1)
            rows.append(_scored(trained[key], {p["proxy"]: (p.get("score"), per_network)}, names))
        source = "prescreen"
    if not rows:
        return None
    return StoredRankings(source, tuple(rank_proxies(rows, names=names, seed=seed)), len(rows))


def _scored(r: TrialRecord, values: dict[str, tuple[Any, float]], names: Sequence[str] = ()) -> Scored:
    scores = {
        n: ProxyScore(n, float(v) if isinstance(v, int | float) else None, s, None if v is not None else "undefined")
        for n, (v, s) in values.items()
    }
    for n in names:  # a proxy this trial was not picked by: no value
        scores.setdefault(n, ProxyScore(n, None, 0.0, "not scored"))
    flops = r.metrics.get(FLOPS)
    return Scored(
        Candidate(f"trial {r.number}", None, float(r.metrics[ACCURACY])),
        r.connectivity or "unknown",
        float(flops) if isinstance(flops, int | float) else math.nan,
        scores,
    )


def prescreen_notes(records: Sequence[TrialRecord]) -> list[str]:
    """How the pre-screened trials were picked, one note per way (a resumed study may have changed it)."""
    ways = Counter(
        (p.get("proxy"), p.get("select"), p.get("proposals")) for r in records if isinstance(p := r.prescreen, dict)
    )
    lines = []
    for (proxy, select, proposals), count in sorted(ways.items(), key=str):
        picked = (
            f"the best by {proxy} of {proposals} networks the sampler proposed"
            if select == "proxy"
            else f"the sampler's earliest of {proposals} proposals that no other beat on both {proxy} and cost"
        )
        lines.append(
            f"{plural(count, 'trial')} {'was' if count == 1 else 'were'} pre-screened: the network trained was "
            f"{picked} (the other proposals were never trained, nor trials)"
        )
    return lines


def trained_networks(records: Sequence[TrialRecord]) -> dict[str, TrialRecord]:
    """By arch hash, the first trial that trained each network to the end (a reused twin is its source): the
    networks whose accuracy a proxy is ranked against."""
    trained: dict[str, TrialRecord] = {}
    for r in records:
        if trained_to_the_end(r) and r.arch_hash is not None:
            trained.setdefault(r.arch_hash, r)
    return trained


def trained_to_the_end(record: TrialRecord) -> bool:
    """Trained to the end with an accuracy: complete (feasible or a baseline over a budget), not reused."""
    accuracy = record.metrics.get(ACCURACY)
    complete = record.status == "complete" and (record.feasible or bool(record.over_budgets))
    return complete and record.reused_from is None and isinstance(accuracy, int | float)


def rank_proxies(scored: Sequence[Scored], *, names: Sequence[str], seed: int = 0) -> list[ProxyRanking]:
    """How each proxy ranks the scored networks' accuracies (trained networks only)."""
    trained = [s for s in scored if s.candidate.accuracy is not None]
    rankings = []
    for name in names:
        have = [s for s in trained if s.scores[name].value is not None]
        x = [float(s.scores[name].value) for s in have]  # type: ignore[arg-type]
        y = [float(s.candidate.accuracy) for s in have]  # type: ignore[arg-type]
        seconds = statistics.median(s.scores[name].seconds for s in scored) if scored else 0.0
        if len(have) < MIN_NETWORKS:
            rankings.append(ProxyRanking(name, len(have), None, None, None, None, {}, seconds))
            continue
        cost = [s.flops for s in have]
        modes: dict[str, list[int]] = {}
        for i, s in enumerate(have):
            modes.setdefault(s.connectivity, []).append(i)
        rankings.append(
            ProxyRanking(
                proxy=name,
                networks=len(have),
                spearman=rank_correlation(x=x, y=y, method="spearman", seed=seed),
                kendall=rank_correlation(x=x, y=y, method="kendall", seed=seed),
                equal_cost=equal_cost_correlation(score=x, accuracy=y, cost=cost, seed=seed),
                top=top_overlap(score=x, accuracy=y, fraction=TOP_FRACTION),
                per_mode={
                    mode: rank_correlation(x=[x[i] for i in idx], y=[y[i] for i in idx], seed=seed)
                    for mode, idx in sorted(modes.items())
                    if len(idx) >= MIN_NETWORKS
                },
                seconds=seconds,
            )
        )
    return rankings


__all__ = [
    "MIN_NETWORKS",
    "TOP_FRACTION",
    "Candidate",
    "ProxyRanking",
    "Scored",
    "StoredRankings",
    "prescreen_notes",
    "rank_proxies",
    "stored_rankings",
    "stored_scores",
    "trained_networks",
    "trained_to_the_end",
]

"""Networks scored by zero-cost proxies before any training (nas.train.proxies), and how well the scores rank
what training measured.

Three sources of networks: a seeded sample of a study's space, every network of a finite space, or a study's
finished trials. For trials the validation accuracy is known, so each proxy is judged as issue 22 asks: its
Spearman and Kendall correlation with the accuracy (95% bootstrap intervals), the same at equal cost (against
the residual of accuracy after a quadratic fit on log FLOPs: a multi-objective search already knows each
network's cost, so a proxy helps only by ranking networks of the same cost), the share of the top 10% by
accuracy that its top 10% finds, and within each connectivity mode. The parameter count is the proxy every
other must beat (ZiCo, ICLR 2023).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nas.arch import ArchConfig
from nas.arch.external import ExternalNet, resolve_baseline
from nas.data.datasets import LoadedData
from nas.search.results.trial_record import TrialRecord, load_records
from nas.search.run.preflight import sample_networks
from nas.search.spec.objectives import ACCURACY, FLOPS
from nas.search.spec.studyfile import StudyFile
from nas.stats import Correlation, equal_cost_correlation, rank_correlation, top_overlap
from nas.train.proxies import ProxyScore, score_network

TOP_FRACTION = 0.1  # the top of a ranking that matters to a search: its best tenth
MIN_NETWORKS = 3  # fewer and no correlation is computed


@dataclass(frozen=True)
class Candidate:
    """A network to score: where it comes from and, for a trained trial, what it measured."""

    label: str  # "trial 12", "draw 3", "network 7"
    network: ArchConfig | ExternalNet
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


def space_candidates(*, sf: StudyFile, data: LoadedData, count: int | None) -> list[Candidate]:
    """`count` seeded draws of the study's space (the study's seed), or every network of a finite space (None)."""
    if count is None:
        c, _, _ = data.input_size
        nets = sf.space.every_network(in_channels=c, num_classes=data.num_classes)
        return [Candidate(f"network {i}", net) for i, net in enumerate(nets)]
    return [Candidate(f"draw {i}", net) for i, net in enumerate(sample_networks(sf, data, count))]


def study_candidates(*, study: object, data: LoadedData) -> list[Candidate]:
    """A study's trained networks with their validation accuracy, each network once (a reused twin is its
    source), baselines included (a torchvision one is scored by its counts only)."""
    c, _, _ = data.input_size
    found: dict[str, Candidate] = {}
    for r in load_records(study):  # type: ignore[arg-type]
        if not _trained(r) or r.arch_hash is None or r.arch_hash in found:
            continue
        if r.baseline:
            net: ArchConfig | ExternalNet = resolve_baseline(r.baseline, in_channels=c, num_classes=data.num_classes)
        else:
            net = ArchConfig.from_dict(r.arch)
        found[r.arch_hash] = Candidate(f"trial {r.number}", net, float(r.metrics[ACCURACY]))
    return list(found.values())


def _trained(record: TrialRecord) -> bool:
    """Trained to the end with an accuracy: complete (feasible or a baseline over a budget), not reused."""
    accuracy = record.metrics.get(ACCURACY)
    complete = record.status == "complete" and (record.feasible or bool(record.over_budgets))
    return complete and record.reused_from is None and isinstance(accuracy, int | float)


def score_candidates(
    *,
    candidates: Sequence[Candidate],
    data: LoadedData,
    names: Sequence[str],
    seed: int,
    batch_size: int,
    device: str,
    progress: Callable[[int, Scored], None] | None = None,
) -> list[Scored]:
    """Every candidate scored by every proxy in `names`, on one seeded minibatch of `data`."""
    out = []
    for i, cand in enumerate(candidates, 1):
        scores = score_network(
            network=cand.network,
            data=data,
            names=[*dict.fromkeys([*names, FLOPS])],
            seed=seed,
            batch_size=batch_size,
            device=device,
        )
        flops = scores[FLOPS].value
        scored = Scored(
            cand,
            cand.network.connectivity,
            float(flops) if flops is not None else math.nan,
            {n: scores[n] for n in names},
        )
        out.append(scored)
        if progress is not None:
            progress(i, scored)
    return out


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
    "Candidate",
    "ProxyRanking",
    "Scored",
    "rank_proxies",
    "score_candidates",
    "space_candidates",
    "study_candidates",
]

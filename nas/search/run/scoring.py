"""Networks scored by zero-cost proxies before any training (nas.train.proxies), for `nas proxies`.

Three sources of networks: a seeded sample of a study's space, every network of a finite space, or a study's
finished trials, whose validation accuracy is known, so nas.search.results.proxy_ranking ranks the scores
against it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from nas.arch import ArchConfig
from nas.arch.external import ExternalNet, resolve_baseline
from nas.data.datasets import LoadedData
from nas.search.results.proxy_ranking import Candidate, Scored, trained_networks
from nas.search.results.trial_record import load_records
from nas.search.run.preflight import sample_networks
from nas.search.spec.objectives import ACCURACY, FLOPS
from nas.search.spec.studyfile import StudyFile
from nas.train.proxies import score_network


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
    found = []
    for r in trained_networks(load_records(study)).values():  # type: ignore[arg-type]
        if r.baseline:
            net: ArchConfig | ExternalNet = resolve_baseline(r.baseline, in_channels=c, num_classes=data.num_classes)
        else:
            net = ArchConfig.from_dict(r.arch)
        found.append(Candidate(f"trial {r.number}", net, float(r.metrics[ACCURACY])))
    return found


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
        if cand.network is None:
            raise ValueError(f"score_candidates: {cand.label} has no network to score")
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


__all__ = ["score_candidates", "space_candidates", "study_candidates"]

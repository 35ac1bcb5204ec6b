"""A pre-screened claim: `pool` proposals of the study's sampler, scored by a proxy, one of them queued as the trial.

The sampler proposes as it would for the trial itself: a private in-memory copy of the study (its trials, the
sampler of the study file, seeded from the study seed, the trials so far and this worker's draws) is asked
`pool` times, so TPE's constant liar spreads the proposals as it spreads parallel trials. Each proposal's network
is scored once per worker (a network proposed again keeps its score) and the rule of the study file
(nas.search.spec.prescreen) picks one; the claim queues it as the trial with what the pre-screen did
(`records.PRESCREEN`). The proposals not taken exist only in the copy: they are never trials of the study.

`Prescreener` takes the scorer as a function, so benchmarks/search_efficiency.py replays the same proposing and
choosing against recorded proxy scores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
import torch
from optuna.trial import FixedTrial, FrozenTrial, TrialState

from nas.arch import ArchConfig
from nas.arch.cost import estimate
from nas.data.datasets import LoadedData
from nas.search.spec.prescreen import Prescreen, Proposal
from nas.search.spec.samplers import make_sampler
from nas.search.spec.studyfile import MAX_SEED, StudyFile
from nas.train.proxies import score_network

# A network -> (the proxy's value, None where it is undefined; seconds the scoring took).
Scorer = Callable[[ArchConfig], tuple[float | None, float]]
# Trials whose network the study has or is training: proposing it again would reuse a result, not learn.
_HAS_NETWORK = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


@dataclass(frozen=True)
class Choice:
    """The proposal a pre-screen picked, and what picking it cost."""

    params: dict[str, Any]  # as the sampler proposed them: the trial is queued with these
    network: ArchConfig
    score: float | None
    rank: int  # its place among the proposals, in the sampler's order (0: the one the sampler gave first)
    proposals: int
    scored: int  # networks scored for this choice (those scored before keep their score)
    score_seconds: float  # the scorer's seconds for those networks
    seconds: float  # wall time of the whole choice: proposing, building and scoring

    def record(self, prescreen: Prescreen) -> dict[str, Any]:
        """What the trial stores of its pre-screen (records.PRESCREEN)."""
        return {
            "proxy": prescreen.proxy,
            "select": prescreen.select,
            "score": self.score,
            "rank": self.rank,
            "proposals": self.proposals,
            "scored": self.scored,
            "score_seconds": round(self.score_seconds, 4),
            "seconds": round(self.seconds, 4),
        }


class Prescreener:
    """Proposes, scores and picks for every claim of one worker; its threads take turns (one scoring at a time)."""

    def __init__(self, sf: StudyFile, *, input_size: tuple[int, int, int], num_classes: int, score: Scorer) -> None:
        if sf.prescreen is None:
            raise ValueError(f"Prescreener: study {sf.name!r} has no [prescreen] table")
        self.sf, self.prescreen = sf, sf.prescreen
        self.input_size, self.num_classes = input_size, num_classes
        self.score = score
        self.scores: dict[str, float | None] = {}  # arch hash -> the proxy's value, for networks proposed before
        self.draws = 0
        self._lock = threading.Lock()

    def network(self, params: dict[str, Any]) -> ArchConfig:
        """The network a trial with these params trains."""
        return self._drawn(FixedTrial(params))

    def _drawn(self, trial: optuna.trial.BaseTrial) -> ArchConfig:
        fields = self.sf.space.suggest(trial)
        return ArchConfig(**fields, in_channels=self.input_size[0], num_classes=self.num_classes)

    def choose(self, study: optuna.Study) -> Choice:
        """The proposal this worker's next trial should train, from the study's trials as they are now."""
        with self._lock:
            started = time.perf_counter()
            trials = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
            copy = optuna.create_study(directions=study.directions, sampler=make_sampler(self._seeded(len(trials))))
            copy.add_trials(trials)
            self.draws += 1
            known = self._known(trials)
            proposals, networks, params = [], [], []
            scored, score_seconds = 0, 0.0
            for _ in range(self.prescreen.pool):
                asked = copy.ask()
                net = self._drawn(asked)
                key = net.arch_hash()
                if key not in self.scores:
                    self.scores[key], seconds = self.score(net)
                    scored, score_seconds = scored + 1, score_seconds + seconds
                proposals.append(self._proposal(net, self.scores[key], key in known))
                networks.append(net)
                params.append(dict(asked.params))
            i = self.prescreen.choose(proposals)
            return Choice(
                params=params[i],
                network=networks[i],
                score=proposals[i].score,
                rank=i,
                proposals=len(proposals),
                scored=scored,
                score_seconds=score_seconds,
                seconds=time.perf_counter() - started,
            )

    def _seeded(self, trials: int) -> StudyFile:
        key = f"{self.sf.seed}:{trials}:{self.draws}".encode()
        return dataclasses.replace(self.sf, seed=int(hashlib.sha256(key).hexdigest(), 16) % (MAX_SEED + 1))

    def _known(self, trials: list[FrozenTrial]) -> set[str]:
        """Arch hashes of the networks the study has or is training (baselines have no params and are left out)."""
        known = set()
        for t in trials:
            if t.state in _HAS_NETWORK and t.params:
                try:
                    known.add(self.network(t.params).arch_hash())
                except ValueError:  # a running trial with only some of its params suggested so far
                    continue
        return known

    def _proposal(self, net: ArchConfig, score: float | None, known: bool) -> Proposal:
        est = estimate(net, input_size=self.input_size)
        over = bool(self.sf.constraints.broken(params=est.params, flops=est.flops))
        costs = tuple(float(getattr(est, name)) for name in self.sf.prescreen_costs())
        return Proposal(score=score, costs=costs, over_budget=over, known=known)


def proxy_scorer(*, sf: StudyFile, data: LoadedData, device: str) -> Scorer:
    """Scores with the study's proxy on one minibatch of its training split, every network from the study's seed
    (the same initialisation scheme and images for all), timed with the model's building."""
    if sf.prescreen is None:
        raise ValueError(f"proxy_scorer: study {sf.name!r} has no [prescreen] table")
    proxy, batch = sf.prescreen.proxy, sf.prescreen.batch_size

    def score(net: ArchConfig) -> tuple[float | None, float]:
        started = time.perf_counter()
        try:
            result = score_network(network=net, data=data, names=[proxy], seed=sf.seed, batch_size=batch, device=device)
        except torch.OutOfMemoryError:  # a proposal too big to score is ranked as unscored, not a failed claim
            torch.cuda.empty_cache()
            return None, time.perf_counter() - started
        return result[proxy].value, time.perf_counter() - started

    return score


__all__ = ["Choice", "Prescreener", "Scorer", "proxy_scorer"]

"""How proxy scores are ranked against trained accuracies (nas.search.results.proxy_ranking): trained networks only,
networks without a value left out, within each mode only where a mode has enough networks."""

from __future__ import annotations

from nas.arch import ArchConfig
from nas.search.results.proxy_ranking import Candidate, Scored, rank_proxies
from nas.train.proxies import ProxyScore


def scored(label: str, mode: str, accuracy: float | None, value: float | None, flops: float) -> Scored:
    net = ArchConfig(connectivity=mode, block_config=(1,), num_classes=10)
    undefined = None if value is not None else "no ReLU to take codes from"
    return Scored(
        Candidate(label, net, accuracy), mode, flops, {"naswot": ProxyScore("naswot", value, 0.01, undefined)}
    )


def test_a_proxy_is_ranked_on_the_trained_networks_it_has_a_value_for() -> None:
    rows = [
        scored("trial 0", "dense", 0.90, 4.0, 100.0),
        scored("trial 1", "dense", 0.80, 3.0, 200.0),
        scored("trial 2", "dense", 0.70, 2.0, 300.0),
        scored("trial 3", "plain", 0.60, 1.0, 400.0),
        scored("trial 4", "plain", 0.50, None, 500.0),  # undefined for this network: left out
        scored("draw 0", "plain", None, 9.0, 600.0),  # never trained: nothing to rank against
    ]
    (ranking,) = rank_proxies(rows, names=["naswot"], seed=0)
    assert ranking.networks == 4
    assert ranking.spearman is not None and ranking.spearman.value == 1.0
    assert ranking.kendall is not None and ranking.kendall.value == 1.0
    assert set(ranking.per_mode) == {"dense"}  # plain has one trained network with a value
    assert ranking.top == 1.0 and ranking.seconds == 0.01


def test_too_few_networks_give_no_correlation_rather_than_a_number() -> None:
    rows = [scored("trial 0", "dense", 0.9, 1.0, 100.0), scored("trial 1", "dense", 0.8, 2.0, 200.0)]
    (ranking,) = rank_proxies(rows, names=["naswot"])
    assert (ranking.networks, ranking.spearman, ranking.equal_cost, ranking.top) == (2, None, None, None)

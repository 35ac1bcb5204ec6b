"""The report's zero-cost proxy section: how the proxy scores a study holds rank its trained networks' accuracies.

The scores come from `nas proxies STUDY` (every proxy it scored, stored in the study) or, in a pre-screened study,
from the score each trial was picked by (nas.search.results.proxy_ranking.stored_rankings). The figures are the
ones `nas proxies` prints; the rows are plain cells that tests check, the page only lays them out.
"""

from __future__ import annotations

from typing import Any

from nas.search.results.proxy_ranking import TOP_FRACTION, StoredRankings
from nas.stats import Correlation
from nas.text import plural


def _cell(c: Correlation | None) -> str:
    """ "0.74 [0.64, 0.81]" kept on one line (a wrapped interval reads as two numbers); "-" with too few networks."""
    return c.text().replace(" ", "\u00a0") if c is not None else "-"


def _per_mode(c: Correlation) -> str:
    return f"{c.value:.2f}\u00a0(n={c.n})" if c.value is not None else "-"


def proxy_rows(section: StoredRankings) -> list[dict[str, Any]]:
    """One row per proxy: networks with a value, correlations with their 95% intervals, top share, seconds."""
    top = f"top {TOP_FRACTION:.0%} found"
    return [
        {
            "proxy": r.proxy,
            "networks": r.networks,
            "Spearman": _cell(r.spearman),
            "Kendall": _cell(r.kendall),
            "Spearman at equal FLOPs": _cell(r.equal_cost),
            top: f"{r.top:.0%}" if r.top is not None else "-",
            "s / network": f"{r.seconds:.3g}",
            "Spearman per mode": ", ".join(f"{mode} {_per_mode(c)}" for mode, c in r.per_mode.items()) or "-",
        }
        for r in section.rankings
    ]


def proxy_intro(section: StoredRankings) -> str:
    """What the table measures and what it can and cannot say, in one paragraph."""
    where = (
        "scored by `nas proxies` (one seeded minibatch, each network at its initialisation)"
        if section.source == "nas proxies"
        else "scored by the study's pre-screen, each with the score it was picked by; pre-screened networks were "
        "chosen for high scores, so these correlations are over a narrowed range of the proxy"
    )
    return (
        f"{plural(section.networks, 'trained network')} of this study {where}. Correlations with validation "
        "accuracy, 95% bootstrap intervals. At equal FLOPs: with the accuracy left after a quadratic fit on log "
        "FLOPs, what a proxy adds to knowing a network's cost; a proxy earns its place only above params there "
        "(on two recorded tables none did: benchmarks/RESULTS.md)."
    )


__all__ = ["proxy_intro", "proxy_rows"]

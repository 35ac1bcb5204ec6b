"""The networks a reader should see drawn: each front network (twins folded) and each baseline.

A picture of a network (stages, widths, spatial sizes and the mode's wiring) says more than ten
columns of knobs. This module chooses which networks and keeps what a drawing needs (the stored
ArchConfig and the input size the study trained at); `nas.report.diagram` draws them.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nas.arch.config import ArchConfig
from nas.arch.cost import human
from nas.arch.external import TORCHVISION_PREFIX
from nas.errors import UsageError
from nas.report.diagram import config_svg
from nas.search.results.trial_record import TrialRecord
from nas.search.spec.objectives import ACCURACY, PARAMS

MAX_DRAWN = 24  # diagrams on one page; a front larger than this lists the rest by trial number


@dataclass(frozen=True)
class FrontNetwork:
    """One network to draw, named by the trial that trained it."""

    number: int
    label: str  # its connectivity mode, or the baseline's name
    baseline: bool
    accuracy: float | None
    params: float | None
    arch: dict[str, Any]  # the stored ArchConfig fields; empty for a torchvision baseline (nothing to draw)
    reused_by: tuple[int, ...] = ()


def front_networks(
    *, records: Sequence[TrialRecord], pareto: Sequence[int], twins: dict[int, tuple[int, ...]]
) -> tuple[FrontNetwork, ...]:
    """The front networks (by parameters, then trial), then the baselines not on it, each network once:
    trials that trained the same architecture (same hash) are drawn once, by the lowest number."""
    by_number = {r.number: r for r in records}
    baselines = [r.number for r in records if r.baseline and r.feasible and r.number not in pareto]
    chosen: list[FrontNetwork] = []
    seen: set[str] = set()
    for number in [*sorted(pareto, key=lambda n: (_params(by_number[n]) or 0.0, n)), *baselines]:
        r = by_number[number]
        key = r.arch_hash or f"trial {number}"
        if key in seen:
            continue
        seen.add(key)
        accuracy = r.metrics.get(ACCURACY)
        chosen.append(
            FrontNetwork(
                number=number,
                label=r.baseline or r.connectivity or "unknown",
                baseline=r.baseline is not None,
                accuracy=float(accuracy) if isinstance(accuracy, int | float) else None,
                params=_params(r),
                arch={} if (r.baseline or "").startswith(TORCHVISION_PREFIX) else dict(r.arch),
                reused_by=tuple(n for n in twins.get(number, ()) if n != number),
            )
        )
    return tuple(chosen)


def _params(record: TrialRecord) -> float | None:
    value = record.metrics.get(PARAMS)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def caption(network: FrontNetwork) -> str:
    """One line under a diagram: which trial, what it reached, at what size."""
    parts = [f"trial {network.number}", network.label]
    if network.accuracy is not None:
        parts.append(f"val {network.accuracy:.1%}")
    if network.params is not None:
        parts.append(f"{human(network.params)} params")
    if network.reused_by:
        parts.append(f"reused by {len(network.reused_by)}")
    return " · ".join(parts)


def networks_section(*, networks: Sequence[FrontNetwork], input_size: tuple[int, int, int] | None) -> list[str]:
    """The "Front networks" section: one inline SVG per network (at most MAX_DRAWN), captions escaped."""
    parts = ["<h2>Front networks</h2>"]
    if not networks:
        return [*parts, "<p>No feasible network on the front yet.</p>"]
    if input_size is None:
        return [*parts, "<p>Not drawn: the study's provenance records no input size.</p>"]
    parts.append(
        "<p>Each network of the Pareto front over all objectives (and each baseline), drawn from its "
        "architecture: stem, stages with their layers, channels in and out and spatial size, transitions, head; "
        "the glyph in each stage shows the mode's wiring. <code>nas show STUDY --trial N</code> prints the same "
        "network as a table.</p>"
    )
    drawn: list[str] = []
    skipped: list[str] = []
    for network in networks:
        if not network.arch:
            skipped.append(f"{network.label} (trial {network.number}: a torchvision model, no ArchConfig to draw)")
            continue
        if len(drawn) == MAX_DRAWN:
            skipped.append(f"trial {network.number}")
            continue
        try:
            svg = config_svg(config=ArchConfig.from_dict(network.arch), input_size=input_size, title=caption(network))
        except UsageError as error:  # a stored network that no longer builds at this input: listed, never fatal
            skipped.append(f"trial {network.number} ({error})")
            continue
        drawn.append(f'<figure class="net">{svg}</figure>')  # the diagram's own title is the caption
    parts.append(f'<div class="nets">{"".join(drawn)}</div>')
    if skipped:
        parts.append(f"<p>Not drawn: {html.escape('; '.join(skipped))}.</p>")
    return parts

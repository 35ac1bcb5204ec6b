"""What benchmarks/search_efficiency.py's replays add up to: per strategy, the hypervolume share each reached at 25 /
50 / 100% of the compute budget (mean and 95% interval over seeds, the difference from plain TPE), and the chart of
hypervolume against compute. Kept apart from the replaying itself (the table, the strategies, the simulated worker).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CHECKPOINTS = (0.25, 0.5, 1.0)  # shares of the budget the table reports


@dataclass
class Replay:
    """One strategy, one seed: the compute spent and the hypervolume after every finished trial."""

    strategy: str
    seed: int
    spent: list[float] = dataclasses.field(default_factory=list)
    hv: list[float] = dataclasses.field(default_factory=list)
    trials: int = 0
    study_trials: int = 0  # trials the replay's study holds at its end: `trials`, pre-screened or not
    proposals: int = 0  # networks a pre-screen's sampler proposed, taken or not
    prescreen_seconds: float = 0.0  # recorded seconds of scoring them, each network once: part of `spent`
    trained: int = 0  # networks trained (not reused)
    networks: list[str] = dataclasses.field(default_factory=list)  # arch hashes of those, in training order
    stopped: int = 0  # of those, stopped early
    epochs: int = 0

    def hv_at(self, budget: float) -> float:
        """The hypervolume of the trials finished within `budget` seconds of compute."""
        done = [hv for spent, hv in zip(self.spent, self.hv, strict=True) if spent <= budget + 1e-9]
        return done[-1] if done else 0.0


def interval(values: Sequence[float]) -> tuple[float, float, float]:
    """The mean over seeds and its 95% interval (Student's t; the mean itself twice for one seed)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean, mean
    from scipy import stats  # lazily: the rest of the benchmark runs without it

    half = float(stats.t.ppf(0.975, len(values) - 1)) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def difference(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """mean(a) - mean(b) over independent seeds, with its 95% Welch interval."""
    diff = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return diff, diff, diff
    from scipy import stats

    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        return diff, diff, diff
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.975, dof)) * math.sqrt(va + vb)
    return diff, diff - half, diff + half


def summary(replays: list[Replay], *, budget: float, best: float) -> list[dict[str, Any]]:
    """Per strategy: hypervolume share at each checkpoint (mean and 95% interval over seeds; the difference from
    tpe's at 25% where tpe ran too), trials, epochs and pre-screening."""
    rows = []

    def shares(name: str, share: float) -> list[float]:
        return [r.hv_at(share * budget) / best for r in replays if r.strategy == name]

    for name in dict.fromkeys(r.strategy for r in replays):
        runs = [r for r in replays if r.strategy == name]
        row: dict[str, Any] = {"strategy": name, "seeds": len(runs)}
        for share in CHECKPOINTS:
            row[f"hv_{int(share * 100)}"] = interval(shares(name, share))
        tpe = shares("tpe", CHECKPOINTS[0])
        row["vs_tpe_25"] = difference(shares(name, CHECKPOINTS[0]), tpe) if tpe and name != "tpe" else None
        row["prescreen_share"] = statistics.fmean(r.prescreen_seconds / max(r.spent[-1], 1e-12) for r in runs)
        row["trials"] = statistics.fmean(r.trials for r in runs)
        row["trained"] = statistics.fmean(r.trained for r in runs)
        row["stopped"] = statistics.fmean(r.stopped for r in runs)
        row["epochs_per_network"] = statistics.fmean(r.epochs / max(1, r.trained) for r in runs)
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    heads = [f"HV at {int(s * 100)}% of budget" for s in CHECKPOINTS]
    lines = [
        "| strategy | seeds | "
        + " | ".join(heads)
        + " | vs tpe at 25% | trials | networks trained | stopped early | epochs/network | scoring share |",
        "| --- | ---: | " + " | ".join("---:" for _ in heads) + " | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def shown(values: tuple[float, float, float], sign: str = "") -> str:
        m, lo, hi = values
        return f"{m:{sign}.3f} [{lo:{sign}.3f}, {hi:{sign}.3f}]"

    for row in rows:
        hv = " | ".join(shown(row[f"hv_{int(x * 100)}"]) for x in CHECKPOINTS)
        vs = shown(row["vs_tpe_25"], sign="+") if row["vs_tpe_25"] is not None else ""
        lines.append(
            f"| {row['strategy']} | {row['seeds']} | {hv} | {vs} | {row['trials']:.1f} | {row['trained']:.1f} | "
            f"{row['stopped']:.1f} | {row['epochs_per_network']:.2f} | {row['prescreen_share']:.1%} |"
        )
    return "\n".join(lines)


def chart(replays: list[Replay], *, budget: float, best: float, path: Path) -> None:
    """Hypervolume share against compute spent: mean over seeds with a band of one std."""
    import plotly.graph_objects as go

    grid = np.linspace(0.0, budget, 101)
    fig = go.Figure()
    for name in dict.fromkeys(r.strategy for r in replays):
        curves = np.array([[r.hv_at(b) / best for b in grid] for r in replays if r.strategy == name])
        mean, std = curves.mean(axis=0), curves.std(axis=0)
        x = grid / 60.0
        fig.add_trace(go.Scatter(x=x, y=mean, mode="lines", name=name, legendgroup=name))
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([x, x[::-1]]),
                y=np.concatenate([mean + std, (mean - std)[::-1]]),
                fill="toself",
                opacity=0.15,
                line={"width": 0},
                showlegend=False,
                legendgroup=name,
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        title="Hypervolume of the validation front against compute (mean ± std over seeds)",
        xaxis={"title": "compute spent (training minutes, recorded on the table's machine)"},
        yaxis={"title": "share of the table's best hypervolume"},
        width=1000,
        height=560,
    )
    fig.write_html(path, include_plotlyjs=True, full_html=True)


__all__ = ["CHECKPOINTS", "Replay", "chart", "difference", "interval", "markdown", "summary"]

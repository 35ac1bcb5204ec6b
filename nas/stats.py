"""Uncertainty and ranking statistics: one place for the intervals and correlations every layer shows.

Accuracy on a finite split. A validation accuracy on n images moves in steps of 1/n; two trials a
step apart are not told apart by the split. The Wilson score interval (Wilson 1927) is used rather
than the normal approximation because it stays inside [0, 1] and behaves at accuracies near 0 or 1
and small n.

Does a cheap signal rank networks? A proxy (a score at initialisation, an early epoch's accuracy) is
judged by rank correlations with the accuracy it stands for: Spearman's rho and Kendall's tau-b,
both with ties handled (scipy.stats), each with a 95% percentile bootstrap interval over the pairs,
seeded so a report is reproducible. `top_overlap` asks the question a search asks: are the best
networks among those the proxy puts first? A multi-objective search already knows every network's
cost, so the figure that decides is how a proxy ranks networks *of the same cost*:
`equal_cost_correlation` correlates the score with what a polynomial fit on log cost leaves of the
accuracy (and, asked to, with what the fit leaves of the score too: a partial correlation).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "METHODS",
    "Z95",
    "Correlation",
    "equal_cost_correlation",
    "equal_cost_residual",
    "rank_correlation",
    "top_overlap",
    "wilson_interval",
]

Z95 = 1.959963984540054  # two-sided 95% quantile of the standard normal
METHODS = ("spearman", "kendall")
Method = Literal["spearman", "kendall"]
Numbers = Sequence[float] | npt.NDArray[Any]
_Array = npt.NDArray[np.float64]


def wilson_interval(*, accuracy: float, n: int, z: float = Z95) -> tuple[float, float]:
    """(low, high): the 95% Wilson score interval of a proportion `accuracy` measured on `n` items."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"wilson_interval: n = {n!r}: an integer >= 1 is required")
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"wilson_interval: accuracy = {accuracy!r}: a number in [0, 1] is required")
    z2 = z * z
    centre = (accuracy + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(accuracy * (1 - accuracy) / n + z2 / (4 * n * n))
    # The interval contains the estimate; rounding must not push a bound past it (at 0 or 1 it touches).
    return max(0.0, min(accuracy, centre - half)), min(1.0, max(accuracy, centre + half))


@dataclass(frozen=True)
class Correlation:
    """A rank correlation and its bootstrap interval, as a report shows it."""

    method: str  # "spearman" (rho) or "kendall" (tau-b)
    value: float | None  # None where undefined: x or y constant
    low: float | None  # 2.5th percentile of the bootstrap; None where the interval is absent
    high: float | None  # 97.5th percentile; None where the interval is absent
    n: int  # pairs the value was computed on

    def text(self, digits: int = 2) -> str:
        """ "0.735 [0.64, 0.81]": the value to `digits` decimals and its interval to 2, as tables print them; "-"
        where it is undefined."""
        if self.value is None:
            return "-"
        shown = self.low is not None and self.high is not None
        return f"{self.value:.{digits}f}" + (f" [{self.low:.2f}, {self.high:.2f}]" if shown else "")


def rank_correlation(
    *, x: Numbers, y: Numbers, method: Method = "spearman", resamples: int = 1000, seed: int = 0
) -> Correlation:
    """Spearman's rho or Kendall's tau-b of x and y, with a seeded 95% bootstrap interval over the pairs.

    Why a bootstrap: 160 networks give a correlation whose uncertainty (about +-0.1) is as large as
    the differences between proxies. Resamples whose correlation is undefined (x or y constant in
    the resample) are skipped; the interval is absent (None bounds) when n < 3 or fewer than half of
    the resamples are usable. The same seed gives the same interval.
    """
    where = "rank_correlation"
    _check_method(where, method)
    _check_resampling(where, resamples, seed)
    xs, ys = _vectors(where, x=x, y=y)
    value = _correlation(xs, ys, method)
    low, high = _bootstrap(xs.size, resamples, seed, lambda rows: _correlations(xs[rows], ys[rows], method))
    return Correlation(method=method, value=value, low=low, high=high, n=xs.size)


def top_overlap(*, score: Numbers, accuracy: Numbers, fraction: float = 0.1) -> float:
    """The share of the top `fraction` of items by accuracy that are also in the top `fraction` by score.

    Why: a search keeps the best few networks, and a proxy can rank the bulk well yet miss the best.
    Both tops hold k = max(1, round(fraction * n)) items (Python's round: halves go to the even
    integer). Ties are broken by position: of two equal values the earlier item ranks higher.
    """
    where = "top_overlap"
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0.0 < fraction <= 1.0:
        raise ValueError(f"{where}: fraction = {fraction!r}: a number in (0, 1] is required")
    scores, accuracies = _vectors(where, score=score, accuracy=accuracy)
    k = max(1, round(fraction * scores.size))
    by_score = set(np.argsort(-scores, kind="stable")[:k].tolist())
    by_accuracy = np.argsort(-accuracies, kind="stable")[:k].tolist()
    return sum(1 for i in by_accuracy if i in by_score) / k


def equal_cost_residual(*, accuracy: Numbers, cost: Numbers, degree: int = 2) -> _Array:
    """`accuracy` minus its least-squares polynomial fit of `degree` on log(cost): what cost does not explain.

    Why: larger networks are more accurate, and a multi-objective search already knows the cost, so a
    proxy must be judged on the part of accuracy that cost leaves open. Any quantity may stand in
    `accuracy` (a proxy's score too). cost > 0 is required; at least degree + 2 items, so something is
    left after the fit. A fit exact to rounding (residuals within 1e-9 of the largest |accuracy|)
    returns exact zeros, so that "nothing left" reads as constant rather than as rounding noise.
    """
    where = "equal_cost_residual"
    _check_degree(where, degree)
    accuracies, costs = _vectors(where, accuracy=accuracy, cost=cost)
    _check_costs(where, costs, degree)
    return _residual(accuracies, np.log(costs), degree)


def equal_cost_correlation(
    *,
    score: Numbers,
    accuracy: Numbers,
    cost: Numbers,
    method: Method = "spearman",
    degree: int = 2,
    adjust_score: bool = False,
    resamples: int = 1000,
    seed: int = 0,
) -> Correlation:
    """How well `score` ranks networks of the same cost: its rank correlation with what cost leaves of accuracy.

    Why: among networks of one cost, does a higher score mean a higher accuracy? By default the score
    is rank-correlated with `equal_cost_residual` of the accuracy (a fit of `degree` on log(cost)),
    which needs nothing of the score's scale: raw synflow or params will do. That penalises a score
    for the share of it that only measures cost (params at equal cost: 0.10 on the shipped table).
    With `adjust_score` the score is replaced by its own residual too, a partial rank correlation given
    cost: the within-cost ranking alone. Its score is then fitted on the scale given, so pass a count
    spanning magnitudes in log: issue 22's equal-cost figures are this, with log(params) (0.22).
    A score fully explained by the fit has no correlation (None). The bootstrap refits every resample.
    """
    where = "equal_cost_correlation"
    _check_method(where, method)
    _check_degree(where, degree)
    _check_resampling(where, resamples, seed)
    if not isinstance(adjust_score, bool):
        raise ValueError(f"{where}: adjust_score = {adjust_score!r}: True or False is required")
    scores, accuracies, costs = _vectors(where, score=score, accuracy=accuracy, cost=cost)
    _check_costs(where, costs, degree)
    log_cost = np.log(costs)

    def pair(rows: npt.NDArray[np.intp]) -> tuple[_Array, _Array]:
        s = _residual(scores[rows], log_cost[rows], degree) if adjust_score else scores[rows]
        return s, _residual(accuracies[rows], log_cost[rows], degree)

    value = _correlation(*pair(np.arange(scores.size)), method)

    def batch(rows: npt.NDArray[np.intp]) -> _Array:
        pairs = [pair(r) for r in rows]
        return _correlations(np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), method)

    low, high = _bootstrap(scores.size, resamples, seed, batch)
    return Correlation(method=method, value=value, low=low, high=high, n=scores.size)


# --- checks -----------------------------------------------------------------------------------------


def _check_method(where: str, method: object) -> None:
    if method not in METHODS:
        raise ValueError(f"{where}: method = {method!r}: one of {', '.join(METHODS)} is required")


def _check_resampling(where: str, resamples: object, seed: object) -> None:
    if not isinstance(resamples, int) or isinstance(resamples, bool) or resamples < 0:
        raise ValueError(f"{where}: resamples = {resamples!r}: an integer >= 0 is required (0: no interval)")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"{where}: seed = {seed!r}: an integer >= 0 is required")


def _check_degree(where: str, degree: object) -> None:
    if not isinstance(degree, int) or isinstance(degree, bool) or degree < 0:
        raise ValueError(f"{where}: degree = {degree!r}: an integer >= 0 is required")


def _check_costs(where: str, costs: _Array, degree: int) -> None:
    if costs.size < degree + 2:
        raise ValueError(
            f"{where}: {costs.size} items: at least degree + 2 = {degree + 2} are required for a fit of degree {degree}"
        )
    bad = np.flatnonzero(costs <= 0)
    if bad.size:
        raise ValueError(
            f"{where}: cost[{bad[0]}] = {float(costs[bad[0]])!r}: costs > 0 are required (the fit is on log cost)"
        )


def _vectors(where: str, **named: Numbers) -> list[_Array]:
    """The named sequences as float arrays: one-dimensional, of one length >= 2, finite."""
    arrays = []
    for name, values in named.items():
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: {name} = {values!r}: a sequence of numbers is required") from None
        if array.ndim != 1:
            raise ValueError(f"{where}: {name} has shape {array.shape}: a one-dimensional sequence is required")
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            raise ValueError(f"{where}: {name}[{bad[0]}] = {float(array[bad[0]])!r}: finite numbers are required")
        arrays.append(array)
    lengths = {name: a.size for name, a in zip(named, arrays, strict=True)}
    if len(set(lengths.values())) > 1:
        said = ", ".join(f"len({name}) = {size}" for name, size in lengths.items())
        raise ValueError(f"{where}: {said}: sequences of one length are required")
    if arrays[0].size < 2:
        raise ValueError(f"{where}: {arrays[0].size} items: at least 2 pairs are required for a correlation")
    return arrays


# --- arithmetic -------------------------------------------------------------------------------------


def _residual(y: _Array, x: _Array, degree: int) -> _Array:
    # x is centred and scaled first so the Vandermonde matrix stays well conditioned; lstsq returns the
    # minimum-norm fit when x has fewer distinct values than coefficients (a resample of few costs).
    spread = float(np.std(x))
    u = (x - np.mean(x)) / spread if spread > 0 else np.zeros_like(x)
    design = np.vander(u, degree + 1)
    coefficients = np.linalg.lstsq(design, y, rcond=None)[0]
    residual: _Array = y - design @ coefficients
    if np.max(np.abs(residual)) <= 1e-9 * max(float(np.max(np.abs(y))), np.finfo(np.float64).tiny):
        return np.zeros_like(y)
    return residual


def _scipy_stats() -> Any:
    """scipy.stats, imported when first used: importing it changes the process's warning filters, and importing
    nas must change no global setting (tests/test_layers.py)."""
    from scipy import stats

    return stats


def _correlation(x: _Array, y: _Array, method: str) -> float | None:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    if method == "spearman":
        return float(_scipy_stats().spearmanr(x, y).statistic)
    return float(_scipy_stats().kendalltau(x, y, variant="b").statistic)


def _correlations(xs: _Array, ys: _Array, method: str) -> _Array:
    """Row-wise correlations of two (m, n) arrays; NaN where a row is constant."""
    defined = (np.ptp(xs, axis=1) > 0) & (np.ptp(ys, axis=1) > 0)
    out = np.full(xs.shape[0], np.nan)
    if method == "spearman":  # Pearson's r of average ranks, as scipy's spearmanr, for all rows at once
        rx = _scipy_stats().rankdata(xs[defined], axis=1)
        ry = _scipy_stats().rankdata(ys[defined], axis=1)
        rx -= rx.mean(axis=1, keepdims=True)
        ry -= ry.mean(axis=1, keepdims=True)
        r = (rx * ry).sum(axis=1) / np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
        out[defined] = np.clip(r, -1.0, 1.0)
    else:
        out[defined] = [
            _scipy_stats().kendalltau(a, b, variant="b").statistic
            for a, b in zip(xs[defined], ys[defined], strict=True)
        ]
    return out


def _bootstrap(
    n: int, resamples: int, seed: int, statistic: Callable[[npt.NDArray[np.intp]], _Array]
) -> tuple[float | None, float | None]:
    """The 2.5th and 97.5th percentiles of `statistic` over `resamples` seeded resamples of n items."""
    if n < 3 or resamples == 0:
        return None, None
    rows = np.random.default_rng(seed).integers(0, n, size=(resamples, n), dtype=np.intp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        values = np.asarray(statistic(rows), dtype=np.float64)
    usable = values[np.isfinite(values)]
    if 2 * usable.size < resamples:
        return None, None
    low, high = np.percentile(usable, [2.5, 97.5])
    return float(low), float(high)

import math

import numpy as np
import pytest

from benchmarks.curve_table import SHIPPED_TABLE, read_table
from nas.stats import (
    Correlation,
    equal_cost_correlation,
    equal_cost_residual,
    rank_correlation,
    top_overlap,
    wilson_interval,
)


def test_wilson_matches_the_closed_form_for_45_of_50():
    # p = 0.9, n = 50, z = 1.96: the textbook numbers (Newcombe 1998 gives 0.786 to 0.957 for 45/50)
    low, high = wilson_interval(accuracy=0.9, n=50)
    assert low == pytest.approx(0.7864, abs=5e-4)
    assert high == pytest.approx(0.9565, abs=5e-4)


def test_wilson_stays_inside_zero_and_one_and_contains_the_estimate():
    for n in (1, 7, 96, 10_000):
        for k in range(0, n + 1, max(1, n // 7)):
            p = k / n
            low, high = wilson_interval(accuracy=p, n=n)
            assert 0.0 <= low <= p <= high <= 1.0
    assert wilson_interval(accuracy=1.0, n=96)[1] == 1.0
    assert wilson_interval(accuracy=0.0, n=96)[0] == 0.0


def test_wilson_narrows_as_the_split_grows():
    widths = [math.fsum((-lo, hi)) for lo, hi in (wilson_interval(accuracy=0.9, n=n) for n in (96, 960, 9600))]
    assert widths[0] > widths[1] > widths[2]


@pytest.mark.parametrize("kwargs", [dict(accuracy=0.5, n=0), dict(accuracy=1.5, n=10), dict(accuracy=0.5, n=2.0)])
def test_wilson_refuses_bad_input(kwargs):
    with pytest.raises(ValueError):
        wilson_interval(**kwargs)


# --- rank correlations ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["spearman", "kendall"])
def test_a_monotone_pair_correlates_perfectly_and_a_reversed_one_negatively(method):
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    y = [0.1, 0.4, 0.5, 0.9, 2.0, 30.0]  # monotone, not linear: ranks only
    up = rank_correlation(x=x, y=y, method=method)
    down = rank_correlation(x=x, y=y[::-1], method=method)
    assert (up.value, up.n, up.method) == (pytest.approx(1.0), 6, method)
    assert down.value == pytest.approx(-1.0)
    # every usable resample of a monotone pair is monotone too: the interval is the point
    assert (up.low, up.high) == (pytest.approx(1.0), pytest.approx(1.0))
    assert (down.low, down.high) == (pytest.approx(-1.0), pytest.approx(-1.0))


def test_spearman_with_ties_by_hand():
    # x = 1 2 2 3 4 -> average ranks 1 2.5 2.5 4 5; y = 2 1 3 3 5 -> 2 1 3.5 3.5 5; both mean 3.
    # deviations dx = -2 -.5 -.5 1 2, dy = -1 -2 .5 .5 2: sum dx*dy = 2 + 1 - .25 + .5 + 4 = 7.25,
    # sum dx^2 = sum dy^2 = 9.5, so rho = 7.25 / 9.5 = 29/38.
    result = rank_correlation(x=[1, 2, 2, 3, 4], y=[2, 1, 3, 3, 5], method="spearman", resamples=0)
    assert result == Correlation(method="spearman", value=pytest.approx(29 / 38), low=None, high=None, n=5)


def test_kendall_tau_b_with_ties_by_hand():
    # Of the 10 pairs of x = 1 2 2 3 4, y = 2 1 3 3 5: 7 concordant, 1 discordant (items 0, 1), one tied in
    # x only (items 1, 2), one tied in y only (items 2, 3). tau-b = (7 - 1) / sqrt((10 - 1) * (10 - 1)) = 2/3
    # (tau-a would say 6/10: tau-b is the one that handles ties).
    result = rank_correlation(x=[1, 2, 2, 3, 4], y=[2, 1, 3, 3, 5], method="kendall", resamples=0)
    assert result.value == pytest.approx(2 / 3)


@pytest.mark.parametrize("method", ["spearman", "kendall"])
def test_the_bootstrap_is_fixed_by_its_seed_and_its_interval_holds_the_value(method):
    rng = np.random.default_rng(7)
    x = rng.normal(size=40)
    y = x + rng.normal(size=40)
    first = rank_correlation(x=x, y=y, method=method, resamples=300, seed=3)
    assert first == rank_correlation(x=x, y=y, method=method, resamples=300, seed=3)
    other = rank_correlation(x=x, y=y, method=method, resamples=300, seed=4)
    assert other.value == first.value and (other.low, other.high) != (first.low, first.high)
    assert first.low is not None and first.high is not None and first.value is not None
    assert -1.0 <= first.low < first.value < first.high <= 1.0


def test_the_vectorised_bootstrap_spearman_is_scipy_s_spearman():
    # The interval's resamples are ranked all at once; with ties, they must be what scipy's spearmanr says.
    from scipy import stats

    from nas.stats import _correlations

    rng = np.random.default_rng(1)
    xs, ys = rng.integers(0, 4, size=(30, 12)).astype(float), rng.integers(0, 6, size=(30, 12)).astype(float)
    expected = [
        stats.spearmanr(a, b).statistic if np.ptp(a) and np.ptp(b) else np.nan for a, b in zip(xs, ys, strict=True)
    ]
    np.testing.assert_allclose(_correlations(xs, ys, "spearman"), expected, atol=1e-12)


def test_undefined_correlations_and_intervals_are_absent_not_numbers():
    assert rank_correlation(x=[1, 1, 1, 1], y=[1, 2, 3, 4]) == Correlation("spearman", None, None, None, 4)
    # n < 3: a value, but no interval
    assert rank_correlation(x=[1, 2], y=[2, 1]) == Correlation("spearman", pytest.approx(-1.0), None, None, 2)
    # x differs only at item 9, y only at item 0: a resample is usable only when it holds both, which
    # happens with probability 1 - 2 * 0.9^10 + 0.8^10 = 0.41, fewer than half
    lonely = rank_correlation(x=[0] * 9 + [1], y=[1] + [0] * 9, resamples=200)
    assert lonely.value is not None and (lonely.low, lonely.high) == (None, None)


@pytest.mark.parametrize(
    ("kwargs", "said"),
    [
        (dict(x=[1, 2, 3], y=[1, 2]), "len(x) = 3, len(y) = 2"),
        (dict(x=[1, 2, math.nan], y=[1, 2, 3]), "x[2] = nan"),
        (dict(x=[1, 2, 3], y=[1, math.inf, 3]), "y[1] = inf"),
        (dict(x=[1, 2, 3], y=[1, 2, 3], method="pearson"), "method = 'pearson'"),
        (dict(x=[1], y=[1]), "at least 2 pairs"),
        (dict(x=[1, 2, 3], y=[1, 2, 3], resamples=-1), "resamples = -1"),
        (dict(x=[1, 2, 3], y=[1, 2, 3], seed=1.5), "seed = 1.5"),
        (dict(x=[[1, 2], [3, 4]], y=[1, 2]), "one-dimensional"),
    ],
)
def test_rank_correlation_refuses_bad_input_naming_it(kwargs, said):
    with pytest.raises(ValueError, match="rank_correlation") as error:
        rank_correlation(**kwargs)
    assert said in str(error.value)


# --- top overlap ------------------------------------------------------------------------------------


def test_top_overlap_by_hand():
    accuracy = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    # fraction 0.3 of 10: k = 3; top by accuracy {0, 1, 2}; top by score {0, 5, 2}: 2 of 3
    assert top_overlap(score=[9, 1, 7, 2, 3, 8, 0, 0, 0, 0], accuracy=accuracy, fraction=0.3) == pytest.approx(2 / 3)
    # default 0.1 of 10: k = 1, the single best by accuracy (item 0) against the best by score
    assert top_overlap(score=[9, 1, 7, 2, 3, 8, 0, 0, 0, 0], accuracy=accuracy) == 1.0
    assert top_overlap(score=accuracy[::-1], accuracy=accuracy, fraction=0.5) == 0.0
    # k never falls below 1: 0.1 of 4 is 0.4
    assert top_overlap(score=[4, 3, 2, 1], accuracy=[1, 2, 3, 4]) == 0.0


def test_top_overlap_breaks_ties_by_position():
    # all scores equal: the top 2 by score are items 0 and 1, whatever the accuracy
    assert top_overlap(score=[5, 5, 5, 5], accuracy=[1, 2, 3, 4], fraction=0.5) == 0.0
    assert top_overlap(score=[5, 5, 5, 5], accuracy=[4, 3, 2, 1], fraction=0.5) == 1.0


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5, True])
def test_top_overlap_refuses_a_fraction_outside_0_1(fraction):
    with pytest.raises(ValueError, match=r"top_overlap: fraction = .*\(0, 1\]"):
        top_overlap(score=[1, 2, 3], accuracy=[1, 2, 3], fraction=fraction)


# --- equal cost -------------------------------------------------------------------------------------


def test_the_residual_of_an_exact_quadratic_in_log_cost_is_zero():
    cost = [1.0, math.e, math.e**2, math.e**3, math.e**4]  # log cost = 0 1 2 3 4
    accuracy = [0.5 + 0.1 * u - 0.01 * u * u for u in range(5)]
    assert equal_cost_residual(accuracy=accuracy, cost=cost).tolist() == [0.0] * 5
    # a line leaves residuals a quadratic can take but a line cannot: y = u^2 against a line fit on
    # u = 0..4 (y = 4u - 2) leaves 2 -1 -2 -1 2
    square = [float(u * u) for u in range(5)]
    np.testing.assert_allclose(
        equal_cost_residual(accuracy=square, cost=cost, degree=1), [2, -1, -2, -1, 2], atol=1e-12
    )
    np.testing.assert_allclose(equal_cost_residual(accuracy=square, cost=cost, degree=2), 0.0, atol=1e-12)


def test_equal_cost_correlation_by_hand_by_default_and_with_the_score_adjusted():
    # log cost u = 0..4. The accuracy is a quadratic of u plus e = (-1, 2, 0, -2, 1) / 100, which is orthogonal
    # to 1, u and u^2 on these points (the cubic of the orthogonal polynomials), so the residual is e exactly.
    u = np.arange(5.0)
    cost = np.exp(u)
    e = np.array([-1.0, 2.0, 0.0, -2.0, 1.0]) / 100
    accuracy = 0.7 + 0.02 * u - 0.001 * u * u + e
    np.testing.assert_allclose(equal_cost_residual(accuracy=accuracy, cost=cost), e, atol=1e-12)
    # e ranks 2 5 3 1 4. A score ranked 5 1 3 2 4: d = -3 4 0 1 0, sum d^2 = 26, rho = 1 - 6 * 26 / (5 * 24) = -0.3
    result = equal_cost_correlation(score=[5, 1, 3, 2, 4], accuracy=accuracy, cost=cost, resamples=0)
    assert result == Correlation("spearman", pytest.approx(-0.3), None, None, 5)
    # A score 10 u + 50 e mostly measures cost: ranked as it is (1..5 against 2 5 3 1 4: d = -1 -3 0 3 1,
    # sum d^2 = 20, rho = 1 - 120 / 120 = 0) it says nothing; adjusted, its residual is 50 e and ranks
    # equal-cost networks perfectly (1.0).
    score = 10 * u + 50 * e
    assert equal_cost_correlation(score=score, accuracy=accuracy, cost=cost).value == pytest.approx(0.0, abs=1e-12)
    adjusted = equal_cost_correlation(score=score, accuracy=accuracy, cost=cost, adjust_score=True)
    assert adjusted.value == pytest.approx(1.0)
    # a score that is a quadratic of log cost says nothing at equal cost once adjusted: undefined, not a number
    assert equal_cost_correlation(score=u * u, accuracy=accuracy, cost=cost, adjust_score=True).value is None


@pytest.mark.parametrize(
    ("kwargs", "said"),
    [
        (dict(cost=[1, 2, 0, 4, 5]), "cost[2] = 0.0: costs > 0"),
        (dict(cost=[1, 2, 3, 4, 5], degree=-1), "degree = -1"),
        (dict(cost=[1, 2, 3, 4, 5], degree=4), "5 items: at least degree + 2 = 6"),
        (dict(cost=[1, 2, 3, 4]), "len(accuracy) = 5, len(cost) = 4"),
    ],
)
def test_equal_cost_residual_refuses_bad_input_naming_it(kwargs, said):
    with pytest.raises(ValueError, match="equal_cost_residual") as error:
        equal_cost_residual(accuracy=[0.1, 0.2, 0.3, 0.4, 0.5], **kwargs)
    assert said in str(error.value)


def test_issue_22_s_figures_on_the_shipped_learning_curve_table():
    """The figures issue 22 measured on benchmarks/data/fashion_mnist_tabular.csv (160 networks, 8 epochs).

    What reproduces them: "epoch-8 accuracy" is the last epoch's validation accuracy (acc_8), not the best
    over the epochs (with the best, plain params gives 0.738 and equal-cost params 0.244). "At equal cost"
    is the Spearman correlation of the score's and the accuracy's residuals after a quadratic least-squares
    fit on log FLOPs, with params entered as log(params) and the epoch accuracies as they are. Correlating
    the raw score with the accuracy's residual alone gives params 0.10, epoch-1 0.40, epoch-4 0.39 instead.
    """
    networks = read_table(SHIPPED_TABLE)
    assert len(networks) == 160 and {n.epochs for n in networks} == {8}
    params = np.array([n.params for n in networks], dtype=float)
    flops = np.array([n.flops for n in networks], dtype=float)
    accuracy = np.array([n.accuracy for n in networks])
    final = accuracy[:, 7]

    def plain(score):
        return rank_correlation(x=score, y=final, resamples=0).value

    def at_equal_cost(score, *, adjust_score):
        return equal_cost_correlation(
            score=score, accuracy=final, cost=flops, resamples=0, adjust_score=adjust_score
        ).value

    assert round(plain(params), 3) == 0.735
    assert round(plain(flops), 3) == 0.719
    assert round(plain(accuracy[:, 0]), 3) == 0.588
    assert round(plain(accuracy[:, 1]), 3) == 0.691
    assert round(at_equal_cost(np.log(params), adjust_score=True), 2) == 0.22
    assert round(at_equal_cost(accuracy[:, 0], adjust_score=True), 2) == 0.43
    assert round(at_equal_cost(accuracy[:, 3], adjust_score=True), 2) == 0.41
    # the definitions that do not reproduce them, so the difference stays on record
    assert round(rank_correlation(x=params, y=accuracy.max(axis=1), resamples=0).value, 3) == 0.738
    assert [round(at_equal_cost(s, adjust_score=False), 2) for s in (params, accuracy[:, 0], accuracy[:, 3])] == [
        0.10,
        0.40,
        0.39,
    ]
    # the interval of the figure that decides (params at equal cost), with the default 1,000 resamples
    interval = equal_cost_correlation(score=np.log(params), accuracy=final, cost=flops, adjust_score=True)
    assert interval.low is not None and interval.high is not None
    assert 0.0 < interval.low < interval.value < interval.high < 0.45


def test_a_correlation_prints_as_the_tables_show_it() -> None:
    assert Correlation("spearman", 0.7346, 0.6412, 0.8123, 160).text(digits=3) == "0.735 [0.64, 0.81]"
    assert Correlation("kendall", 0.5, None, None, 2).text() == "0.50"
    assert Correlation("spearman", None, None, None, 5).text() == "-"  # a constant score

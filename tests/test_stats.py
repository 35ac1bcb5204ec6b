import math

import pytest

from nas.stats import wilson_interval


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

"""The replay table's intervals: a mean over seeds with Student's t, a difference of means with Welch's."""

from __future__ import annotations

import pytest

from benchmarks.replay_summary import difference, interval


def test_the_mean_of_seeds_has_students_t_interval() -> None:
    assert interval([0.5]) == (0.5, 0.5, 0.5)  # one seed: no spread to speak of
    mean, low, high = interval([1.0, 3.0])  # sd sqrt(2), n 2: half-width t(0.975, 1) x 1 = 12.706
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - 12.7062, 2.0 + 12.7062), abs=1e-4)


def test_a_difference_of_means_has_welchs_interval() -> None:
    diff, low, high = difference([1.0, 3.0], [0.0, 0.0, 0.0])  # b has no spread: Welch's dof is a's, n - 1 = 1
    assert (diff, low, high) == pytest.approx((2.0, 2.0 - 12.7062, 2.0 + 12.7062), abs=1e-4)
    assert difference([0.2, 0.2], [0.1, 0.1]) == pytest.approx((0.1, 0.1, 0.1))  # no spread at all: no interval

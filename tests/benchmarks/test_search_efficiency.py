"""The search-efficiency benchmark replays the shipped learning-curve table offline, in seconds."""

from __future__ import annotations

import dataclasses
import statistics

import numpy as np
import pytest
from optuna._hypervolume import compute_hypervolume

from benchmarks import search_efficiency as se
from benchmarks.curve_table import SHIPPED_TABLE, read_table
from nas.arch import ArchConfig
from nas.arch.cost import estimate
from nas.search.spec.space_file import load_space, shipped_dir
from nas.search.spec.studyfile_reader import load_study_file


@pytest.fixture(scope="module")
def table() -> se.Table:
    return se.Table.load(SHIPPED_TABLE)


@pytest.fixture(scope="module")
def sf():
    return load_study_file(se.REPLAY_STUDY)


def test_the_shipped_table_is_every_network_of_its_space_with_its_exact_costs(table):
    space = load_space(shipped_dir("search_spaces") / "tabular_grid.toml")
    nets = space.every_network(in_channels=1, num_classes=10)
    assert set(table.networks) == {cfg.arch_hash() for cfg in nets}
    for net in read_table(SHIPPED_TABLE)[:10]:
        cfg = ArchConfig(**net.config)
        assert cfg.arch_hash() == net.arch_hash
        est = estimate(cfg, input_size=(1, 28, 28))
        assert (net.params, net.flops) == (est.params, est.flops)
        assert net.epochs == 8 and all(0.0 <= a <= 1.0 for a in net.accuracy) and min(net.seconds) > 0


def test_a_replay_spends_exactly_the_epochs_it_trains_and_reuses_twins_for_free(table, sf):
    budget = 0.1 * table.full_cost()
    run = se.replay(table=table, sf=sf, strategy="random", seed=3, budget=budget)
    assert run.trials >= run.trained > 5
    assert run.stopped == 0 and run.epochs == 8 * run.trained  # no stopping: every network fully
    # spent never decreases, grows only on trials that trained, and ends at or just past the budget
    steps = np.diff([0.0, *run.spent])
    assert (steps >= 0).all() and int((steps > 0).sum()) == run.trained
    assert run.spent[-1] >= budget > run.spent[-2]
    assert run.hv == sorted(run.hv)


def test_the_hypervolume_equals_optunas_on_the_scaled_front(table):
    nets = list(table.networks.values())[:25]
    points = [(n.best, float(n.flops)) for n in nets]
    scaled = np.array([table.scaled(a, f) for a, f in points])
    inside = scaled[(scaled < 1.0).all(axis=1)]
    assert table.hypervolume(points) == pytest.approx(compute_hypervolume(inside, np.array([1.0, 1.0])), rel=1e-12)
    assert 0.0 < table.hypervolume(points) <= table.best_hypervolume() < 1.0


def test_replays_are_deterministic_per_seed(table, sf):
    budget = 0.05 * table.full_cost()
    a = se.replay(table=table, sf=sf, strategy="tpe+mo_asha", seed=1, budget=budget)
    b = se.replay(table=table, sf=sf, strategy="tpe+mo_asha", seed=1, budget=budget)
    assert dataclasses.asdict(a) == dataclasses.asdict(b)


def test_early_stopping_trains_fewer_epochs_per_network(table, sf):
    budget = 0.1 * table.full_cost()
    full = [se.replay(table=table, sf=sf, strategy="tpe", seed=s, budget=budget) for s in range(2)]
    asha = [se.replay(table=table, sf=sf, strategy="tpe+mo_asha", seed=s, budget=budget) for s in range(2)]
    assert all(r.stopped == 0 for r in full) and all(r.stopped > 0 for r in asha)
    assert statistics.fmean(r.epochs / r.trained for r in asha) < 8.0
    assert statistics.fmean(r.trained for r in asha) > statistics.fmean(r.trained for r in full)


def test_the_benchmark_prints_its_table(capsys):
    assert se.main(["--seeds", "1", "--budget", "0.05", "--strategies", "random", "tpe+pareto_stop"]) == 0
    out = capsys.readouterr().out
    assert "| random | 1 |" in out and "| tpe+pareto_stop | 1 |" in out and "HV at 100% of budget" in out


def test_a_prescreen_pays_each_networks_recorded_scoring_once_and_its_proposals_are_not_trials(table, sf):
    budget = 0.1 * table.full_cost()
    run = se.replay(table=table, sf=sf, strategy="tpe+snip/pareto", seed=2, budget=budget, pool=16)
    assert run.study_trials == run.trials >= run.trained > 3  # one trial per choice, however many proposals
    assert run.proposals == 16 * run.trials
    assert len(run.networks) == len(set(run.networks)) == run.trained  # no stopping: each trained fully, once
    trained = sum(table.epoch_cost(table.networks[h]) * 8 for h in run.networks)
    assert run.spent[-1] == pytest.approx(trained + run.prescreen_seconds, rel=1e-9)
    every = sum(float(row["sec_snip"]) for row in table.proxies.values())
    assert 0 < run.prescreen_seconds <= every  # each network's scoring counted at most once
    plain = se.replay(table=table, sf=sf, strategy="tpe", seed=2, budget=budget)
    assert (plain.proposals, plain.prescreen_seconds) == (0, 0.0)


def test_the_digits_table_replays_against_its_own_study(table):
    digits = se.Table.load(SHIPPED_TABLE.with_name("digits_tabular.csv"))
    study = load_study_file(se.REPLAY_STUDY.with_name("tabular_replay_digits.toml"))
    assert digits.input_size == (1, 8, 8) and table.input_size == (1, 28, 28)
    nets = study.space.every_network(in_channels=1, num_classes=10)
    assert set(digits.networks) == {cfg.arch_hash() for cfg in nets} == set(digits.proxies)
    run = se.replay(table=digits, sf=study, strategy="tpe+naswot", seed=0, budget=0.1 * digits.full_cost(), pool=8)
    assert run.trials == run.study_trials and run.hv[-1] > 0

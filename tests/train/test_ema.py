"""The moving average of the weights: its formula, step by step, and the loop validating and returning it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas.data.datasets import LoadedData
from nas.train.ema import WeightAverage, ema_decay_at
from nas.train.evaluate import evaluate_split
from nas.train.loop import _EpochLoop
from nas.train.results import AttemptResult
from tests.train.test_loop import CPU, run_of


@pytest.mark.parametrize(
    ("decay", "updates", "expected"),
    [
        (0.99, 0, 0.1),
        (0.99, 90, 0.91),
        (0.99, 880, 881 / 890),
        (0.99, 890, 0.99),
        (0.99, 10_000, 0.99),
        (0.5, 8, 0.5),
        (0.5, 0, 0.1),
    ],
)
def test_the_decay_warms_up_to_the_recipe_value(decay: float, updates: int, expected: float) -> None:
    assert ema_decay_at(decay, updates) == pytest.approx(expected)


def test_the_average_equals_its_formula_after_each_step() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    average = WeightAverage(model, decay=0.8)
    expected = {k: v.double().clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    for n in range(12):
        loss = nn.functional.cross_entropy(model(torch.randn(8, 3)), torch.randint(0, 2, (8,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        average.update()
        d = min(0.8, (1 + n) / (10 + n))  # 0.1, 2/11, ..., 12/21: still warming up toward 0.8
        live = model.state_dict()
        expected = {k: d * v + (1 - d) * live[k].double() for k, v in expected.items()}
        got = average.model.state_dict()
        for key, value in expected.items():  # weights and BatchNorm running statistics alike
            torch.testing.assert_close(got[key].double(), value, rtol=1e-6, atol=1e-7)
        assert int(got["1.num_batches_tracked"]) == int(live["1.num_batches_tracked"]) == n + 1  # copied
    assert average.updates == 12
    assert not average.model.training and not any(p.requires_grad for p in average.model.parameters())
    assert not torch.equal(got["0.weight"], live["0.weight"])  # an average, not a copy


def test_a_decay_outside_the_open_unit_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="decay must be in"):
        WeightAverage(nn.Linear(2, 2), decay=0.0)


def test_the_loop_validates_and_returns_the_average(digits: LoadedData) -> None:
    attempt = AttemptResult(batch_size=64, memory_efficient=False)
    loop = _EpochLoop(run_of(digits, epochs=2, ema_decay=0.9), attempt)
    model = loop.train()
    assert loop.average is not None and model is loop.average.model
    assert loop.average.updates == 2 * loop.steps
    last = attempt.history[-1]
    assert evaluate_split(model, digits.val, digits, device=CPU) == (last.val_loss, last.val_accuracy)
    assert evaluate_split(loop.model, digits.val, digits, device=CPU)[0] != last.val_loss  # the live weights differ

"""compile = "graphs" (nas/train/graphs.py) on the CPU: the pieces a captured step is made of give what the
eager step gives, and what cannot be captured trains eagerly with a note. The capture itself runs on CUDA only:
tests/train/test_trainer_cuda.py holds those cases, and benchmarks/gpu_check.sh runs them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from nas.arch import build_model
from nas.data.datasets import LoadedData
from nas.errors import UsageError
from nas.train.ema import WeightAverage
from nas.train.graphs import GraphedForward, GraphedStep, TensorLrSGD, graphs_unsupported
from nas.train.recipe import Recipe, make_optimizer, make_scheduler
from tests.conftest import digits_net
from tests.train.conftest import off_and_graphs


def _loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(model(x), y)


@pytest.mark.parametrize("recipe", [Recipe(), Recipe.from_dict({"base": "fast"}), Recipe(momentum=0.0)])
def test_tensor_lr_sgd_steps_as_torch_sgd_does_through_a_changing_schedule(recipe: Recipe) -> None:
    """At each of 20 steps of a warm-up then cosine schedule, from the same weights and momentum buffers, one step
    of TensorLrSGD gives torch's SGD step: two parameter groups (the fast recipe's BatchNorm biases: 8x the
    learning rate, no decay), Nesterov momentum, the first step's new buffers. Step by step, because a chain
    of steps on one batch turns float rounding (the learning rate as a float32 tensor) into visible drift."""
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    model = build_model(digits_net("dense", drop_rate=0.0))
    opt = make_optimizer(model, recipe, batch=64)
    sched = make_scheduler(opt, recipe, total_steps=20)
    group_lrs = [group["lr"] for group in opt.param_groups]
    assert max(group_lrs) / min(group_lrs) == pytest.approx(recipe.norm_bias_lr_scale)
    lrs = set()
    for _ in range(20):
        twin, twin_opt = copy.deepcopy((model, opt))  # the same weights, buffers and learning rates
        tensor_sgd = TensorLrSGD(twin_opt)
        for net in (model, twin):
            net.zero_grad(set_to_none=True)
            _loss(net, x, y).backward()
        opt.step()
        tensor_sgd.load_lrs()
        tensor_sgd.step()
        for (name, a), b in zip(model.state_dict().items(), twin.state_dict().values(), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7, msg=name)
        for p, q in zip(model.parameters(), twin.parameters(), strict=True):
            if recipe.momentum:
                torch.testing.assert_close(twin_opt.state[q]["momentum_buffer"], opt.state[p]["momentum_buffer"])
        sched.step()
        lrs.add(round(opt.param_groups[0]["lr"], 9))
    assert len(lrs) > 10  # the learning rate moved every step


def test_tensor_lr_sgd_refuses_another_optimizer() -> None:
    adamw = make_optimizer(build_model(digits_net("plain")), Recipe(optimizer="adamw"), batch=64)
    with pytest.raises(TypeError, match=r"torch\.optim\.SGD is required, not AdamW"):
        TensorLrSGD(adamw)  # type: ignore[arg-type]


def test_weight_average_applied_with_a_tensor_weight_equals_its_own_update() -> None:
    live = build_model(digits_net("residual"))
    counted, applied = WeightAverage(live, decay=0.9), WeightAverage(live, decay=0.9)
    weight = torch.zeros(())
    for _ in range(12):
        with torch.no_grad():
            for p in live.parameters():
                p.add_(torch.randn_like(p))
        counted.update()
        weight.fill_(applied.next_weight())
        applied.apply(weight)
        applied.updates += 1
    for (name, a), b in zip(counted.model.state_dict().items(), applied.model.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, msg=name)


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        (dict(device=torch.device("cpu")), "CUDA graphs need a CUDA device, not cpu"),
        (dict(resident=False), "the training data streams from disk"),
        (dict(optimizer="adamw"), "only the SGD step is captured so far, not adamw"),
        (dict(schedule="onecycle"), "the one-cycle schedule changes SGD's momentum every step"),
        (dict(), None),
    ],
)
def test_what_cannot_be_captured_is_named(settings: dict[str, Any], why: str | None) -> None:
    given: dict[str, Any] = dict(device=torch.device("cuda"), resident=True, optimizer="sgd", schedule="cosine")
    reason = graphs_unsupported(**{**given, **settings})
    assert reason == why if why is None else (reason or "").startswith(why)


def test_graphs_on_the_cpu_train_eagerly_with_a_note_and_the_same_numbers(digits: LoadedData) -> None:
    recipe = Recipe(epochs=1, batch_size=64, lr=0.2, measure_latency=False, ema_decay=0.9)
    eager, graphs = off_and_graphs(digits, recipe, device="cpu")
    assert graphs.status == "complete" and eager.notes == []
    assert graphs.notes == ["compile=graphs: trained eagerly: CUDA graphs need a CUDA device, not cpu"]
    assert [h.train_loss for h in graphs.history] == [h.train_loss for h in eager.history]
    assert graphs.best_val_accuracy == eager.best_val_accuracy


def test_the_recipe_names_graphs_among_its_compile_modes() -> None:
    assert Recipe(compile="graphs").compile == "graphs"
    with pytest.raises(UsageError, match=r"Recipe.compile = 'graph' is invalid: choose one of .*'graphs'"):
        Recipe(compile="graph")


class EagerReplay(GraphedStep):
    """The captured step without CUDA: `capture` records nothing, each call runs the body with fresh gradients, as
    a replay of the graph does. Stands in for the one piece only a GPU runs, so that the loop around it (warm-up,
    learning rates loaded before each step, the schedule and the weight average counted after it) is tested here."""

    def capture(self, images: torch.Tensor, labels: torch.Tensor, flips: torch.Tensor | None) -> float:
        return 0.0

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor, flips: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        for param in self.parameters:
            param.grad = None
        return self.body(images, labels, flips)


class EagerForward(GraphedForward):
    """The captured validation forward without CUDA: each call runs the forward pass eagerly."""

    def capture(self, example: torch.Tensor) -> float:
        return 0.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)


def test_the_loop_around_a_replayed_step_trains_as_the_eager_loop(
    digits: LoadedData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3 epochs with a warm-up and cosine schedule and the weight average: equal to the eager loop but for float
    rounding (the learning rate as a float32 tensor). Measured: 2e-5 apart in epoch 1, 0.4% by epoch 3 (training
    loss); a replay that reads the learning rate one schedule step off is 1.3% apart in epoch 1 and 35% by epoch 2.
    (The weight average's count is not seen here: training loss does not read it, and validation drifts by a few
    of its 145 images between thread counts; test_weight_average_applied_with_a_tensor_weight... covers it.)"""
    import nas.train.loop

    monkeypatch.setattr(nas.train.loop, "GraphedStep", EagerReplay)
    monkeypatch.setattr(nas.train.loop, "GraphedForward", EagerForward)
    monkeypatch.setattr(nas.train.loop, "warm_up_on_side_stream", lambda step: step())
    monkeypatch.setattr(nas.train.loop, "graphs_unsupported", lambda **settings: None)
    recipe = Recipe(epochs=3, batch_size=64, lr=0.2, measure_latency=False, ema_decay=0.9)
    eager, replayed = off_and_graphs(digits, recipe, device="cpu")
    assert replayed.notes == [
        "compile=graphs: training step captured as a CUDA graph in 0.00 s after 3 eager steps",
        "compile=graphs: validation captured as a CUDA graph in 0.00 s",  # before epoch 2's validation
    ]
    assert replayed.history[0].train_loss == pytest.approx(eager.history[0].train_loss, rel=1e-3)
    for e, r in zip(eager.history, replayed.history, strict=True):  # validation: a few of 145 images flip either way
        assert r.train_loss == pytest.approx(e.train_loss, rel=0.02)

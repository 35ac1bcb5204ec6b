"""CSP mode (CSPDenseNet, "fusion last"): the wiring, module names and exact closed-form costs.

The tests parametrised over every mode (test_builder, test_cost, test_config) cover csp too;
these check what is particular to it: the bypass half, odd and tiny channel counts (c = 1 leaves
no bypass), and that autograd holds the dense part's copy of the input, not the whole input.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from nas.arch import MODES, ArchConfig, build_model
from nas.arch.blocks import CSPStage, DenseStage
from nas.arch.cost import count_flops, count_params, estimate
from nas.arch.parts import PartCost
from tests.conftest import tiny

CHANNELS = [1, 2, 7, 8]


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("c", CHANNELS)
def test_bypass_channels_reach_the_output_unchanged(c: int, batch: int) -> None:
    cfg = tiny("csp")
    stage = CSPStage(c, 2, cfg).train()
    x = torch.randn(batch, c, 6, 5, requires_grad=True)
    out = stage(x)
    split = c // 2
    assert out.shape == (batch, c + 2 * cfg.growth_rate, 6, 5)
    assert torch.equal(out[:, :split], x[:, :split])
    # The bypass does not feed the dense part, and the dense part's input is not the bypass.
    out[:, :split].sum().backward(retain_graph=True)
    assert x.grad is not None
    assert torch.equal(x.grad[:, :split], torch.ones_like(x.grad[:, :split]))
    assert torch.equal(x.grad[:, split:], torch.zeros_like(x.grad[:, split:]))
    x.grad = None
    out[:, split:].square().sum().backward()
    assert x.grad is not None and torch.equal(x.grad[:, :split], torch.zeros_like(x.grad[:, :split]))


def test_children_and_module_names() -> None:
    cfg = tiny("csp", init_features=7, block_config=(2, 1))
    model = build_model(cfg)
    stage = model.features.denseblock1
    assert isinstance(stage, CSPStage) and isinstance(stage.dense, DenseStage)
    width = (7 - 3) + 2 * cfg.growth_rate  # dense part 4 channels, two layers of k
    assert (stage.partial_transition.conv.in_channels, stage.partial_transition.conv.out_channels) == (width, width)
    assert stage.dense.denselayer1.norm1.num_features == 4
    names = {n for n, _ in model.named_parameters()}
    assert "features.denseblock1.dense.denselayer1.norm1.weight" in names
    assert "features.denseblock1.dense.denselayer2.conv2.weight" in names
    assert "features.denseblock1.partial_transition.norm.weight" in names
    assert "features.denseblock1.partial_transition.conv.weight" in names
    assert "features.transition1.conv.weight" in names
    assert MODES["csp"].block_prefix == "denseblock"


COST_CASES = [
    dict(),
    dict(bn_size=0),
    dict(init_features=1),  # no bypass in stage 1: a dense stage and its partial transition
    dict(init_features=1, bn_size=0, block_config=(1,)),
    dict(init_features=7, compression=0.7, block_config=(2, 1, 3)),  # odd widths at every stage
    dict(init_features=8, stem="imagenet", conv_bias=True, drop_rate=0.1),
    dict(growth_rate=5, bn_size=3, compression=1.0),
]


@pytest.mark.parametrize("overrides", COST_CASES, ids=str)
def test_closed_form_params_and_flops_equal_the_model_per_stage(overrides: dict[str, object]) -> None:
    cfg = tiny("csp", **overrides)
    size = (3, 32, 28) if cfg.stem == "imagenet" else (3, 12, 10)
    est = estimate(cfg, input_size=size)
    model = build_model(cfg, input_size=size)
    assert est.params == count_params(model)
    counted = count_flops(model, input_size=size)
    assert counted.unsupported == {}
    assert est.flops == counted.total  # exact, not just within the 1% other tests allow
    for part in est.parts:
        if part.kind == "stage":
            module = f"{MODES['csp'].block_prefix}{part.name.removeprefix('stage')}"
            assert part.params == count_params(model.features.get_submodule(module)), part.name
            assert part.flops == counted.by_module[f"features.{module}"], part.name


@pytest.mark.parametrize("overrides", [dict(init_features=1), dict(init_features=7, drop_rate=0.2)], ids=str)
def test_tiny_and_odd_widths_train_and_checkpoint_alike(overrides: dict[str, object]) -> None:
    cfg = tiny("csp", **overrides)
    normal = build_model(cfg).train()
    efficient = build_model(cfg.replace(memory_efficient=True)).train()
    efficient.load_state_dict(normal.state_dict())
    x = torch.randn(3, 3, 12, 12)
    outputs, grads = [], []
    for model in (normal, efficient):
        torch.manual_seed(7)  # same dropout draws in both
        out = model(x)
        nn.functional.cross_entropy(out, torch.tensor([0, 1, 2])).backward()
        outputs.append(out)
        grads.append([p.grad for p in model.parameters()])
    for name, p in normal.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient"
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)
    for g_normal, g_efficient in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(g_normal, g_efficient, rtol=1e-5, atol=1e-6)


def test_memory_efficient_checkpoints_the_dense_part() -> None:
    cfg = tiny("csp", init_features=8, growth_rate=5, block_config=(3,))  # no other tensor is 9 wide
    second_input = 4 + cfg.growth_rate  # concat the second dense layer's bottleneck reads

    def saved_widths(config: ArchConfig) -> set[int]:
        seen: set[int] = set()

        def pack(t: torch.Tensor) -> torch.Tensor:
            if t.dim() == 4:
                seen.add(t.shape[1])
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            build_model(config).train()(torch.randn(2, 3, 8, 8))
        return seen

    assert second_input in saved_widths(cfg)
    assert second_input not in saved_widths(cfg.replace(memory_efficient=True))


def _stage_held_bytes(stage: nn.Module, shape: tuple[int, ...]) -> int:
    """Bytes a training forward of one stage leaves held, its input made inside the window
    (so it counts if autograd keeps it) and its output excluded."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = stage(torch.randn(shape))
    return sum(e.self_cpu_memory_usage for e in prof.events()) - out.numel() * out.element_size()


@pytest.mark.parametrize("efficient", [False, True], ids=["normal", "efficient"])
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("c", [1, 7, 16])
def test_stage_memory_is_the_dense_part_copy_not_the_input(c: int, batch: int, efficient: bool) -> None:
    # At batch 1 a channel slice is already contiguous, so `.contiguous()` would return a view
    # that keeps the whole input alive; the stage copies instead, and the closed form counts that.
    cfg = tiny("csp", bn_size=0, memory_efficient=efficient)
    layers, h, w = 1, 16, 16
    part = PartCost("stage1", "stage", layers, c, c + layers * cfg.growth_rate, h, w)
    MODES["csp"].stage_cost(part, cfg, c, layers, h * w)
    predicted = part.activation_bytes_efficient if efficient else part.activation_bytes
    measured = _stage_held_bytes(CSPStage(c, layers, cfg).train(), (batch, c, h, w)) / batch
    # The input's bypass half would add floor(c/2) channels: 8 of 40 held at c = 16.
    assert predicted == pytest.approx(measured, rel=0.01)


def test_channels_last_input_keeps_its_layout() -> None:
    # The trainer runs CUDA models channels_last; the split must not fall back to NCHW copies.
    stage = CSPStage(7, 2, tiny("csp")).eval()
    x = torch.randn(2, 7, 6, 6)
    expected = stage(x)
    stage = stage.to(memory_format=torch.channels_last)
    out = stage(x.contiguous(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, expected)

"""The builder: every mode builds, trains (gradients reach every parameter) and round-trips."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from nas.arch import MODES, ArchConfig, build_model
from nas.arch.blocks import LayerUnit
from tests.conftest import VARIANTS, tiny


def _input(cfg: ArchConfig, batch: int = 3, size: int = 16) -> torch.Tensor:
    return torch.randn(batch, cfg.in_channels, size, size)


@pytest.mark.parametrize("mode", MODES)
def test_modes_table_width_equals_the_built_stage(mode: str) -> None:
    """The table's stage width (which the config, cost and transitions use) is what the stage emits."""
    cfg = tiny(mode, block_config=(3, 2))
    entry = MODES[mode]
    stage = entry.stage(10, 3, cfg)
    out = stage(torch.randn(2, 10, 8, 8))
    assert out.shape[1] == entry.stage_output(10, 3, cfg.growth_rate)
    names = [name for name, _ in build_model(cfg).features.named_children()]
    assert f"{entry.block_prefix}1" in names and f"{entry.block_prefix}2" in names


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
@pytest.mark.parametrize("mode", MODES)
def test_shape_finite_and_every_parameter_gets_a_gradient(mode: str, variant: dict[str, object]) -> None:
    cfg = tiny(mode, **variant)
    model = build_model(cfg, input_size=(3, 16, 16))
    x = _input(cfg)
    out = model(x)
    assert out.shape == (3, cfg.num_classes)
    assert torch.isfinite(out).all()
    nn.functional.cross_entropy(out, torch.tensor([0, 1, 2])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"{name} got an all-zero gradient"


@pytest.mark.parametrize("mode", MODES)
def test_state_dict_round_trip(mode: str) -> None:
    cfg = tiny(mode, stem="imagenet")
    model = build_model(cfg).eval()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    clone = build_model(cfg).eval()
    clone.load_state_dict(torch.load(buffer), strict=True)
    x = _input(cfg)
    assert torch.equal(model(x), clone(x))


@pytest.mark.parametrize("mode", MODES)
def test_no_transition_after_the_last_stage(mode: str) -> None:
    cfg = tiny(mode, block_config=(1, 1, 1))
    names = [n for n, _ in build_model(cfg).features.named_children()]
    assert [n for n in names if n.startswith("transition")] == ["transition1", "transition2"]
    assert names[-2:] == ["norm5", "relu5"]


@pytest.mark.parametrize("mode", MODES)
def test_layer_count_matches_block_config(mode: str) -> None:
    cfg = tiny(mode, block_config=(2, 3, 1))
    units = [m for m in build_model(cfg).modules() if isinstance(m, LayerUnit)]
    assert len(units) == 6


CUDA = pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))


@pytest.mark.parametrize("device", ["cpu", CUDA])
@pytest.mark.parametrize("variant", [dict(), dict(drop_rate=0.3), dict(stem="imagenet")], ids=str)
@pytest.mark.parametrize("mode", MODES)
def test_memory_efficient_matches_normal(
    mode: str, variant: dict[str, object], device: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Same kernels in both modes on CUDA: no autotuning, no TF32, deterministic cuDNN.
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    cfg = tiny(mode, **variant)
    normal = build_model(cfg).to(device).train()
    efficient = build_model(cfg.replace(memory_efficient=True)).to(device).train()
    efficient.load_state_dict(normal.state_dict())
    x = _input(cfg).to(device)
    outputs, grads = [], []
    for model in (normal, efficient):
        torch.manual_seed(7)  # same dropout draws in both
        inp = x.clone().requires_grad_(True)
        out = model(inp)
        out.square().sum().backward()
        outputs.append(out)
        grads.append([inp.grad] + [p.grad for p in model.parameters()])
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)
    for g_normal, g_efficient in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(g_normal, g_efficient, rtol=1e-5, atol=1e-6)


def test_memory_efficient_actually_checkpoints() -> None:
    # The equivalence test above would pass if the flag did nothing; this one would not.
    cfg = tiny("dense", memory_efficient=True)
    model = build_model(cfg).train()
    seen: list[torch.Size] = []
    concat_width = cfg.init_features + cfg.growth_rate  # input of the second layer of stage 1

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen.append(t.shape)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(_input(cfg).requires_grad_(True))
    assert all(s[1] != concat_width for s in seen if len(s) == 4)

    seen.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        build_model(cfg.replace(memory_efficient=False)).train()(_input(cfg))
    assert any(len(s) == 4 and s[1] == concat_width for s in seen)


def test_build_model_refuses_inputs_that_collapse() -> None:
    cfg = ArchConfig()
    with pytest.raises(ValueError, match="stage 3 works at 1x1"):
        build_model(cfg, input_size=(3, 20, 20))
    with pytest.raises(ValueError, match="config must be an ArchConfig"):
        build_model({"growth_rate": 12})  # type: ignore[arg-type]


def test_module_names_are_torchvision_style_in_dense_mode() -> None:
    names = {n for n, _ in build_model(ArchConfig(block_config=(1, 1))).named_parameters()}
    assert "features.denseblock1.denselayer1.norm1.weight" in names
    assert "features.denseblock1.denselayer1.conv2.weight" in names
    assert "features.transition1.conv.weight" in names
    assert "features.norm5.weight" in names
    assert "classifier.weight" in names


def test_modules_pick_no_device_or_dtype() -> None:
    model = build_model(tiny("dense")).to(torch.float64)
    out = model(torch.randn(2, 3, 16, 16, dtype=torch.float64))
    assert out.dtype == torch.float64

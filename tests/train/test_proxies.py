"""Zero-cost proxies: each against a hand computation on a tiny network, determinism per seed, the undefined
cases, and no global setting changed."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import nas.train.proxies as proxies_module
from nas.arch import ArchConfig
from nas.arch.cost import count_flops, count_params, estimate
from nas.arch.external import ExternalNet, resolve_baseline
from nas.data.datasets import LoadedData
from nas.errors import UsageError
from nas.train.proxies import (
    BASELINE_UNDEFINED,
    JACOB_COV_K,
    MIN_BATCH,
    PROXIES,
    ProxyUndefined,
    grad_norm,
    jacob_cov,
    jacob_cov_score,
    naswot,
    naswot_kernel,
    naswot_score,
    score_network,
    snip,
    synflow,
    zico,
    zico_score,
)
from tests.conftest import digits_net

ALL = list(PROXIES)


@pytest.fixture
def gen() -> Iterator[torch.Generator]:
    yield torch.Generator().manual_seed(7)


def _two_layer(gen: torch.Generator, *, bias: bool = False) -> nn.Sequential:
    """x (4) -> Linear(4, 3) -> ReLU -> Linear(3, 2), weights drawn from `gen`."""
    net = nn.Sequential(nn.Linear(4, 3, bias=bias), nn.ReLU(), nn.Linear(3, 2, bias=bias))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return net


def _linears(net: nn.Module) -> list[nn.Linear]:
    return [m for m in net.modules() if isinstance(m, nn.Linear)]


def test_registry_names_and_specs() -> None:
    assert ALL == ["params", "flops", "synflow", "snip", "grad_norm", "naswot", "zico", "jacob_cov"]
    for name, proxy in PROXIES.items():
        assert proxy.name == name and proxy.measures and proxy.paper and proxy.higher_is_better
        assert proxy.at_init == (name not in ("params", "flops"))


def test_synflow_of_a_linear_chain_is_twice_its_path_norm(gen: torch.Generator) -> None:
    """y = W2 W1 x, x = ones: R = 1^T |W2| |W1| 1 and dR/d|W1| = |W2|^T 1 1^T, so sum |W1| * dR/d|W1| = R, and
    likewise for W2: the score is 2R."""
    w1, w2 = torch.randn(3, 4, generator=gen), torch.randn(2, 3, generator=gen)
    first, last = nn.Linear(4, 3, bias=False), nn.Linear(3, 2, bias=False)
    net = nn.Sequential(first, last)
    with torch.no_grad():
        first.weight.copy_(w1)
        last.weight.copy_(w2)
    ones = torch.ones(4, dtype=torch.float64)
    path_norm = float(ones[:2] @ w2.abs().double() @ w1.abs().double() @ ones)
    assert synflow(model=net, inputs=torch.randn(5, 4, generator=gen)) == pytest.approx(2 * path_norm, rel=1e-12)
    assert torch.equal(first.weight, w1) and first.weight.dtype == torch.float32  # the caller's model untouched


def _hand_gradients(net: nn.Sequential, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """dL/dW1 and dL/dW2 of the mean cross-entropy of Linear-ReLU-Linear (no bias), by the chain rule."""
    w1, w2 = (m.weight.detach().double() for m in _linears(net))
    x = x.double()
    h = x @ w1.T
    a = h.clamp(min=0)
    z = a @ w2.T
    dz = (torch.softmax(z, dim=1) - nn.functional.one_hot(y, 2).double()) / len(y)
    dw2 = dz.T @ a
    dh = (dz @ w2) * (h > 0)
    return dh.T @ x, dw2


def test_grad_norm_and_snip_equal_the_chain_rule_by_hand(gen: torch.Generator) -> None:
    net = _two_layer(gen)
    x, y = torch.randn(6, 4, generator=gen), torch.tensor([0, 1, 1, 0, 1, 0])
    dw1, dw2 = _hand_gradients(net, x, y)
    w1, w2 = (m.weight.detach().double() for m in _linears(net))
    assert grad_norm(model=net, inputs=x, labels=y) == pytest.approx(float(dw1.norm() + dw2.norm()), rel=1e-5)
    expected_snip = float((w1 * dw1).abs().sum() + (w2 * dw2).abs().sum())
    assert snip(model=net, inputs=x, labels=y) == pytest.approx(expected_snip, rel=1e-5)
    assert all(m.weight.grad is None for m in _linears(net))  # the caller's model untouched


def test_naswot_kernel_counts_agreements_and_scores_its_log_determinant() -> None:
    codes = torch.tensor([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.bool)
    # K_ij = 4 units minus the Hamming distance: d(1,2) = 2, d(1,3) = 3, d(2,3) = 3.
    expected = torch.tensor([[4.0, 2.0, 1.0], [2.0, 4.0, 1.0], [1.0, 1.0, 4.0]], dtype=torch.float64)
    kernel = naswot_kernel(codes=codes)
    assert torch.equal(kernel, expected)
    # det = 4(16 - 1) - 2(8 - 1) + 1(2 - 4) = 44
    assert naswot_score(kernel=kernel) == pytest.approx(math.log(44), rel=1e-12)
    with pytest.raises(ProxyUndefined, match="singular"):
        naswot_score(kernel=naswot_kernel(codes=codes[[0, 0, 2]]))


def test_naswot_on_a_model_takes_every_relus_codes(gen: torch.Generator) -> None:
    first, second = nn.Linear(4, 16), nn.Linear(16, 16)
    x = torch.randn(5, 4, generator=gen)
    with torch.no_grad():
        h1 = first(x)
        h2 = second(h1.clamp(min=0))
    one_relu = nn.Sequential(first, nn.ReLU(), nn.Linear(16, 2))
    expected = naswot_score(kernel=naswot_kernel(codes=h1 > 0))
    assert naswot(model=one_relu, inputs=x) == pytest.approx(expected, rel=1e-12)
    two_relus = nn.Sequential(first, nn.ReLU(inplace=True), second, nn.ReLU(inplace=True))
    both = naswot_score(kernel=naswot_kernel(codes=torch.cat([h1 > 0, h2 > 0], dim=1)))
    assert naswot(model=two_relus, inputs=x) == pytest.approx(both, rel=1e-12)
    assert both != expected


def test_naswot_is_undefined_without_a_relu(gen: torch.Generator) -> None:
    net = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    with pytest.raises(ProxyUndefined, match=r"no nn\.ReLU"):
        naswot(model=net, inputs=torch.randn(5, 4, generator=gen))


def test_zico_score_on_hand_made_gradients() -> None:
    grads = {
        # weight 0: mean|g| 2, std 1 -> 2; weight 1: std 0, left out; weight 2: mean|g| 3, std 2 -> 1.5. Sum 3.5.
        "a": torch.tensor([[1.0, 2.0, 5.0], [3.0, 2.0, 1.0]]),
        # mean|g| (1, 3), std (1, 1): sum 4; kept 2-d, as a conv weight's gradient would be.
        "b": torch.tensor([[[0.0], [2.0]], [[2.0], [4.0]]]),
        "flat": torch.tensor([[1.0, -1.0], [1.0, -1.0]]),  # no weight varies: the layer is left out
    }
    assert zico_score(grads=grads) == pytest.approx(math.log(3.5) + math.log(4.0), rel=1e-12)
    with pytest.raises(ProxyUndefined):
        zico_score(grads={"flat": grads["flat"]})


def test_zico_on_a_model_takes_the_two_halves_as_two_batches(gen: torch.Generator) -> None:
    net = _two_layer(gen)
    x, y = torch.randn(6, 4, generator=gen), torch.tensor([0, 1, 1, 0, 1, 0])
    halves = [_hand_gradients(net, x[i : i + 3], y[i : i + 3]) for i in (0, 3)]
    grads = {name: torch.stack([h[k] for h in halves]) for k, name in enumerate(("w1", "w2"))}
    assert zico(model=net, inputs=x, labels=y) == pytest.approx(zico_score(grads=grads), rel=1e-4)


def _jacob_cov_by_hand(eigenvalues: list[float]) -> float:
    return -sum(math.log(v + JACOB_COV_K) + 1 / (v + JACOB_COV_K) for v in eigenvalues)


def test_jacob_cov_score_of_two_images_with_correlation_r() -> None:
    a = np.array([1.0, 2.0, 0.0, -1.0])
    b = np.array([2.0, 1.0, 1.0, 0.0])
    r = float(np.corrcoef(a, b)[0, 1])
    # [[1, r], [r, 1]] has eigenvalues 1 - r and 1 + r
    score = jacob_cov_score(jacobians=torch.tensor(np.stack([a, b])))
    assert score == pytest.approx(_jacob_cov_by_hand([1 - r, 1 + r]), rel=1e-12)


def test_jacob_cov_of_a_linear_map(gen: torch.Generator) -> None:
    """y = W x: every image's Jacobian of sum(y) is W^T 1, so the correlation matrix is all ones, with eigenvalues
    B (once) and 0 (B - 1 times)."""
    net = nn.Linear(3, 2, bias=False)
    batch = 4
    score = jacob_cov(model=net, inputs=torch.randn(batch, 3, generator=gen))
    assert score == pytest.approx(_jacob_cov_by_hand([batch] + [0.0] * (batch - 1)), rel=1e-9)
    with pytest.raises(ProxyUndefined, match="constant"):
        jacob_cov_score(jacobians=torch.ones(2, 3))


def _values(net: ArchConfig, data: LoadedData, seed: int) -> dict[str, float | None]:
    return {n: s.value for n, s in score_network(network=net, data=data, names=ALL, seed=seed, batch_size=16).items()}


def test_same_seed_same_values_on_a_digits_network(digits: LoadedData) -> None:
    net = digits_net("dense")
    first = _values(net, digits, seed=3)
    assert all(v is not None and math.isfinite(v) for v in first.values())
    assert _values(net, digits, seed=3) == first  # bit for bit on a CPU
    other = _values(net, digits, seed=4)
    assert other["synflow"] != first["synflow"] and other["snip"] != first["snip"]
    cost = estimate(net, input_size=digits.input_size)
    assert (first["params"], first["flops"]) == (cost.params, cost.flops)
    assert other["params"] == first["params"]


def test_scores_record_seconds_and_leave_global_state_alone(digits: LoadedData) -> None:
    torch.manual_seed(11)
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    with torch.no_grad():  # a caller without grad mode still gets gradients inside
        scores = score_network(network=digits_net("residual"), data=digits, names=ALL, seed=0, batch_size=8)
        assert not torch.is_grad_enabled()
    assert list(scores) == ALL
    for name, s in scores.items():
        assert s.name == name and s.undefined is None and s.value is not None and s.seconds > 0
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.get_default_dtype() == torch.float32 and torch.get_num_threads() == threads


def test_a_torchvision_baseline_has_counts_only(digits: LoadedData) -> None:
    baseline = resolve_baseline("torchvision:resnet18", in_channels=1, num_classes=10)
    scores = score_network(network=baseline, data=digits, names=ALL, seed=0, batch_size=8)
    assert isinstance(baseline, ExternalNet)
    built = baseline.build()
    assert scores["params"].value == count_params(built)
    assert scores["flops"].value == count_flops(built, input_size=digits.input_size).total
    for name in ALL[2:]:
        assert scores[name].value is None and scores[name].undefined == BASELINE_UNDEFINED


def test_undefined_and_non_finite_are_said_not_returned(digits: LoadedData, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_relu(config: ArchConfig, *, input_size: tuple[int, int, int]) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.Tanh())

    monkeypatch.setattr(proxies_module, "build_model", no_relu)
    scores = score_network(network=digits_net(), data=digits, names=["naswot", "snip"], seed=0, batch_size=8)
    assert scores["naswot"].value is None and "no nn.ReLU" in (scores["naswot"].undefined or "")
    assert scores["snip"].value is not None

    def overflowing(config: ArchConfig, *, input_size: tuple[int, int, int]) -> nn.Module:
        linear = nn.Linear(64, 10, bias=False)
        nn.init.constant_(linear.weight, math.inf)
        return nn.Sequential(nn.Flatten(), linear)

    monkeypatch.setattr(proxies_module, "build_model", overflowing)
    scores = score_network(network=digits_net(), data=digits, names=["synflow"], seed=0, batch_size=8)
    assert scores["synflow"].value is None and scores["synflow"].undefined == "synflow is not finite (inf)"


def test_bad_arguments_are_refused(digits: LoadedData) -> None:
    with pytest.raises(UsageError, match=r"unknown proxy 'snipp' \(valid: params, flops, synflow"):
        score_network(network=digits_net(), data=digits, names=["snipp"], seed=0)
    for batch_size in (MIN_BATCH - 1, len(digits.train) + 1):
        with pytest.raises(UsageError, match="batch_size"):
            score_network(network=digits_net(), data=digits, names=["snip"], seed=0, batch_size=batch_size)
    with pytest.raises(UsageError, match="seed"):
        score_network(network=digits_net(), data=digits, names=["snip"], seed=-1)
    with pytest.raises(UsageError, match="names"):
        score_network(network=digits_net(), data=digits, names="snip", seed=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_scores_are_the_cpus_and_the_callers_cuda_rng_is_left_alone(digits: LoadedData) -> None:
    """The same initial weights and minibatch on either device (both drawn on the CPU), so the same scores up to
    the GPU's arithmetic (TF32 convolutions, other summation orders)."""
    net = digits_net("dense")
    torch.cuda.manual_seed(5)
    cuda_rng = torch.cuda.get_rng_state()
    on_gpu = score_network(network=net, data=digits, names=ALL, seed=3, device="cuda")
    assert torch.equal(torch.cuda.get_rng_state(), cuda_rng)
    on_cpu = score_network(network=net, data=digits, names=ALL, seed=3, device="cpu")
    for name in ALL:
        gpu, cpu = on_gpu[name], on_cpu[name]
        assert gpu.undefined is None and gpu.value is not None and cpu.value is not None and gpu.seconds > 0, name
        assert gpu.value == pytest.approx(cpu.value, rel=2e-2), name
    again = score_network(network=net, data=digits, names=ALL, seed=3, device="cuda")
    assert {n: s.value for n, s in again.items()} == pytest.approx({n: s.value for n, s in on_gpu.items()}, rel=1e-4)

"""Zero-cost proxies: scores of a network at its initialisation, from one seeded minibatch, before any training.

A proxy is cheap where a trial is dear, so a search could rank candidates by one before training any. Every
proxy lives in `PROXIES` (name -> `Proxy`); `score_network` measures a network by the proxies asked for, each on
the same initial weights (the seed's) and the same minibatch (one seeded draw from the training split, made
float as the trainer makes it, without augmentation), each timed alone. The naive ones, `params` and `flops`,
are the network's counts as a trial records them. Definitions follow the papers' code: Abdelfattah et al.
(ICLR 2021, "Zero-Cost Proxies for Lightweight NAS") for synflow, snip, grad_norm and jacob_cov, Mellor et al.
(ICML 2021) for naswot, Li et al. (ICLR 2023) for zico. Higher is better for every proxy here.

A proxy with no value for a network says why (`ProxyScore.undefined`) instead of returning a number. Each proxy
works on its own copy of the model; the call leaves torch's random state, default dtype, grad mode and threads as
it found them (the trainer and the tests share the process).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nas.arch import ArchConfig, build_model
from nas.arch.cost import network_counts
from nas.arch.external import ExternalNet
from nas.checks import is_int
from nas.data.augment import channel_tensor, prepare_batch
from nas.data.batches import batches
from nas.data.datasets import LoadedData
from nas.errors import UsageError, bad_value
from nas.train.measure import resolve_device, synchronize

# zico's two halves need 2 images each: batch norm in train mode cannot normalise one image of 1x1 features.
MIN_BATCH = 4
JACOB_COV_K = 1e-5  # Mellor et al. 2020 (v1): added to each eigenvalue of the correlation matrix
BASELINE_UNDEFINED = (
    "a torchvision baseline keeps torchvision's own initialisation, so a score at initialisation would measure "
    "that scheme as much as the network; proxies score this project's networks at theirs (params and flops apply)"
)


class ProxyUndefined(Exception):
    """A proxy has no value for this network; the message says why."""


@dataclass(frozen=True)
class Subject:
    """What a proxy measures: the network and its input size; for a proxy at initialisation, the model at its
    initial weights (on the device) and the minibatch (normalised float images, int64 labels)."""

    network: ArchConfig | ExternalNet
    input_size: tuple[int, int, int]  # (C, H, W)
    model: nn.Module | None = None
    inputs: Tensor | None = None
    labels: Tensor | None = None

    def at_init(self) -> tuple[nn.Module, Tensor, Tensor]:
        assert self.model is not None and self.inputs is not None and self.labels is not None
        return self.model, self.inputs, self.labels


@dataclass(frozen=True)
class Proxy:
    """One zero-cost proxy: what it measures, where it comes from, which way is better, and how it is computed."""

    name: str
    measures: str  # one line
    paper: str
    higher_is_better: bool
    at_init: bool  # needs the model at initialisation and the minibatch (False: the network's counts)
    score: Callable[[Subject], float]


@dataclass(frozen=True)
class ProxyScore:
    """One proxy's result for one network."""

    name: str
    value: float | None  # None exactly when `undefined` says why
    seconds: float  # wall time of this proxy alone (its copy of the model included; building it and the batch not)
    undefined: str | None = None


def _weights(model: nn.Module) -> list[Tensor]:
    """The conv and linear weights: the parameters the papers' code scores (biases and batch norm left out)."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _grads(output: Tensor, params: Sequence[Tensor]) -> list[Tensor]:
    """d output / d each parameter; zeros for one the output does not reach."""
    found = torch.autograd.grad(output, list(params), allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, found, strict=True)]


def _total(parts: Sequence[Tensor]) -> float:
    return float(torch.stack([p.to(torch.float64) for p in parts]).sum().item()) if parts else 0.0


def synflow(*, model: nn.Module, inputs: Tensor) -> float:
    """Tanaka et al. 2020, as Abdelfattah et al. use it: the model in eval mode and float64 with every parameter
    replaced by its absolute value, R = sum of the output for one all-ones image, and the score the sum over conv
    and linear weights of |theta * dR/dtheta| (their `get_layer_metric_array`; biases and batch norm left out).
    Data-free: `inputs` gives only the image shape."""
    model = copy.deepcopy(model).eval().double()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    ones = torch.ones((1, *inputs.shape[1:]), dtype=torch.float64, device=inputs.device)
    weights = _weights(model)
    with torch.enable_grad():
        grads = _grads(model(ones).sum(), weights)
    return _total([(w * g).abs().sum() for w, g in zip(weights, grads, strict=True)])


def _loss_grads(model: nn.Module, inputs: Tensor, labels: Tensor, params: Sequence[Tensor]) -> list[Tensor]:
    with torch.enable_grad():
        return _grads(F.cross_entropy(model(inputs), labels), params)


def snip(*, model: nn.Module, inputs: Tensor, labels: Tensor) -> float:
    """Lee et al. 2019 (connection sensitivity), as Abdelfattah et al.: in train mode, L the cross-entropy of the
    minibatch, the sum over conv and linear weights of |theta * dL/dtheta|."""
    model = copy.deepcopy(model).train()
    weights = _weights(model)
    grads = _loss_grads(model, inputs, labels, weights)
    return _total([(w * g).abs().sum() for w, g in zip(weights, grads, strict=True)])


def grad_norm(*, model: nn.Module, inputs: Tensor, labels: Tensor) -> float:
    """Abdelfattah et al.: in train mode, the sum over conv and linear layers of the L2 norm of dL/dW, L the
    cross-entropy of the minibatch."""
    model = copy.deepcopy(model).train()
    weights = _weights(model)
    return _total([g.norm() for g in _loss_grads(model, inputs, labels, weights)])


def naswot_kernel(*, codes: Tensor) -> Tensor:
    """K = C C^T + (1-C)(1-C)^T for binary codes C (images x units): K_ij counts the units where images i and j
    agree (units minus their Hamming distance). Float64, so counts stay exact."""
    c = codes.flatten(1).to(torch.float64)
    return c @ c.T + (1 - c) @ (1 - c).T


def naswot_score(*, kernel: Tensor) -> float:
    """log |det K| (slogdet), as Mellor et al.; undefined when K is singular (two images with one code, say)."""
    sign, logabs = torch.linalg.slogdet(kernel)
    if sign.item() == 0:
        raise ProxyUndefined("the activation-code kernel is singular (two images with the same binary code, say)")
    return float(logabs.item())


def naswot(*, model: nn.Module, inputs: Tensor) -> float:
    """Mellor et al. (ICML 2021, "NAS without training"): in train mode, one forward pass; every nn.ReLU's output
    per image coded as (output > 0), the codes of all ReLUs taken together, and the score `naswot_score` of their
    kernel. Undefined for a model with no nn.ReLU module."""
    model = copy.deepcopy(model).train()
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ProxyUndefined("the network has no nn.ReLU module to take binary activation codes from")
    n = inputs.shape[0]
    kernel = torch.zeros((n, n), dtype=torch.float64, device=inputs.device)

    def add_codes(module: nn.Module, args: object, output: Tensor) -> None:
        kernel.add_(naswot_kernel(codes=output.flatten(1) > 0))  # the kernel of all codes is the sum of the parts

    handles = [r.register_forward_hook(add_codes) for r in relus]
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return naswot_score(kernel=kernel)


def zico_score(*, grads: Mapping[str, Tensor]) -> float:
    """Li et al. (ICLR 2023), their `caculate_zico`: `grads[layer]` stacks one gradient of the layer's weights per
    batch (batches first); per layer, over the weights whose std across the batches is not 0, the sum of
    mean|g| / std(g) (population std, as numpy's), and the score the sum over layers of its log (a layer whose
    sum is 0 left out, as theirs). Undefined when no layer is left."""
    logs = []
    for g in grads.values():
        flat = g.flatten(1).to(torch.float64)
        std = flat.std(dim=0, correction=0)
        keep = std != 0
        ratio = (flat.abs().mean(dim=0)[keep] / std[keep]).sum()
        logs.append(torch.where(ratio > 0, ratio.log(), torch.nan))
    values = torch.stack(logs) if logs else torch.zeros(0, dtype=torch.float64)
    used = ~values.isnan()
    if not bool(used.any().item()):
        raise ProxyUndefined("no layer's gradients vary between the batches")
    return float(values[used].sum().item())


def zico(*, model: nn.Module, inputs: Tensor, labels: Tensor) -> float:
    """Li et al. (ICLR 2023, "ZiCo"): in train mode, the cross-entropy's gradient of every conv and linear weight
    on each half of the minibatch. The paper's code takes one gradient per batch of a data loader and the paper
    uses two batches; here the two halves are those two batches (so 64 images give two batches of 32). Scored by
    `zico_score`."""
    model = copy.deepcopy(model).train()
    weights = _weights(model)
    halves = [
        _loss_grads(model, x, y, weights)
        for x, y in zip(torch.tensor_split(inputs, 2), torch.tensor_split(labels, 2), strict=True)
    ]
    return zico_score(grads={str(i): torch.stack([h[i] for h in halves]) for i in range(len(weights))})


def jacob_cov_score(*, jacobians: Tensor) -> float:
    """Mellor et al. 2020 (v1), as Abdelfattah et al.: the correlation matrix of the per-image Jacobians (images x
    features), its eigenvalues l, and -sum(log(l + k) + 1/(l + k)) with k = 1e-5. Float64."""
    corr = torch.corrcoef(jacobians.flatten(1).to(torch.float64))
    if not bool(torch.isfinite(corr).all().item()):
        raise ProxyUndefined("an image's Jacobian is constant, so the correlation matrix is undefined")
    shifted = torch.linalg.eigvalsh(corr) + JACOB_COV_K
    return float(-(shifted.log() + 1 / shifted).sum().item())


def jacob_cov(*, model: nn.Module, inputs: Tensor) -> float:
    """Mellor et al. 2020 (v1): in train mode (as Abdelfattah et al.), the gradient of the output summed over the
    minibatch with respect to each input image, flattened per image, scored by `jacob_cov_score`."""
    model = copy.deepcopy(model).train()
    x = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (jacobians,) = torch.autograd.grad(model(x).sum(), x)
    return jacob_cov_score(jacobians=jacobians)


def _params(s: Subject) -> float:
    return float(network_counts(s.network, input_size=s.input_size)[0])  # as the trainer counts them


def _flops(s: Subject) -> float:
    return float(network_counts(s.network, input_size=s.input_size)[1])


def _at_init(fn: Callable[..., float], *, labels: bool) -> Callable[[Subject], float]:
    def score(s: Subject) -> float:
        model, inputs, y = s.at_init()
        return fn(model=model, inputs=inputs, labels=y) if labels else fn(model=model, inputs=inputs)

    return score


_ABDELFATTAH = "Abdelfattah et al., ICLR 2021, Zero-Cost Proxies for Lightweight NAS"
PROXIES: dict[str, Proxy] = {
    p.name: p
    for p in (
        Proxy("params", "the number of parameters (the naive proxy)", "ZiCo's baseline (Li et al., ICLR 2023)",
              higher_is_better=True, at_init=False, score=_params),
        Proxy("flops", "multiply-adds per image, fvcore's convention (the naive proxy)", _ABDELFATTAH,
              higher_is_better=True, at_init=False, score=_flops),
        Proxy("synflow", "|theta * dR/dtheta| summed, R the output of |weights| on an all-ones image, float64",
              f"Tanaka et al., NeurIPS 2020, as {_ABDELFATTAH}",
              higher_is_better=True, at_init=True, score=_at_init(synflow, labels=False)),
        Proxy("snip", "|theta * dL/dtheta| summed over conv and linear weights, L the minibatch's cross-entropy",
              f"Lee et al., ICLR 2019, as {_ABDELFATTAH}",
              higher_is_better=True, at_init=True, score=_at_init(snip, labels=True)),
        Proxy("grad_norm", "the L2 norms of dL/dW summed over conv and linear layers", _ABDELFATTAH,
              higher_is_better=True, at_init=True, score=_at_init(grad_norm, labels=True)),
        Proxy("naswot", "log|det| of the kernel of the images' ReLU binary codes (Hamming agreement)",
              "Mellor et al., ICML 2021, Neural Architecture Search without Training",
              higher_is_better=True, at_init=True, score=_at_init(naswot, labels=False)),
        Proxy("zico", "sum over layers of log(sum of mean|g| / std(g)) over two half-batches' gradients",
              "Li et al., ICLR 2023, ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients",
              higher_is_better=True, at_init=True, score=_at_init(zico, labels=True)),
        Proxy("jacob_cov", "-sum(log(l+k) + 1/(l+k)) over eigenvalues l of the input Jacobians' correlation",
              f"Mellor et al., arXiv 2006.04647 v1, 2020, as {_ABDELFATTAH}",
              higher_is_better=True, at_init=True, score=_at_init(jacob_cov, labels=False)),
    )
}  # fmt: skip


def minibatch(*, data: LoadedData, batch_size: int, seed: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """One seeded draw of `batch_size` training images on `device`, normalised as the trainer does (no
    augmentation: a proxy scores the network, not one draw of crops and flips), with their labels."""
    generator = torch.Generator().manual_seed(seed)  # on the CPU: the same images whatever the device
    images, labels = next(batches(data.train, batch_size=batch_size, device=device, shuffle=True, generator=generator))
    mean, std = channel_tensor(data.mean, device), channel_tensor(data.std, device)
    return prepare_batch(images, mean=mean, std=std, augment=None), labels


def _seed(seed: int, device: torch.device) -> None:
    """Seed the generators the proxies draw from (dropout in train mode, initialisation on the CPU)."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


def _check(network: object, data: object, names: object, seed: object, batch_size: object) -> list[str]:
    if not isinstance(network, (ArchConfig, ExternalNet)):
        raise bad_value("score_network", "network", network, "an ArchConfig or an ExternalNet")
    if not isinstance(data, LoadedData):
        raise bad_value("score_network", "data", data, "a LoadedData (nas.data.datasets.load_data)")
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise bad_value("score_network", "names", names, f"a list of proxy names from {', '.join(PROXIES)}")
    for name in names:
        if name not in PROXIES:
            raise UsageError(
                f"unknown proxy {name!r} (valid: {', '.join(PROXIES)})",
                owner="score_network",
                field="names",
                value=name,
                allowed=f"choose from {', '.join(PROXIES)}",
            )
    if not is_int(seed) or seed < 0:  # type: ignore[operator]
        raise bad_value("score_network", "seed", seed, "an integer >= 0")
    if not is_int(batch_size) or not MIN_BATCH <= batch_size <= len(data.train):  # type: ignore[operator]
        raise bad_value(
            "score_network",
            "batch_size",
            batch_size,
            f"an integer from {MIN_BATCH} (two images in each half-batch of zico) to the training split's "
            f"{len(data.train)}",
        )
    return list(dict.fromkeys(names))


def score_network(
    *,
    network: ArchConfig | ExternalNet,
    data: LoadedData,
    names: Sequence[str],
    seed: int,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> dict[str, ProxyScore]:
    """Each proxy of `names` for `network` at the initialisation `seed` gives it, on one minibatch `seed` draws
    from `data`'s training split; by name, in the order asked. The same seed gives the same values (bit for bit
    on a CPU). A torchvision baseline has params and flops only (`BASELINE_UNDEFINED`)."""
    wanted = [PROXIES[n] for n in _check(network, data, names, seed, batch_size)]
    dev = resolve_device(device)
    subject = Subject(network, data.input_size)
    rng_devices = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):  # the caller's random state comes back as it was
        if isinstance(network, ArchConfig) and any(p.at_init for p in wanted):
            _seed(seed, dev)
            model = build_model(network, input_size=data.input_size).to(dev)
            inputs, labels = minibatch(data=data, batch_size=batch_size, seed=seed, device=dev)
            subject = replace(subject, model=model, inputs=inputs, labels=labels)
        return {p.name: _run(p, subject, seed, dev) for p in wanted}


def _run(proxy: Proxy, subject: Subject, seed: int, device: torch.device) -> ProxyScore:
    if proxy.at_init and subject.model is None:
        return ProxyScore(proxy.name, None, 0.0, BASELINE_UNDEFINED)
    _seed(seed, device)  # each proxy draws the same dropout masks whichever ran before it
    synchronize(device)
    started = time.perf_counter()
    value: float | None
    try:
        value, why = proxy.score(subject), None
    except ProxyUndefined as undefined:
        value, why = None, str(undefined)
    synchronize(device)
    seconds = time.perf_counter() - started
    if value is not None and not math.isfinite(value):
        value, why = None, f"{proxy.name} is not finite ({value})"
    return ProxyScore(proxy.name, value, seconds, why)


__all__ = [
    "BASELINE_UNDEFINED",
    "JACOB_COV_K",
    "MIN_BATCH",
    "PROXIES",
    "Proxy",
    "ProxyScore",
    "ProxyUndefined",
    "Subject",
    "grad_norm",
    "jacob_cov",
    "jacob_cov_score",
    "minibatch",
    "naswot",
    "naswot_kernel",
    "naswot_score",
    "score_network",
    "snip",
    "synflow",
    "zico",
    "zico_score",
]

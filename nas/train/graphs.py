"""Whole-step CUDA graphs (recipe `compile = "graphs"`): the training step captured once, then replayed.

The networks a search draws are small and deep: each step is hundreds of tiny kernels, and the GPU waits on
Python and kernel launches, not arithmetic (docs/architecture.md, measured anchors: CUDA graphs took
DenseNet-BC-100 from 6,492 to 10,867 img/s on an H200). `torch.compile(mode="reduce-overhead")` graphs the
step too, but costs 66-74 s of compiling per network, more than a short trial. Here the whole step
(augmentation on the device, forward, loss, backward, the SGD update, the weight average) is captured with
`torch.cuda.graph` after a few eager warm-up steps on a side stream, and every later step copies its batch
into static buffers and replays it: one launch per step.

What a captured step cannot read from Python each step lives in device tensors written before each replay:
each parameter group's learning rate (torch's own SGD turns a tensor learning rate into a Python number,
which a capture cannot take, hence `TensorLrSGD`) and the weight average's warm-up weight. Validation's forward
pass is captured too (`GraphedForward`, after one eager validation), at one batch shape: the last partial batch
is padded to it. What cannot be captured runs eagerly with the reason as a note (`graphs_unsupported`, and any
error during capture), never as a failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

WARMUP_STEPS = 3  # eager steps before the capture: cuDNN and cuBLAS pick their kernels, lazy state is made

StepBody = Callable[[Tensor, Tensor, Tensor | None], tuple[Tensor, Tensor]]  # (images, labels, flips) -> (loss, logits)


def graphs_unsupported(*, device: torch.device, resident: bool, optimizer: str, schedule: str) -> str | None:
    """Why an attempt cannot train with a captured step (it trains eagerly, with this as its note), or None."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device, not {device.type}"
    if not resident:
        return "the training data streams from disk, so its batches are not on the GPU to be captured"
    if optimizer != "sgd":
        return f"only the SGD step is captured so far, not {optimizer}"
    if schedule == "onecycle":
        return "the one-cycle schedule changes SGD's momentum every step, which a captured step cannot follow"
    return None


class TensorLrSGD:
    """The update of `torch.optim.SGD` (momentum, Nesterov, per-group weight decay, no dampening) with each
    parameter group's learning rate read from a device tensor, so that a captured step follows the schedule.

    It shares the optimizer's parameter groups and momentum buffers, so eager steps of the optimizer itself and
    steps of this one can alternate; `load_lrs` copies the groups' current learning rates (which the scheduler
    writes) into the tensors before each step.
    """

    def __init__(self, opt: torch.optim.SGD) -> None:
        if not isinstance(opt, torch.optim.SGD):
            raise TypeError(f"TensorLrSGD: torch.optim.SGD is required, not {type(opt).__name__}")
        for group in opt.param_groups:
            if group["dampening"] or group["maximize"]:
                raise ValueError("TensorLrSGD: dampening and maximize are not supported")
        self.opt = opt
        device = opt.param_groups[0]["params"][0].device
        self.lrs = [torch.tensor(float(group["lr"]), device=device) for group in opt.param_groups]

    def load_lrs(self) -> None:
        for lr, group in zip(self.lrs, self.opt.param_groups, strict=True):
            lr.fill_(float(group["lr"]))

    @torch.no_grad()
    def step(self) -> None:
        for lr, group in zip(self.lrs, self.opt.param_groups, strict=True):
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if group["weight_decay"]:
                grads = list(torch._foreach_add(grads, params, alpha=group["weight_decay"]))
            momentum = group["momentum"]
            if momentum:
                bufs = [self._buffer(p) for p in params]
                torch._foreach_mul_(bufs, momentum)
                torch._foreach_add_(bufs, grads)
                grads = list(torch._foreach_add(grads, bufs, alpha=momentum)) if group["nesterov"] else bufs
            torch._foreach_sub_(params, torch._foreach_mul(grads, lr))

    def _buffer(self, param: Tensor) -> Tensor:
        """The parameter's momentum buffer; a new one is zero, which gives torch's first step (buffer = gradient)."""
        state = self.opt.state[param]
        if state.get("momentum_buffer") is None:
            state["momentum_buffer"] = torch.zeros_like(param)
        buffer: Tensor = state["momentum_buffer"]
        return buffer


class GraphedStep:
    """One training step captured as a CUDA graph, replayed from static input buffers.

    `body` runs forward, loss, backward and the parameter updates, reading only its arguments and device
    tensors. The gradients of `parameters` are set to None before the capture, so that backward allocates them
    in the graph's memory pool and every replay writes them afresh (never adding to the last step's).
    `generator` is the attempt's random stream, registered so that each replay draws new augmentations.
    """

    def __init__(self, body: StepBody, *, parameters: list[Tensor], generator: torch.Generator) -> None:
        self.body, self.parameters, self.generator = body, parameters, generator
        self.graph: torch.cuda.CUDAGraph | None = None
        self.inputs: tuple[Tensor, Tensor, Tensor | None] | None = None
        self.outputs: tuple[Tensor, Tensor] | None = None

    def capture(self, images: Tensor, labels: Tensor, flips: Tensor | None) -> float:
        """Capture the step for batches shaped like these; returns the seconds it took (nothing is trained)."""
        start = time.perf_counter()
        self.inputs = (images.clone(), labels.clone(), None if flips is None else flips.clone())
        for param in self.parameters:
            param.grad = None
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(self.generator)
        inputs = self.inputs
        self.outputs = _capture(graph, lambda: self.body(*inputs))
        self.graph = graph
        return time.perf_counter() - start

    def __call__(self, images: Tensor, labels: Tensor, flips: Tensor | None) -> tuple[Tensor, Tensor]:
        """One training step on this batch: (loss, logits), in buffers the next call overwrites."""
        if self.graph is None or self.inputs is None or self.outputs is None:
            raise RuntimeError("GraphedStep: capture() first")
        static_images, static_labels, static_flips = self.inputs
        static_images.copy_(images, non_blocking=True)
        static_labels.copy_(labels, non_blocking=True)
        if static_flips is not None and flips is not None:
            static_flips.copy_(flips, non_blocking=True)
        self.graph.replay()
        return self.outputs


class GraphedForward:
    """A forward pass, prepared images to float logits, captured as a CUDA graph at one batch shape: validation
    replays it batch after batch. The model's weights and statistics are read where they live, so the capture
    follows training."""

    def __init__(self, forward: Callable[[Tensor], Tensor]) -> None:
        self.forward = forward
        self.graph: torch.cuda.CUDAGraph | None = None
        self.input: Tensor | None = None
        self.output: Tensor | None = None

    def capture(self, example: Tensor) -> float:
        """Capture for inputs shaped like `example`; returns the seconds it took."""
        start = time.perf_counter()
        self.input = static = example.clone()
        graph = torch.cuda.CUDAGraph()
        with torch.no_grad():
            self.output = _capture(graph, lambda: self.forward(static))
        self.graph = graph
        return time.perf_counter() - start

    def __call__(self, x: Tensor) -> Tensor:
        """The logits of this batch, in a buffer the next call overwrites."""
        if self.graph is None or self.input is None or self.output is None:
            raise RuntimeError("GraphedForward: capture() first")
        self.input.copy_(x, non_blocking=True)
        self.graph.replay()
        return self.output


def _capture(graph: torch.cuda.CUDAGraph, body: Callable[[], Any]) -> Any:
    """Capture `body` into `graph`. Its own capture stream, and only this thread held to capture's rules: trials of
    other threads may allocate meanwhile (nas.train.sharing)."""
    torch.cuda.synchronize()
    with torch.cuda.graph(graph, stream=torch.cuda.Stream(), capture_error_mode="thread_local"):
        result = body()
    torch.cuda.synchronize()
    return result


def warm_up_on_side_stream(step: Callable[[], tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Run one eager step on a side stream (what a later capture expects of the steps before it)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        result = step()
    torch.cuda.current_stream().wait_stream(side)
    return result

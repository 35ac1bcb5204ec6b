"""The objective registry: every number a study can optimise, in one table.

A study file lists objective names; everything else about an objective (its direction, unit, how
it is measured, whether a CPU can measure it, whether it is known before training, how a report
labels its axis) is read here. Adding an objective is one entry below (docs/architecture.md).
Values are per trial: accuracy on the validation split (searches never read the test split),
counted FLOPs (fvcore's convention: one multiply-add = 1) and parameters, batch-1 latency, peak
training memory on the GPU, training wall time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nas.arch.cost import human
from nas.train.results import TrialResult

# The names other modules use when they mean one objective in particular.
ACCURACY = "val_accuracy"
FLOPS = "flops"
PARAMS = "params"
LATENCY = "latency_ms"
PEAK_MEMORY = "peak_memory"
TRAIN_TIME = "train_time"


def _peak_memory(result: TrialResult) -> float | None:
    # Only CUDA's peak is the trial's own; a CPU process's peak RSS never goes down.
    return result.peak_memory_bytes if result.peak_memory_kind == "cuda_max_allocated" else None


@dataclass(frozen=True)
class ObjectiveSpec:
    """One objective a study can list."""

    name: str
    direction: str  # "maximize" or "minimize"
    unit: str
    measured: str  # how the number comes about, for docs and reports
    label: str  # a report's axis title
    read: Callable[[TrialResult], float | None]  # the trial's value from its training result (None: not measured)
    cpu: bool = True  # False: only a CUDA device measures it (a CPU process has no per-trial peak)
    before_training: bool = False  # known from the closed-form cost, so a candidate can be judged untrained
    panel_when_measured: bool = False  # reports draw its front whenever some trial measured it
    log_axis: bool = False
    requires: tuple[str, ...] = ()  # Recipe switches that must be on for it to be measured
    brief: Callable[[float], str] | None = None  # how a progress line shows a value (default: 3 digits and unit)

    def show(self, value: float) -> str:
        """The value with its unit, short enough for a progress line."""
        return self.brief(value) if self.brief is not None else f"{value:.3g} {self.unit}"


OBJECTIVES: dict[str, ObjectiveSpec] = {
    o.name: o
    for o in [
        ObjectiveSpec(
            ACCURACY,
            "maximize",
            "fraction",
            "best validation accuracy over the trial's epochs",
            "validation accuracy",
            lambda r: r.best_val_accuracy if r.best_val_accuracy is not None else 0.0,
            brief=lambda v: f"val {v:.1%}",
        ),
        ObjectiveSpec(
            FLOPS,
            "minimize",
            "FLOPs",
            "closed-form count per image, fvcore's convention (fvcore for torchvision baselines)",
            "FLOPs (fvcore: 1 multiply-add = 1)",
            lambda r: r.flops,
            before_training=True,
            log_axis=True,
            brief=lambda v: f"{human(v)} FLOPs",
        ),
        ObjectiveSpec(
            PARAMS,
            "minimize",
            "parameters",
            "closed-form count (the built model's for torchvision baselines)",
            "parameters",
            lambda r: r.params,
            before_training=True,
            log_axis=True,
            brief=lambda v: f"{human(v)} params",
        ),
        ObjectiveSpec(
            LATENCY,
            "minimize",
            "ms",
            "median eval forward time at batch 1 after warm-up",
            "latency (ms)",
            lambda r: r.latency_ms_batch1,
            panel_when_measured=True,
            requires=("measure_latency",),
            brief=lambda v: f"{v:.3g} ms latency",
        ),
        ObjectiveSpec(
            PEAK_MEMORY,
            "minimize",
            "bytes",
            "CUDA max allocated memory while training",
            "peak training memory",
            _peak_memory,
            cpu=False,
            panel_when_measured=True,
            brief=lambda v: f"{v / 2**20:,.0f} MiB peak",
        ),
        ObjectiveSpec(
            TRAIN_TIME,
            "minimize",
            "s",
            "wall time of the whole trial (training, validation, measurement)",
            "training time (s)",
            lambda r: r.wall_seconds,
            brief=lambda v: f"{v:.1f} s training",
        ),
    ]
}
# Costs known before training, in registry order: what rejection and Pareto-aware stopping compare.
COSTS_BEFORE_TRAINING = tuple(name for name, o in OBJECTIVES.items() if o.before_training)
# Costs only training measures.
MEASURED_COSTS = tuple(name for name, o in OBJECTIVES.items() if name != ACCURACY and not o.before_training)


def objective_values(result: TrialResult) -> dict[str, float]:
    """Every objective the result measured, by name (counts stay integers)."""
    values = {name: o.read(result) for name, o in OBJECTIVES.items()}
    return {name: v for name, v in values.items() if v is not None}


__all__ = [
    "ACCURACY",
    "COSTS_BEFORE_TRAINING",
    "FLOPS",
    "LATENCY",
    "MEASURED_COSTS",
    "OBJECTIVES",
    "PARAMS",
    "PEAK_MEMORY",
    "TRAIN_TIME",
    "ObjectiveSpec",
    "objective_values",
]

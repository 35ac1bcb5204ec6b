"""What training produces: one epoch's metrics, one attempt's outcome, and the trial's result.

A trial makes one or two attempts (the second after running out of memory); each attempt fills an
`AttemptResult` of its own, and the trial's `TrialResult` is built from the last one.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float  # NaN when there is no validation split
    val_accuracy: float
    seconds: float  # training time of the epoch, without validation
    images_per_second: float
    lr: float  # at the end of the epoch


@dataclass
class TrialResult:
    """Everything a study stores about one trial. Accuracies are on `split`, never the test set."""

    status: str  # complete | pruned | failed | infeasible
    reason: str | None
    config: dict[str, Any]
    arch_hash: str
    split: str = "val"
    best_val_accuracy: float | None = None
    best_epoch: int | None = None
    val_images: int | None = None  # size of the split the accuracies were measured on: their resolution
    params: int = 0
    flops: int = 0
    predicted_activation_bytes: int = 0  # per batch, for the mode and batch actually used
    peak_memory_bytes: int | None = None
    peak_memory_kind: str | None = None
    latency_ms_batch1: float | None = None
    latency_ms_large_batch: float | None = None
    latency_batch_size: int | None = None
    train_images_per_second: float | None = None
    wall_seconds: float = 0.0
    batch_size: int = 0
    memory_efficient: bool = False
    compiled: bool = False
    notes: list[str] = field(default_factory=list)  # retries and automatic decisions
    history: list[EpochMetrics] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


OUT_OF_MEMORY = "out_of_memory"  # an attempt's status that the trainer retries or turns into infeasible


@dataclass
class AttemptResult:
    """One attempt at training a trial, made fresh for each attempt and filled as it goes, so an
    attempt that fails keeps the epochs it finished."""

    batch_size: int
    memory_efficient: bool
    status: str = "complete"  # complete | pruned | failed | out_of_memory
    reason: str | None = None
    history: list[EpochMetrics] = field(default_factory=list)
    best_val_accuracy: float | None = None
    best_epoch: int | None = None
    train_images_per_second: float | None = None
    compiled: bool = False
    notes: list[str] = field(default_factory=list)  # decisions taken during the attempt
    # Measured after a successful run (complete or pruned) only:
    peak_memory_bytes: int | None = None
    peak_memory_kind: str | None = None
    predicted_activation_bytes: int = 0
    latency_ms_batch1: float | None = None
    latency_ms_large_batch: float | None = None
    latency_batch_size: int | None = None

    def add_epoch(self, metrics: EpochMetrics, *, images_per_second: float) -> None:
        """Record a finished epoch; `images_per_second` is the throughput over all epochs so far."""
        self.history.append(metrics)
        self.train_images_per_second = images_per_second
        if math.isnan(metrics.val_accuracy):  # no validation split: no best epoch
            return
        if self.best_val_accuracy is None or metrics.val_accuracy > self.best_val_accuracy:
            self.best_val_accuracy, self.best_epoch = metrics.val_accuracy, metrics.epoch


class NonFiniteLoss(Exception):
    """The training loss became NaN or infinite: the trial ends as failed."""

    def __init__(self, epoch: int, step: int, value: float) -> None:
        super().__init__(f"non-finite training loss {value} at epoch {epoch}, step {step}")

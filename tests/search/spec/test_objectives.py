"""The objective registry: one entry per objective, and what a study and a report read from it."""

from __future__ import annotations

from nas.search.spec.objectives import (
    ACCURACY,
    COSTS_BEFORE_TRAINING,
    MEASURED_COSTS,
    OBJECTIVES,
    objective_values,
)
from nas.train.results import TrialResult


def _result(**fields: object) -> TrialResult:
    base: dict[str, object] = dict(status="complete", reason=None, config={}, arch_hash="x", params=10, flops=20)
    return TrialResult(**{**base, **fields})  # type: ignore[arg-type]


def test_every_objective_is_described_and_accuracy_alone_is_maximised() -> None:
    assert list(OBJECTIVES) == ["val_accuracy", "flops", "params", "latency_ms", "peak_memory", "train_time"]
    assert {n for n, o in OBJECTIVES.items() if o.direction == "maximize"} == {ACCURACY}
    assert all(o.direction == "minimize" for n, o in OBJECTIVES.items() if n != ACCURACY)
    assert all(o.unit and o.label and o.measured for o in OBJECTIVES.values())
    assert COSTS_BEFORE_TRAINING == ("flops", "params")
    assert MEASURED_COSTS == ("latency_ms", "peak_memory", "train_time")
    assert [n for n, o in OBJECTIVES.items() if not o.cpu] == ["peak_memory"]


def test_values_read_from_a_result() -> None:
    cpu = _result(
        best_val_accuracy=0.9,
        latency_ms_batch1=1.5,
        wall_seconds=3.0,
        peak_memory_bytes=123,
        peak_memory_kind="process_peak_rss",
    )
    assert objective_values(cpu) == {
        "val_accuracy": 0.9,
        "flops": 20,
        "params": 10,
        "latency_ms": 1.5,
        "train_time": 3.0,
    }  # a CPU process's peak RSS is not the trial's own peak
    gpu = _result(peak_memory_bytes=456, peak_memory_kind="cuda_max_allocated")
    assert objective_values(gpu)["peak_memory"] == 456
    assert objective_values(gpu)["val_accuracy"] == 0.0  # never trained an epoch: no accuracy

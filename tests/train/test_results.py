"""Result types: an attempt records its epochs and best one; a trial's result flattens to plain data."""

from __future__ import annotations

from nas.train.results import AttemptResult, EpochMetrics, NonFiniteLoss, TrialResult


def metrics(epoch: int, val_accuracy: float) -> EpochMetrics:
    return EpochMetrics(epoch, 1.0 / epoch, 0.5, 0.9, val_accuracy, 2.0, 640.0, 0.1)


def test_an_attempt_starts_empty() -> None:
    attempt = AttemptResult(batch_size=64, memory_efficient=True)
    assert (attempt.status, attempt.reason, attempt.history, attempt.notes) == ("complete", None, [], [])
    assert (attempt.best_val_accuracy, attempt.best_epoch, attempt.train_images_per_second) == (None, None, None)
    assert (attempt.compiled, attempt.peak_memory_bytes, attempt.predicted_activation_bytes) == (False, None, 0)


def test_add_epoch_keeps_the_first_best_epoch_and_the_latest_throughput() -> None:
    attempt = AttemptResult(batch_size=64, memory_efficient=False)
    for epoch, accuracy, throughput in ((1, 0.5, 600.0), (2, 0.7, 620.0), (3, 0.7, 630.0), (4, 0.6, 625.0)):
        attempt.add_epoch(metrics(epoch, accuracy), images_per_second=throughput)
    assert [m.epoch for m in attempt.history] == [1, 2, 3, 4]
    assert (attempt.best_val_accuracy, attempt.best_epoch) == (0.7, 2)
    assert attempt.train_images_per_second == 625.0


def test_attempts_do_not_share_lists() -> None:
    first, second = AttemptResult(64, False), AttemptResult(64, False)
    first.add_epoch(metrics(1, 0.5), images_per_second=1.0)
    first.notes.append("a note")
    assert (second.history, second.notes) == ([], [])


def test_trial_result_flattens_to_plain_data() -> None:
    result = TrialResult("complete", None, {"growth_rate": 12}, "abc", history=[metrics(1, 0.5)], notes=["n"])
    data = result.to_dict()
    assert data["history"] == [
        {
            "epoch": 1,
            "train_loss": 1.0,
            "train_accuracy": 0.5,
            "val_loss": 0.9,
            "val_accuracy": 0.5,
            "seconds": 2.0,
            "images_per_second": 640.0,
            "lr": 0.1,
        }
    ]
    assert (data["status"], data["split"], data["config"], data["notes"]) == (
        "complete",
        "val",
        {"growth_rate": 12},
        ["n"],
    )
    assert list(data)[:4] == ["status", "reason", "config", "arch_hash"]


def test_non_finite_loss_says_where() -> None:
    assert str(NonFiniteLoss(2, 19, float("nan"))) == "non-finite training loss nan at epoch 2, step 19"

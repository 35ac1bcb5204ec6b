"""Published test accuracies that final results stand beside, shipped as data (`published.csv`).

Each row names its source; a parameter count the source does not give is empty, or ours with a
note saying so. Only datasets with published results we trust have rows (Fashion-MNIST for now);
the dataset names are those of `nas.data.datasets.DATASETS`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from nas.checks import bad_value, is_int, is_number

PUBLISHED_CSV = Path(__file__).with_name("published.csv")


@dataclass(frozen=True)
class PublishedResult:
    """One published network on one dataset: its test accuracy, parameters when known, and where it is from."""

    dataset: str  # a key of nas.data.datasets.DATASETS
    network: str
    params: int | None  # None: the source gives none and we add none
    test_accuracy: float  # a fraction, 0.954 for 95.4%
    source: str  # citation and URL
    note: str = ""

    def __post_init__(self) -> None:
        for name in ("dataset", "network", "source"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise bad_value("PublishedResult", name, getattr(self, name), "a non-empty string is required")
        if self.params is not None and (not is_int(self.params) or self.params < 1):
            raise bad_value("PublishedResult", "params", self.params, "an integer >= 1 or None is required")
        if not is_number(self.test_accuracy) or not 0 < self.test_accuracy <= 1:
            raise bad_value("PublishedResult", "test_accuracy", self.test_accuracy, "a fraction in (0, 1] is required")


def published_results(*, dataset: str, path: Path = PUBLISHED_CSV) -> tuple[PublishedResult, ...]:
    """The published rows for `dataset` (none for a dataset without any), in file order."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return tuple(
        PublishedResult(
            dataset=row["dataset"],
            network=row["network"],
            params=int(row["params"]) if row["params"] else None,
            test_accuracy=float(row["test_accuracy"]),
            source=row["source"],
            note=row["note"],
        )
        for row in rows
        if row["dataset"] == dataset
    )


__all__ = ["PUBLISHED_CSV", "PublishedResult", "published_results"]

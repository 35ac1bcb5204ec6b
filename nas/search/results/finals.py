"""The runs of `nas finalize` and the table over their seeds: what final.csv and the report show.

A final run is one network of a study trained once more on train+validation with one seed, then
measured once on the test split. Runs are stored in the study (`nas.search.results.study_attrs`) as they finish;
runs of one network with the same final recipe (`recipe_key`) are the seeds of one row of the table.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna

from nas.data.datasets import DataConfig
from nas.search.results import study_attrs
from nas.search.spec.studyfile import EXECUTION_ONLY
from nas.search.spec.tomlfile import jsonable
from nas.train.recipe import Recipe


def recipe_key(recipe: Recipe, data: DataConfig) -> str:
    """What makes two final runs of a network comparable: the recipe (its epochs included) and the data;
    settings that change how a run executes but not what it measures are left out."""
    sections = {"recipe": asdict(recipe), "data": asdict(data)}
    for section, keys in EXECUTION_ONLY.items():
        for key in keys:
            sections[section].pop(key, None)
    text = json.dumps(jsonable(sections), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class FinalRun:
    """One network trained on train+validation with one seed and measured once on the test split."""

    trial: int  # the trial that trained the network in the search (its reused twins fold into it)
    network: str  # the connectivity mode, or the baseline's name
    seed: int  # 0, 1, ...: added to the recipe's seed
    recipe_key: str  # see recipe_key()
    epochs: int
    dataset: str
    train_images: int  # train + validation
    test_images: int
    test_accuracy: float
    test_loss: float
    params: int
    flops: int
    latency_ms: float | None  # batch 1, as the trainer measures it
    seconds: float  # training and measurement
    val_accuracy: float | None  # the trial's validation accuracy in the search, for comparison
    device: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinalRun:
        fields: dict[str, Any] = {f.name: data.get(f.name) for f in dataclasses.fields(cls)}
        return cls(**fields)


@dataclass(frozen=True)
class FinalRow:
    """One network under one final recipe: its test accuracy over the seeds, beside its costs."""

    trial: int
    network: str
    dataset: str
    params: int
    flops: int
    latency_ms: float | None  # mean over the seeds
    test_accuracy_mean: float
    test_accuracy_std: float | None  # sample standard deviation; None with one seed
    seeds: int
    epochs: int
    val_accuracy: float | None  # from the search
    train_images: int
    test_images: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stored_runs(study: optuna.Study) -> list[FinalRun]:
    """Every final run of the study, by trial, epochs and seed."""
    runs = [FinalRun.from_dict(r) for r in study_attrs.final_runs(study)]
    return sorted(runs, key=lambda r: (r.trial, r.epochs, r.recipe_key, r.seed))


def final_rows(runs: Iterable[FinalRun]) -> list[FinalRow]:
    """One row per network and final recipe, in trial order."""
    groups: dict[tuple[int, str], list[FinalRun]] = {}
    for run in runs:
        groups.setdefault((run.trial, run.recipe_key), []).append(run)
    rows = []
    for group in groups.values():
        first, accuracies = group[0], [r.test_accuracy for r in group]
        latencies = [r.latency_ms for r in group if r.latency_ms is not None]
        rows.append(
            FinalRow(
                trial=first.trial,
                network=first.network,
                dataset=first.dataset,
                params=first.params,
                flops=first.flops,
                latency_ms=statistics.fmean(latencies) if latencies else None,
                test_accuracy_mean=statistics.fmean(accuracies),
                test_accuracy_std=statistics.stdev(accuracies) if len(accuracies) > 1 else None,
                seeds=len(group),
                epochs=first.epochs,
                val_accuracy=first.val_accuracy,
                train_images=first.train_images,
                test_images=first.test_images,
            )
        )
    return sorted(rows, key=lambda r: (r.trial, r.epochs))


def write_final_csv(path: Path, rows: Iterable[FinalRow]) -> Path:
    """The table as CSV (runs/<study>/final.csv), written whole, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[field.name for field in dataclasses.fields(FinalRow)])
        writer.writeheader()
        writer.writerows(row.to_dict() for row in rows)
    os.replace(tmp, path)
    return path


__all__ = ["FinalRow", "FinalRun", "final_rows", "recipe_key", "stored_runs", "write_final_csv"]

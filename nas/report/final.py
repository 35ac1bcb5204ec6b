"""The report's "Final evaluation" section, computed before anything is drawn (`nas.report.page` draws it).

Its rows are the stored runs of `nas finalize` (`nas.search.results.finals`), one per network and final recipe,
and beside them the published results of the same dataset (`nas.report.published`). `final_table` and
`published_table` are those rows as the page's tables show them: accuracies in percent as everywhere on
the page, counts in K/M, each number's cell sorting by the number itself, and few enough columns to fit
a 1,280 px window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import optuna

from nas.report.numbers import count_text
from nas.report.published import PublishedResult, published_results
from nas.search.results.finals import FinalRow, final_rows, stored_runs

TEST_SPLIT_NOTE = (
    "The test split is read only by `nas finalize` and `nas evaluate`; the search saw validation accuracy only."
)


@dataclass(frozen=True)
class FinalEvaluation:
    rows: tuple[FinalRow, ...]  # one per finalized network and final recipe
    published: tuple[PublishedResult, ...]  # for the datasets of the rows
    note: str = TEST_SPLIT_NOTE


class Cell(NamedTuple):
    """A table cell as shown, and the number a click on its header sorts it by."""

    text: str
    sort: float | None = None


def _percent(value: float | None) -> Cell:
    return Cell("" if value is None else f"{value:.1%}", value)


def _count(value: float | None) -> Cell:
    return Cell("" if value is None else count_text(value), value)


def final_table(final: FinalEvaluation) -> list[dict[str, Any]]:
    """One row per network and final recipe: the test accuracy's mean and spread in percent first."""
    rows = []
    for row in final.rows:
        spread = "" if row.test_accuracy_std is None else f" ± {100 * row.test_accuracy_std:.1f}"
        accuracy = Cell(_percent(row.test_accuracy_mean).text + spread, row.test_accuracy_mean)
        latency = Cell("" if row.latency_ms is None else f"{row.latency_ms:.3g} ms", row.latency_ms)
        rows.append(
            {
                "trial": row.trial,
                "network": row.network,
                "test accuracy (mean ± sd)": accuracy,
                "seeds": row.seeds,
                "epochs": row.epochs,
                "validation accuracy (search)": _percent(row.val_accuracy),
                "params": _count(row.params),
                "FLOPs": _count(row.flops),
                "latency": latency,
                "dataset": row.dataset,
                "train / test images": f"{row.train_images:,} / {row.test_images:,}",
            }
        )
    return rows


def published_table(final: FinalEvaluation) -> list[dict[str, Any]]:
    """The published results beside ours, accuracies in percent."""
    return [
        {
            "dataset": p.dataset,
            "network": p.network,
            "test accuracy": _percent(p.test_accuracy),
            "params": _count(p.params),
            "source": p.source,
            "note": p.note,
        }
        for p in final.published
    ]


def final_evaluation(study: optuna.Study) -> FinalEvaluation | None:
    """The section's data, or None when nothing of the study was finalized."""
    rows = tuple(final_rows(stored_runs(study)))
    if not rows:
        return None
    datasets = dict.fromkeys(row.dataset for row in rows)
    published = tuple(p for name in datasets for p in published_results(dataset=name))
    return FinalEvaluation(rows=rows, published=published)


__all__ = ["TEST_SPLIT_NOTE", "Cell", "FinalEvaluation", "final_evaluation", "final_table", "published_table"]

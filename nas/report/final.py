"""The report's "Final evaluation" section, computed before anything is drawn (`nas.report.page` draws it).

Its rows are the stored runs of `nas finalize` (`nas.search.finals`), one per network and final recipe,
and beside them the published results of the same dataset (`nas.report.published`).
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna

from nas.report.published import PublishedResult, published_results
from nas.search.finals import FinalRow, final_rows, stored_runs

TEST_SPLIT_NOTE = (
    "The test split is read only by `nas finalize` and `nas evaluate`; the search saw validation accuracy only."
)


@dataclass(frozen=True)
class FinalEvaluation:
    rows: tuple[FinalRow, ...]  # one per finalized network and final recipe
    published: tuple[PublishedResult, ...]  # for the datasets of the rows
    note: str = TEST_SPLIT_NOTE


def final_evaluation(study: optuna.Study) -> FinalEvaluation | None:
    """The section's data, or None when nothing of the study was finalized."""
    rows = tuple(final_rows(stored_runs(study)))
    if not rows:
        return None
    datasets = dict.fromkeys(row.dataset for row in rows)
    published = tuple(p for name in datasets for p in published_results(dataset=name))
    return FinalEvaluation(rows=rows, published=published)


__all__ = ["TEST_SPLIT_NOTE", "FinalEvaluation", "final_evaluation"]

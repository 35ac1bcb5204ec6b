"""The report's Final evaluation section and the published results beside it: data first, then the page."""

from __future__ import annotations

import dataclasses
import statistics

import optuna
import pytest

from nas.arch.modes import MODES
from nas.data.datasets import DATASETS
from nas.errors import UsageError
from nas.report.data import compute_report_data
from nas.report.figures import PUBLISHED_SYMBOL, final_figure, styles
from nas.report.final import TEST_SPLIT_NOTE
from nas.report.page import render
from nas.report.published import PUBLISHED_CSV, PublishedResult, published_results
from nas.search.results import study_attrs
from nas.search.results.finals import FinalRun

FASHION_BENCHMARK = "zalandoresearch/fashion-mnist README, benchmark table"


def test_fashion_mnist_has_the_published_rows_each_with_its_source() -> None:
    rows = published_results(dataset="fashion_mnist")
    assert [(r.network, r.params, r.test_accuracy) for r in rows] == [
        ("DenseNet-BC", 768_000, 0.954),
        ("ResNet-18", None, 0.949),
        ("WRN-28-10", 36_500_000, 0.959),
        ("WRN40-4", 8_900_000, 0.967),
        ("ResNet-32 + random erasing", 460_000, 0.962),
    ]
    assert all(r.dataset == "fashion_mnist" and "https://github.com/" in r.source for r in rows)
    assert [r.source.startswith(FASHION_BENCHMARK) for r in rows] == [True, True, True, True, False]
    assert rows[4].source.startswith("zhunzhong07/Random-Erasing README")
    # A count the source does not give is ours, and says so.
    assert "ours, not the source's" in rows[2].note and "ours, not the source's" in rows[4].note
    assert published_results(dataset="digits") == ()


def test_every_published_dataset_is_a_registered_one() -> None:
    names = {line.split(",")[0] for line in PUBLISHED_CSV.read_text(encoding="utf-8").splitlines()[1:]}
    assert names and names <= set(DATASETS)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"params": 0}, "PublishedResult.params = 0 is invalid: an integer >= 1 or None is required"),
        ({"test_accuracy": 95.4}, "PublishedResult.test_accuracy = 95.4 is invalid: a fraction in (0, 1] is required"),
        ({"source": ""}, "PublishedResult.source = '' is invalid: a non-empty string is required"),
    ],
)
def test_a_bad_published_row_is_refused(fields: dict[str, object], message: str) -> None:
    good: dict[str, object] = {"dataset": "fashion_mnist", "network": "n", "params": 1, "test_accuracy": 0.9}
    with pytest.raises(UsageError) as err:
        PublishedResult(**{**good, "source": "s", **fields})  # type: ignore[arg-type]
    assert str(err.value) == message


def study_with_runs(runs: list[FinalRun]) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"])
    study_attrs.write_study_objectives(study, ["val_accuracy", "flops"])
    for run in runs:
        study_attrs.write_final_run(study, trial=run.trial, seed=run.seed, recipe_key=run.recipe_key, run=run.to_dict())
    return study


def run(trial: int, seed: int, accuracy: float, *, epochs: int = 5, key: str = "k5") -> FinalRun:
    return FinalRun(
        trial=trial,
        network="dense",
        seed=seed,
        recipe_key=key,
        epochs=epochs,
        dataset="fashion_mnist",
        train_images=60_000,
        test_images=10_000,
        test_accuracy=accuracy,
        test_loss=0.3,
        params=500_000 + trial,
        flops=10**8,
        latency_ms=1.0 + seed,
        seconds=10.0,
        val_accuracy=0.93,
        device="cpu",
    )


def test_the_section_holds_one_row_per_network_and_recipe_and_the_dataset_s_published_rows() -> None:
    runs = [run(3, 0, 0.91), run(3, 1, 0.93), run(3, 2, 0.92), run(7, 0, 0.9), run(3, 0, 0.95, epochs=20, key="k20")]
    final = compute_report_data(study=study_with_runs(runs)).final
    assert final is not None and final.note == TEST_SPLIT_NOTE
    assert [(r.trial, r.epochs, r.seeds) for r in final.rows] == [(3, 5, 3), (3, 20, 1), (7, 5, 1)]
    first = final.rows[0]
    assert first.test_accuracy_mean == statistics.fmean([0.91, 0.93, 0.92])
    assert first.test_accuracy_std == statistics.stdev([0.91, 0.93, 0.92])
    assert first.latency_ms == 2.0 and final.rows[2].test_accuracy_std is None
    assert final.published == published_results(dataset="fashion_mnist")


def test_the_page_draws_the_section_with_labelled_published_results() -> None:
    data = compute_report_data(study=study_with_runs([run(3, 0, 0.91), run(3, 1, 0.93)]))
    page = render(data)
    assert "<h2>Final evaluation</h2>" in page
    assert "read only by <code>nas finalize</code> and <code>nas evaluate</code>; the search saw" in page
    assert TEST_SPLIT_NOTE.startswith("The test split is read only by `nas finalize` and `nas evaluate`;")
    assert data.final is not None
    fig = final_figure(data.final, styles(["dense"]))
    ours, benchmark, erasing, no_count = fig.data
    assert (list(ours.x), list(ours.y), list(ours.error_y.array)) == (
        [500_003],
        [0.92],
        [statistics.stdev([0.91, 0.93])],
    )
    assert (ours.marker.symbol, ours.marker.color) == ("circle", "#1f77b4")  # the dense mode's shape and colour
    # Published results take a shape no mode has, so none reads as one of ours.
    assert benchmark.name == f"published: {FASHION_BENCHMARK}" and benchmark.marker.symbol == PUBLISHED_SYMBOL
    assert PUBLISHED_SYMBOL not in {m.symbol for m in MODES.values()}
    assert list(benchmark.text) == ["DenseNet-BC 95.4%", "WRN-28-10 95.9%", "WRN40-4 96.7%"]
    # labels alternate above and below in order of parameters: ResNet-32 (0.46M) above, DenseNet-BC below, ...
    assert list(benchmark.textposition) == ["bottom center", "bottom center", "top center"]
    assert list(benchmark.x) == [768_000, 36_500_000, 8_900_000] and list(benchmark.y) == [0.954, 0.959, 0.967]
    assert (
        erasing.name == "published: zhunzhong07/Random-Erasing README (Zhong et al., Random Erasing Data Augmentation)"
    )
    assert list(erasing.text) == ["ResNet-32 + random erasing 96.2%"] and list(erasing.textposition) == ["top center"]
    # The source gives no parameter count for ResNet-18: a dotted line at its accuracy across the whole chart, named
    # in the legend (no label on the chart to collide with the points near it).
    assert (list(no_count.y), no_count.line.dash, no_count.mode) == ([0.949, 0.949], "dot", "lines")
    assert no_count.name == "published: ResNet-18 94.9% (no parameter count)"
    assert not fig.layout.shapes and not fig.layout.annotations
    # the x axis reaches past the first and last point (log10), so labels centred on them are not cut
    low, high = fig.layout.xaxis.range
    assert list(no_count.x) == [460_000 / 2, 36_500_000 * 2] == pytest.approx([10**low, 10**high])
    assert list(fig.layout.xaxis.ticktext) == ["500K", "1M", "2M", "5M", "10M", "20M", "50M"]  # 1-2-5, as the fronts


def test_no_section_when_nothing_was_finalized() -> None:
    data = compute_report_data(study=study_with_runs([]))
    assert data.final is None and "Final evaluation" not in render(data)


def test_a_dataset_without_published_results_promises_none() -> None:
    """An image-folder study's chart was titled '... and published results' with none to show."""
    folder = dataclasses.replace(run(3, 0, 0.91), dataset="imagefolder")
    final = compute_report_data(study=study_with_runs([folder])).final
    assert final is not None and final.published == ()
    title = final_figure(final, styles(["dense"])).layout.title.text
    assert "and published results" not in title and title.endswith("(no published results for this dataset)")
    with_published = compute_report_data(study=study_with_runs([run(3, 0, 0.91)])).final
    assert with_published is not None
    assert final_figure(with_published, styles(["dense"])).layout.title.text.endswith("and published results")

"""`nas proxies`: a study's trained networks scored by zero-cost proxies and ranked against their accuracy; a
space's networks scored before any training; the CSV; refusals in one line."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nas.cli.main import main
from nas.search.results.trial_record import load_records
from nas.search.run.storage import open_storage
from nas.train.proxies import PROXIES

SPACE = """
name = "small"
[fixed]
stem = "cifar"
init_features = 8
width_multiplier = 1.0
compression = 0.5
[knobs.connectivity]
choices = ["dense", "residual", "plain"]
[knobs.growth_rate]
choices = [4, 8]
[knobs.block_config]
choices = [[1, 1], [2, 2]]
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digits study of 8 one-epoch trials over a space of 12 tiny networks."""
    folder = tmp_path_factory.mktemp("proxies")
    (folder / "small.toml").write_text(SPACE)
    path = folder / "study.toml"
    path.write_text(
        """
[study]
name = "scored"
space = "small.toml"
objectives = ["val_accuracy", "flops"]
sampler = "random"
trials = 8
seed = 0
device = "cpu"

[data]
name = "digits"

[recipe]
epochs = 1
batch_size = 64
measure_latency = false
"""
    )
    assert main(["run", str(path), "--storage", str(folder / "journal.log"), "--no-report"]) == 0
    return path


def trained_networks(path: Path) -> int:
    import optuna

    study = optuna.load_study(study_name="scored", storage=open_storage(str(path.parent / "journal.log")))
    records = load_records(study)
    return len({r.arch_hash for r in records if r.status == "complete" and r.reused_from is None})


def test_a_study_s_networks_are_scored_and_ranked_against_their_accuracy(
    study: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_csv = study.parent / "scores.csv"
    capsys.readouterr()
    assert main(["proxies", str(study), "--storage", str(study.parent / "journal.log"), "--csv", str(out_csv)]) == 0
    out = capsys.readouterr().out.splitlines()
    networks = trained_networks(study)
    assert out[0] == (
        f"scoring {networks} trained networks of study scored: {', '.join(PROXIES)} on one minibatch of 64 digits "
        "images"
    )
    table = out[out.index(next(line for line in out if line.startswith("proxy "))) :]
    assert [line.split()[0] for line in table[1 : 1 + len(PROXIES)]] == list(PROXIES)
    params = next(line for line in table if line.startswith("params "))
    assert "[" in params  # a correlation with its bootstrap interval
    per_mode = out[out.index("spearman within each connectivity mode (with enough trained networks):") + 1 :]
    assert [line.split()[0] for line in per_mode[: len(PROXIES)]] == list(PROXIES)
    assert all("(n=" in line for line in per_mode[: len(PROXIES)])
    with out_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == networks
    assert all(row["network"].startswith("trial ") and float(row["val_accuracy"]) > 0 for row in rows)
    assert all(float(row["params"]) > 0 and float(row["params_seconds"]) >= 0 for row in rows)


def test_a_space_is_scored_before_any_training(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["proxies", str(study), "--sample", "3", "--proxies", "params,synflow"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "scoring 3 networks of the space small: params, synflow on one minibatch of 64 digits images"
    assert [line.split()[0] for line in out[1:]] == ["proxy", "params", "synflow"]  # no accuracy: no correlation
    assert main(["proxies", str(study), "--every", "--proxies", "params"]) == 0
    assert capsys.readouterr().out.startswith("scoring 12 networks of the space small: params")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--proxies", "synflow,bogus"], "--proxies = 'synflow,bogus' is invalid: names from params, flops"),
        (["--sample", "2", "--every"], "--every = True is invalid: --every or --sample N, not both"),
    ],
)
def test_bad_options_are_refused_in_one_line(
    study: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    capsys.readouterr()
    assert main(["proxies", str(study), *args]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and message in err[0]


def test_the_report_shows_the_figures_nas_proxies_printed_and_stored(
    study: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import optuna

    from nas.report.data import compute_report_data
    from nas.report.page import render
    from nas.report.proxies import proxy_rows

    journal = str(study.parent / "journal.log")
    capsys.readouterr()
    assert main(["proxies", str(study), "--storage", journal, "--proxies", "params,snip"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"stored in study scored: `nas report {study} --storage {journal}` shows them" in out
    printed = {line.split()[0]: line for line in out if line.startswith(("params ", "snip "))}
    data = compute_report_data(study=optuna.load_study(study_name="scored", storage=open_storage(journal)))
    assert data.proxies is not None and data.proxies.source == "nas proxies"
    assert data.proxies.networks == trained_networks(study)
    rows = proxy_rows(data.proxies)
    assert [row["proxy"] for row in rows] == ["params", "snip"]
    for row in rows:  # the same figures, intervals included
        for column in ("Spearman", "Kendall", "Spearman at equal FLOPs"):
            assert row[column].replace("\u00a0", " ") in printed[row["proxy"]], (column, row[column])
    page = render(data)
    assert "<h2>Zero-cost proxies</h2>" in page and rows[1]["Spearman"] in page  # on one line: no-break spaces

"""The proxy benchmark scores a learning-curve table's networks once (resumed), and its correlation table reads
the recorded accuracies: checked on five networks of the shipped table."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from benchmarks import proxy_table as pt
from benchmarks.curve_table import SHIPPED_TABLE, read_table
from nas.train.proxies import PROXIES


@pytest.fixture
def small_table(tmp_path: Path) -> Path:
    path = tmp_path / "small.csv"
    with SHIPPED_TABLE.open(newline="") as handle:
        lines = handle.read().splitlines(keepends=True)
    path.write_text("".join(lines[:6]))  # the header and five networks
    shutil.copy(SHIPPED_TABLE.with_suffix(".json"), path.with_suffix(".json"))
    return path


def test_every_network_is_scored_once_and_the_table_reads_the_recorded_curves(
    small_table: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pt.main(["--table", str(small_table), "--batch-size", "16"]) == 0
    scores = pt.scores_path(small_table)
    with scores.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    nets = read_table(small_table)
    assert [r["arch_hash"] for r in rows] == [n.arch_hash for n in nets]
    assert all(float(r["params"]) == n.params and float(r["flops"]) == n.flops for r, n in zip(rows, nets, strict=True))
    out = capsys.readouterr().out
    assert (
        "| signal | networks | spearman | kendall | equal-cost spearman | top-10% found | seconds per network |" in out
    )
    first_table = out.split("\n\n")[2].splitlines()[2:]  # after the header and its rule
    assert [line.split(" | ")[0].lstrip("| ") for line in first_table] == [
        *PROXIES,
        "epoch 1 accuracy",
        "epoch 2 accuracy",
    ]
    assert pt.main(["--table", str(small_table), "--batch-size", "16"]) == 0  # resumed: nothing scored again
    assert "[1/5]" not in capsys.readouterr().out
    with scores.open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == len(nets)
    assert pt.target(nets[0]) == nets[0].accuracy[-1]  # the last epoch's accuracy, as issue 22's figures

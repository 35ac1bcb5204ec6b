"""benchmarks/gpu_trials.py runs end to end on the CPU (on digits), so a GPU check does not find its bugs first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.gpu_trials import draw_networks, main
from nas.arch.cost import estimate
from nas.data.datasets import DataConfig, load_data


def test_the_networks_are_fixed_by_the_seed_distinct_and_within_the_study_s_limit() -> None:
    data = load_data(DataConfig(name="digits"))
    networks = draw_networks(4, seed=0, data=data)
    assert networks == draw_networks(4, seed=0, data=data) != draw_networks(4, seed=1, data=data)
    assert len(set(networks)) == 4
    assert all(estimate(c, input_size=data.input_size).params <= 2_000_000 for c in networks)  # its max_params
    assert all((c.in_channels, c.num_classes) == (1, 10) for c in networks)


def test_the_eager_and_graphs_rows_on_the_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rows.json"
    args = ["--device", "cpu", "--dataset", "digits", "--networks", "1", "--epochs", "1", "--rows", "eager", "graphs"]
    main([*args, "--out", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert [r["row"] for r in rows] == ["eager", "graphs"]
    assert [n["status"] for r in rows for n in r["networks"]] == ["complete", "complete"]
    graphs_note = "compile=graphs: trained eagerly: CUDA graphs need a CUDA device, not cpu"
    assert graphs_note in rows[1]["networks"][0]["notes"] and graphs_note not in rows[0]["networks"][0]["notes"]
    table = capsys.readouterr().out.splitlines()
    assert table[-2].startswith("| eager |") and table[-1].startswith("| graphs |")


def test_the_k_at_once_row_trains_every_network_of_the_set_in_order(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    args = ["--device", "cpu", "--dataset", "digits", "--networks", "3", "--epochs", "2", "--rows", "graphs_k2"]
    main([*args, "--out", str(out)])
    (row,) = json.loads(out.read_text())["rows"]
    assert [n["network"] for n in row["networks"]] == [0, 1, 2]
    assert [n["status"] for n in row["networks"]] == ["complete"] * 3
    assert all(any(note.startswith("trained beside 1 other trial(s)") for note in n["notes"]) for n in row["networks"])
    assert all(len(n["epoch_seconds"]) == 2 and n["first_over_later"] > 0 for n in row["networks"])

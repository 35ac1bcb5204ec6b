"""`nas arch` (nas/cli/arch.py) run as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from nas.arch import PRESETS
from nas.cli.arch import parse_input_size, parse_pairs
from nas.errors import UsageError
from tests.commands import nas_here

SVG = "{http://www.w3.org/2000/svg}"


def test_table_for_a_preset() -> None:
    run = nas_here("arch", "densenet_bc_100_k12")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[1].split() == ["part", "mode", "layers", "channels", "spatial", "params", "FLOPs", "act.", "MiB"]
    assert any(line.startswith("stage3") and "dense" in line and "150 -> 342" in line for line in lines)
    total = next(line for line in lines if line.startswith("total"))
    assert "769,162" in total
    assert "one multiply-add = 1 FLOP" in run.stdout


def test_json_output_and_overrides() -> None:
    run = nas_here("arch", "densenet121", "--num-classes", "10", "--input-size", "3,64,64", "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["output_shape"] == [1, 10]
    assert data["input_size"] == [3, 64, 64]
    assert data["params"] == 7_978_856 - 990 * 1025  # 1000 -> 10 classes: 990 fewer rows of 1024+1
    assert len(data["stages"]) == 9
    assert all({"name", "params", "flops", "channels_in", "channels_out", "height"} <= set(s) for s in data["stages"])


def test_config_file_and_json_output_round_trip(tmp_path: Path) -> None:
    first = nas_here("arch", "resdensenet", "--set", "growth_rate=16", "--json")
    assert first.returncode == 0, first.stderr
    path = tmp_path / "net.json"
    path.write_text(first.stdout)
    again = nas_here("arch", str(path), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["arch_hash"] == json.loads(first.stdout)["arch_hash"]
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"connectivity": "plain", "block_config": [2, 2], "stem": "cifar"}))
    assert "plain network" in nas_here("arch", str(plain)).stdout


def test_list_shows_every_preset() -> None:
    run = nas_here("arch", "--list")
    assert run.returncode == 0
    listed = {line.split()[0] for line in run.stdout.splitlines() if line and not line.startswith("connectivity")}
    assert listed == set(PRESETS)


def test_unknown_name_lists_the_valid_ones() -> None:
    run = nas_here("arch", "densenet122")
    assert run.returncode == 2
    assert "unknown preset 'densenet122'" in run.stderr
    assert "densenet121" in run.stderr and "resdensenet" in run.stderr
    assert "Traceback" not in run.stderr


def test_invalid_configs_print_the_validation_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"connectivity": "dense", "compression": 0}))
    run = nas_here("arch", str(bad))
    assert run.returncode == 2
    assert "ArchConfig.compression = 0 is invalid" in run.stderr
    assert "Traceback" not in run.stderr
    for args, message in [
        (("densenet121", "--input-size", "3,16,16"), "stage 3 works at 1x1"),
        (("densenet121", "--input-size", "3x224"), "--input-size '3x224' is invalid"),
        (("densenet121", "--set", "growth=3"), "unknown ArchConfig field"),
        (("densenet121", "--set", "stem=mnist"), "ArchConfig.stem = 'mnist'"),
        ((str(tmp_path / "missing.json"),), "cannot read"),
    ]:
        run = nas_here("arch", *args)
        assert run.returncode == 2, args
        assert message in run.stderr, (args, run.stderr)
        assert "Traceback" not in run.stderr


def test_a_knob_of_the_wrong_type_is_one_line() -> None:
    run = nas_here("arch", "densenet121", "--set", "growth_rate=x")
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "nas arch: error: ArchConfig.growth_rate = 'x' is invalid: a positive integer is required"
    ]
    assert run.stdout == ""


def test_parse_pairs_reads_json_values_and_bare_words() -> None:
    assert parse_pairs(["growth_rate=24", "block_config=[2,2]", "stem=cifar", "conv_bias=true"]) == {
        "growth_rate": 24,
        "block_config": [2, 2],
        "stem": "cifar",
        "conv_bias": True,
    }
    with pytest.raises(UsageError) as caught:
        parse_pairs(["epochs"], option="--recipe")
    assert str(caught.value) == "--recipe 'epochs' is invalid: use KEY=VALUE, e.g. --recipe epochs=3"
    assert (caught.value.owner, caught.value.value, caught.value.allowed) == ("--recipe", "epochs", "KEY=VALUE")


def test_parse_input_size() -> None:
    assert parse_input_size("3,32,32") == (3, 32, 32)
    for text in ("3,32", "3,0,32", "a,b,c"):
        with pytest.raises(UsageError, match=f"--input-size '{text}' is invalid: give C,H,W"):
            parse_input_size(text)


def test_svg_writes_the_diagram_with_overrides(tmp_path: Path) -> None:
    out = tmp_path / "net.svg"
    args = ("densenet_bc_100_k12", "--set", "block_config=[4,4]", "--input-size", "3,64,64", "--num-classes", "7")
    run = nas_here("arch", *args, "--svg", str(out))
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"{out}\n"
    table = json.loads(nas_here("arch", *args, "--json").stdout)
    root = ET.fromstring(out.read_text(encoding="utf-8"))
    stages = [g for g in root.iter(f"{SVG}g") if g.get("class") == "stage"]
    rows = [s for s in table["stages"] if s["name"].startswith("stage")]
    assert len(stages) == len(rows) == 2
    for group, row in zip(stages, rows, strict=True):
        texts = [t.text for t in group.iter(f"{SVG}text")]
        size = f"{row['height']}\u00d7{row['width']}"
        assert texts[1] == f"{row['channels_in']} \u2192 {row['channels_out']} channels at {size}"
    assert root[0].text is not None and root[0].text.startswith("densenet_bc_100_k12: dense network, 2 stages")
    assert "7 classes" in root[0].text
    assert oct(out.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["net.svg"]  # no temporary file left behind


def test_svg_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "taken.svg").mkdir()
    for target, message in [
        (tmp_path / "missing" / "net.svg", f"--svg '{tmp_path / 'missing' / 'net.svg'}': folder "),
        (tmp_path / "taken.svg", f"--svg '{tmp_path / 'taken.svg'}': cannot write it: Is a directory"),
    ]:
        run = nas_here("arch", "densenet121", "--svg", str(target))
        assert run.returncode == 2
        assert len(run.stderr.splitlines()) == 1 and run.stderr.startswith("nas arch: error: ")
        assert message in run.stderr, run.stderr
        assert run.stdout == ""
    assert [p.name for p in tmp_path.iterdir()] == ["taken.svg"]
    run = nas_here("arch", "densenet121", "--svg", str(tmp_path / "a.svg"), "--json")
    assert run.returncode == 2 and "not allowed with argument" in run.stderr

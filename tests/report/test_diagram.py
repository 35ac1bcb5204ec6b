"""Network diagrams (nas/report/diagram.py): their numbers are `nas arch --json`'s, their SVG is one
self-contained, escaped, deterministic element with one group per stage and the mode's wiring glyph."""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from nas.arch import MODES, PRESETS, ArchConfig
from nas.cli.main import main
from nas.errors import UsageError
from nas.report.diagram import (
    HeadBox,
    NetworkDiagram,
    StageBox,
    StemBox,
    TransitionBox,
    config_svg,
    diagram_data,
    network_svg,
)

SVG = "{http://www.w3.org/2000/svg}"
# One small network per connectivity mode, three stages so that it has transitions.
MODE_CONFIGS = {
    name: ArchConfig(
        connectivity=name,
        stem="cifar",
        block_config=(2, 3, 2),
        growth_rate=8,
        init_features=16,
        width_multiplier=2.0,
        num_classes=5,
    )
    for name in MODES
}


def arch_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    """What `nas arch ... --json` prints, run through the real command (in this process)."""
    capsys.readouterr()
    assert main(["arch", *args, "--json"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def diagram_from_json(data: dict[str, Any]) -> dict[str, Any]:
    """The numbers a diagram should show, read off the cost table's rows."""
    rows = data["stages"]
    stages = [r for r in rows if r["name"].startswith("stage")]
    transitions = []
    for i, row in enumerate(rows):
        if row["name"].startswith("transition"):
            after = rows[i + 1]
            assert (after["height"], after["width"]) == (row["height"] // 2, row["width"] // 2)
            transitions.append((row["channels_in"], row["channels_out"], (after["height"], after["width"])))
    return {
        "stem": (rows[0]["channels_in"], rows[0]["channels_out"], (stages[0]["height"], stages[0]["width"])),
        "stages": [(s["layers"], s["channels_in"], s["channels_out"], (s["height"], s["width"])) for s in stages],
        "transitions": transitions,
        "head": (rows[-1]["channels_in"], data["output_shape"][1]),
        "params": data["params"],
    }


def geometry(d: NetworkDiagram) -> dict[str, Any]:
    return {
        "stem": (d.stem.channels_in, d.stem.channels_out, d.stem.size_out),
        "stages": [(s.layers, s.channels_in, s.channels_out, s.size) for s in d.stages],
        "transitions": [(t.channels_in, t.channels_out, t.size_out) for t in d.transitions],
        "head": (d.head.channels_in, d.head.classes),
        "params": d.params,
    }


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_matches_nas_arch_json(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    preset = PRESETS[name]
    d = diagram_data(config=preset.config, input_size=preset.input_size)
    assert geometry(d) == diagram_from_json(arch_json(capsys, name))
    assert len(d.stages) == len(preset.config.block_config)
    assert len(d.transitions) == len(d.stages) - 1
    assert [t.after_stage for t in d.transitions] == list(range(1, len(d.stages)))
    assert all(s.mode == preset.config.connectivity for s in d.stages)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_one_config_per_mode_matches_nas_arch_json(
    mode: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = MODE_CONFIGS[mode]
    path = tmp_path / f"{mode}.json"
    path.write_text(json.dumps(config.to_dict()))
    d = diagram_data(config=config, input_size=(3, 16, 16))
    assert geometry(d) == diagram_from_json(arch_json(capsys, str(path), "--input-size", "3,16,16"))
    assert [s.size for s in d.stages] == [(16, 16), (8, 8), (4, 4)]


def test_densenet121_by_hand() -> None:
    d = diagram_data(config=PRESETS["densenet121"].config, input_size=(3, 224, 224))
    assert d.stem == StemBox("imagenet", 3, 64, (224, 224), (56, 56))
    assert d.stages[0] == StageBox(1, "dense", 6, 64, 256, (56, 56), 32, 128)
    assert [(s.channels_in, s.channels_out, s.size) for s in d.stages] == [
        (64, 256, (56, 56)),
        (128, 512, (28, 28)),
        (256, 1024, (14, 14)),
        (512, 1024, (7, 7)),
    ]
    assert d.transitions == (
        TransitionBox(1, 256, 128, (28, 28)),
        TransitionBox(2, 512, 256, (14, 14)),
        TransitionBox(3, 1024, 512, (7, 7)),
    )
    assert d.head == HeadBox(1024, 1000, (7, 7))
    assert d.params == 7_978_856


def test_growth_and_bottleneck_shown_only_where_they_mean_something() -> None:
    resnet = diagram_data(config=PRESETS["preact_resnet20"].config, input_size=(3, 32, 32))
    assert {(s.growth_rate, s.bottleneck) for s in resnet.stages} == {(None, None)}
    d2l = diagram_data(config=PRESETS["d2l_densenet"].config, input_size=(1, 96, 96))
    assert {(s.growth_rate, s.bottleneck) for s in d2l.stages} == {(32, None)}
    assert d2l.head.channels_in == 248


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if cls in g.get("class", "").split()]


@pytest.mark.parametrize("name", ["densenet121", "densenet_bc_100_k12", "resdensenet"])
def test_svg_has_a_group_per_part(name: str) -> None:
    preset = PRESETS[name]
    d = diagram_data(config=preset.config, input_size=preset.input_size)
    root = parse(network_svg(diagram=d, title=name))
    assert root.get("width") == "600"
    assert root[0].tag == f"{SVG}title" and root[0].text is not None and root[0].text.startswith(f"{name}: ")
    stages = groups(root, "stage")
    assert len(stages) == len(d.stages)
    assert len(groups(root, "transition")) == len(d.transitions)
    assert len(groups(root, "stem")) == len(groups(root, "head")) == 1
    mode = preset.config.connectivity
    for stage, box in zip(stages, d.stages, strict=True):
        texts = [t.text for t in stage.iter(f"{SVG}text")]
        assert texts[0] == f"stage {box.index} \u00b7 {mode} \u00b7 {box.layers} layers"
        assert texts[1] == f"{box.channels_in} \u2192 {box.channels_out} channels at {box.size[0]}\u00d7{box.size[1]}"
        assert len(groups(stage, f"glyph-{mode}")) == 1
        assert MODES[mode].colour in ET.tostring(stage, encoding="unicode")


def test_svg_is_self_contained_and_deterministic() -> None:
    preset = PRESETS["densenet121"]
    svg = config_svg(config=preset.config, input_size=preset.input_size, title="densenet121")
    assert svg == config_svg(config=preset.config, input_size=preset.input_size, title="densenet121")
    root = parse(svg)
    for element in root.iter():
        assert element.tag.split("}")[1] not in {"script", "style", "image", "a", "foreignObject", "use"}
        assert not {"id", "href", "style"} & {k.split("}")[-1] for k in element.attrib}
    assert "url(" not in svg and svg.count("http") == 1  # the xmlns only


def test_hostile_title_is_escaped() -> None:
    hostile = '</title><script>alert("x")</script> & <b onload=1>'
    svg = config_svg(config=MODE_CONFIGS["dense"], input_size=(3, 16, 16), title=hostile)
    assert "<script" not in svg and "<b " not in svg
    root = parse(svg)
    assert root[0].text is not None and root[0].text.startswith(hostile + ": dense network, 3 stages")
    shown = root.find(f"{SVG}text")
    assert shown is not None and shown.text == hostile


def test_without_a_title_the_accessible_name_still_describes_the_network() -> None:
    root = parse(config_svg(config=MODE_CONFIGS["residual"], input_size=(3, 16, 16)))
    d = diagram_data(config=MODE_CONFIGS["residual"], input_size=(3, 16, 16))
    assert root[0].text == f"residual network, 3 stages, {d.params:,} parameters, 5 classes"
    assert root.find(f"{SVG}text") is not None  # the stem's first line, no heading before it
    assert groups(root, "stem")[0].find(f"{SVG}text") is root.find(f".//{SVG}text")


# Per mode: arcs above the chain (layers reading earlier outputs), arcs below (skips of the whole
# stage; dashed for a bypass), circled pluses (adds) and join bars (concatenations).
GLYPHS = {
    "plain": {"above": 0, "below": 0, "dashed": 0, "adds": 0, "joins": 0},
    "residual": {"above": 3, "below": 0, "dashed": 0, "adds": 3, "joins": 0},
    "dense": {"above": 6, "below": 0, "dashed": 0, "adds": 0, "joins": 1},
    "dense_residual": {"above": 6, "below": 1, "dashed": 0, "adds": 1, "joins": 1},
    "osp": {"above": 3, "below": 0, "dashed": 0, "adds": 0, "joins": 1},
    "csp": {"above": 6, "below": 1, "dashed": 1, "adds": 0, "joins": 1},
}


def glyph_counts(glyph: ET.Element) -> dict[str, int]:
    arcs = [p for p in glyph.iter(f"{SVG}path") if "Q" in p.get("d", "")]
    below = [p for p in arcs if p.get("stroke-opacity") is None]
    return {
        "above": len(arcs) - len(below),
        "below": len(below),
        "dashed": sum(p.get("stroke-dasharray") is not None for p in arcs),
        "adds": sum(c.get("r") == "5" for c in glyph.iter(f"{SVG}circle")),
        "joins": sum(r.get("width") == "4" for r in glyph.iter(f"{SVG}rect")),
    }


def test_every_mode_has_its_own_glyph() -> None:
    assert set(GLYPHS) == set(MODES)
    shapes = set()
    for mode, config in MODE_CONFIGS.items():
        root = parse(config_svg(config=config, input_size=(3, 16, 16)))
        glyphs = groups(root, "glyph")
        assert len(glyphs) == 3 and all(g.get("class") == f"glyph glyph-{mode}" for g in glyphs)
        assert glyph_counts(glyphs[1]) == GLYPHS[mode], mode  # stage 2: 3 layers
        drawn = ET.tostring(glyphs[1], encoding="unicode")
        shapes.add(re.sub(r"<title>.*</title>|#[0-9a-f]{6}|glyph-\w+", "", drawn))
    assert len(shapes) == len(MODES)


def layer_units(glyph: ET.Element) -> int:
    return sum(r.get("width") == "9" for r in glyph.iter(f"{SVG}rect"))


@pytest.mark.parametrize("mode", list(MODES))
def test_a_glyph_draws_as_many_layers_as_its_stage_has_and_elides_a_long_one(mode: str) -> None:
    """Stage glyphs drew 3 layer units beside "2 layers"."""
    root = parse(config_svg(config=MODE_CONFIGS[mode], input_size=(3, 16, 16)))
    assert [layer_units(g) for g in groups(root, "glyph")] == [2, 3, 2]
    deep = dataclasses.replace(MODE_CONFIGS[mode], block_config=(4, 12))
    glyphs = groups(parse(config_svg(config=deep, input_size=(3, 16, 16))), "glyph")
    assert [layer_units(g) for g in glyphs] == [4, 3]  # 12 layers: the first two, an ellipsis, the last
    assert sum(c.get("r") == "1.3" for c in glyphs[1].iter(f"{SVG}circle")) == 3
    assert sum(c.get("r") == "1.3" for c in glyphs[0].iter(f"{SVG}circle")) == 0


def test_bad_arguments_are_usage_errors() -> None:
    with pytest.raises(UsageError, match=r"network_svg.diagram = 'x' is invalid: a NetworkDiagram"):
        network_svg(diagram="x")  # type: ignore[arg-type]
    d = diagram_data(config=MODE_CONFIGS["plain"], input_size=(3, 16, 16))
    with pytest.raises(UsageError, match=r"network_svg.title = 3 is invalid"):
        network_svg(diagram=d, title=3)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"diagram_data.config = \{\} is invalid"):
        diagram_data(config={}, input_size=(3, 16, 16))  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="has 1 channels but the config has in_channels=3"):
        diagram_data(config=MODE_CONFIGS["plain"], input_size=(1, 16, 16))

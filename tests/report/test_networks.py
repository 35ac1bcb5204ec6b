"""The report draws each front network once (twins folded, same architecture once) and each baseline."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from nas.arch.config import ArchConfig
from nas.report.data import compute_report_data
from nas.report.diagram import diagram_data
from nas.report.networks import MAX_DRAWN, FrontNetwork, networks_section
from tests.report.test_report import add, hand_study, new_study


def test_front_networks_are_the_folded_front_by_size_then_baselines() -> None:
    study = hand_study(objectives=("val_accuracy", "flops", "params"))
    data = compute_report_data(study=study)
    assert data.pareto_numbers == (0, 1, 2, 3, 4, 11)  # twin 6 folded into 1
    networks = data.networks
    assert [n.number for n in networks] == [3, 2, 0, 4, 1, 11]  # by parameters: 1e4, 2e4, 3e4, 5e4, 8e4, 2e5
    assert [n.reused_by for n in networks if n.reused_by] == [(6,)]
    assert [n.baseline for n in networks] == [False] * 5 + [True]
    assert data.input_size is None  # a hand-made study has no provenance: nothing to draw at
    section = "".join(networks_section(networks=networks, input_size=None))
    assert "Not drawn: the study's provenance records no input size." in section and "<svg" not in section


def test_a_feasible_baseline_off_the_front_is_drawn_and_one_architecture_once() -> None:
    study = new_study("b", ("val_accuracy", "flops"))
    add(study, mode="dense", k=12, acc=0.90, flops=4e6, params=3e4)  # 0
    add(study, mode="dense", k=12, acc=0.90, flops=4e6, params=3e4)  # 1: the same architecture trained again
    add(study, mode="plain", k=8, acc=0.50, flops=9e6, params=5e4, baseline="preact_resnet20")  # 2: dominated
    data = compute_report_data(study=study)
    assert data.pareto_numbers == (0, 1)
    assert [(n.number, n.label) for n in data.networks] == [(0, "dense"), (2, "preact_resnet20")]


def test_each_drawn_network_is_its_architecture_and_text_is_escaped() -> None:
    arch = {"connectivity": "dense", "growth_rate": 8, "block_config": [2, 3], "bn_size": 4, "init_features": 16}
    hostile = "<script>alert(1)</script>"
    networks = [
        FrontNetwork(number=4, label="dense", baseline=False, accuracy=0.9, params=1e4, arch=arch),
        FrontNetwork(number=7, label=hostile, baseline=True, accuracy=0.5, params=None, arch={}),
    ]
    page = "".join(networks_section(networks=networks, input_size=(3, 32, 32)))
    assert "<script>" not in page and "&lt;script&gt;" in page
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert len(svgs) == 1
    root = ET.fromstring(svgs[0])
    stages = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if "stage" in g.get("class", "").split()]
    expected = diagram_data(config=ArchConfig.from_dict(arch), input_size=(3, 32, 32))
    assert len(stages) == len(expected.stages) == 2
    assert "trial 4 · dense · val 90.0% · 10.00K params" in page
    assert "a torchvision model, no ArchConfig to draw" in page


def test_a_large_front_draws_at_most_max_drawn() -> None:
    arch = {"connectivity": "plain", "growth_rate": 8, "block_config": [1], "init_features": 8, "in_channels": 1}
    networks = [
        FrontNetwork(number=i, label="plain", baseline=False, accuracy=0.5, params=100.0 + i, arch=arch)
        for i in range(MAX_DRAWN + 3)
    ]
    page = "".join(networks_section(networks=networks, input_size=(1, 8, 8)))
    assert page.count("<svg") == MAX_DRAWN
    assert f"Not drawn: trial {MAX_DRAWN}; trial {MAX_DRAWN + 1}; trial {MAX_DRAWN + 2}." in page
    colour = "".join(networks_section(networks=networks[:1], input_size=(3, 8, 8)))  # stored at 1 channel
    assert "<svg" not in colour and "Not drawn: trial 0 (input_size (3, 8, 8) has 3 channels but the config" in colour

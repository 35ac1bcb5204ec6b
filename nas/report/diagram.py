"""Network diagrams: a plain structure of a network's parts first, then a compact SVG drawn from it.

Every number comes from `nas.arch.cost.estimate` (what `nas arch --json` prints), so a diagram and
the cost table cannot disagree; a stage's wiring glyph is drawn from its mode's `Wiring` and coloured
with its mode's colour (`nas.arch.modes`). The SVG is made to be inlined in a report page many times:
no fonts, links, scripts, style sheets or ids; every text is XML-escaped; the same config always gives
the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from nas.arch.config import STEMS, ArchConfig
from nas.arch.cost import estimate, human
from nas.arch.modes import MODES, Wiring
from nas.errors import bad_value


@dataclass(frozen=True)
class StemBox:
    kind: str  # a key of nas.arch.config.STEMS
    channels_in: int
    channels_out: int
    size_in: tuple[int, int]  # (height, width) of the image
    size_out: tuple[int, int]  # what the first stage sees


@dataclass(frozen=True)
class StageBox:
    index: int  # 1-based, as the cost table names stages
    mode: str
    layers: int
    channels_in: int
    channels_out: int  # before the transition
    size: tuple[int, int]  # (height, width) inside the stage
    growth_rate: int | None  # channels each layer adds; None where the layers keep the stage's width
    bottleneck: int | None  # width of the 1x1 bottleneck conv (bn_size * k); None without one


@dataclass(frozen=True)
class TransitionBox:
    after_stage: int
    channels_in: int
    channels_out: int
    size_out: tuple[int, int]  # after its 2x2 average pooling


@dataclass(frozen=True)
class HeadBox:
    channels_in: int
    classes: int
    size_in: tuple[int, int]  # what its global average pool reduces to 1x1


@dataclass(frozen=True)
class NetworkDiagram:
    """What a network diagram shows, as tests check it: stem, stages, transitions, head."""

    mode: str
    arch_hash: str
    input_size: tuple[int, int, int]
    stem: StemBox
    stages: tuple[StageBox, ...]
    transitions: tuple[TransitionBox, ...]  # transitions[i] follows stages[i]
    head: HeadBox
    params: int
    flops: int


def diagram_data(*, config: ArchConfig, input_size: tuple[int, int, int]) -> NetworkDiagram:
    """The diagram's numbers, read from the closed-form cost table (the one place wiring rules live)."""
    if not isinstance(config, ArchConfig):
        raise bad_value("diagram_data", "config", config, "an ArchConfig is required")
    est = estimate(config, input_size=input_size)
    parts = est.parts
    mode = MODES[config.connectivity]
    growth = None if mode.growth_only_in_bottleneck else config.growth_rate
    bottleneck = config.bn_size * config.growth_rate if config.bn_size else None
    stages: list[StageBox] = []
    transitions: list[TransitionBox] = []
    for i, part in enumerate(parts):
        if part.kind == "stage":
            stages.append(
                StageBox(
                    len(stages) + 1,
                    config.connectivity,
                    part.layers,
                    part.channels_in,
                    part.channels_out,
                    (part.height, part.width),
                    growth,
                    bottleneck,
                )
            )
        elif part.kind == "transition":
            after = parts[i + 1]  # the next stage works at the pooled size
            transitions.append(
                TransitionBox(len(stages), part.channels_in, part.channels_out, (after.height, after.width))
            )
    stem, head = parts[0], parts[-1]
    return NetworkDiagram(
        mode=config.connectivity,
        arch_hash=config.arch_hash(),
        input_size=est.input_size,
        stem=StemBox(config.stem, stem.channels_in, stem.channels_out, (stem.height, stem.width), stages[0].size),
        stages=tuple(stages),
        transitions=tuple(transitions),
        head=HeadBox(head.channels_in, head.channels_out, (head.height, head.width)),
        params=est.params,
        flops=est.flops,
    )


# ----- drawing -----------------------------------------------------------------------------------

WIDTH = 600  # fits a report column; every box spans it, top to bottom
X0, BOX_W = 8, WIDTH - 16
GLYPH_W, GLYPH_H = 250, 46  # the wiring glyph at the right of each stage box
GAP = 14  # between boxes, holding a down arrow
INK, MUTED, RULE = "#222", "#666", "#999"
TITLE_CHARS = 90  # a longer title is cut on screen (the <title> keeps it whole)


def _n(value: float) -> str:
    """A coordinate with at most one decimal, always written the same way."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _attrs(**attrs: object) -> str:
    return "".join(
        f' {k.rstrip("_").replace("_", "-")}="{escape(str(v), {chr(34): "&quot;"})}"' for k, v in attrs.items()
    )


def _text(x: float, y: float, text: str, **attrs: object) -> str:
    return f'<text x="{_n(x)}" y="{_n(y)}"{_attrs(**attrs)}>{escape(text)}</text>'


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}\u00d7{size[1]}"


def _down_arrow(y: float) -> str:
    x, tip = WIDTH / 2, y + GAP - 2
    return (
        f'<path d="M{_n(x)} {_n(y + 2)}V{_n(tip)}M{_n(x - 3.5)} {_n(tip - 5)}L{_n(x)} {_n(tip)}'
        f'L{_n(x + 3.5)} {_n(tip - 5)}" fill="none" stroke="{RULE}" stroke-width="1.2"/>'
    )


def _box(kind: str, y: float, height: float, lines: list[str], hover: str, fill: str, stroke: str) -> str:
    """A full-width box of one part: a bold first line and smaller ones under it."""
    out = [f'<g class="{kind}"><title>{escape(hover)}</title>']
    out.append(
        f'<rect x="{X0}" y="{_n(y)}" width="{BOX_W}" height="{_n(height)}" rx="4"{_attrs(fill=fill, stroke=stroke)}/>'
    )
    for i, line in enumerate(lines):
        style = {"font_weight": "bold", "font_size": 12} if i == 0 else {"fill": MUTED}
        out.append(_text(X0 + 10, y + 15 + 14 * i, line, **style))
    out.append("</g>")
    return "".join(out)


def _arc(x1: float, x2: float, y: float, rise: float, colour: str, *, dashed: bool = False) -> str:
    """A curve from (x1, y) to (x2, y) whose middle is `rise` above the baseline (below when negative).

    Arcs above (layers reading earlier outputs) are faint, since dense stages draw many; the one arc
    below (a skip of the whole stage) is drawn in full."""
    style = ' stroke-dasharray="3 2"' if dashed else ""
    style += ' stroke-opacity="0.75"' if rise > 0 else ""
    return (
        f'<path d="M{_n(x1)} {_n(y)}Q{_n((x1 + x2) / 2)} {_n(y - 2 * rise)} {_n(x2)} {_n(y)}" fill="none" '
        f'stroke="{colour}" stroke-width="1"{style}/>'
    )


GLYPH_LAYERS = 4  # a stage of more layers draws the first two, an ellipsis and the last


def _glyph_items(wiring: Wiring, layers: int) -> list[str]:
    """The glyph's nodes left to right: the stage input, its layers (a long stage elided), how the stage ends."""
    items = ["in"]
    drawn = ["layer"] * layers if layers <= GLYPH_LAYERS else ["layer", "layer", "gap", "layer"]
    for kind in drawn:
        items += ["layer", "add"] if kind == "layer" and wiring.adds_around_layer else [kind]
    if wiring.joins_all_outputs:
        items.append("join")
    if wiring.adds_stage_input:
        items.append("add")
    return items


def _node(kind: str, x: float, y: float, colour: str) -> str:
    if kind == "in":
        return f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3.5" fill="#fff" stroke="{colour}" stroke-width="1.2"/>'
    if kind == "layer":
        return f'<rect x="{_n(x - 4.5)}" y="{_n(y - 6)}" width="9" height="12" rx="1.5" fill="{colour}"/>'
    if kind == "gap":  # layers left out: an ellipsis on the chain
        return "".join(f'<circle cx="{_n(x + dx)}" cy="{_n(y)}" r="1.3" fill="{colour}"/>' for dx in (-4, 0, 4))
    if kind == "join":
        return f'<rect x="{_n(x - 2)}" y="{_n(y - 9)}" width="4" height="18" fill="{colour}"/>'
    return (  # add: a circled plus
        f'<circle cx="{_n(x)}" cy="{_n(y)}" r="5" fill="#fff" stroke="{colour}" stroke-width="1.2"/>'
        f'<path d="M{_n(x - 3)} {_n(y)}H{_n(x + 3)}M{_n(x)} {_n(y - 3)}V{_n(y + 3)}" stroke="{colour}" '
        f'stroke-width="1.2"/>'
    )


def _glyph(mode_name: str, x: float, y: float, layers: int) -> str:
    """The mode's wiring in a few lines: arcs above the chain feed layers, arcs below skip the stage."""
    mode = MODES[mode_name]
    wiring, colour = mode.wiring, mode.colour
    items = _glyph_items(wiring, layers)
    base = y + 27
    step = (GLYPH_W - 26) / (len(items) - 1)
    xs = [x + 6 + step * i for i in range(len(items))]
    out = [f'<g class="glyph glyph-{escape(mode_name)}"><title>{escape(mode_name)}: {escape(mode.summary)}</title>']
    end = x + GLYPH_W - 4  # the chain leaves the stage here
    out.append(
        f'<path d="M{_n(xs[0])} {_n(base)}H{_n(end)}M{_n(end - 5)} {_n(base - 3.5)}L{_n(end)} {_n(base)}'
        f'L{_n(end - 5)} {_n(base + 3.5)}" fill="none" stroke="{colour}" stroke-width="1.2"/>'
    )
    feeds = [i for i, kind in enumerate(items) if kind in ("in", "layer", "join")]
    if wiring.reads_all_earlier:  # every earlier output feeds every later layer and the join
        for a, i in enumerate(feeds):
            for b in range(a + 2, len(feeds)):
                out.append(_arc(xs[i], xs[feeds[b]], base, 4 + 4 * (b - a), colour))
    elif wiring.joins_all_outputs:  # a chain whose outputs all meet once at the end
        join = feeds[-1]
        for a, i in enumerate(feeds[:-2]):
            out.append(_arc(xs[i], xs[join], base, 4 + 4 * (len(feeds) - 1 - a), colour))
    if wiring.adds_around_layer:  # each layer's input skips it into the add after it
        for i, kind in enumerate(items):
            if kind == "layer":
                out.append(_arc(xs[i - 1], xs[i + 1], base, 9, colour))
    if wiring.adds_stage_input:  # the stage input, added to the fused output
        out.append(_arc(xs[0], xs[-1], base, -9, colour))
    if wiring.bypasses_half:  # half the input, concatenated at the end untouched
        out.append(_arc(xs[0], xs[feeds[-1]], base, -9, colour, dashed=True))
    out += [_node(kind, xi, base, colour) for kind, xi in zip(items, xs, strict=True)]
    out.append("</g>")
    return "".join(out)


def _stage(stage: StageBox, y: float, height: float) -> str:
    mode = MODES[stage.mode]
    layers = f"{stage.layers} layer" + ("" if stage.layers == 1 else "s")
    knobs = [f"growth k={stage.growth_rate}"] if stage.growth_rate is not None else []
    knobs += [f"bottleneck {stage.bottleneck}"] if stage.bottleneck is not None else ["no bottleneck"]
    lines = [
        f"stage {stage.index} \u00b7 {stage.mode} \u00b7 {layers}",
        f"{stage.channels_in} \u2192 {stage.channels_out} channels at {_size(stage.size)}",
        " \u00b7 ".join(knobs),
    ]
    box = _box(
        "stage", y, height, lines, f"stage {stage.index}: {mode.summary}", fill=_tint(mode.colour), stroke=mode.colour
    )
    bar = f'<rect x="{X0}" y="{_n(y)}" width="5" height="{_n(height)}" fill="{mode.colour}"/>'
    glyph = _glyph(stage.mode, X0 + BOX_W - GLYPH_W - 6, y + (height - GLYPH_H) / 2, stage.layers)
    return box[: -len("</g>")] + bar + glyph + "</g>"


def _tint(colour: str) -> str:
    """The colour mixed 90% with white: a box background that keeps dark text readable."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(255 - (255 - c) * 0.1):02x}" for c in (r, g, b))


def network_svg(*, diagram: NetworkDiagram, title: str | None = None) -> str:
    """The diagram as one self-contained SVG element, stem at the top and head at the bottom."""
    if not isinstance(diagram, NetworkDiagram):
        raise bad_value("network_svg", "diagram", diagram, "a NetworkDiagram (from diagram_data) is required")
    if title is not None and not isinstance(title, str):
        raise bad_value("network_svg", "title", title, "a string or None is required")
    d = diagram
    stages = len(d.stages)
    summary = (
        f"{d.mode} network, {stages} stage{'s' if stages != 1 else ''}, {d.params:,} parameters, "
        f"{d.head.classes} classes"
    )
    body: list[str] = []
    y = 8.0
    if title:
        shown = title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "\u2026"
        body.append(_text(X0, y + 12, shown, font_weight="bold", font_size=13, fill=INK))
        y += 22
    c, h, w = d.input_size
    stem_lines = [
        f"stem \u00b7 {d.stem.kind}",
        f"{c}\u00d7{h}\u00d7{w} image \u2192 {d.stem.channels_out} channels at {_size(d.stem.size_out)}",
    ]
    body.append(_box("stem", y, 36, stem_lines, f"stem: {STEMS[d.stem.kind]}", fill="#f3f3f3", stroke=RULE))
    y += 36
    for i, stage in enumerate(d.stages):
        body.append(_down_arrow(y))
        y += GAP
        body.append(_stage(stage, y, 58))
        y += 58
        if i < len(d.transitions):
            t = d.transitions[i]
            line = (
                f"transition {t.after_stage} \u00b7 BN-ReLU-1\u00d71 conv {t.channels_in} \u2192 {t.channels_out}, "
                f"2\u00d72 average pool \u2192 {_size(t.size_out)}"
            )
            body.append(_down_arrow(y))
            y += GAP
            body.append(
                f'<g class="transition"><rect x="{X0 + 40}" y="{_n(y)}" width="{BOX_W - 80}" height="22" rx="3" '
                f'fill="#fafafa" stroke="#bbb"/>{_text(X0 + 50, y + 15, line, fill=INK)}</g>'
            )
            y += 22
    body.append(_down_arrow(y))
    y += GAP
    head_lines = [
        "head \u00b7 BN-ReLU, global average pool, linear",
        f"{d.head.channels_in} channels at {_size(d.head.size_in)} \u2192 {d.head.classes} classes",
    ]
    body.append(_box("head", y, 36, head_lines, "head: BN-ReLU, global average pool, linear", "#f3f3f3", RULE))
    y += 36
    footer = f"{d.params:,} parameters \u00b7 {human(d.flops)} FLOPs per image (fvcore) \u00b7 arch {d.arch_hash}"
    body.append(_text(X0, y + 16, footer, font_size=10, fill=MUTED))
    height = _n(y + 24)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="network-diagram" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" font-family="sans-serif" font-size="11" fill="{INK}">'
        f"<title>{escape(title + ': ' + summary if title else summary)}</title>{''.join(body)}</svg>"
    )


def config_svg(*, config: ArchConfig, input_size: tuple[int, int, int], title: str | None = None) -> str:
    """One call from a config to its SVG, for reports that draw each front network."""
    return network_svg(diagram=diagram_data(config=config, input_size=input_size), title=title)


__all__ = [
    "HeadBox",
    "NetworkDiagram",
    "StageBox",
    "StemBox",
    "TransitionBox",
    "config_svg",
    "diagram_data",
    "network_svg",
]

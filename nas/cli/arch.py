"""`nas arch`: a preset or config file, its knobs overridden, shown as a per-stage cost table or a diagram."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from nas.arch.config import ArchConfig
from nas.arch.cost import CostEstimate, estimate, human
from nas.arch.modes import MODES
from nas.arch.presets import PRESETS, get_preset
from nas.checks import INT64_MAX, INT64_MIN, is_int
from nas.errors import UsageError, shown_value
from nas.files import write_text_atomic
from nas.report.diagram import config_svg
from nas.text import plural


def int_arg(text: str) -> int:
    """argparse's `type` for every integer option: an integer that fits 64 bits (what torch, numpy and the
    storages take), so that `--trials 1000...0` is one line, not a traceback from deep inside a run."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if not is_int(value):
        raise argparse.ArgumentTypeError(
            f"{shown_value(value)} is out of range: an integer from {INT64_MIN} to {INT64_MAX} is required"
        )
    return value


def parse_input_size(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise UsageError(
            f"--input-size {text!r} is invalid: give C,H,W as three positive integers, e.g. 3,32,32",
            owner="--input-size",
            value=text,
            allowed="C,H,W as three positive integers, e.g. 3,32,32",
        )
    return (values[0], values[1], values[2])


def parse_pairs(items: list[str], *, option: str = "--set") -> dict[str, Any]:
    """KEY=VALUE pairs of `option`; a VALUE is JSON (24, 0.5, [2,2], true) or else a bare word."""
    pairs: dict[str, Any] = {}
    example = "growth_rate=24" if option == "--set" else "epochs=3"
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(
                f"{option} {item!r} is invalid: use KEY=VALUE, e.g. {option} {example}",
                owner=option,
                value=item,
                allowed="KEY=VALUE",
            )
        try:
            pairs[key] = json.loads(raw)
        except json.JSONDecodeError:
            pairs[key] = raw  # a bare word such as dense or cifar
    return pairs


def load_config(target: str, overrides: dict[str, Any]) -> tuple[ArchConfig, tuple[int, int, int] | None]:
    """A preset name or a JSON file of ArchConfig fields (or an `nas arch --json` output)."""
    if target in PRESETS:
        return get_preset(target, **overrides), PRESETS[target].input_size
    path = Path(target)
    if not path.suffix == ".json":
        raise UsageError(
            f"unknown preset {target!r}; valid presets are {', '.join(sorted(PRESETS))} (or a .json file)",
            field="preset",
            value=target,
            allowed=f"valid presets are {', '.join(sorted(PRESETS))} (or a .json file)",
        )
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}", owner=str(path)) from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UsageError(f"{path} is not valid JSON: {err}", owner=str(path)) from err
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object of ArchConfig fields", owner=str(path))
    return ArchConfig.from_dict({**data, **overrides}), None


def format_table(est: CostEstimate) -> str:
    """The per-stage table that `nas arch` prints."""
    cfg = est.config
    header = ("part", "mode", "layers", "channels", "spatial", "params", "FLOPs", "act. MiB")
    rows = []
    for p in est.parts:
        mode = cfg.connectivity if p.kind == "stage" else p.kind
        act = p.activation_bytes_efficient if cfg.memory_efficient else p.activation_bytes
        rows.append(
            (
                p.name,
                mode,
                str(p.layers) if p.layers else "",
                f"{p.channels_in} -> {p.channels_out}",
                f"{p.height}x{p.width}",
                f"{p.params:,}",
                human(p.flops),
                f"{act / 2**20:.2f}",
            )
        )
    act_total = est.activation_bytes_efficient if cfg.memory_efficient else est.activation_bytes
    total = (
        "total",
        "",
        str(sum(cfg.block_config)),
        "",
        "",
        f"{est.params:,}",
        human(est.flops),
        f"{act_total / 2**20:.2f}",
    )
    widths = [max(len(r[i]) for r in [header, *rows, total]) for i in range(len(header))]

    def line(r: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i < 5 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    rule = "-" * len(line(header))
    c, h, w = est.input_size
    lines = [
        f"{cfg.connectivity} network, input {c}x{h}x{w}, {plural(cfg.num_classes, 'class', 'classes')}, "
        f"arch hash {cfg.arch_hash()}",
        line(header),
        rule,
        *(line(r) for r in rows),
        rule,
        line(total),
        f"FLOPs: fvcore convention, one multiply-add = 1 FLOP, per image ({est.flops:,} in total).",
        "act. MiB: training activation memory per image"
        + (
            " (memory-efficient mode)."
            if cfg.memory_efficient
            else f"; memory-efficient mode: {est.activation_bytes_efficient / 2**20:.2f} MiB."
        ),
    ]
    return "\n".join(lines)


def write_svg(*, svg: str, path: Path) -> Path:
    """Write the diagram atomically (temporary file, then rename) into an existing folder."""
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(
            f"--svg {str(path)!r}: folder {str(folder)!r} does not exist; create it first",
            owner="--svg",
            value=str(path),
            allowed="a path in an existing folder",
        )
    try:
        return write_text_atomic(path=path, text=svg)
    except OSError as err:
        raise UsageError(f"--svg {str(path)!r}: cannot write it: {err.strerror}", owner="--svg") from err


def cmd_arch(args: argparse.Namespace) -> int:
    if args.list:
        width = max(len(n) for n in PRESETS)
        for name, preset in PRESETS.items():
            print(f"{name.ljust(width)}  {preset.source}")
        print(f"\nconnectivity modes: {', '.join(MODES)}")
        return 0
    if not args.target:
        raise UsageError("give a preset name or a CONFIG.json (nas arch --list shows the presets)")
    overrides = parse_pairs(args.set)
    if args.num_classes is not None:
        overrides["num_classes"] = args.num_classes
    if args.in_channels is not None:
        overrides["in_channels"] = args.in_channels
    config, preset_size = load_config(args.target, overrides)
    if args.input_size:
        size = parse_input_size(args.input_size)
    elif preset_size is not None and preset_size[0] == config.in_channels:
        size = preset_size
    else:
        size = (config.in_channels, *((224, 224) if config.stem == "imagenet" else (32, 32)))
    if args.svg:
        name = args.target if args.target in PRESETS else Path(args.target).stem
        print(write_svg(svg=config_svg(config=config, input_size=size, title=name), path=Path(args.svg)))
        return 0
    est = estimate(config, input_size=size)
    if args.json:
        print(json.dumps(est.to_dict(), indent=2))
    else:
        print(format_table(est))
    return 0


def add_arch_command(sub: Any) -> None:
    """Register `nas arch` on the `nas` subparsers."""
    arch = sub.add_parser("arch", help="show a network's stages, parameters, FLOPs and memory")
    arch.add_argument("target", nargs="?", help="preset name or CONFIG.json")
    arch.add_argument("--list", action="store_true", help="list the presets")
    arch.add_argument("--num-classes", type=int_arg, help="override the number of classes")
    arch.add_argument("--in-channels", type=int_arg, help="override the number of input channels")
    arch.add_argument("--input-size", help="C,H,W (default: the preset's, else 224x224 or 32x32 by stem)")
    arch.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any knob")
    shown = arch.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    shown.add_argument("--svg", metavar="OUT.svg", help="write the network's diagram (SVG) instead of the table")
    arch.set_defaults(func=cmd_arch)

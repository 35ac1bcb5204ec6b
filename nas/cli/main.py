"""The `nas` command line. Every user error ends in one clear line and exit status 2."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from nas.arch.config import ArchConfig
from nas.arch.cost import CostEstimate, estimate, human
from nas.arch.modes import MODES
from nas.arch.presets import PRESETS, get_preset
from nas.cli.study import add_study_commands
from nas.data.datasets import DATASETS, DataConfig, load_data
from nas.errors import UsageError
from nas.train.checkpoint import load_checkpoint
from nas.train.loop import evaluate_split
from nas.train.measure import resolve_device
from nas.train.recipe import OPTIMIZERS, Recipe
from nas.train.trainer import train_trial


def _parse_input_size(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise UsageError(f"--input-size {text!r} is invalid: give C,H,W as three positive integers, e.g. 3,32,32")
    return (values[0], values[1], values[2])


def _parse_set(items: list[str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {item!r} is invalid: use KEY=VALUE, e.g. --set growth_rate=24")
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw  # a bare word such as dense or cifar
    return overrides


def _load_config(target: str, overrides: dict[str, Any]) -> tuple[ArchConfig, tuple[int, int, int] | None]:
    """A preset name or a JSON file of ArchConfig fields (or an `nas arch --json` output)."""
    if target in PRESETS:
        return get_preset(target, **overrides), PRESETS[target].input_size
    path = Path(target)
    if not path.suffix == ".json":
        raise UsageError(f"unknown preset {target!r}; valid presets are {', '.join(sorted(PRESETS))} (or a .json file)")
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}") from err
    except json.JSONDecodeError as err:
        raise UsageError(f"{path} is not valid JSON: {err}") from err
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object of ArchConfig fields")
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
        f"{cfg.connectivity} network, input {c}x{h}x{w}, {cfg.num_classes} classes, arch hash {cfg.arch_hash()}",
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


def cmd_arch(args: argparse.Namespace) -> int:
    if args.list:
        width = max(len(n) for n in PRESETS)
        for name, preset in PRESETS.items():
            print(f"{name.ljust(width)}  {preset.source}")
        print(f"\nconnectivity modes: {', '.join(MODES)}")
        return 0
    if not args.target:
        raise UsageError("give a preset name or a CONFIG.json (nas arch --list shows the presets)")
    overrides = _parse_set(args.set)
    if args.num_classes is not None:
        overrides["num_classes"] = args.num_classes
    if args.in_channels is not None:
        overrides["in_channels"] = args.in_channels
    config, preset_size = _load_config(args.target, overrides)
    if args.input_size:
        size = _parse_input_size(args.input_size)
    elif preset_size is not None and preset_size[0] == config.in_channels:
        size = preset_size
    else:
        size = (config.in_channels, *((224, 224) if config.stem == "imagenet" else (32, 32)))
    est = estimate(config, input_size=size)
    if args.json:
        print(json.dumps(est.to_dict(), indent=2))
    else:
        print(format_table(est))
    return 0


def _data_config(args: argparse.Namespace, saved: dict[str, Any] | None = None) -> DataConfig:
    fields: dict[str, Any] = dict(saved or {})
    if getattr(args, "dataset", None):
        fields["name"] = args.dataset
    if args.data_root:
        fields["root"] = args.data_root
    if getattr(args, "no_download", False):
        fields["download"] = False
    return DataConfig(**fields)


def cmd_train(args: argparse.Namespace) -> int:
    data_config = _data_config(args)
    data = load_data(data_config)
    c, _, _ = data.input_size
    overrides = {"num_classes": data.num_classes, "in_channels": c, **_parse_set(args.set)}
    config, _ = _load_config(args.target, overrides)
    recipe_fields = {k: v for k, v in _parse_set(args.recipe).items()}
    for name in ("epochs", "batch_size", "lr", "optimizer", "seed"):
        if getattr(args, name) is not None:
            recipe_fields[name] = getattr(args, name)
    recipe = Recipe(**recipe_fields)
    extra = {"data_config": dataclasses.asdict(data_config)}
    result = train_trial(
        config=config,
        data=data,
        recipe=recipe,
        device=args.device,
        progress=True,
        checkpoint_path=args.save,
        checkpoint_extra=extra,
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        acc = "-" if result.best_val_accuracy is None else f"{result.best_val_accuracy:.2%}"
        print(
            f"{result.status}: best validation accuracy {acc} (epoch {result.best_epoch}) on {data.name}, "
            f"{result.params:,} parameters, {result.flops:,} FLOPs, {result.wall_seconds:.1f} s"
        )
        if result.reason:
            print(f"reason: {result.reason}")
        for note in result.notes:
            print(f"note: {note}")
        if args.save and result.status in ("complete", "pruned"):
            print(f"saved {args.save}")
    return 0 if result.status in ("complete", "pruned") else 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    if not Path(args.checkpoint).is_file():
        raise UsageError(f"no checkpoint at {args.checkpoint}")
    model, config, payload = load_checkpoint(Path(args.checkpoint))
    data = load_data(_data_config(args, payload.get("extra", {}).get("data_config")))
    device = resolve_device(args.device)
    loss, accuracy = evaluate_split(model.to(device), data.test, data, device=device)
    report = {
        "split": "test",
        "dataset": data.name,
        "images": len(data.test),
        "accuracy": accuracy,
        "loss": loss,
        "arch_hash": config.arch_hash(),
        "checkpoint": str(args.checkpoint),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"test accuracy {accuracy:.2%} (loss {loss:.4f}) on {len(data.test)} {data.name} test images")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nas", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    arch = sub.add_parser("arch", help="show a network's stages, parameters, FLOPs and memory")
    arch.add_argument("target", nargs="?", help="preset name or CONFIG.json")
    arch.add_argument("--list", action="store_true", help="list the presets")
    arch.add_argument("--num-classes", type=int, help="override the number of classes")
    arch.add_argument("--in-channels", type=int, help="override the number of input channels")
    arch.add_argument("--input-size", help="C,H,W (default: the preset's, else 224x224 or 32x32 by stem)")
    arch.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any knob")
    arch.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    arch.set_defaults(func=cmd_arch)

    train = sub.add_parser("train", help="train one network and report validation accuracy and costs")
    train.add_argument("target", help="preset name or CONFIG.json")
    train.add_argument("--dataset", default="digits", help=f"one of {', '.join(DATASETS)}")
    train.add_argument("--data-root", help="where the dataset is, or is downloaded to")
    train.add_argument("--no-download", action="store_true", help="never download")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--optimizer", help=f"one of {', '.join(OPTIMIZERS)}")
    train.add_argument("--seed", type=int)
    train.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override an arch knob")
    train.add_argument("--recipe", action="append", default=[], metavar="KEY=VALUE", help="set a recipe field")
    train.add_argument("--save", type=Path, help="save the trained weights, config and recipe here")
    train.add_argument("--json", action="store_true", help="print the whole result as JSON")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="the final, explicit test-set evaluation of a saved network")
    evaluate.add_argument("checkpoint", help="a file written by nas train --save")
    evaluate.add_argument("--data-root", help="where the dataset is, if not where it was at training")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(func=cmd_evaluate)

    add_study_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (UsageError, ValueError, FileNotFoundError) as err:
        print(f"nas {args.command}: error: {err}", file=sys.stderr)
        return 2
    return code

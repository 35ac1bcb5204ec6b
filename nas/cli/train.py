"""`nas train` (one network, validation accuracy and costs) and `nas evaluate` (its test accuracy)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from nas.cli.arch import int_arg, load_config, parse_pairs
from nas.data.datasets import DATASETS, DataConfig
from nas.errors import UsageError
from nas.text import plural
from nas.train.recipe import BASE_KEY, OPTIMIZERS, RECIPES, Recipe


def _data_config(args: argparse.Namespace, saved: dict[str, Any] | None = None) -> DataConfig:
    fields: dict[str, Any] = dict(saved or {})
    if getattr(args, "dataset", None):
        fields["name"] = args.dataset
    if args.data_root:
        fields["root"] = args.data_root
    if getattr(args, "no_download", False):
        fields["download"] = False
    return DataConfig(**fields)


def _writable_file(option: str, path: Path) -> None:
    """A file the command will write after training: refused now, not after the weights are trained. A file is
    created and removed beside where it will go (in the nearest folder that exists), since permissions alone do
    not say whether a place takes files (/proc, a read-only mount)."""
    if path.is_dir():
        raise UsageError(owner=option, value=str(path), allowed="a file path (this is a folder)")
    parent = next(p for p in (path.parent, *path.parent.parents) if p.exists())
    try:
        if not parent.is_dir():
            raise NotADirectoryError(f"{parent} is not a folder")
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        why = err.strerror or str(err)
        raise UsageError(
            owner=option,
            value=str(path),
            allowed=f"a path this user can write (a file cannot be made in {parent}: {why})",
        ) from None


def _listed(classes: list[str]) -> str:
    shown = ", ".join(str(c) for c in classes[:6])
    return f"[{shown}{', ...' if len(classes) > 6 else ''}]"


def _recipe_fields(items: list[str]) -> dict[str, Any]:
    """`--recipe` items: KEY=VALUE pairs, and a bare NAME meaning base=NAME (a recipe of RECIPES)."""
    names = [item for item in items if "=" not in item]
    fields = parse_pairs([item for item in items if "=" in item], option="--recipe")
    for name in names:
        if name not in RECIPES:
            allowed = f"a recipe name ({', '.join(RECIPES)}) or KEY=VALUE, e.g. --recipe epochs=3"
            raise UsageError(f"--recipe {name!r} is invalid: {allowed}", owner="--recipe", value=name, allowed=allowed)
    if len(names) > 1:
        allowed = "one recipe name, then KEY=VALUE pairs"
        raise UsageError(
            f"--recipe names {len(names)} recipes ({', '.join(names)}): {allowed}",
            owner="--recipe",
            value=names,
            allowed=allowed,
        )
    if names:
        fields[BASE_KEY] = names[0]
    return fields


def cmd_train(args: argparse.Namespace) -> int:
    from nas.data.datasets import load_data
    from nas.train.trainer import train_trial

    data_config = _data_config(args)
    recipe_fields = _recipe_fields(args.recipe)
    for name in ("epochs", "batch_size", "lr", "optimizer", "seed"):
        if getattr(args, name) is not None:
            recipe_fields[name] = getattr(args, name)
    recipe = Recipe.from_dict(recipe_fields)  # a mistake names its key, before the data loads
    if args.save is not None:
        _writable_file("--save", Path(args.save))
    data = load_data(data_config)
    if data.num_classes < 2:
        raise UsageError(
            f"dataset {data.name!r} has {plural(data.num_classes, 'class', 'classes')}: "
            "training a classifier needs at least 2",
            owner="--dataset",
            value=data.name,
            allowed="a dataset with at least 2 classes",
        )
    c, _, _ = data.input_size
    overrides = {"num_classes": data.num_classes, "in_channels": c, **parse_pairs(args.set)}
    config, _ = load_config(args.target, overrides)
    for name, wanted in (("in_channels", c), ("num_classes", data.num_classes)):
        if getattr(config, name) != wanted:
            raise UsageError(
                f"--set {name}={getattr(config, name)} is invalid: dataset {data.name!r} has {wanted}; "
                f"{name} comes from the dataset",
                owner="--set",
                field=name,
                value=getattr(config, name),
                allowed=f"{wanted}, from the dataset (or leave it unset)",
            )
    extra = {"data_config": dataclasses.asdict(data_config), "classes": list(data.classes)}
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
    from nas.data.datasets import load_data
    from nas.train.checkpoint import load_checkpoint
    from nas.train.evaluate import evaluate_split
    from nas.train.loop import flip_applies
    from nas.train.measure import resolve_device

    path = Path(args.checkpoint)
    if not path.is_file():
        raise UsageError(f"no checkpoint at {args.checkpoint}", owner="checkpoint", value=args.checkpoint)
    model, config, payload = load_checkpoint(path)
    data = load_data(_data_config(args, payload.get("extra", {}).get("data_config")))
    trained_on = payload.get("extra", {}).get("classes")  # checkpoints before 2026-12-04 do not say
    if trained_on is not None and list(trained_on) != list(data.classes):
        raise UsageError(
            f"{path} was trained on the classes {_listed(trained_on)}, but {data.name} has {_listed(data.classes)}: "
            "an accuracy between them would mean nothing; give --data-root the data it was trained on",
            owner="checkpoint",
            value=str(path),
        )
    c, _, _ = data.input_size
    if (config.in_channels, config.num_classes) != (c, data.num_classes):
        raise UsageError(
            f"{path} holds a network for {plural(config.in_channels, 'channel')} and "
            f"{plural(config.num_classes, 'class', 'classes')}, but {data.name} has {plural(c, 'channel')} and "
            f"{plural(data.num_classes, 'class', 'classes')}: give --data-root the data it was trained on",
            owner="checkpoint",
            value=str(path),
        )
    device = resolve_device(args.device)
    tta_flip = flip_applies(payload.get("recipe", {}).get("tta_flip", False), data)
    loss, accuracy = evaluate_split(model.to(device), data.test, data, device=device, tta_flip=tta_flip)
    report = {
        "split": "test",
        "dataset": data.name,
        "images": len(data.test),
        "accuracy": accuracy,
        "loss": loss,
        "tta_flip": tta_flip,
        "arch_hash": config.arch_hash(),
        "checkpoint": str(args.checkpoint),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"test accuracy {accuracy:.2%} (loss {loss:.4f}) on {len(data.test)} {data.name} test images")
    return 0


def add_train_commands(sub: Any) -> None:
    """Register `nas train` and `nas evaluate` on the `nas` subparsers."""
    train = sub.add_parser("train", help="train one network and report validation accuracy and costs")
    train.add_argument("target", help="preset name or CONFIG.json")
    train.add_argument("--dataset", default="digits", help=f"one of {', '.join(DATASETS)}")
    train.add_argument("--data-root", help="where the dataset is, or is downloaded to")
    train.add_argument("--no-download", action="store_true", help="never download")
    train.add_argument("--epochs", type=int_arg)
    train.add_argument("--batch-size", type=int_arg)
    train.add_argument("--lr", type=float)
    train.add_argument("--optimizer", help=f"one of {', '.join(OPTIMIZERS)}")
    train.add_argument("--seed", type=int_arg)
    train.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override an arch knob")
    train.add_argument(
        "--recipe",
        action="append",
        default=[],
        metavar="NAME|KEY=VALUE",
        help=f"start from a named recipe ({', '.join(RECIPES)}) or set a recipe field; repeatable",
    )
    train.add_argument("--save", type=Path, help="save the trained weights, config and recipe here")
    train.add_argument("--json", action="store_true", help="print the whole result as JSON")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="the final, explicit test-set evaluation of a saved network")
    evaluate.add_argument("checkpoint", help="a file written by nas train --save")
    evaluate.add_argument("--data-root", help="where the dataset is, if not where it was at training")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(func=cmd_evaluate)

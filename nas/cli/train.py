"""`nas train` (one network, validation accuracy and costs) and `nas evaluate` (its test accuracy)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from nas.arch import ArchConfig
from nas.arch.external import TORCHVISION_PREFIX, ExternalNet
from nas.cli.arch import int_arg, load_config, parse_pairs
from nas.cli.reproduce import StudyTrial, check_fits, departures, network, recorded_line, study_trial
from nas.data.datasets import DATASETS, IMAGEFOLDER_DEFAULT_SIZE, MAX_IMAGE_SIZE, DataConfig, LoadedData
from nas.errors import UsageError
from nas.text import plural
from nas.train.recipe import BASE_KEY, OPTIMIZERS, RECIPES, Recipe, named_recipe

# The command-line options of the DataConfig fields that `nas train` and `nas evaluate` take.
DATA_OPTIONS = {"name": "--dataset", "root": "--data-root", "image_size": "--image-size"}
IMAGEFOLDER = "imagefolder"


def _data_config(args: argparse.Namespace, saved: dict[str, Any] | None = None) -> DataConfig:
    """The data to read: `saved` (a study's or a checkpoint's), then the options given; a mistake names the option."""
    fields: dict[str, Any] = dict(saved or {})
    if getattr(args, "dataset", None):
        fields["name"] = args.dataset
    if args.data_root:
        fields["root"] = args.data_root
    size = getattr(args, "image_size", None)
    if size is not None:
        fields["image_size"] = size
    if getattr(args, "no_download", False):
        fields["download"] = False
    name = fields.get("name", DataConfig.name)
    if name == IMAGEFOLDER and not fields.get("root"):
        allowed = "the folder of class subfolders (or of train/ and test/), e.g. --data-root data/my_images"
        raise UsageError(
            f"--dataset {IMAGEFOLDER} needs --data-root: {allowed}", owner="--data-root", value=None, allowed=allowed
        )
    if size is not None and name in DATASETS and name != IMAGEFOLDER:
        allowed = f"--image-size resizes --dataset {IMAGEFOLDER} only; {name} keeps its native size"
        raise UsageError(owner="--image-size", value=size, allowed=allowed)
    if size is not None and not 1 <= size <= MAX_IMAGE_SIZE:
        raise UsageError(owner="--image-size", value=size, allowed=f"an integer from 1 to {MAX_IMAGE_SIZE} is required")
    try:
        return DataConfig(**fields)
    except UsageError as err:
        option = DATA_OPTIONS.get(err.field or "") if err.owner == "DataConfig" else None
        if option is None or not err.has_value:
            raise
        raise UsageError(owner=option, value=err.value, allowed=err.allowed) from None


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


def _recipe(args: argparse.Namespace, study: Recipe | None) -> Recipe:
    """The recipe: the options given, over the study's (--from-study) or over the named recipe or the defaults;
    a `--recipe NAME` over a study's recipe sets that recipe's fields."""
    fields = _recipe_fields(args.recipe)
    for name in ("epochs", "batch_size", "lr", "optimizer", "seed"):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    if study is None:
        return Recipe.from_dict(fields)  # a mistake names its key, before the data loads
    named = fields.pop(BASE_KEY, None)
    return Recipe.from_dict({**dataclasses.asdict(study), **(named_recipe(named) if named else {}), **fields})


def _from_study(args: argparse.Namespace) -> StudyTrial | None:
    """The study trial to train (--from-study STUDY --trial N), or None for a TARGET; a mix is refused."""
    if args.from_study is None:
        if args.target is None:
            raise UsageError(
                "nas train needs what to train: a TARGET (a preset name or CONFIG.json), "
                "or --from-study STUDY --trial N",
                owner="target",
                allowed="a preset name, CONFIG.json, or --from-study STUDY --trial N",
            )
        for option, value in (("--trial", args.trial), ("--storage", args.storage)):
            if value is not None:
                raise UsageError(owner=option, value=value, allowed="it goes with --from-study STUDY")
        return None
    if args.target is not None:
        allowed = "a TARGET (preset or CONFIG.json) or --from-study STUDY --trial N, not both"
        raise UsageError(
            f"nas train got both a TARGET ({args.target}) and --from-study {args.from_study}: {allowed}",
            owner="--from-study",
            value=args.from_study,
            allowed=allowed,
        )
    if args.trial is None:
        raise UsageError(
            f"--from-study {args.from_study} needs --trial N: the trial to train again (nas status and the report "
            "number them)",
            owner="--trial",
            allowed="a trial number of the study",
        )
    if args.dataset is not None:
        allowed = "no --dataset with --from-study (give --data-root to read the study's data from elsewhere)"
        raise UsageError(
            f"--dataset {args.dataset}: --from-study trains on the study's dataset; {allowed}",
            owner="--dataset",
            value=args.dataset,
            allowed=allowed,
        )
    return study_trial(path=args.from_study, storage=args.storage, number=args.trial)


def _network(
    args: argparse.Namespace, source: StudyTrial | None, data: LoadedData, *, recipe: Recipe, data_config: DataConfig
) -> ArchConfig | ExternalNet:
    """What to train: TARGET sized for the data, or the study trial's network (its departures said on stderr)."""
    c, h, w = data.input_size
    if source is not None:
        net = network(source, in_channels=c, num_classes=data.num_classes, overrides=parse_pairs(args.set))
        check_fits(source, net, channels=c, classes=data.num_classes, name=data.name)
        what = f"baseline {source.baseline}" if source.baseline else f"{net.connectivity} network"
        print(
            f"nas train: {source.label}, {what}, on {data.name} {c}x{h}x{w}, {plural(recipe.epochs, 'epoch')}, "
            f"seed {recipe.seed}",
            file=sys.stderr,
        )
        for note in departures(source, data=data_config, recipe=recipe, net=net):
            print(f"nas train: note: {note}", file=sys.stderr)
        return net
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
    return config


def _threads_as_trained(threads: int) -> None:
    """On a CPU, train with the trial's torch threads: how many threads share a sum changes its rounding, and so
    the accuracy (the CLI owns this process-wide setting)."""
    import torch

    if torch.get_num_threads() != threads:
        print(f"nas train: {plural(threads, 'CPU thread')}, as the trial trained", file=sys.stderr)
        torch.set_num_threads(threads)


def cmd_train(args: argparse.Namespace) -> int:
    from nas.data.datasets import load_data
    from nas.train.measure import resolve_device
    from nas.train.trainer import train_trial

    source = _from_study(args)
    data_config = _data_config(args, dataclasses.asdict(source.data) if source else None)
    recipe = _recipe(args, source.recipe if source else None)
    if args.save is not None:
        _writable_file("--save", Path(args.save))
        if source is not None and source.baseline and source.baseline.startswith(TORCHVISION_PREFIX):
            allowed = "no --save with a torchvision baseline: checkpoints hold ArchConfig networks only"
            raise UsageError(f"{source.label} is {source.baseline}; {allowed}", owner="--save", allowed=allowed)
    data = load_data(data_config)
    if data.num_classes < 2:
        raise UsageError(
            f"dataset {data.name!r} has {plural(data.num_classes, 'class', 'classes')}: "
            "training a classifier needs at least 2",
            owner="--dataset",
            value=data.name,
            allowed="a dataset with at least 2 classes",
        )
    config = _network(args, source, data, recipe=recipe, data_config=data_config)
    extra: dict[str, Any] = {"data_config": dataclasses.asdict(data_config), "classes": list(data.classes)}
    if source is not None:
        extra["from_study"] = {"study": source.study, "trial": source.number}
    device = resolve_device(args.device or (source.device if source else "auto"))
    if source is not None and source.cpu_threads is not None and device.type == "cpu":
        _threads_as_trained(source.cpu_threads)
    result = train_trial(
        config=config,
        data=data,
        recipe=recipe,
        device=device,
        progress=True,
        checkpoint_path=args.save,
        checkpoint_extra=extra,
    )
    if args.json:
        shown = result.to_dict()
        if source is not None:
            shown["from_study"] = {"study": source.study, "trial": source.number, "recorded": source.recorded}
        print(json.dumps(shown, indent=2))
    else:
        acc = "-" if result.best_val_accuracy is None else f"{result.best_val_accuracy:.2%}"
        print(
            f"{result.status}: best validation accuracy {acc} (epoch {result.best_epoch}) on {data.name}, "
            f"{result.params:,} parameters, {result.flops:,} FLOPs, {result.wall_seconds:.1f} s"
        )
        if source is not None:
            print(recorded_line(source))
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
    train = sub.add_parser(
        "train",
        help="train one network and report validation accuracy and costs; --from-study: a study's trial, as it trained",
    )
    train.add_argument("target", nargs="?", help="preset name or CONFIG.json (or --from-study STUDY --trial N)")
    train.add_argument(
        "--from-study",
        metavar="STUDY",
        help="a study file (TOML): train its trial --trial N with the study's data, input size, recipe and seed",
    )
    train.add_argument("--trial", type=int_arg, metavar="N", help="with --from-study: the trial number")
    train.add_argument("--storage", help="with --from-study: an Optuna storage URL (default: the study file's)")
    train.add_argument("--dataset", help=f"one of {', '.join(DATASETS)} (default: digits; --from-study: the study's)")
    train.add_argument("--data-root", help="where the dataset is, or is downloaded to")
    train.add_argument(
        "--image-size",
        type=int_arg,
        metavar="PIXELS",
        help=f"imagefolder: resize to this square (default: {IMAGEFOLDER_DEFAULT_SIZE}; --from-study: the study's)",
    )
    train.add_argument("--no-download", action="store_true", help="never download")
    train.add_argument("--epochs", type=int_arg)
    train.add_argument("--batch-size", type=int_arg)
    train.add_argument("--lr", type=float)
    train.add_argument("--optimizer", help=f"one of {', '.join(OPTIMIZERS)}")
    train.add_argument("--seed", type=int_arg)
    train.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: auto; --from-study: the study file's)")
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

"""Time to accuracy: epochs and seconds of training until validation accuracy first reaches a target,
the default recipe against the fast one (`nas.train.recipe.RECIPES`), on the real Fashion-MNIST.

Both recipes train the same networks (a small DenseNet-BC, a pre-activation ResNet-20, a one-shot
aggregation and a dense_residual net) with the same seeds, epoch budget and batch, through the
project's own `train_trial`, so this measures the real trainer. Seconds are training seconds (the
epochs' own timing, validation excluded) summed up to the first epoch at or above the target. A run
stops there (`--no-stop` trains the whole budget); the learning-rate schedule always spans the budget.

    python benchmarks/time_to_accuracy.py                      # CPU: 10,000-image subset, tiny nets, 84%
    python benchmarks/time_to_accuracy.py --full --out t.json  # GPU: all 54,000 training images, 94%
    python benchmarks/time_to_accuracy.py --seeds 1 --max-epochs 2 --networks osp   # a quick look

CPU mode (the default without a GPU): a fixed stratified subset of 10,000 training images
(`DataConfig.train_subset`), 3,000 validation images, networks of 10,000-19,000 parameters, target 84%
within 10 epochs (the default recipe reaches it around epoch 7-9, its dips in accuracy included): about
15-18 minutes on 2 quiet cores, estimated from runs on a busy machine (`--seeds 2` for about 12).
GPU mode (`--full`, or `--device cuda`): all 54,000 training images, 6,000 validation images, networks
of 0.2M-0.4M parameters, target 94% within 30 epochs. Prints one markdown table, last, then the ratios
default/fast (median over seeds); `--out FILE.json` writes the same numbers with the settings.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from nas.arch import ArchConfig
from nas.cli.arch import parse_pairs
from nas.data.datasets import DataConfig, LoadedData, load_data
from nas.train.measure import environment, resolve_device
from nas.train.recipe import RECIPES, Recipe
from nas.train.results import EpochMetrics
from nas.train.trainer import train_trial

COMPARED = ("default", "fast")


def _net(connectivity: str, **fields: Any) -> ArchConfig:
    """A CIFAR-stem network for 1x28x28 Fashion-MNIST; residual modes double the width at each transition."""
    fields = {"stem": "cifar", "in_channels": 1, "num_classes": 10, "width_multiplier": 2.0, **fields}
    return ArchConfig(connectivity=connectivity, **fields)


@dataclass(frozen=True)
class Mode:
    """What one kind of machine trains: data, networks, target and budget."""

    train_subset: int | None  # None: the whole train split
    val_fraction: float
    target: float
    max_epochs: int
    batch_size: int
    networks: dict[str, ArchConfig]


MODES = {
    "cpu": Mode(
        train_subset=10_000,
        val_fraction=0.05,
        target=0.84,
        max_epochs=10,
        batch_size=128,
        networks={  # 2-4 MFLOPs an image: 5-9 s an epoch on one busy core
            "densenet_bc": _net("dense", growth_rate=8, bn_size=2, block_config=(2, 2, 2), init_features=8),
            "preact_resnet20": _net("residual", bn_size=0, block_config=(6, 6, 6), init_features=4),
            "osp": _net("osp", growth_rate=12, bn_size=0, block_config=(2, 2, 2), init_features=12),
            "dense_residual": _net("dense_residual", growth_rate=8, bn_size=2, block_config=(1, 2, 2), init_features=8),
        },
    ),
    "gpu": Mode(
        train_subset=None,
        val_fraction=0.1,
        target=0.94,
        max_epochs=30,
        batch_size=256,
        networks={
            "densenet_bc": _net("dense", growth_rate=12, bn_size=4, block_config=(8, 8, 8), init_features=24),
            "preact_resnet20": _net("residual", bn_size=0, block_config=(6, 6, 6), init_features=16),
            "osp": _net("osp", growth_rate=32, bn_size=0, block_config=(5, 5, 5), init_features=64),
            "dense_residual": _net(
                "dense_residual", growth_rate=16, bn_size=4, block_config=(4, 4, 4), init_features=48
            ),
        },
    ),
}


@dataclass(frozen=True)
class Row:
    network: str
    params: int
    recipe: str
    seed: int
    epochs_to_target: int | None  # None: not reached in the epochs trained
    seconds_to_target: float | None
    final_val_accuracy: float | None  # of the last epoch trained
    epochs_trained: int
    status: str


def time_to_target(history: list[EpochMetrics], target: float) -> tuple[int | None, float | None]:
    """(epoch, training seconds up to and including it) of the first epoch at or above `target`."""
    seconds = 0.0
    for m in history:
        seconds += m.seconds
        if m.val_accuracy >= target:
            return m.epoch, seconds
    return None, None


def run(name: str, data: LoadedData, recipe_name: str, seed: int, args: argparse.Namespace) -> Row:
    fields = {"base": recipe_name, "epochs": args.max_epochs, "batch_size": args.batch_size, "seed": seed}
    recipe = Recipe.from_dict({**fields, "measure_latency": False, **args.recipe})

    def stop(m: EpochMetrics) -> str | None:
        return f"reached {args.target:.1%}" if args.stop and m.val_accuracy >= args.target else None

    config = args.mode.networks[name]
    result = train_trial(config=config, data=data, recipe=recipe, device=args.device, on_epoch=stop, progress=False)
    epochs, seconds = time_to_target(result.history, args.target)
    last = result.history[-1].val_accuracy if result.history else None
    return Row(name, result.params, recipe_name, seed, epochs, seconds, last, len(result.history), result.status)


def ratios(rows: list[Row], key: str) -> dict[str, dict[str, Any]]:
    """Per network: default/fast of `key` for each seed where both recipes reached the target, and the median."""
    out: dict[str, dict[str, Any]] = {}
    for network in dict.fromkeys(r.network for r in rows):
        by = {(r.recipe, r.seed): getattr(r, key) for r in rows if r.network == network}
        seeds = sorted({seed for _, seed in by})
        pairs = [by["default", s] / by["fast", s] for s in seeds if by.get(("default", s)) and by.get(("fast", s))]
        out[network] = {"median": statistics.median(pairs) if pairs else None, "seeds": len(pairs), "of": len(seeds)}
    return out


def _cell(value: Any, fmt: str) -> str:
    return "not reached" if value is None else format(value, fmt)


def table(rows: list[Row], target: float) -> str:
    lines = [
        f"| network | params | recipe | seed | epochs to {target:.0%} | seconds to {target:.0%} | final val acc |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        final = "-" if r.final_val_accuracy is None else f"{r.final_val_accuracy:.2%} (epoch {r.epochs_trained})"
        lines.append(
            f"| {r.network} | {r.params:,} | {r.recipe} | {r.seed} | {_cell(r.epochs_to_target, 'd')} | "
            f"{_cell(r.seconds_to_target, '.1f')} | {final} |"
        )
    return "\n".join(lines)


def summary(rows: list[Row]) -> str:
    epochs, seconds = ratios(rows, "epochs_to_target"), ratios(rows, "seconds_to_target")
    lines = [
        "| network | default/fast epochs (median) | default/fast seconds (median) | seeds both reached |",
        "| --- | ---: | ---: | ---: |",
    ]
    for network, e in epochs.items():
        s = seconds[network]
        lines.append(
            f"| {network} | {_cell(e['median'], '.2f')} | {_cell(s['median'], '.2f')} | {e['seeds']} of {e['of']} |"
        )
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Epochs and seconds to a validation accuracy: default vs fast recipe.")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--full", action="store_true", help="GPU mode: the full training set, bigger nets, target 94%%")
    p.add_argument("--seeds", type=int, default=3, help="seeds per network and recipe: 0, 1, ... (default 3)")
    p.add_argument("--networks", nargs="+", help="some of the mode's networks (default: all four)")
    p.add_argument("--target", type=float, help="validation accuracy to reach (default: the mode's)")
    p.add_argument("--max-epochs", type=int, help="the epoch budget and the schedule's length (default: the mode's)")
    p.add_argument("--batch-size", type=int, help="default: the mode's")
    p.add_argument("--train-subset", type=int, help="training images (default: the mode's; 0: all)")
    p.add_argument("--recipe", action="append", default=[], metavar="KEY=VALUE", help="set in both recipes")
    p.add_argument("--no-stop", dest="stop", action="store_false", help="train the whole budget past the target")
    p.add_argument(
        "--data-root", help="where Fashion-MNIST is (default: $NAS_DATA_DIR, then the Debian package's folder)"
    )
    p.add_argument("--out", type=Path, help="also write the settings, rows and ratios as JSON here")
    args = p.parse_args(argv)
    args.device = str(resolve_device(args.device))
    args.mode = MODES["gpu" if args.full or args.device.startswith("cuda") else "cpu"]
    for key in ("target", "max_epochs", "batch_size"):
        if getattr(args, key) is None:
            setattr(args, key, getattr(args.mode, key))
    args.train_subset = args.mode.train_subset if args.train_subset is None else (args.train_subset or None)
    unknown = sorted(set(args.networks or ()) - set(args.mode.networks))
    if unknown:
        p.error(f"unknown networks {unknown}; choose from {', '.join(args.mode.networks)}")
    args.networks = args.networks or list(args.mode.networks)
    args.recipe = parse_pairs(args.recipe, option="--recipe")
    return args


def _report(args: argparse.Namespace, config: DataConfig, heading: str, rows: list[Row]) -> dict[str, Any]:
    settings = {key: getattr(args, key) for key in ("device", "target", "max_epochs", "batch_size", "seeds")}
    return {
        "heading": heading,
        "settings": {**settings, "stop_at_target": args.stop, "recipe_overrides": args.recipe},
        "data": asdict(config),
        "networks": {name: args.mode.networks[name].to_dict() for name in args.networks},
        "recipes": {name: RECIPES[name] for name in COMPARED},
        "environment": environment(torch.device(args.device)),
        "rows": [asdict(r) for r in rows],
        "ratio_epochs": ratios(rows, "epochs_to_target"),
        "ratio_seconds": ratios(rows, "seconds_to_target"),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    config = DataConfig(
        name="fashion_mnist", root=args.data_root, val_fraction=args.mode.val_fraction, train_subset=args.train_subset
    )
    data = load_data(config)
    heading = (
        f"Fashion-MNIST, {len(data.train):,} training and {len(data.val):,} validation images, {args.device}, "
        f"batch {args.batch_size}, at most {args.max_epochs} epochs, fast = {json.dumps(RECIPES['fast'])}"
    )
    rows: list[Row] = []
    for name in args.networks:
        for seed in range(args.seeds):
            for recipe_name in COMPARED:
                rows.append(row := run(name, data, recipe_name, seed, args))
                print(f"{name} {recipe_name} seed {seed}: to target {row.epochs_to_target} epochs", flush=True)
                if args.out is not None:  # after every run: a run stopped by a timeout keeps the rows so far
                    args.out.write_text(json.dumps(_report(args, config, heading, rows), indent=2) + "\n")
    print(f"\n{heading}\n\n{table(rows, args.target)}\n\n{summary(rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

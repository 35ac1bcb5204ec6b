"""The recorded learning-curve table: every network of a finite space trained once, each epoch kept.

Search strategies are compared over many seeds by replaying this table instead of training
(`benchmarks/search_efficiency.py`), the way NAS-Bench-201 and Syne Tune's simulator backend work.
Each network is trained through the project's own `train_trial` with one fixed recipe for the whole
epoch budget (the learning-rate schedule spans it, as in a study's trial), and the table keeps its
validation accuracy and training seconds after every epoch, beside its parameters and FLOPs.

    python benchmarks/curve_table.py                 # CPU: 160 tiny networks, 6,000 images, 8 epochs
    python benchmarks/curve_table.py --full          # GPU: all 54,000 training images, 20 epochs
    python benchmarks/curve_table.py --dataset digits --space tabular_digits --recipe lr=0.2
                                                     # CPU: the second table, 8x8 digits, the quickstart's 3 epochs

The CSV is written after every network, so a stopped build resumes where it was (networks already in
the file are skipped when the settings match); a JSON file beside it records the settings, the
environment and how long the build took.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from nas.arch import ArchConfig
from nas.arch.cost import estimate
from nas.cli.arch import parse_pairs
from nas.data.datasets import DataConfig, load_data
from nas.search.spec.space_file import load_space, shipped_dir
from nas.text import plural
from nas.train.measure import environment, resolve_device
from nas.train.recipe import Recipe
from nas.train.trainer import train_trial

HERE = Path(__file__).resolve().parent
SHIPPED_TABLE = HERE / "data" / "fashion_mnist_tabular.csv"
ORDER_SEED = 0  # networks train in a shuffled, fixed order: a partial table is a fair sample of the space


@dataclass(frozen=True)
class Mode:
    train_subset: int | None
    val_images: int
    epochs: int
    batch_size: int


CPU = Mode(train_subset=6_000, val_images=2_000, epochs=8, batch_size=128)
GPU = Mode(train_subset=None, val_images=6_000, epochs=20, batch_size=256)
DIGITS = Mode(train_subset=None, val_images=0, epochs=3, batch_size=32)  # the quickstart's recipe; digits' own split


@dataclass(frozen=True)
class Network:
    """One row of the table: a network and its learning curve."""

    arch_hash: str
    connectivity: str
    config: dict[str, Any]  # ArchConfig.to_dict()
    params: int
    flops: int
    accuracy: tuple[float, ...]  # validation accuracy after epoch 1, 2, ...
    seconds: tuple[float, ...]  # training seconds of epoch 1, 2, ... (validation excluded)

    @property
    def epochs(self) -> int:
        return len(self.accuracy)

    @property
    def best(self) -> float:
        """The study objective of a fully trained network: its best validation accuracy over the epochs."""
        return max(self.accuracy)


def _columns(epochs: int) -> list[str]:
    return [
        "arch_hash",
        "connectivity",
        "params",
        "flops",
        *(f"acc_{e}" for e in range(1, epochs + 1)),
        *(f"sec_{e}" for e in range(1, epochs + 1)),
        "config",
    ]


def _row(net: Network) -> dict[str, Any]:
    row: dict[str, Any] = {
        "arch_hash": net.arch_hash,
        "connectivity": net.connectivity,
        "params": net.params,
        "flops": net.flops,
        "config": json.dumps(net.config, sort_keys=True),
    }
    row.update({f"acc_{e}": f"{a:.4f}" for e, a in enumerate(net.accuracy, 1)})
    row.update({f"sec_{e}": f"{s:.3f}" for e, s in enumerate(net.seconds, 1)})
    return row


def read_table(path: Path) -> list[Network]:
    """The networks of a table CSV, in file order."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return []
    epochs = sum(1 for key in rows[0] if key.startswith("acc_"))
    return [
        Network(
            arch_hash=row["arch_hash"],
            connectivity=row["connectivity"],
            config=json.loads(row["config"]),
            params=int(row["params"]),
            flops=int(row["flops"]),
            accuracy=tuple(float(row[f"acc_{e}"]) for e in range(1, epochs + 1)),
            seconds=tuple(float(row[f"sec_{e}"]) for e in range(1, epochs + 1)),
        )
        for row in rows
    ]


def _train(cfg: ArchConfig, data: Any, recipe: Recipe, device: str) -> Network:
    result = train_trial(config=cfg, data=data, recipe=recipe, device=device, progress=False)
    if result.status != "complete" or len(result.history) != recipe.epochs:
        raise RuntimeError(f"network {cfg.arch_hash()} did not train fully: {result.status} {result.reason}")
    est = estimate(cfg, input_size=data.input_size)
    return Network(
        arch_hash=cfg.arch_hash(),
        connectivity=cfg.connectivity,
        config=cfg.to_dict(),
        params=est.params,
        flops=est.flops,
        accuracy=tuple(h.val_accuracy for h in result.history),
        seconds=tuple(h.seconds for h in result.history),
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="the GPU table: every training image, 20 epochs")
    p.add_argument(
        "--dataset",
        choices=("fashion_mnist", "digits"),
        default="fashion_mnist",
        help="fashion_mnist (default), or digits: scikit-learn's 8x8 digits at the quickstart's 3 epochs and batch 32",
    )
    p.add_argument("--space", default="tabular_grid", help="a finite space in search_spaces/ (or a path)")
    p.add_argument(
        "--out",
        type=Path,
        help=f"the CSV (default {SHIPPED_TABLE.relative_to(HERE.parent)}; --full: "
        "benchmarks/data/fashion_mnist_tabular_full.csv)",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--data-root", help="where Fashion-MNIST is (default: the Debian package, else download)")
    p.add_argument("--limit", type=int, help="train at most this many networks now (the rest on a rerun)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: tiny networks gain nothing from more, and on a busy machine "
        "2 threads ran 5-8x slower than 1)",
    )
    p.add_argument("--recipe", action="append", default=[], metavar="KEY=VALUE", help="override a recipe field")
    args = p.parse_args(argv)
    if args.full and args.dataset == "digits":
        p.error("--full is the GPU table of Fashion-MNIST; digits has one table")
    args.mode = DIGITS if args.dataset == "digits" else GPU if args.full else CPU
    if args.out is None:
        name = "digits_tabular.csv" if args.dataset == "digits" else None
        name = name or ("fashion_mnist_tabular_full.csv" if args.full else SHIPPED_TABLE.name)
        args.out = SHIPPED_TABLE.with_name(name)
    args.device = str(resolve_device(args.device))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    mode: Mode = args.mode
    space_path = args.space if args.space.endswith(".toml") else shipped_dir("search_spaces") / f"{args.space}.toml"
    space = load_space(space_path)
    if args.dataset == "digits":  # its own stratified validation split of the bundled images
        config = DataConfig(name="digits")
    else:
        config = DataConfig(
            name="fashion_mnist",
            root=args.data_root,
            val_fraction=mode.val_images / 60_000,
            train_subset=mode.train_subset,
        )
    recipe = Recipe.from_dict(
        {"epochs": mode.epochs, "batch_size": mode.batch_size, "measure_latency": False, **parse_pairs(args.recipe)}
    )
    data = load_data(config)
    c, _, _ = data.input_size
    nets = space.every_network(in_channels=c, num_classes=data.num_classes)
    random.Random(ORDER_SEED).shuffle(nets)
    settings = {
        "space": space.name,
        "data": asdict(config),
        "train_images": len(data.train),
        "val_images": len(data.val),
        "recipe": asdict(recipe),
        "networks": len(nets),
    }
    meta_path = args.out.with_suffix(".json")
    done = {n.arch_hash: n for n in read_table(args.out)} if args.out.exists() else {}
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if done and meta.get("settings") != json.loads(json.dumps(settings)):
        raise SystemExit(f"{args.out} was built with other settings ({meta_path}); remove it or choose --out")
    build_seconds = float(meta.get("build_seconds", 0.0))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    todo = [cfg for cfg in nets if cfg.arch_hash() not in done][: args.limit]
    print(
        f"{len(nets)} networks of {space.name}, {len(done)} already in {args.out}, {len(todo)} to train now; "
        f"{len(data.train):,} training and {len(data.val):,} validation images, {recipe.epochs} epochs, "
        f"{args.device}, {plural(torch.get_num_threads(), 'thread')}",
        flush=True,
    )
    table = list(done.values())
    for i, cfg in enumerate(todo, 1):
        started = time.perf_counter()
        table.append(net := _train(cfg, data, recipe, args.device))
        build_seconds += time.perf_counter() - started
        with args.out.open("w", newline="") as handle:  # the whole file each time: never half a row
            writer = csv.DictWriter(handle, fieldnames=_columns(recipe.epochs))
            writer.writeheader()
            writer.writerows(_row(n) for n in table)
        meta = {
            "settings": settings,
            "input_size": list(data.input_size),  # (C, H, W): what a replay's closed-form costs need
            "environment": environment(torch.device(args.device)),
            "build_seconds": round(build_seconds, 1),
            "complete": len(table) == len(nets),
            "date": time.strftime("%Y-%m-%d"),
        }
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
        print(
            f"[{len(done) + i}/{len(nets)}] {net.connectivity:14s} {net.params:>7,} params {net.flops / 1e6:6.2f} "
            f"MFLOPs  acc {net.accuracy[-1]:.2%}  {sum(net.seconds):6.1f} s  (build so far {build_seconds / 60:.1f} "
            "min)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

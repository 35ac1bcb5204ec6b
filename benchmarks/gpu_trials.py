"""Trials per GPU-hour: a fixed set of networks from a study's search space, trained by each way of running them.

A search is as good as the number of networks it trains in the hours a user has. This trains the same
networks (drawn with a seeded random sampler from `studies/fashion_mnist_gpu.toml`'s space, within its
parameter limit; its fast recipe at batch 256, a few epochs, no latency measurement) once per row, and reports
the wall seconds of the whole set, the aggregate training images per second, and each network's first epoch
against its later ones (the warm-up a trial pays). One untimed epoch comes first, so that what the process
pays once (CUDA context, cuDNN, the torch._dynamo import) is not charged to the first row; the processes row
pays it again in each of its workers, as real worker processes do:

    eager      one process, one trial after another, compile off (the trainer before compile="graphs")
    graphs     the same with compile="graphs" (the whole step as one CUDA graph)
    graphs_kK  graphs with K trials at once in one process, each in its own thread and CUDA stream
               (`--trials-per-gpu K`, nas.train.sharing), for K = 2, 4, 8
    processes  two worker processes sharing the device, half the set each, compile off (`--workers-per-gpu 2`)

    python benchmarks/gpu_trials.py --device cuda            # 8 networks, 3 epochs, full Fashion-MNIST
    python benchmarks/gpu_trials.py --device cuda --quick    # 4 networks, 2 epochs, 20,000 images: ~1-2 min on an H200
    python benchmarks/gpu_trials.py --device cpu --dataset digits --networks 2 --epochs 1   # a smoke run

Fashion-MNIST comes from $NAS_DATA_DIR or Debian's dataset-fashion-mnist (benchmarks/gpu_check.sh carries it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import optuna

from nas.arch import ArchConfig
from nas.arch.cost import estimate
from nas.data.datasets import DataConfig, LoadedData, load_data
from nas.train.measure import environment, resolve_device
from nas.train.recipe import Recipe
from nas.train.sharing import DeviceShare
from nas.train.trainer import train_trial

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "fashion_mnist_gpu.toml"
ROWS = ("eager", "graphs", "graphs_k2", "graphs_k4", "graphs_k8", "processes")
QUICK_ROWS = ("eager", "graphs", "graphs_k2", "graphs_k4", "processes")  # 4 networks: K = 8 would idle


def draw_networks(count: int, *, seed: int, data: LoadedData) -> list[ArchConfig]:
    """`count` distinct networks of the study's space within its parameter limit, always the same for a seed."""
    from nas.search.spec.studyfile_reader import load_study_file

    sf = load_study_file(STUDY)
    in_channels, num_classes = data.input_size[0], data.num_classes
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    networks: list[ArchConfig] = []
    for _ in range(50 * count):
        config = sf.space.config(sf.space.suggest(study.ask()), in_channels=in_channels, num_classes=num_classes)
        limit = sf.constraints.max_params
        if (limit is None or estimate(config, input_size=data.input_size).params <= limit) and config not in networks:
            networks.append(config)
        if len(networks) == count:
            return networks
    raise SystemExit(f"drew fewer than {count} distinct networks within the study's limits")


def study_recipe(*, epochs: int, compile_mode: str) -> Recipe:
    from nas.search.spec.studyfile_reader import load_study_file

    recipe = load_study_file(STUDY).recipe
    return dataclasses.replace(recipe, epochs=epochs, compile=compile_mode, measure_latency=False)


def train_set(
    networks: list[ArchConfig], data: LoadedData, *, recipe: Recipe, device: str, at_once: int = 1
) -> list[dict[str, Any]]:
    """Train the networks, `at_once` at a time in as many threads (as a `--trials-per-gpu` worker does); one row
    per network, in the set's order."""
    share, todo = DeviceShare(at_once), queue.SimpleQueue[int]()
    rows: list[dict[str, Any]] = [{} for _ in networks]
    for i in range(len(networks)):
        todo.put(i)

    def work() -> None:
        with share.trial_thread(resolve_device(device)):
            while True:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                config = networks[i]
                result = train_trial(
                    config=config, data=data, recipe=recipe, device=device, progress=False, share=share
                )
                epochs = [h.seconds for h in result.history]
                rows[i] = {
                    "network": i,
                    "connectivity": config.connectivity,
                    "status": result.status,
                    "epoch_seconds": epochs,
                    "first_over_later": epochs[0] / statistics.median(epochs[1:]) if len(epochs) > 1 else None,
                    "images_per_second": result.train_images_per_second,
                    "notes": result.notes,
                }

    threads = [threading.Thread(target=work) for _ in range(at_once)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if any(not row for row in rows):
        raise SystemExit("a network of the set was not trained (see the error above)")
    return rows


def load(args: argparse.Namespace) -> LoadedData:
    subset = args.train_subset or None
    return load_data(DataConfig(name=args.dataset, train_subset=subset))


def run_row(row: str, args: argparse.Namespace) -> dict[str, Any]:
    """One row: wall seconds for the whole set (data loading and process start included), per-network rows."""
    start = time.perf_counter()
    if row == "processes":
        with tempfile.TemporaryDirectory() as tmp:
            parts = [Path(tmp) / f"part{i}.json" for i in range(2)]
            command = [sys.executable, __file__, *args.passed, "--part-of-two", "{i}", "--part-out", "{out}"]
            workers = [subprocess.Popen([c.format(i=i, out=parts[i]) for c in command], cwd=ROOT) for i in range(2)]
            if any(worker.wait() != 0 for worker in workers):
                raise SystemExit("a worker process of the processes row failed")
            networks = [r for part in parts for r in json.loads(part.read_text())]
    else:
        data = load(args)
        recipe = study_recipe(epochs=args.epochs, compile_mode="off" if row == "eager" else "graphs")
        at_once = int(row.removeprefix("graphs_k")) if row.startswith("graphs_k") else 1
        networks = train_set(
            draw_networks(args.networks, seed=args.seed, data=data),
            data,
            recipe=recipe,
            device=args.device,
            at_once=at_once,
        )
    wall = time.perf_counter() - start
    images = args.images_per_epoch * args.epochs * len(networks)
    ratios = [n["first_over_later"] for n in networks if n["first_over_later"] is not None]
    return {
        "row": row,
        "wall_seconds": wall,
        "images_per_second": images / wall,
        "first_over_later_median": statistics.median(ratios) if ratios else None,
        "networks": networks,
    }


def times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dataset", default="fashion_mnist", help="fashion_mnist (the study's) or digits (smoke)")
    parser.add_argument("--networks", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-subset", type=int, default=0, help="training images (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="of the sampler that draws the networks")
    parser.add_argument("--quick", action="store_true", help="4 networks, 2 epochs, 20,000 training images")
    parser.add_argument("--rows", nargs="+", choices=ROWS, help=f"default: all; with --quick, {' '.join(QUICK_ROWS)}")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--part-of-two", type=int, choices=[0, 1], help=argparse.SUPPRESS)  # a processes-row worker
    parser.add_argument("--part-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the in-memory study that draws the networks
    if args.quick:
        args.networks, args.epochs, args.train_subset = 4, 2, 20_000
    args.rows = args.rows or list(QUICK_ROWS if args.quick else ROWS)
    for name in ("networks", "epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} = {getattr(args, name)} is invalid: an integer >= 1 is required")
    if args.train_subset < 0:
        parser.error(f"--train-subset = {args.train_subset} is invalid: 0 (all) or more is required")
    args.device = str(resolve_device(args.device))
    args.passed = [
        "--device", args.device, "--dataset", args.dataset, "--networks", str(args.networks),
        "--epochs", str(args.epochs), "--train-subset", str(args.train_subset), "--seed", str(args.seed),
    ]  # fmt: skip
    if args.part_of_two is not None:  # one worker of the processes row: its half of the set, eager
        data = load(args)
        networks = draw_networks(args.networks, seed=args.seed, data=data)[args.part_of_two :: 2]
        rows = train_set(
            networks, data, recipe=study_recipe(epochs=args.epochs, compile_mode="off"), device=args.device
        )
        args.part_out.write_text(json.dumps(rows))
        return
    data = load(args)
    args.images_per_epoch = len(data.train) // 256 * 256  # the recipe's batch 256, last partial batch dropped
    # What this process pays once (CUDA context, cuDNN, the torch._dynamo import the first optimizer makes) would
    # otherwise be charged to the first row: one untimed epoch of the first network first.
    warm_up = study_recipe(epochs=1, compile_mode="off")
    train_set(draw_networks(1, seed=args.seed, data=data), data, recipe=warm_up, device=args.device)
    results: list[dict[str, Any]] = []
    for row in args.rows:
        print(f"row {row}: {args.networks} networks, {args.epochs} epochs ...", file=sys.stderr, flush=True)
        results.append(run_row(row, args))
        base = next((r["wall_seconds"] for r in results if r["row"] == "eager"), None)
        for r in results:
            r["speedup_over_eager"] = None if base is None else base / r["wall_seconds"]
        if args.out:
            args.out.write_text(
                json.dumps(
                    {"settings": args.passed, "environment": environment(resolve_device(args.device)), "rows": results},
                    indent=1,
                )
            )
    print(
        f"\n{args.networks} networks of {STUDY.name}'s space, {args.epochs} epochs, "
        f"{args.images_per_epoch:,} images an epoch, {args.device}"
    )
    print("| row | wall s | img/s | speed-up over eager | first epoch / later (median) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in results:
        speedup, first = times(r["speedup_over_eager"]), times(r["first_over_later_median"])
        print(f"| {r['row']} | {r['wall_seconds']:.1f} | {r['images_per_second']:,.0f} | {speedup} | {first} |")


if __name__ == "__main__":
    main()

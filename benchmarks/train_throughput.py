"""Training throughput: the loop the tutorials write against the trainer's default, one process.

Both train the same architecture on the same CIFAR-shaped synthetic data (random uint8 images,
10 classes; throughput does not depend on pixel values). The tutorial loop is fp32 with PIL
transforms in a DataLoader at batch 64; the trainer keeps the data on the device, augments
there, and on CUDA uses bf16 autocast, channels_last and (per its recipe) torch.compile.

    python benchmarks/train_throughput.py                       # CPU-sized run
    python benchmarks/train_throughput.py --images 50000 --epochs 3 --compile on   # on a GPU
    python benchmarks/train_throughput.py --arch torchvision:resnet18:cifar --batch-size 512   # the anchor ResNet-18

Prints one table, last, and writes the same numbers as JSON with --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from nas.arch import ArchConfig, build_model
from nas.arch.external import ExternalNet, resolve_baseline
from nas.data.datasets import AugmentConfig, LoadedData, Split
from nas.train.measure import environment, resolve_device, synchronize
from nas.train.recipe import COMPILE_MODES, Recipe
from nas.train.trainer import train_trial

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


class _PILDataset(Dataset[tuple[torch.Tensor, int]]):
    """What the tutorials do: a PIL image per sample, transformed on the CPU."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels
        self.transform = transforms.Compose(
            [
                transforms.RandomCrop(32, padding=4),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize(MEAN, STD),
            ]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def network(arch: str) -> ArchConfig | ExternalNet:
    """A preset or torchvision:<model>[:cifar] (e.g. torchvision:resnet18:cifar), for CIFAR-shaped data."""
    return resolve_baseline(arch, in_channels=3, num_classes=10)


def tutorial_loop(arch: str, images: np.ndarray, labels: np.ndarray, device: torch.device, workers: int) -> float:
    """Images per second of one epoch of the tutorial loop, after 3 warm-up steps."""
    torch.manual_seed(0)
    net = network(arch)
    model = (net.build() if isinstance(net, ExternalNet) else build_model(net)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    loader = DataLoader(
        _PILDataset(images, labels),
        batch_size=64,
        shuffle=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
    )
    model.train()
    seen, start = 0, 0.0
    for step, (x, y) in enumerate(loader):
        if step == 3:
            synchronize(device)
            seen, start = 0, time.perf_counter()
        x, y = x.to(device), y.to(device)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += len(y)
    synchronize(device)
    return seen / (time.perf_counter() - start)


def trainer_default(
    arch: str, images: np.ndarray, labels: np.ndarray, device: torch.device, args: argparse.Namespace
) -> float:
    """Images per second of the trainer's last epoch (steady state)."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(labels).long()
    val = Split("val", labels=y[:512], images=x[:512])
    data = LoadedData(
        name="synthetic-cifar",
        train=Split("train", labels=y, images=x),
        val=val,
        test=val,
        num_classes=10,
        classes=[str(i) for i in range(10)],
        input_size=(3, 32, 32),
        mean=MEAN,
        std=STD,
        augment=AugmentConfig(crop_padding=4, flip=True),
        resident=True,
    )
    recipe = Recipe(epochs=args.epochs, batch_size=args.batch_size, compile=args.compile, measure_latency=False)
    result = train_trial(config=network(arch), data=data, recipe=recipe, device=device, progress=False)
    if result.status != "complete":
        raise SystemExit(f"trainer run {result.status}: {result.reason}")
    return result.history[-1].images_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="densenet_bc_100_k12", help="a preset or torchvision:<model>")
    parser.add_argument("--images", type=int, default=768, help="synthetic training images")
    parser.add_argument("--epochs", type=int, default=2, help="trainer epochs; the last one is timed")
    parser.add_argument(
        "--batch-size", type=int, default=Recipe().batch_size, help="trainer batch (the issue's GPU target uses 256)"
    )
    parser.add_argument("--compile", default="auto", choices=list(COMPILE_MODES))
    parser.add_argument("--workers", type=int, default=None, help="tutorial DataLoader workers (default 4, CPU 2)")
    parser.add_argument(
        "--tutorial-images",
        type=int,
        default=None,
        help="images of the tutorial loop's one epoch (default: --images; 0: skip it, the trainer row alone)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()

    device = resolve_device(args.device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.images, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=args.images)
    workers = args.workers if args.workers is not None else (4 if device.type == "cuda" else 2)

    tutorial_images = args.images if args.tutorial_images is None else args.tutorial_images
    if not (tutorial_images == 0 or 4 * 64 <= tutorial_images <= args.images):  # 3 warm-up steps, then timed ones
        parser.error(f"--tutorial-images = {tutorial_images} is invalid: 0, or 256 to --images ({args.images})")
    # The tutorial loop is ~2x slower than the trainer and its figure steadies within a few thousand images: a
    # GPU check times it on fewer images than the trainer row, so the trainer row gets the call's time.
    tutorial = (
        tutorial_loop(args.arch, images[:tutorial_images], labels[:tutorial_images], device, workers)
        if tutorial_images
        else None
    )
    ours = trainer_default(args.arch, images, labels, device, args)
    env = environment(device)
    results = {
        "arch": args.arch,
        "images": args.images,
        "tutorial_images": tutorial_images,
        "tutorial_img_per_s": tutorial,
        "trainer_img_per_s": ours,
        "ratio": None if tutorial is None else ours / tutorial,
        "trainer_batch_size": args.batch_size,
        "compile": args.compile,
        "environment": env,
        "date": time.strftime("%Y-%m-%d"),
    }
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    rows = [(f"trainer default: resident data, batch {args.batch_size}, compile {args.compile}", f"{ours:,.0f}")]
    if tutorial is not None:
        tutorial_row = f"tutorial loop: fp32, PIL transforms, DataLoader({workers} workers), batch 64"
        rows = [(tutorial_row, f"{tutorial:,.0f}"), *rows, ("ratio trainer / tutorial", f"{ours / tutorial:.2f}x")]
    print(f"\n{args.arch} on {env['device_name']} ({env['device']}), torch {env['torch']}, {results['date']}")
    print(f"{'configuration':70s} {'img/s':>10s}")
    for label, value in rows:
        print(f"{label:70s} {value:>10s}")


if __name__ == "__main__":
    main()

"""Datasets as uint8 tensors with seeded, stratified splits, and the batches training reads.

Every dataset that fits in memory is held there as uint8 (all of Fashion-MNIST is 55 MB) and
sliced on the training device, so an epoch costs no Python work per image; only an image folder
too large for memory streams through a DataLoader. Augmentation is described here
(`AugmentConfig`) and applied by the training code, which normalises with the train-split
mean and std returned here. The on-disk formats live in `nas.data.sources`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sized
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from nas.checks import bad_value, is_int, is_number
from nas.data.sources import (
    DataNotFoundError,
    RawData,
    decode_all,
    load_digits,
    load_fashion_mnist,
    load_torchvision,
    scan_image_folder,
)
from nas.data.splits import stratified_split, stratified_subset
from nas.errors import UsageError

# Where datasets are looked for and downloaded to when DataConfig.root is None.
DATA_DIR_ENV = "NAS_DATA_DIR"
DEFAULT_DATA_DIR = "~/.cache/densenas"
# The Debian package dataset-fashion-mnist installs the four .gz IDX files here; read at call
# time, so tests (or another distribution's layout) can point it elsewhere.
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
# Datasets without an official test split (digits, an image folder without test/) hold out this
# stratified fraction with this constant seed, never with split_seed: test scores of all runs
# and all split seeds are then measured on the same images.
TEST_FRACTION = 0.2
TEST_SPLIT_SEED = 20_240_601  # any constant; changing it changes every carved test split
# DataConfig.train_subset draws its images with this constant seed, never with split_seed.
TRAIN_SUBSET_SEED = 20_261_127
IMAGEFOLDER_DEFAULT_SIZE = 64
# A streamed train split's mean and std come from a seeded subsample of this many images.
STATS_SAMPLE_SIZE = 2000


@dataclass(frozen=True)
class AugmentConfig:
    """Train-time augmentation; the training code applies it on the device, per batch."""

    crop_padding: int = 0  # random crop after zero padding by this many pixels (0 = off)
    flip: bool = False  # random horizontal flip
    color_jitter: float = 0.0  # s: brightness, contrast, saturation factors drawn in [1-s, 1+s]

    def __post_init__(self) -> None:
        if not is_int(self.crop_padding) or self.crop_padding < 0:
            raise bad_value("AugmentConfig", "crop_padding", self.crop_padding, "an integer >= 0 is required (0 = off)")
        if not isinstance(self.flip, bool):
            raise bad_value("AugmentConfig", "flip", self.flip, "true or false is required")
        if not is_number(self.color_jitter) or not 0 <= self.color_jitter < 1:
            raise bad_value("AugmentConfig", "color_jitter", self.color_jitter, "a number in [0, 1) is required")


MAX_IMAGE_SIZE = 1024  # resized images larger than this are a typo (a 100000 square needs 30 GB per image)


@dataclass(frozen=True)
class DataConfig:
    """Which dataset, where it lives and how it is split; validated on construction."""

    name: str = "digits"  # a key of DATASETS
    root: str | None = None  # looked in first, downloaded into; None: $NAS_DATA_DIR or ~/.cache/densenas
    # Stratified validation split carved from the training set; 0: none, the train split is train+validation
    # (the final training of `nas finalize`; a search needs a validation split).
    val_fraction: float = 0.1
    split_seed: int = 0  # seed of that split (never of the test split)
    image_size: int | None = None  # imagefolder only: resize to this square (None: 64)
    download: bool = True  # allow torchvision downloads when nothing local is found
    max_resident_gb: float = 4.0  # a larger imagefolder (as uint8) streams instead of living in memory
    num_workers: int = 4  # DataLoader workers that decode image files
    augment: AugmentConfig | None = None  # None: the dataset's default (DATASETS[name].default_augment)
    # Train on this many images only: a stratified subset of the train split, taken after the validation
    # split is carved (so the validation images do not depend on it), drawn with TRAIN_SUBSET_SEED.
    # From the number of classes to the train split's size; None: the whole train split.
    train_subset: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.root, os.PathLike):
            object.__setattr__(self, "root", os.fspath(self.root))
        if isinstance(self.augment, dict):  # as read from a JSON study file
            object.__setattr__(self, "augment", AugmentConfig(**self.augment))
        if self.name not in DATASETS:
            raise bad_value("DataConfig", "name", self.name, f"choose one of {sorted(DATASETS)}")
        if self.root is not None and (not isinstance(self.root, str) or not self.root):
            raise bad_value("DataConfig", "root", self.root, "a directory path or None is required")
        if self.name == "imagefolder" and self.root is None:
            raise bad_value("DataConfig", "root", None, "imagefolder needs the directory of class subfolders")
        if not is_number(self.val_fraction) or not 0 <= self.val_fraction < 1:
            raise bad_value(
                "DataConfig",
                "val_fraction",
                self.val_fraction,
                "a number in [0, 1) is required (0: no validation split)",
            )
        if not is_int(self.split_seed) or self.split_seed < 0:
            raise bad_value("DataConfig", "split_seed", self.split_seed, "an integer >= 0 is required")
        if self.image_size is not None:
            if self.name != "imagefolder":
                raise bad_value(
                    "DataConfig", "image_size", self.image_size, f"{self.name} keeps its native size: use None"
                )
            if not is_int(self.image_size) or not 1 <= self.image_size <= MAX_IMAGE_SIZE:
                raise bad_value(
                    "DataConfig",
                    "image_size",
                    self.image_size,
                    f"an integer from 1 to {MAX_IMAGE_SIZE} or None is required",
                )
        if not isinstance(self.download, bool):
            raise bad_value("DataConfig", "download", self.download, "true or false is required")
        if not is_number(self.max_resident_gb) or self.max_resident_gb < 0:
            raise bad_value(
                "DataConfig", "max_resident_gb", self.max_resident_gb, "a finite number >= 0 is required (0 streams)"
            )
        if not is_int(self.num_workers) or self.num_workers < 0:
            raise bad_value("DataConfig", "num_workers", self.num_workers, "an integer >= 0 is required")
        if self.augment is not None and not isinstance(self.augment, AugmentConfig):
            raise bad_value("DataConfig", "augment", self.augment, "an AugmentConfig or None is required")
        if self.train_subset is not None and (not is_int(self.train_subset) or self.train_subset < 1):
            raise bad_value("DataConfig", "train_subset", self.train_subset, "an integer >= 1 or None is required")


@dataclass(eq=False)
class Split:
    """One split: `images` (uint8 N,C,H,W) in memory, or a streaming `source`; exactly one is set."""

    name: str  # "train" | "val" | "test"
    labels: torch.Tensor  # int64 (N,)
    images: torch.Tensor | None = None
    source: Dataset[tuple[torch.Tensor, int]] | None = None  # yields (uint8 CHW tensor, int label)
    # (host images, host labels, device images, device labels): the copy `batches` made last.
    _device_copy: tuple[torch.Tensor, ...] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if (self.images is None) == (self.source is None):
            raise ValueError(f"split {self.name!r}: exactly one of images and source must be set")
        if self.labels.dtype != torch.int64 or self.labels.dim() != 1:
            raise ValueError(
                f"split {self.name!r}: labels must be int64 (N,), got {self.labels.dtype} {self.labels.shape}"
            )
        if self.images is not None and (self.images.dtype != torch.uint8 or self.images.dim() != 4):
            raise ValueError(f"split {self.name!r}: images must be uint8 (N, C, H, W), got {self.images.dtype}")
        data = self.images if self.images is not None else self.source
        if isinstance(data, Sized) and len(data) != len(self.labels):
            raise ValueError(f"split {self.name!r}: {len(data)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(eq=False)
class LoadedData:
    """A dataset split three ways, with what a model and the training loop need to know of it."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    classes: list[str]
    input_size: tuple[int, int, int]  # (C, H, W)
    mean: tuple[float, ...]  # per channel, [0, 1] units, of the train split only
    std: tuple[float, ...]
    augment: AugmentConfig  # resolved: the dataset default when DataConfig.augment is None
    resident: bool  # every split holds `images`


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset users choose by name: what it is, how it is augmented by default, how it loads."""

    name: str
    description: str
    default_augment: AugmentConfig  # imagefolder scales crop_padding with image_size (size // 8)
    loader: Callable[[DataConfig], LoadedData]


def data_root(config: DataConfig) -> Path:
    """config.root, else $NAS_DATA_DIR, else ~/.cache/densenas."""
    return Path(config.root or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser()


def _carve(labels: torch.Tensor, config: DataConfig, *, carve_test: bool) -> dict[str, torch.Tensor]:
    """Indices of train, val (and a fixed test split when the dataset has no official one)."""
    pool, out = torch.arange(len(labels)), {}
    if carve_test:
        pool, out["test"] = stratified_split(labels, fraction=TEST_FRACTION, seed=TEST_SPLIT_SEED)
    if config.val_fraction == 0:  # no validation split: train on all of it
        train, val = torch.arange(len(pool)), torch.zeros(0, dtype=torch.int64)
    else:
        train, val = stratified_split(labels[pool], fraction=config.val_fraction, seed=config.split_seed)
    train = pool[train]
    if config.train_subset is not None:
        train = train[_train_subset(labels[train], size=config.train_subset, name=config.name)]
    return {"train": train, "val": pool[val], **out}


def _train_subset(labels: torch.Tensor, *, size: int, name: str) -> torch.Tensor:
    """Positions in the train split of DataConfig.train_subset images; a size the split cannot give is refused."""
    classes, available = len(torch.unique(labels)), len(labels)
    if not classes <= size <= available:
        allowed = f"an integer from {classes} to {available} or None is required (the train split of {name}: "
        raise bad_value("DataConfig", "train_subset", size, f"{allowed}{classes} classes, {available} images)")
    return stratified_subset(labels, size=size, seed=TRAIN_SUBSET_SEED)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population std of uint8 images in [0, 1] units.

    Summed in float64 chunks of ~4M values, so a large split never needs a full float copy.
    """
    n, channels, height, width = images.shape
    if n == 0:
        raise UsageError(
            "cannot compute the mean and std of an empty train split", field="train", allowed="at least one image"
        )
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    step = max(1, 2**22 // (channels * height * width))
    for start in range(0, n, step):
        chunk = images[start : start + step].to(torch.float64)
        total += chunk.sum(dim=(0, 2, 3))
        squares += chunk.square().sum(dim=(0, 2, 3))
    count = n * height * width
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt()
    return tuple((mean / 255).tolist()), tuple((std / 255).tolist())


def _finish(
    config: DataConfig,
    splits: dict[str, Split],
    *,
    classes: list[str],
    input_size: tuple[int, int, int],
    default_augment: AugmentConfig,
) -> LoadedData:
    for split in splits.values():
        if len(split) and not 0 <= int(split.labels.min()) <= int(split.labels.max()) < len(classes):
            raise UsageError(
                f"{config.name} {split.name} split has labels outside 0..{len(classes) - 1}",
                owner=config.name,
                field=f"{split.name} labels",
                allowed=f"labels in 0..{len(classes) - 1}",
            )
    train = splits["train"]
    if train.images is not None:
        mean, std = channel_stats(train.images)
    else:
        assert train.source is not None
        generator = torch.Generator().manual_seed(config.split_seed)
        sample = torch.randperm(len(train), generator=generator)[:STATS_SAMPLE_SIZE].sort().values
        subset = Subset(train.source, sample.tolist())
        mean, std = channel_stats(decode_all(subset, shape=input_size, num_workers=config.num_workers))
    return LoadedData(
        name=config.name,
        train=train,
        val=splits["val"],
        test=splits["test"],
        num_classes=len(classes),
        classes=classes,
        input_size=input_size,
        mean=mean,
        std=std,
        augment=config.augment if config.augment is not None else default_augment,
        resident=all(split.images is not None for split in splits.values()),
    )


def _from_raw(config: DataConfig, raw: RawData) -> LoadedData:
    indices = _carve(raw.labels, config, carve_test=raw.test is None)
    splits = {name: Split(name, raw.labels[idx], images=raw.images[idx]) for name, idx in indices.items()}
    if raw.test is not None:
        splits["test"] = Split("test", raw.test[1], images=raw.test[0])
    channels, height, width = raw.images.shape[1:]
    return _finish(
        config,
        splits,
        classes=raw.classes,
        input_size=(channels, height, width),
        default_augment=DATASETS[config.name].default_augment,
    )


def _load_digits(config: DataConfig) -> LoadedData:
    return _from_raw(config, load_digits())


def _load_fashion_mnist(config: DataConfig) -> LoadedData:
    raw = load_fashion_mnist(root=data_root(config), system_dir=FASHION_MNIST_SYSTEM_DIR, download=config.download)
    return _from_raw(config, raw)


def _load_torchvision(config: DataConfig) -> LoadedData:
    return _from_raw(config, load_torchvision(config.name, root=data_root(config), download=config.download))


def _load_image_folder(config: DataConfig) -> LoadedData:
    size = config.image_size or IMAGEFOLDER_DEFAULT_SIZE
    scan = scan_image_folder(data_root(config), size=size)
    parts = {
        name: scan.files.subset(idx)
        for name, idx in _carve(scan.files.labels, config, carve_test=scan.test is None).items()
    }
    if scan.test is not None:
        parts["test"] = scan.test
    resident = sum(map(len, parts.values())) * 3 * size * size <= config.max_resident_gb * 2**30
    splits = {
        name: Split(name, part.labels, images=decode_all(part, shape=(3, size, size), num_workers=config.num_workers))
        if resident
        else Split(name, part.labels, source=part)
        for name, part in parts.items()
    }
    default = AugmentConfig(crop_padding=size // 8, flip=True)
    return _finish(config, splits, classes=scan.classes, input_size=(3, size, size), default_augment=default)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "digits",
            "scikit-learn's bundled 8x8 digits, 1797 images, 10 classes, no download",
            AugmentConfig(crop_padding=1),  # no flip: digits are not mirror-symmetric
            _load_digits,
        ),
        DatasetSpec(
            "fashion_mnist",
            "Fashion-MNIST 28x28 grey, 10 classes, 60k/10k, from root, the Debian package or torchvision",
            AugmentConfig(crop_padding=2, flip=True),
            _load_fashion_mnist,
        ),
        DatasetSpec(
            "mnist",
            "MNIST 28x28 grey digits, 60k/10k, via torchvision",
            AugmentConfig(crop_padding=2),
            _load_torchvision,
        ),
        DatasetSpec(
            "cifar10",
            "CIFAR-10 32x32 RGB, 10 classes, 50k/10k, via torchvision",
            AugmentConfig(crop_padding=4, flip=True),
            _load_torchvision,
        ),
        DatasetSpec(
            "cifar100",
            "CIFAR-100 32x32 RGB, 100 classes, 50k/10k, via torchvision",
            AugmentConfig(crop_padding=4, flip=True),
            _load_torchvision,
        ),
        DatasetSpec(
            "imagefolder",
            "one subfolder of images per class under root (or train/ and test/ or val/), RGB, resized square",
            AugmentConfig(crop_padding=IMAGEFOLDER_DEFAULT_SIZE // 8, flip=True),  # follows image_size // 8
            _load_image_folder,
        ),
    )
}


def load_data(config: DataConfig) -> LoadedData:
    """The dataset `config` names, split into train, val and test, with train-split statistics."""
    return DATASETS[config.name].loader(config)


__all__ = [
    "DATASETS",
    "FASHION_MNIST_SYSTEM_DIR",
    "TEST_FRACTION",
    "TEST_SPLIT_SEED",
    "TRAIN_SUBSET_SEED",
    "AugmentConfig",
    "DataConfig",
    "DataNotFoundError",
    "DatasetSpec",
    "LoadedData",
    "Split",
    "channel_stats",
    "data_root",
    "load_data",
    "stratified_split",
    "stratified_subset",
]

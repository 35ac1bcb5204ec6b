"""Datasets: real files on disk (written here, or the system's), seeded stratified splits, batches."""

from __future__ import annotations

import dataclasses
import gzip
import math
import os
import pickle
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nas.data.datasets
from nas.data.batches import batches, indexed_batches
from nas.data.datasets import (
    DATASETS,
    TEST_FRACTION,
    AugmentConfig,
    DataConfig,
    DataNotFoundError,
    LoadedData,
    Split,
    channel_stats,
    data_root,
    load_data,
    stratified_split,
    stratified_subset,
)
from nas.data.sources import FASHION_MNIST_CLASSES, digits_file, load_digits, read_idx, usable_workers
from nas.data.splits import subset_counts
from nas.errors import UsageError

CPU = torch.device("cpu")
SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")


def counts(labels: torch.Tensor, num_classes: int) -> list[int]:
    return torch.bincount(labels, minlength=num_classes).tolist()


def image_multiset(*splits: Split) -> Counter[tuple[bytes, int]]:
    out: Counter[tuple[bytes, int]] = Counter()
    for split in splits:
        assert split.images is not None
        out.update((img.numpy().tobytes(), int(label)) for img, label in zip(split.images, split.labels, strict=True))
    return out


# ----- digits: the splits ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> LoadedData:
    return load_data(DataConfig(name="digits"))


def test_digits_are_scikit_learns_read_without_importing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # Importing sklearn.datasets (scipy, pandas) cost every worker process as long as importing torch.
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    assert digits_file() is not None
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # any import of it now fails
    raw = load_digits()
    assert raw.classes == [str(i) for i in range(10)] and raw.images.shape == (1797, 1, 8, 8)
    assert torch.equal(raw.images[:, 0].long(), torch.from_numpy(bunch.images).long() * 255 // 16)
    assert torch.equal(raw.labels, torch.from_numpy(bunch.target).long()) and raw.labels.dtype == torch.int64


def test_digits_shapes_and_types(digits: LoadedData) -> None:
    assert digits.num_classes == 10 and digits.classes == [str(i) for i in range(10)]
    assert digits.input_size == (1, 8, 8) and digits.resident
    assert digits.augment == AugmentConfig(crop_padding=1, flip=False)
    for split in (digits.train, digits.val, digits.test):
        assert split.images is not None and split.source is None
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (1, 8, 8)
        assert split.labels.dtype == torch.int64 and split.images.shape[0] == len(split)
    assert int(digits.train.images.max()) == 255  # type: ignore[union-attr]
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797


def test_digits_splits_are_disjoint_and_cover_the_dataset(digits: LoadedData) -> None:
    from sklearn.datasets import load_digits

    raw = load_digits()
    images = torch.from_numpy((raw.images.astype(np.int64) * 255 // 16).astype(np.uint8)).unsqueeze(1)
    expected = image_multiset(Split("all", torch.from_numpy(raw.target.astype(np.int64)), images=images))
    assert image_multiset(digits.train, digits.val, digits.test) == expected


def test_digits_splits_are_stratified(digits: LoadedData) -> None:
    train, val, test = (counts(s.labels, 10) for s in (digits.train, digits.val, digits.test))
    for c in range(10):
        assert abs(test[c] - TEST_FRACTION * (train[c] + val[c] + test[c])) <= 1
        assert abs(val[c] - 0.1 * (train[c] + val[c])) <= 1


def test_split_seed_moves_val_but_never_test(digits: LoadedData) -> None:
    same = load_data(DataConfig(name="digits", split_seed=0))
    other = load_data(DataConfig(name="digits", split_seed=1))
    assert torch.equal(same.val.images, digits.val.images)  # type: ignore[arg-type]
    assert torch.equal(same.train.labels, digits.train.labels)
    assert not torch.equal(other.val.images, digits.val.images)  # type: ignore[arg-type]
    assert torch.equal(other.test.images, digits.test.images)  # type: ignore[arg-type]
    assert image_multiset(other.train, other.val) == image_multiset(digits.train, digits.val)


def test_mean_and_std_come_from_the_train_split(digits: LoadedData) -> None:
    pixels = digits.train.images.double().div(255)  # type: ignore[union-attr]
    assert digits.mean == pytest.approx(pixels.mean(dim=(0, 2, 3)).tolist(), abs=1e-12)
    assert digits.std == pytest.approx(pixels.std(dim=(0, 2, 3), correction=0).tolist(), abs=1e-12)
    everything = torch.cat([s.images for s in (digits.train, digits.val, digits.test)]).double().div(255)  # type: ignore[misc]
    assert digits.mean != pytest.approx(everything.mean(dim=(0, 2, 3)).tolist(), abs=1e-12)


def test_channel_stats_per_channel() -> None:
    images = torch.zeros(2, 3, 2, 2, dtype=torch.uint8)
    images[:, 1] = 255
    images[0, 2], images[1, 2] = 0, 255
    mean, std = channel_stats(images)
    assert mean == pytest.approx((0.0, 1.0, 0.5)) and std == pytest.approx((0.0, 0.0, 0.5))


def test_stratified_split_rules() -> None:
    labels = torch.tensor([0] * 10 + [1] * 3 + [2] * 2 + [3])
    kept, held = stratified_split(labels, fraction=0.25, seed=5)
    assert torch.equal(torch.sort(torch.cat([kept, held])).values, torch.arange(len(labels)))
    assert torch.equal(kept, kept.sort().values) and torch.equal(held, held.sort().values)
    assert counts(labels[held], 4) == [3, 1, 1, 0]  # round(2.5) = 3 (half up); at least 1; a lone image stays
    assert counts(labels[stratified_split(labels, fraction=0.9, seed=5)[0]], 4) == [1, 1, 1, 1]  # keeps one
    again, _ = stratified_split(labels, fraction=0.25, seed=5)
    assert torch.equal(kept, again)


@pytest.mark.parametrize(
    ("class_counts", "size", "expected"),
    [
        ([10, 3, 2, 1], 16, [10, 3, 2, 1]),
        ([10, 3, 2, 1], 8, [5, 1, 1, 1]),  # shares 5, 1.5, 1, 0.5: each class keeps one
        ([10, 3, 2, 1], 6, [3, 1, 1, 1]),  # shares 3.75, 1.125, 0.75, 0.375
        ([10, 3, 2, 1], 4, [1, 1, 1, 1]),
        ([100] * 4, 6, [2, 2, 1, 1]),  # equal remainders go to the first classes
        ([5400, 5400, 5399], 10_000, [3334, 3333, 3333]),
    ],
)
def test_subset_counts_are_largest_remainder_shares(class_counts: list[int], size: int, expected: list[int]) -> None:
    assert subset_counts(class_counts, size) == expected


def test_subset_counts_need_one_image_per_class_and_no_more_than_there_are() -> None:
    for size in (3, 17):
        with pytest.raises(ValueError, match=f"a subset of {size} needs 4 to 16 images"):
            subset_counts([10, 3, 2, 1], size)


def test_stratified_subset_is_seeded_sorted_and_nested() -> None:
    labels = torch.arange(300) % 3
    small, large = (stratified_subset(labels, size=size, seed=1) for size in (30, 90))
    assert counts(labels[small], 3) == [10, 10, 10] and counts(labels[large], 3) == [30, 30, 30]
    assert torch.equal(small, small.sort().values) and len(set(large.tolist())) == 90
    assert set(small.tolist()) <= set(large.tolist())  # one seeded order per class: smaller is part of larger
    assert torch.equal(small, stratified_subset(labels, size=30, seed=1))
    assert not torch.equal(small, stratified_subset(labels, size=30, seed=2))


def test_train_subset_takes_a_stratified_part_of_the_train_split_and_keeps_val(digits: LoadedData) -> None:
    sub = load_data(DataConfig(name="digits", train_subset=100))
    full_counts = counts(digits.train.labels, 10)
    assert len(sub.train) == 100 and counts(sub.train.labels, 10) == subset_counts(full_counts, 100)
    assert image_multiset(sub.train) <= image_multiset(digits.train)  # drawn from the train split only
    assert torch.equal(sub.val.images, digits.val.images) and torch.equal(sub.test.images, digits.test.images)  # type: ignore[arg-type]
    again = load_data(DataConfig(name="digits", train_subset=100, split_seed=0))
    assert torch.equal(sub.train.images, again.train.images)  # type: ignore[arg-type]
    pixels = sub.train.images.double().div(255)  # type: ignore[union-attr]
    assert sub.mean == pytest.approx(pixels.mean(dim=(0, 2, 3)).tolist(), abs=1e-12)  # statistics of the subset


def test_no_validation_split_trains_on_train_and_validation_and_keeps_test(digits: LoadedData) -> None:
    """val_fraction = 0, the final training of `nas finalize`: every image but the test split is a train image."""
    whole = load_data(DataConfig(name="digits", val_fraction=0.0))
    assert len(whole.val) == 0 and whole.val.images is not None and whole.val.images.shape == (0, 1, 8, 8)
    assert image_multiset(whole.train) == image_multiset(digits.train, digits.val)
    assert torch.equal(whole.test.images, digits.test.images)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [9, 1294])
def test_a_train_subset_the_split_cannot_give_is_refused(size: int) -> None:
    with pytest.raises(UsageError) as err:
        load_data(DataConfig(name="digits", train_subset=size))
    assert str(err.value) == (
        f"DataConfig.train_subset = {size} is invalid: an integer from 10 to 1293 or None is required "
        "(the train split of digits: 10 classes, 1293 images)"
    )


# ----- Fashion-MNIST from IDX files -----------------------------------------------------------


def write_idx(path: Path, array: np.ndarray, *, gz: bool) -> Path:
    data = (0x0800 + array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data += array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_fashion(directory: Path, *, gz: bool, n_train: int = 50, n_test: int = 20) -> dict[str, Path]:
    """Image i of train is filled with 5*i, of test with 250-i; label i % 10."""
    train = np.repeat(np.arange(n_train) * 5, 28 * 28).reshape(n_train, 28, 28)
    test = np.repeat(250 - np.arange(n_test), 28 * 28).reshape(n_test, 28, 28)
    return {
        name: write_idx(directory / name, array, gz=gz)
        for name, array in (
            ("train-images-idx3-ubyte", train),
            ("train-labels-idx1-ubyte", np.arange(n_train) % 10),
            ("t10k-images-idx3-ubyte", test),
            ("t10k-labels-idx1-ubyte", np.arange(n_test) % 10),
        )
    }


@pytest.fixture
def no_system_fashion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    empty = tmp_path / "system"
    empty.mkdir()
    monkeypatch.setattr(nas.data.datasets, "FASHION_MNIST_SYSTEM_DIR", empty)
    return empty


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("subdir", ["", "fashion-mnist", "FashionMNIST/raw"])
def test_fashion_mnist_reads_idx_files(tmp_path: Path, no_system_fashion: Path, gz: bool, subdir: str) -> None:
    root = tmp_path / "data"
    write_fashion(root / subdir, gz=gz)
    data = load_data(DataConfig(name="fashion_mnist", root=str(root), download=False, val_fraction=0.2))
    assert data.classes == FASHION_MNIST_CLASSES and data.input_size == (1, 28, 28)
    assert data.augment == AugmentConfig(crop_padding=2, flip=True)
    assert (len(data.train), len(data.val), len(data.test)) == (40, 10, 20)
    assert counts(data.val.labels, 10) == [1] * 10
    for split, values in ((data.train, None), (data.val, None), (data.test, 250 - np.arange(20))):
        assert split.images is not None and split.images.dtype == torch.uint8
        fill = split.images[:, 0, 0, 0]
        assert torch.equal(split.images, fill.view(-1, 1, 1, 1).expand_as(split.images))  # constant images
        if values is None:
            assert torch.equal(split.labels, (fill.long() // 5) % 10)
        else:
            assert fill.tolist() == values.tolist() and torch.equal(split.labels, torch.arange(20) % 10)
    seen = torch.cat([data.train.images[:, 0, 0, 0], data.val.images[:, 0, 0, 0]])  # type: ignore[index]
    assert sorted(seen.tolist()) == list(range(0, 250, 5))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b"\x00\x00\x08\x01" + b[4:], "magic number"),  # a labels header on an images file
        (lambda b: b[:-7], "truncated"),
        (lambda b: b[:10], "truncated"),
        (lambda b: b + b"\x00", "trailing bytes"),
    ],
)
def test_corrupt_idx_file_is_named(tmp_path: Path, no_system_fashion: Path, damage: object, message: str) -> None:
    files = write_fashion(tmp_path, gz=False)
    bad = files["train-images-idx3-ubyte"]
    bad.write_bytes(damage(bad.read_bytes()))  # type: ignore[operator]
    with pytest.raises(ValueError, match=message) as info:
        load_data(DataConfig(name="fashion_mnist", root=str(tmp_path), download=False))
    assert str(bad) in str(info.value)


def test_truncated_gz_and_mismatched_counts_are_named(tmp_path: Path) -> None:
    files = write_fashion(tmp_path, gz=True)
    labels = files["t10k-labels-idx1-ubyte"]
    labels.write_bytes(labels.read_bytes()[:-5])
    with pytest.raises(ValueError, match="cannot read") as info:
        read_idx(labels, ndim=1)
    assert str(labels) in str(info.value)
    write_idx(labels.with_suffix(""), np.arange(19) % 10, gz=False)  # the raw copy is preferred
    with pytest.raises(ValueError, match=r"holds 20 images but .* holds 19 labels"):
        load_data(DataConfig(name="fashion_mnist", root=str(tmp_path), download=False))


def test_fashion_mnist_missing_names_every_way(tmp_path: Path, no_system_fashion: Path) -> None:
    root = tmp_path / "nothing"
    write_idx(root / "train-images-idx3-ubyte", np.zeros((1, 28, 28)), gz=False)  # an incomplete copy
    with pytest.raises(DataNotFoundError) as info:
        load_data(DataConfig(name="fashion_mnist", root=str(root), download=False))
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for fragment in (str(root), "lacks", str(no_system_fashion), "apt-get install dataset-fashion-mnist", "download"):
        assert fragment in message, fragment
    assert "download is disabled (--no-download, or [data] download = false)" in message


@pytest.mark.skipif(not SYSTEM_FASHION.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist_from_the_system_directory(tmp_path: Path) -> None:
    start = time.perf_counter()
    data = load_data(DataConfig(name="fashion_mnist", root=str(tmp_path), download=False))
    assert time.perf_counter() - start < 10
    assert len(data.train) + len(data.val) == 60_000 and len(data.test) == 10_000
    assert data.train.images is not None and data.train.images.shape[1:] == (1, 28, 28)
    assert counts(torch.cat([data.train.labels, data.val.labels]), 10) == [6000] * 10
    assert counts(data.val.labels, 10) == [600] * 10
    assert data.mean[0] == pytest.approx(0.286, abs=2e-3) and data.std[0] == pytest.approx(0.353, abs=2e-3)
    subset = load_data(DataConfig(name="fashion_mnist", root=str(tmp_path), download=False, train_subset=10_000))
    assert counts(subset.train.labels, 10) == [1000] * 10 and torch.equal(subset.val.labels, data.val.labels)


# ----- torchvision's datasets ------------------------------------------------------------------


def test_mnist_through_torchvision_reads_its_raw_files(tmp_path: Path) -> None:
    # torchvision's MNIST checks only that the four raw files exist (no md5), so small ones load.
    write_fashion(tmp_path / "MNIST" / "raw", gz=False)
    data = load_data(DataConfig(name="mnist", root=str(tmp_path), download=False))
    assert data.input_size == (1, 28, 28) and data.num_classes == 10
    assert (len(data.train) + len(data.val), len(data.test)) == (50, 20)
    assert data.test.images is not None and data.test.images[:, 0, 0, 0].tolist() == list(range(250, 230, -1))


@pytest.mark.parametrize(("name", "folder"), [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")])
def test_cifar_missing_names_directory_and_download(tmp_path: Path, name: str, folder: str) -> None:
    # torchvision checks the md5 of every CIFAR batch file, so fake local copies cannot be made.
    (tmp_path / folder).mkdir()
    (tmp_path / folder / "data_batch_1").write_bytes(pickle.dumps({"data": [], "labels": []}))
    with pytest.raises(DataNotFoundError) as info:
        load_data(DataConfig(name=name, root=str(tmp_path), download=False))
    assert str(tmp_path / folder) in str(info.value) and "download is disabled" in str(info.value)


# ----- image folders ---------------------------------------------------------------------------

COLOURS = {"ant": (255, 0, 0), "bee": (0, 200, 0), "cat": (10, 20, 250)}


def write_folder(root: Path, per_class: int) -> None:
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            mode, size = [("RGB", (20, 12)), ("RGBA", (9, 9)), ("RGB", (16, 40))][i % 3]
            fill = (*colour, 255) if mode == "RGBA" else colour
            Image.new(mode, size, fill).save(root / name / f"{i}.png")


def check_colours(images: torch.Tensor, labels: torch.Tensor) -> None:
    expected = torch.tensor([COLOURS[c] for c in sorted(COLOURS)], dtype=torch.uint8)[labels]
    assert torch.equal(images, expected.view(-1, 3, 1, 1).expand_as(images))


def test_image_folder_resident(tmp_path: Path) -> None:
    write_folder(tmp_path, per_class=7)
    data = load_data(DataConfig(name="imagefolder", root=str(tmp_path), image_size=16, num_workers=0))
    assert data.resident and data.classes == sorted(COLOURS) and data.input_size == (3, 16, 16)
    assert data.augment == AugmentConfig(crop_padding=2, flip=True)
    assert [counts(s.labels, 3) for s in (data.train, data.val, data.test)] == [[5] * 3, [1] * 3, [1] * 3]
    for split in (data.train, data.val, data.test):
        assert split.images is not None and split.images.shape == (len(split), 3, 16, 16)
        check_colours(split.images, split.labels)


def test_image_folder_with_train_and_test_folders(tmp_path: Path) -> None:
    write_folder(tmp_path / "train", per_class=4)
    write_folder(tmp_path / "val", per_class=2)
    data = load_data(DataConfig(name="imagefolder", root=str(tmp_path), image_size=8, num_workers=0))
    assert data.augment.crop_padding == 1 and data.input_size == (3, 8, 8)
    assert counts(data.test.labels, 3) == [2] * 3 and len(data.train) + len(data.val) == 12


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_data(DataConfig(name="imagefolder", root=str(tmp_path / "absent")))
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DataNotFoundError, match="no images in"):
        load_data(DataConfig(name="imagefolder", root=str(tmp_path / "empty")))
    write_folder(tmp_path / "two" / "train", per_class=2)
    (tmp_path / "two" / "test" / "dog").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "two" / "test" / "dog" / "0.png")
    with pytest.raises(ValueError, match="same class subfolders"):
        load_data(DataConfig(name="imagefolder", root=str(tmp_path / "two")))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_dataloaders_start_no_more_workers_than_the_process_has_cores(tmp_path: Path) -> None:
    # A worker of `nas run --workers` pinned to one core, asking for 4 DataLoader workers: PyTorch
    # warns on every trial (and the workers fight for the core) unless every DataLoader is capped.
    write_folder(tmp_path, per_class=4)
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            config = DataConfig(name="imagefolder", root=str(tmp_path), image_size=8, num_workers=4)
            resident = load_data(config)  # decodes every image in DataLoader workers
            streamed = load_data(dataclasses.replace(config, max_resident_gb=1e-9))  # decodes a sample
            epoch = list(batches(streamed.train, batch_size=4, device=CPU, shuffle=True, num_workers=4))
        assert usable_workers(4) == 1
    finally:
        os.sched_setaffinity(0, before)
    assert torch.equal(torch.cat([x for x, _ in epoch]).sum(0), resident.train.images.sum(0))  # type: ignore[union-attr]


@pytest.mark.parametrize("workers", [0, 2])
def test_image_folder_streaming_matches_resident(tmp_path: Path, workers: int) -> None:
    write_folder(tmp_path, per_class=7)
    common = dict(name="imagefolder", root=str(tmp_path), image_size=16, num_workers=workers)
    resident = load_data(DataConfig(**common))  # type: ignore[arg-type]
    streamed = load_data(DataConfig(**common, max_resident_gb=1e-9))  # type: ignore[arg-type]
    assert not streamed.resident
    assert streamed.mean == pytest.approx(resident.mean) and streamed.std == pytest.approx(resident.std)
    for a, b in ((resident.train, streamed.train), (resident.val, streamed.val), (resident.test, streamed.test)):
        assert b.images is None and b.source is not None and torch.equal(a.labels, b.labels)
        ordered = list(batches(b, batch_size=4, device=CPU, shuffle=False, num_workers=workers))
        assert torch.equal(torch.cat([x for x, _ in ordered]), a.images)  # type: ignore[arg-type]
    generator = torch.Generator().manual_seed(3)
    shuffled = list(batches(streamed.train, batch_size=4, device=CPU, shuffle=True, generator=generator))
    assert [len(y) for _, y in shuffled] == [4, 4, 4, 3]
    images, labels = torch.cat([x for x, _ in shuffled]), torch.cat([y for _, y in shuffled])
    assert images.dtype == torch.uint8 and images.shape == (15, 3, 16, 16) and labels.dtype == torch.int64
    assert sorted(labels.tolist()) == sorted(streamed.train.labels.tolist())
    check_colours(images, labels)
    dropped = list(batches(streamed.train, batch_size=4, device=CPU, shuffle=True, drop_last=True))
    assert [len(y) for _, y in dropped] == [4, 4, 4]


# ----- batches -----------------------------------------------------------------------------------


def numbered(n: int) -> Split:
    """Image i is filled with i and labelled i, so a batch shows which items it holds."""
    return Split(
        "train", torch.arange(n), images=torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2)
    )


def epoch(split: Split, **kwargs: object) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(batches(split, batch_size=3, device=CPU, **kwargs))  # type: ignore[arg-type]


def test_batches_cover_every_item_once() -> None:
    split = numbered(10)
    out = epoch(split, shuffle=True, generator=torch.Generator().manual_seed(0))
    assert [len(y) for _, y in out] == [3, 3, 3, 1]
    labels = torch.cat([y for _, y in out])
    assert sorted(labels.tolist()) == list(range(10)) and labels.tolist() != list(range(10))
    for x, y in out:
        assert x.dtype == torch.uint8 and y.dtype == torch.int64 and x.device == CPU and y.device == CPU
        assert torch.equal(x[:, 0, 0, 0].long(), y)
    assert [len(y) for _, y in epoch(split, shuffle=True, drop_last=True)] == [3, 3, 3]
    assert torch.cat([y for _, y in epoch(split, shuffle=False)]).tolist() == list(range(10))


def test_batches_order_follows_the_generator() -> None:
    split = numbered(50)

    def order(seed: int) -> list[int]:
        return torch.cat(
            [y for _, y in epoch(split, shuffle=True, generator=torch.Generator().manual_seed(seed))]
        ).tolist()

    assert order(7) == order(7) and order(7) != order(8)
    generator = torch.Generator().manual_seed(7)
    first, second = (torch.cat([y for _, y in epoch(split, shuffle=True, generator=generator)]) for _ in range(2))
    assert not torch.equal(first, second)  # each epoch draws a new permutation


def test_indexed_batches_give_each_image_its_position_in_the_split() -> None:
    split = numbered(10)
    for shuffle in (True, False):
        out = list(indexed_batches(split, batch_size=3, device=CPU, shuffle=shuffle, drop_last=shuffle))
        for x, y, index in out:
            assert index.dtype == torch.int64 and torch.equal(index, y) and torch.equal(x, split.images[index])  # type: ignore[index]
        positions = torch.cat([i for _, _, i in out]).tolist()
        assert len(set(positions)) == len(positions) == (9 if shuffle else 10)  # drop_last leaves one out


def test_indexed_batches_of_a_streamed_split(tmp_path: Path) -> None:
    write_folder(tmp_path, per_class=4)
    config = DataConfig(name="imagefolder", root=str(tmp_path), image_size=8, num_workers=0)
    resident, streamed = load_data(config), load_data(dataclasses.replace(config, max_resident_gb=1e-9))
    generator = torch.Generator().manual_seed(1)
    out = list(indexed_batches(streamed.train, batch_size=2, device=CPU, shuffle=True, generator=generator))
    assert sorted(torch.cat([i for _, _, i in out]).tolist()) == list(range(len(resident.train)))
    for x, y, index in out:
        assert torch.equal(x, resident.train.images[index]) and torch.equal(y, resident.train.labels[index])  # type: ignore[index]


def test_batches_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="batch_size = 0 is invalid"):
        batches(numbered(4), batch_size=0, device=CPU, shuffle=False)
    with pytest.raises(ValueError, match="exactly one of images and source"):
        Split("train", torch.arange(2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batches_on_cuda_with_cpu_or_cuda_generator() -> None:
    split, cuda = numbered(10), torch.device("cuda")
    for generator in (torch.Generator().manual_seed(0), torch.Generator(device=cuda).manual_seed(0)):
        out = list(batches(split, batch_size=4, device=cuda, shuffle=True, generator=generator))
        assert all(x.is_cuda and y.is_cuda for x, y in out)
        assert sorted(torch.cat([y for _, y in out]).tolist()) == list(range(10))
    copy = split._device_copy
    list(batches(split, batch_size=4, device=torch.device("cuda"), shuffle=False))
    assert split._device_copy is copy  # the device copy is made once, not every epoch


# ----- configuration -------------------------------------------------------------------------------


def test_registry_and_data_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert set(DATASETS) == {"digits", "fashion_mnist", "mnist", "cifar10", "cifar100", "imagefolder"}
    assert all(spec.description and isinstance(spec.default_augment, AugmentConfig) for spec in DATASETS.values())
    assert DATASETS["cifar10"].default_augment == AugmentConfig(crop_padding=4, flip=True)
    monkeypatch.setenv("NAS_DATA_DIR", str(tmp_path))
    assert data_root(DataConfig()) == tmp_path
    assert data_root(DataConfig(root=str(tmp_path / "x"))) == tmp_path / "x"
    monkeypatch.delenv("NAS_DATA_DIR")
    assert data_root(DataConfig()) == Path.home() / ".cache" / "densenas"
    custom = AugmentConfig(flip=True, color_jitter=0.2)
    assert load_data(DataConfig(augment=custom)).augment == custom
    assert DataConfig(augment={"crop_padding": 3}).augment == AugmentConfig(crop_padding=3)  # type: ignore[arg-type]


BAD_CONFIGS = [
    (DataConfig, dict(name="imagenet"), "name", "'imagenet'", "cifar10', 'cifar100', 'digits', 'fashion_mnist'"),
    (DataConfig, dict(root=""), "root", "''", "a directory path or None"),
    (DataConfig, dict(name="imagefolder"), "root", "None", "imagefolder needs"),
    (DataConfig, dict(val_fraction=1.5), "val_fraction", "1.5", "a number in [0, 1) is required (0: no validation"),
    (DataConfig, dict(val_fraction=-0.1), "val_fraction", "-0.1", "[0, 1)"),
    (DataConfig, dict(val_fraction=math.nan), "val_fraction", "nan", "[0, 1)"),
    (DataConfig, dict(val_fraction=True), "val_fraction", "True", "[0, 1)"),
    (DataConfig, dict(split_seed=-1), "split_seed", "-1", "an integer >= 0"),
    (DataConfig, dict(split_seed=1.0), "split_seed", "1.0", "an integer >= 0"),
    (DataConfig, dict(image_size=32), "image_size", "32", "digits keeps its native size: use None"),
    (DataConfig, dict(name="imagefolder", root="x", image_size=0), "image_size", "0", "an integer from 1 to 1024"),
    (DataConfig, dict(name="imagefolder", root="x", image_size=100000), "image_size", "100000", "from 1 to 1024"),
    (DataConfig, dict(download="yes"), "download", "'yes'", "true or false"),
    (DataConfig, dict(max_resident_gb=-1), "max_resident_gb", "-1", "a finite number >= 0"),
    (DataConfig, dict(max_resident_gb=math.inf), "max_resident_gb", "inf", "a finite number >= 0"),
    (DataConfig, dict(num_workers=-2), "num_workers", "-2", "an integer >= 0"),
    (DataConfig, dict(augment="flip"), "augment", "'flip'", "an AugmentConfig or None"),
    (DataConfig, dict(train_subset=0), "train_subset", "0", "an integer >= 1 or None is required"),
    (DataConfig, dict(train_subset=100.0), "train_subset", "100.0", "an integer >= 1 or None is required"),
    (AugmentConfig, dict(crop_padding=-1), "crop_padding", "-1", "an integer >= 0"),
    (AugmentConfig, dict(crop_padding=1.5), "crop_padding", "1.5", "an integer >= 0"),
    (AugmentConfig, dict(flip=1), "flip", "1", "true or false"),
    (AugmentConfig, dict(color_jitter=1.0), "color_jitter", "1.0", "a number in [0, 1) is required"),
    (AugmentConfig, dict(color_jitter=-0.1), "color_jitter", "-0.1", "[0, 1)"),
]


@pytest.mark.parametrize(("cls", "fields", "name", "value", "allowed"), BAD_CONFIGS)
def test_bad_config_names_field_value_and_allowed(
    cls: type, fields: dict[str, object], name: str, value: str, allowed: str
) -> None:
    with pytest.raises(ValueError) as info:
        cls(**fields)
    message = str(info.value)
    assert message.startswith(f"{cls.__name__}.{name} = {value} is invalid: "), message
    assert allowed in message, message

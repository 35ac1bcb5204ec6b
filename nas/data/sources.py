"""Where the bytes come from: scikit-learn's digits, IDX files, torchvision's datasets, image folders.

Every reader here returns uint8 images and int64 labels and knows nothing of splits, statistics
or batching (`nas.data.datasets` does those the same way for every dataset), so a new source only has to
produce tensors. torchvision and scikit-learn are imported inside the readers that need them,
which keeps `import nas.data.datasets` cheap.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
import zlib
from collections.abc import Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from nas.errors import UsageError


def usable_workers(requested: int) -> int:
    """DataLoader worker processes, at most one per core this process may use: more only fight for them."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(requested, cores)


class DataNotFoundError(FileNotFoundError):
    """A dataset is neither on disk nor downloadable; the message lists every way to get it."""


@dataclass
class RawData:
    """A dataset as stored: uint8 (N, C, H, W) images and int64 labels.

    `test` holds the official test split (images, labels), or None when the dataset has none.
    """

    classes: list[str]
    images: torch.Tensor
    labels: torch.Tensor
    test: tuple[torch.Tensor, torch.Tensor] | None = None


# ----- scikit-learn's digits ----------------------------------------------------------------


def digits_file() -> Path | None:
    """scikit-learn's own copy of the digits (64 pixel values and the label per row), if it is where
    scikit-learn keeps it; found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    return path if path.is_file() else None


def load_digits() -> RawData:
    """The 1797 8x8 digits bundled with scikit-learn (no download), values 0..16 scaled to 0..255.

    Read straight from scikit-learn's data file: importing sklearn.datasets (scipy, pandas) takes
    about as long as importing torch, in every worker process; its reader is the fallback.
    """
    path = digits_file()
    if path is not None:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64)
        values, target = table[:, :-1].reshape(-1, 8, 8), table[:, -1]  # values in 0..16
    else:
        from sklearn.datasets import load_digits as sklearn_digits

        bunch = sklearn_digits()
        values, target = np.asarray(bunch.images, dtype=np.int64), np.asarray(bunch.target, dtype=np.int64)
    images = torch.from_numpy((values * 255 // 16).astype(np.uint8)).unsqueeze(1)
    return RawData([str(i) for i in range(10)], images, torch.from_numpy(np.ascontiguousarray(target)))


# ----- IDX files (the MNIST format) and Fashion-MNIST ------------------------------------------

FASHION_MNIST_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def read_idx(path: Path, *, ndim: int) -> torch.Tensor:
    """The uint8 array of an IDX file (raw or .gz), checked against its header.

    A corrupt file fails here with its name rather than later as a shape error in training.
    """
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:  # a truncated .gz raises EOFError
        raise UsageError(f"{path}: cannot read the IDX file: {exc}", owner=str(path)) from exc
    header = 4 + 4 * ndim
    if len(data) < header:
        raise UsageError(
            f"{path}: truncated IDX file: {len(data)} bytes, the header alone needs {header}", owner=str(path)
        )
    magic = int.from_bytes(data[:4], "big")
    expected = 0x0800 + ndim  # two zero bytes, type 0x08 (uint8), number of dimensions
    if magic != expected:
        raise UsageError(
            f"{path}: not an IDX file of {ndim}-d uint8 data: magic number {magic:#010x}, expected {expected:#010x}",
            owner=str(path),
        )
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    size, body = math.prod(dims), len(data) - header
    if body != size:
        problem = "truncated" if body < size else "trailing bytes"
        raise UsageError(
            f"{path}: {problem}: the header promises {dims} = {size} bytes of data, the file has {body}",
            owner=str(path),
        )
    if size == 0:  # torch.frombuffer refuses an empty view
        return torch.empty(dims, dtype=torch.uint8)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8, offset=header, count=size).reshape(dims)


def _idx_files(directory: Path) -> dict[str, Path]:
    """The Fashion-MNIST files present in a directory, preferring the uncompressed copy."""
    found = {}
    for key, base in FASHION_MNIST_FILES.items():
        for candidate in (directory / base, directory / f"{base}.gz"):
            if candidate.is_file():
                found[key] = candidate
                break
    return found


def _read_fashion(files: dict[str, Path]) -> RawData:
    parts = []
    for kind in ("train", "test"):
        images = read_idx(files[f"{kind}_images"], ndim=3)
        labels = read_idx(files[f"{kind}_labels"], ndim=1)
        if len(images) != len(labels):
            raise UsageError(
                f"{files[f'{kind}_images']} holds {len(images)} images but "
                f"{files[f'{kind}_labels']} holds {len(labels)} labels",
                owner=str(files[f"{kind}_labels"]),
            )
        if len(labels) and int(labels.max()) >= len(FASHION_MNIST_CLASSES):
            raise UsageError(
                f"{files[f'{kind}_labels']}: label {int(labels.max())} is outside 0..9",
                owner=str(files[f"{kind}_labels"]),
                allowed="labels in 0..9",
            )
        parts.append((images.unsqueeze(1), labels.long()))
    return RawData(list(FASHION_MNIST_CLASSES), parts[0][0], parts[0][1], parts[1])


def load_fashion_mnist(*, root: Path, system_dir: Path, download: bool) -> RawData:
    """Fashion-MNIST from `root`, then the Debian package's directory, then a torchvision download.

    A directory holding all four files is used even if one of them is corrupt (that raises): a
    silent fall-through to another copy would hide the damage.
    """
    looked = []
    for directory in (root, root / "fashion-mnist", root / "FashionMNIST" / "raw", system_dir):
        files = _idx_files(directory)
        if len(files) == len(FASHION_MNIST_FILES):
            return _read_fashion(files)
        missing = sorted(FASHION_MNIST_FILES[key] for key in set(FASHION_MNIST_FILES) - set(files))
        looked.append(f"{directory} (has some files but lacks {missing})" if files else str(directory))
    if not download:
        reason = "download is disabled (--no-download, or [data] download = false)"
    else:
        from torchvision.datasets import FashionMNIST

        try:
            FashionMNIST(str(root), train=True, download=True)  # fetches all four files
        except Exception as exc:  # urllib, checksum and archive errors all mean "not downloadable"
            reason = f"the download failed: {type(exc).__name__}: {exc}"
        else:
            files = _idx_files(root / "FashionMNIST" / "raw")
            if len(files) == len(FASHION_MNIST_FILES):
                return _read_fashion(files)
            reason = f"the download left no files in {root / 'FashionMNIST' / 'raw'}"
    names = ", ".join(FASHION_MNIST_FILES.values())
    raise DataNotFoundError(
        f"Fashion-MNIST not found. Looked in: {'; '.join(looked)}. Ways to get it: "
        f"(1) put the four IDX files ({names}; each may be .gz) in {root} "
        "(--data-root, or root in a study file's [data]); "
        f"(2) `apt-get install dataset-fashion-mnist`, which installs them into {system_dir}; "
        f"(3) let torchvision download them into {root}: {reason}."
    )


# ----- torchvision's datasets -----------------------------------------------------------------

# Dataset name -> (torchvision class, the folder under root where torchvision keeps its files).
TORCHVISION_DATASETS: dict[str, tuple[str, str]] = {
    "mnist": ("MNIST", "MNIST/raw"),
    "cifar10": ("CIFAR10", "cifar-10-batches-py"),
    "cifar100": ("CIFAR100", "cifar-100-python"),
}


def _uint8_nchw(data: Any) -> torch.Tensor:
    """torchvision's `.data`: a (N, H, W) tensor (MNIST) or a (N, H, W, C) numpy array (CIFAR)."""
    tensor = torch.as_tensor(np.asarray(data), dtype=torch.uint8)
    return tensor.unsqueeze(1) if tensor.dim() == 3 else tensor.permute(0, 3, 1, 2).contiguous()


def load_torchvision(name: str, *, root: Path, download: bool) -> RawData:
    """A dataset of TORCHVISION_DATASETS through torchvision's own class (its files, its checks)."""
    import torchvision.datasets

    class_name, folder = TORCHVISION_DATASETS[name]
    dataset_class = getattr(torchvision.datasets, class_name)
    try:
        train = dataset_class(str(root), train=True, download=download)
        test = dataset_class(str(root), train=False, download=download)
    except Exception as exc:  # torchvision raises RuntimeError when absent, urllib errors when offline
        how = "the download failed" if download else "download is disabled (--no-download, or [data] download = false)"
        raise DataNotFoundError(
            f"{class_name} not found in {root / folder}: {type(exc).__name__}: {exc}; {how}. Allow the download "
            f"or put torchvision's files for {class_name} under {root} (--data-root, or root in a study file's [data])"
        ) from exc
    return RawData(
        [str(c) for c in train.classes],
        _uint8_nchw(train.data),
        torch.as_tensor(np.asarray(train.targets), dtype=torch.int64),
        (_uint8_nchw(test.data), torch.as_tensor(np.asarray(test.targets), dtype=torch.int64)),
    )


# ----- image folders ----------------------------------------------------------------------------


def decode_image(path: str, *, size: int) -> torch.Tensor:
    """One image file as RGB uint8 (3, size, size); the aspect ratio is not kept."""
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except (OSError, ValueError) as exc:  # PIL.UnidentifiedImageError is an OSError
        raise UsageError(f"{path}: cannot decode the image: {exc}", owner=path) from exc
    return torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).contiguous()


class ImageFiles(Dataset[tuple[torch.Tensor, int]]):
    """Image files decoded on access; the streaming source, so decoding runs in DataLoader workers."""

    def __init__(self, paths: Sequence[str] | np.ndarray[Any, Any], labels: torch.Tensor, *, size: int) -> None:
        # One fixed-width string array rather than a list of str objects: forked workers then
        # share it instead of copying every page that a refcount update touches.
        self.paths = np.asarray(paths, dtype=str)
        self.labels = torch.as_tensor(labels, dtype=torch.int64)
        self.size = size

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return decode_image(str(self.paths[index]), size=self.size), int(self.labels[index])

    def subset(self, indices: torch.Tensor) -> ImageFiles:
        return ImageFiles(self.paths[indices.numpy()], self.labels[indices], size=self.size)


def decode_all(
    source: Dataset[tuple[torch.Tensor, int]], *, shape: tuple[int, int, int], num_workers: int
) -> torch.Tensor:
    """Every item of a sized source in one preallocated uint8 (N, *shape) tensor.

    Decoding runs in `num_workers` DataLoader workers, and batches are copied into place as they
    arrive, so a folder near the memory limit is never held twice.
    """
    assert isinstance(source, Sized)
    out = torch.empty((len(source), *shape), dtype=torch.uint8)
    start = 0
    for images, _ in DataLoader(source, batch_size=256, num_workers=usable_workers(num_workers)):
        out[start : start + len(images)] = images
        start += len(images)
    return out


@dataclass
class FolderScan:
    """An image folder's classes and files; `test` is None when it has no train/ + test/ (or val/) layout."""

    classes: list[str]
    files: ImageFiles
    test: ImageFiles | None


def _scan(directory: Path, *, size: int) -> tuple[list[str], ImageFiles]:
    from torchvision.datasets import ImageFolder

    try:
        folder = ImageFolder(str(directory))
    except FileNotFoundError as exc:
        raise DataNotFoundError(
            f"no images in {directory}: {exc}. An image folder holds one subfolder of images per class, "
            "or train/ and test/ (or val/) folders that each do"
        ) from exc
    paths = [path for path, _ in folder.samples]
    labels = torch.tensor([label for _, label in folder.samples], dtype=torch.int64)
    return list(folder.classes), ImageFiles(paths, labels, size=size)


def scan_image_folder(root: Path, *, size: int) -> FolderScan:
    """List an ImageFolder tree (torchvision semantics: sorted class subfolders) without decoding it."""
    if not root.is_dir():
        raise DataNotFoundError(f"image folder {root} does not exist (--data-root, or root in a study file's [data])")
    test_dir = next((root / name for name in ("test", "val") if (root / name).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        classes, files = _scan(root / "train", size=size)
        test_classes, test = _scan(test_dir, size=size)
        if test_classes != classes:
            raise UsageError(
                f"{test_dir} has classes {test_classes} but {root / 'train'} has {classes}; "
                "both need the same class subfolders",
                owner=str(test_dir),
                allowed="the same class subfolders as train",
            )
        return FolderScan(classes, files, test)
    classes, files = _scan(root, size=size)
    return FolderScan(classes, files, None)


__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_FILES",
    "TORCHVISION_DATASETS",
    "DataNotFoundError",
    "FolderScan",
    "ImageFiles",
    "RawData",
    "decode_all",
    "decode_image",
    "load_digits",
    "load_fashion_mnist",
    "load_torchvision",
    "read_idx",
    "scan_image_folder",
]

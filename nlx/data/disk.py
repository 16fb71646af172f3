"""MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 read from torchvision's on-disk layout under `data.root`.

Nothing is downloaded: the files must already be there (torchvision's `download=True` puts them
in exactly these places). Images come back as float32 (N, C, H, W) scaled to [0, 1], training
samples first, then the given test split.
"""

from __future__ import annotations

import gzip
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nlx.data.builtin import DIGIT_CONFUSIONS, DIGIT_NAMES
from nlx.data.registry import DataSource, Dataset, register_disk_dataset
from nlx.errors import DataError

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR10_FOLDER, CIFAR100_FOLDER = "cifar-10-batches-py", "cifar-100-python"
CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# The usual CIFAR-10 class-dependent map (Patrini et al.): truck->automobile, bird->airplane,
# deer->horse, cat<->dog.
CIFAR10_CONFUSIONS = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}


def _require(paths: list[Path], dataset: str) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"{dataset}: missing {missing[0]} (expected {len(paths)} files under {missing[0].parent}; "
                        f"set data.root or $NLX_DATA to the folder holding them)")


def _stack(name: str, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
           class_names: list[str], class_map: dict[int, int] | None) -> Dataset:
    images = np.concatenate([train[0], test[0]]).astype(np.float32) / 255.0
    labels = np.concatenate([train[1], test[1]]).astype(np.int64)
    if labels.size and not (0 <= labels.min() and labels.max() < len(class_names)):
        raise DataError(f"{name}: labels outside [0, {len(class_names)})")
    test_mask = np.arange(len(labels)) >= len(train[1])
    return Dataset(name, [images], ["image"], labels, class_names, test_mask=test_mask, class_map=class_map)


# --- MNIST and Fashion-MNIST: idx files (big-endian header: magic, dimensions, then uint8 data) ---

FASHION_NAMES = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
# Look-alike garments as a `classmap` noise default: shirt->t-shirt, pullover->coat, coat->pullover,
# sandal->sneaker, ankle boot->sneaker.
FASHION_CONFUSIONS = {6: 0, 2: 4, 4: 2, 5: 7, 9: 7}


def idx_files(folder: str) -> Callable[[DataSource], list[Path]]:
    """The four idx files under <root>/<folder>/raw/ (torchvision's layout) or else directly in
    <root> (as Debian's dataset packages install them), each plain or gzipped. A missing file is
    listed at its torchvision place, for the error message."""

    def files(source: DataSource) -> list[Path]:
        raw = source.root / folder / "raw"
        found = []
        for name in (name for pair in MNIST_FILES.values() for name in pair):
            places = [raw / name, raw / f"{name}.gz", source.root / name, source.root / f"{name}.gz"]
            found.append(next((place for place in places if place.is_file()), places[0]))
        return found

    return files


mnist_files = idx_files("MNIST")
fashion_mnist_files = idx_files("FashionMNIST")


def read_idx(path: Path) -> np.ndarray:
    """An idx file (optionally gzipped) as a uint8 array of its declared shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte idx file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path}: header says shape {shape} but holds {data.size} bytes")
    return data.reshape(shape)


def _read_idx_dataset(name: str, files: list[Path], class_names: list[str], class_map: dict[int, int]) -> Dataset:
    _require(files, name)
    (train_x, train_y, test_x, test_y) = (read_idx(path) for path in files)
    splits = {}
    for split, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{name}: {split} images {x.shape} and labels {y.shape} do not match")
        splits[split] = (x[:, None], y)
    return _stack(name, splits["train"], splits["test"], class_names, class_map)


@register_disk_dataset(
    "mnist", mnist_files,
    description="MNIST from <root>/MNIST/raw/ (torchvision layout) or <root>/, idx files, plain or .gz",
    summary={"classes": "10", "size": "60000 / 10000", "views": "image (1, 28, 28)"},
)
def mnist(source: DataSource) -> Dataset:
    return _read_idx_dataset("mnist", mnist_files(source), DIGIT_NAMES, DIGIT_CONFUSIONS)


@register_disk_dataset(
    "fashion_mnist", fashion_mnist_files,
    description="Fashion-MNIST from <root>/FashionMNIST/raw/ (torchvision layout) or <root>/ (Debian's dataset-fashion-mnist: /usr/share/datasets/fashion-mnist), idx files, plain or .gz",
    summary={"classes": "10", "size": "60000 / 10000", "views": "image (1, 28, 28)"},
)
def fashion_mnist(source: DataSource) -> Dataset:
    return _read_idx_dataset("fashion_mnist", fashion_mnist_files(source), FASHION_NAMES, FASHION_CONFUSIONS)


# --- CIFAR: pickled dicts of arrays, read without running any code ----------------------------

class _ArraysOnly(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a CIFAR batch cannot run code."""

    ALLOWED = {*((core, name) for core in ("numpy.core.multiarray", "numpy._core.multiarray") for name in ("_reconstruct", "scalar")),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}  # encode: protocol-2 bytes

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> dict[str, object]:
    """A CIFAR python batch as a dict with str keys (the files were pickled by Python 2)."""
    try:
        with open(path, "rb") as handle:
            batch = _ArraysOnly(handle, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise DataError(f"{path}: not a CIFAR python batch ({error})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path}: not a CIFAR python batch (a {type(batch).__name__}, not a dict)")
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in batch.items()}


def _cifar_split(paths: list[Path], label_key: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for path in paths:
        batch = read_cifar_batch(path)
        if "data" not in batch or label_key not in batch:
            raise DataError(f"{path}: expected keys 'data' and '{label_key}', found {sorted(batch)}")
        data = np.asarray(batch["data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(batch[label_key]):
            raise DataError(f"{path}: expected data (N, 3072) with N labels, got {data.shape}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[label_key], dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def cifar10_files(source: DataSource) -> list[Path]:
    folder = source.root / CIFAR10_FOLDER
    return [folder / name for name in [*CIFAR10_TRAIN, "test_batch"]]


@register_disk_dataset(
    "cifar10", cifar10_files,
    description=f"CIFAR-10 from <root>/{CIFAR10_FOLDER}/ (torchvision layout, python batches)",
    summary={"classes": "10", "size": "50000 / 10000", "views": "image (3, 32, 32)"},
)
def cifar10(source: DataSource) -> Dataset:
    files = cifar10_files(source)
    _require(files, "cifar10")
    return _stack("cifar10", _cifar_split(files[:-1], "labels"), _cifar_split(files[-1:], "labels"),
                  CIFAR10_NAMES, CIFAR10_CONFUSIONS)


def cifar100_files(source: DataSource) -> list[Path]:
    folder = source.root / CIFAR100_FOLDER
    return [folder / name for name in ("train", "test", "meta")]


@register_disk_dataset(
    "cifar100", cifar100_files,
    description=f"CIFAR-100 from <root>/{CIFAR100_FOLDER}/ (torchvision layout, fine labels)",
    summary={"classes": "100", "size": "50000 / 10000", "views": "image (3, 32, 32)"},
)
def cifar100(source: DataSource) -> Dataset:
    train, test, meta = cifar100_files(source)
    _require([train, test, meta], "cifar100")
    names = read_cifar_batch(meta).get("fine_label_names")
    if not isinstance(names, list) or len(names) != 100:
        raise DataError(f"{meta}: expected 'fine_label_names' with 100 names")
    return _stack("cifar100", _cifar_split([train], "fine_labels"), _cifar_split([test], "fine_labels"),
                  [str(n) for n in names], None)

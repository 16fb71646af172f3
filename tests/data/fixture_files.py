"""Tiny data files in each on-disk format, written by the tests themselves (nothing downloaded)."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray) -> None:
    """An unsigned-byte idx file: magic 0x00000800 | ndim, big-endian dimensions, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, n_train: int = 30, n_test: int = 10, seed: int = 0, folder: str = "MNIST",
                gz: bool = False) -> dict[str, np.ndarray]:
    """MNIST's four idx files under <root>/<folder>/raw/ (Fashion-MNIST: folder="FashionMNIST"),
    gzipped when `gz`, as torchvision and Debian's dataset package ship them."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images, labels = rng.integers(0, 256, (n, 28, 28)), np.arange(n) % 10
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            path = raw / f"{prefix}-{kind}-ubyte"
            write_idx(path, array)
            if gz:
                path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
                path.unlink()
        arrays[prefix] = (images, labels)
    return arrays


def write_cifar10(root: Path, per_batch: int = 6, n_test: int = 8, seed: int = 0) -> list[np.ndarray]:
    """Batches as CIFAR's own python files: dicts with 'data' (N, 3072) uint8 and 'labels'."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    labels = []
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        y = rng.integers(0, 10, n)
        batch = {"batch_label": name, "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": y.tolist()}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        labels.append(y)
    return labels


def write_cifar100(root: Path, n_train: int = 12, n_test: int = 5) -> None:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for name, n in (("train", n_train), ("test", n_test)):
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "fine_labels": list(np.arange(n) % 100),
                 "coarse_labels": [0] * n}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"c{i}" for i in range(100)]}, protocol=2))


def write_npz(path: Path, n: int = 40, test: bool = False, **extra) -> dict[str, np.ndarray]:
    """Two views (a: 3 features, b: 2x4 array) and labels in 0..3."""
    rng = np.random.default_rng(0)
    arrays = {
        "view_names": np.array(["a", "b"]),
        "x_a": rng.normal(5.0, 3.0, (n, 3)),
        "x_b": rng.normal(0.0, 1.0, (n, 2, 4)),
        "y": np.arange(n) % 4,
        "class_names": np.array(["w", "x", "y", "z"]),
    }
    if test:
        arrays["test_mask"] = np.arange(n) >= n - 8
    arrays.update(extra)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return arrays

"""The dataset registry: each loader returns a `Dataset` of in-memory arrays.

Built-in datasets need nothing but their name; disk datasets read files under a root folder or
one file, given by a `DataSource`. Every entry says which files it reads, so that the cache can
key on their size and modification time and `nlx datasets` can say whether they are present.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nlx.errors import DataError

DEFAULT_ROOT = "data"  # when neither data.root nor $NLX_DATA is set
ROOT_ENV = "NLX_DATA"


@dataclass(frozen=True)
class Dataset:
    """A labelled dataset held in memory.

    views: one float32 array per view/modality, each (N, ...); single-view data has one.
    labels: (N,) int64 true labels in [0, num_classes).
    test_mask: (N,) bool marking a given test split, or None when nlx should carve one.
    class_map: the dataset's default map for `classmap` noise (true -> noisy class).
    """

    name: str
    views: list[np.ndarray]
    view_names: list[str]
    labels: np.ndarray
    class_names: list[str]
    test_mask: np.ndarray | None = None
    class_map: dict[int, int] | None = None

    def __post_init__(self) -> None:
        # Loaders of user files build a Dataset from whatever the file holds: check it once here.
        n = len(self.labels)
        if len(self.views) != len(self.view_names) or not self.views:
            raise DataError(f"{self.name}: {len(self.views)} view(s) but view names {self.view_names}")
        for name, view in zip(self.view_names, self.views):
            if len(view) != n:
                raise DataError(f"{self.name}: view {name!r} has {len(view)} rows but there are {n} labels")
        if self.test_mask is not None and self.test_mask.shape != (n,):
            raise DataError(f"{self.name}: test mask of shape {self.test_mask.shape}, expected ({n},)")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def train_mask(self) -> np.ndarray:
        """(N,) bool: the samples outside the given test split (all of them when none is given)."""
        return np.ones(len(self), dtype=bool) if self.test_mask is None else ~self.test_mask

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class DataSource:
    """Where a disk dataset lives: a root folder (mnist, cifar10, cifar100) or one file (npz)."""

    root: Path | None = None
    path: Path | None = None

    @classmethod
    def from_spec(cls, root: str | None, path: str | None) -> "DataSource":
        """Resolved absolute paths; the root defaults to $NLX_DATA, else ./data."""
        root_text = root or os.environ.get(ROOT_ENV) or DEFAULT_ROOT
        return cls(
            root=Path(root_text).expanduser().resolve(),
            path=Path(path).expanduser().resolve() if path else None,
        )


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: how to load it, which files it reads, and what `nlx datasets` says."""

    name: str
    load: Callable[[DataSource], Dataset]
    files: Callable[[DataSource], list[Path]] = lambda source: []
    description: str = ""
    # Static facts for listing without loading: classes, sizes (train/test or total), views.
    summary: dict[str, str] = field(default_factory=dict)
    on_disk: bool = False


_ENTRIES: dict[str, DatasetEntry] = {}


def register_dataset(name: str, **info) -> Callable:
    """Register a built-in loader `() -> Dataset` (nothing to read from disk)."""

    def decorator(loader: Callable[[], Dataset]) -> Callable[[], Dataset]:
        _ENTRIES[name] = DatasetEntry(name, lambda source: loader(), **info)
        return loader

    return decorator


def register_disk_dataset(name: str, files: Callable[[DataSource], list[Path]], **info) -> Callable:
    """Register a loader `(DataSource) -> Dataset` that reads `files(source)`."""

    def decorator(loader: Callable[[DataSource], Dataset]) -> Callable[[DataSource], Dataset]:
        _ENTRIES[name] = DatasetEntry(name, loader, files, on_disk=True, **info)
        return loader

    return decorator


def dataset_names() -> list[str]:
    _import_loaders()
    return sorted(_ENTRIES)


def dataset_entry(name: str) -> DatasetEntry:
    _import_loaders()
    if name not in _ENTRIES:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted(_ENTRIES))}")
    return _ENTRIES[name]


def load_dataset(name: str, root: str | None = None, path: str | None = None) -> Dataset:
    """The dataset `name` (from the in-memory cache when its files have not changed)."""
    from nlx.data.cache import cached_load

    return cached_load(dataset_entry(name), DataSource.from_spec(root, path))


def _import_loaders() -> None:
    from nlx.data import builtin, disk, npz  # noqa: F401  (register the datasets)

"""The dataset registry: each loader returns a `Dataset` of in-memory arrays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


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

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.labels)


Loader = Callable[[], Dataset]
_LOADERS: dict[str, Loader] = {}


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    def decorator(loader: Loader) -> Loader:
        _LOADERS[name] = loader
        return loader

    return decorator


def dataset_names() -> list[str]:
    _import_builtin()
    return sorted(_LOADERS)


def load_dataset(name: str) -> Dataset:
    _import_builtin()
    return _LOADERS[name]()


def _import_builtin() -> None:
    from nlx.data import builtin  # noqa: F401  (registers the built-in datasets)

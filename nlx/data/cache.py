"""An in-memory cache of loaded datasets, for the many runs of one process (grids, sweeps).

The key is everything that can change what a loader returns: the dataset name, the resolved root
and file, and the size and modification time of every file the loader reads. A cache keyed on
less (the name alone) once made a sweep silently reuse the first run's data for later runs.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from nlx.data.registry import DataSource, Dataset, DatasetEntry

MAX_ENTRIES = 4  # a few datasets; CIFAR as float32 is about 700 MB

_CACHE: OrderedDict[tuple, Dataset] = OrderedDict()


def file_fingerprint(paths: list[Path]) -> tuple:
    """(path, size, mtime_ns) of each file; a missing file is (path, None, None), so that it
    appearing later changes the key."""
    prints = []
    for path in paths:
        try:
            stat = path.stat()
            prints.append((str(path), stat.st_size, stat.st_mtime_ns))
        except OSError:
            prints.append((str(path), None, None))
    return tuple(prints)


def cache_key(entry: DatasetEntry, source: DataSource) -> tuple:
    """Built-in datasets ignore the source: their key is the name alone."""
    if not entry.on_disk:
        return (entry.name,)
    return (entry.name, source.root, source.path, file_fingerprint(entry.files(source)))


def cached_load(entry: DatasetEntry, source: DataSource) -> Dataset:
    key = cache_key(entry, source)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    dataset = entry.load(source)
    _CACHE[key] = dataset
    while len(_CACHE) > MAX_ENTRIES:
        _CACHE.popitem(last=False)
    return dataset


def clear_cache() -> None:
    _CACHE.clear()

"""Any multi-view dataset as one `.npz` file (`data.name: npz`, `data.path: FILE`).

Layout (read with `allow_pickle=False`, so string arrays must be numpy unicode, not objects):

    view_names   (V,) str          the views, in order
    x_<name>     (N, ...) numeric  one array per view (cast to float32)
    y            (N,) int          labels in [0, C)
    test_mask    (N,) bool         optional: a given test split (else nlx carves one)
    class_names  (C,) str          optional: else C = max(y) + 1 and the names are "0".."C-1"

A single-view file may omit `view_names` and hold its features as `x`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from nlx.data.registry import DataSource, Dataset, register_disk_dataset
from nlx.errors import DataError

LAYOUT = "view_names, x_<view> per view, y, optional test_mask and class_names"


def npz_files(source: DataSource) -> list[Path]:
    return [source.path] if source.path else []


def _view_names(archive, path: Path) -> list[str]:
    if "view_names" in archive:
        names = archive["view_names"]
        if names.ndim != 1 or names.dtype.kind != "U" or names.size == 0:
            raise DataError(f"{path}: view_names must be a non-empty 1-D string array")
        return [str(n) for n in names]
    if "x" in archive:
        return ["x"]
    raise DataError(f"{path}: no views; expected {LAYOUT}")


def read_npz(path: Path) -> Dataset:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a readable .npz file ({error})") from None
    with archive:
        keys = set(archive.files)
        names = _view_names(archive, path)
        keyed = {name: ("x" if names == ["x"] and "view_names" not in keys else f"x_{name}") for name in names}
        missing = [key for key in [*keyed.values(), "y"] if key not in keys]
        if missing:
            raise DataError(f"{path}: missing array {missing[0]!r}; expected {LAYOUT}")
        views = [archive[key] for key in keyed.values()]
        labels = archive["y"]
        test_mask = archive["test_mask"] if "test_mask" in keys else None
        class_names = [str(c) for c in archive["class_names"]] if "class_names" in keys else None

    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"{path}: y must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    for name, view in zip(names, views):
        if view.dtype.kind not in "iufb" or view.ndim < 2:
            raise DataError(f"{path}: view {name!r} must be a numeric (N, ...) array, got {view.dtype} {view.shape}")
    if test_mask is not None and test_mask.dtype != bool:
        raise DataError(f"{path}: test_mask must be a boolean array, got {test_mask.dtype}")
    num_classes = len(class_names) if class_names else int(labels.max()) + 1 if labels.size else 0
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{path}: labels must lie in [0, {num_classes}) (the number of class_names)")
    try:
        return Dataset(
            name="npz",
            views=[view.astype(np.float32) for view in views],
            view_names=names,
            labels=labels.astype(np.int64),
            class_names=class_names or [str(c) for c in range(num_classes)],
            test_mask=test_mask,
        )
    except DataError as error:  # mismatched lengths: say which file
        raise DataError(f"{path}: {str(error).removeprefix('npz: ')}") from None


@register_disk_dataset(
    "npz", npz_files,
    description="a multi-view .npz file given by data.path (layout: see the README)",
    summary={"classes": "from file", "size": "from file", "views": "from file"},
)
def npz(source: DataSource) -> Dataset:
    if source.path is None:
        raise DataError("data.path: the npz dataset needs the file to read (data.path: FILE.npz)")
    if not source.path.is_file():
        raise DataError(f"data.path: no such file {source.path} (an .npz with {LAYOUT})")
    return read_npz(source.path)

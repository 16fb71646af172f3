"""What `nlx datasets` lists: every registered dataset, its shape, and whether its files exist."""

from __future__ import annotations

from dataclasses import dataclass

from nlx.data.registry import DataSource, Dataset, dataset_entry, dataset_names, load_dataset


@dataclass(frozen=True)
class DatasetRow:
    name: str
    classes: str
    size: str  # "train / test" for a given split, else the total
    views: str  # "name (shape)" per view
    files: str  # "built in", "present", or what is missing where
    description: str


def _describe_loaded(data: Dataset) -> tuple[str, str, str]:
    size = str(len(data)) if data.test_mask is None else f"{int((~data.test_mask).sum())} / {int(data.test_mask.sum())}"
    views = ", ".join(f"{name} {tuple(view.shape[1:])}" for name, view in zip(data.view_names, data.views))
    return str(data.num_classes), size, views


def describe_datasets(root: str | None = None, path: str | None = None) -> list[DatasetRow]:
    """One row per dataset. Built-in ones are described from static facts (mnist1d would take
    seconds to generate); the npz file given by `path` is read, to show its real content."""
    source = DataSource.from_spec(root, path)
    rows = []
    for name in dataset_names():
        entry = dataset_entry(name)
        classes, size, views = (entry.summary.get(k, "") for k in ("classes", "size", "views"))
        if not entry.on_disk:
            files = "built in"
        else:
            needed = entry.files(source)
            missing = [p for p in needed if not p.is_file()]
            files = ("give --path" if not needed else "present" if not missing
                     else f"missing {len(missing)}/{len(needed)} under {missing[0].parent}")
            if name == "npz" and needed and not missing:
                classes, size, views = _describe_loaded(load_dataset(name, root, path))
        rows.append(DatasetRow(name, classes, size, views, files, entry.description))
    return rows

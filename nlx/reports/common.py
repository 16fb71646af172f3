"""Orderings and labels shared by the reports: how runs group, sort and are named."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from nlx.data.noise_labels import parse_noise_label
from nlx.store.models import TUNED_PREFIX, Run

IMAGE_SUFFIXES = (".png", ".svg", ".pdf")


def image_format(out: Path) -> str:
    """The image format named by the file's suffix ("png", "svg" or "pdf"); checked before any
    query or drawing, so that a typo fails fast rather than after the work. ValueError names
    what is wrong."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"cannot save a plot as {out.name!r}: the file name must end in {', '.join(IMAGE_SUFFIXES)}")
    if not out.parent.is_dir():
        raise ValueError(f"cannot save a plot as {out}: folder {out.parent} does not exist")
    return suffix[1:]


# Columns follow the usual paper order: clean first, then noise families from uniform to
# structured. "inst" (instance-dependent) has its place although nlx.data.noise lacks it so far.
NOISE_TYPE_ORDER = ("none", "sym", "usym", "asym", "classmap", "inst")

# A label like "inst0.2" that parse_noise_label does not know yet still sorts by type and rate.
_GENERIC_LABEL = re.compile(r"^([A-Za-z_]+)(\d+(?:\.\d*)?|\.\d+)$")

GroupKey = tuple[str, str, str, str]  # (dataset, model, method, noise)


def _parse(label: str) -> tuple[str, float] | None:
    try:
        return parse_noise_label(label)
    except ValueError:
        match = _GENERIC_LABEL.match(label.strip())
        return (match.group(1), float(match.group(2))) if match else None


def noise_sort_key(label: str) -> tuple:
    """Sort key for noise labels: "none", then by type (NOISE_TYPE_ORDER), then by rate;
    labels of an unknown form or type come last, alphabetically."""
    parsed = _parse(label)
    if parsed is None or parsed[0] not in NOISE_TYPE_ORDER:
        return (1, 0, 0.0, label)
    kind, rate = parsed
    return (0, NOISE_TYPE_ORDER.index(kind), rate, label)


def method_sort_key(method: str) -> tuple[bool, str]:
    """Plain cross-entropy is the baseline every other method is read against: it goes first."""
    return (method != "ce", method)


def row_method(run: Run) -> str:
    """The method column of a table: the method name, marked when its hyperparameters come from
    a sweep (`nlx sweep best`)."""
    if (run.experiment or "").startswith(TUNED_PREFIX):
        return f"{run.method} (tuned {run.experiment.removeprefix(TUNED_PREFIX)})"
    return run.method


def row_sort_key(row: tuple[str, str, str]) -> tuple:
    """Sort key for (dataset, model, method) rows."""
    dataset, model, method = row
    return (dataset, model, method_sort_key(method))


def group_sort_key(key: GroupKey) -> tuple:
    """Sort key for (dataset, model, method, noise) groups: table rows, then table columns."""
    return (*row_sort_key(key[:3]), noise_sort_key(key[3]))


def group_key(run: Run) -> GroupKey:
    """The group a run's seeds are pooled in."""
    return (run.dataset, run.model, run.method, run.noise)


def group_labels(keys: Iterable[GroupKey]) -> dict[GroupKey, str]:
    """Short legend labels such as "ce sym0.4"; dataset and model are prepended only when the
    groups span several of them (otherwise they would repeat on every line)."""
    keys = list(keys)
    several_datasets = len({key[0] for key in keys}) > 1
    several_models = len({key[1] for key in keys}) > 1
    labels = {}
    for dataset, model, method, noise in keys:
        parts = [dataset] if several_datasets else []
        parts += [model] if several_models else []
        labels[(dataset, model, method, noise)] = " ".join([*parts, method, noise])
    return labels


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1); the std of a single value is 0.0."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = math.fsum(values) / n
    if n == 1:
        return mean, 0.0
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))

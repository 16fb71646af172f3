"""Turn a spec into the arrays of one run: splits, views and noisy labels.

Order matters and is fixed: carve the test split, carve the trusted set (when `data.trusted` asks
for one: true labels, never noised), inject noise into the rest (the training pool), then carve
validation from the noisy pool. A `noisy` validation set keeps the noisy labels (what a
practitioner would have); a `clean` one keeps the true labels; `trusted` validates on the trusted
set itself and carves nothing more, so a method without a trusted set (CE) can be given exactly
the clean data a meta-learning method gets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nlx.data.instance_noise import instance_noisy_labels
from nlx.data.noise import NoisyLabels, empirical_T, make_noisy_labels
from nlx.data.noise_file import align_noisy_labels, read_noisy_labels
from nlx.data.registry import Dataset, load_dataset
from nlx.data.standardize import standardize_views
from nlx.data.splits import split_indices
from nlx.errors import SpecError
from nlx.specs import RunSpec, TrustedSpec


@dataclass(frozen=True)
class Split:
    """One split: dataset indices, the views' rows, and labels."""

    index: np.ndarray  # (n,) indices into the dataset
    views: list[np.ndarray]  # each (n, ...)
    labels: np.ndarray  # (n,) the labels a method may see (noisy for train and noisy val)


@dataclass(frozen=True)
class PreparedData:
    train: Split
    val: Split
    test: Split
    train_true: np.ndarray  # (n_train,) true labels: for the engine's metrics only, never a method
    noise: NoisyLabels  # over the training part: noisy labels, flip mask, true T
    num_classes: int
    view_names: list[str]
    trusted: Split | None = None  # true labels; disjoint from train, val and test

    @property
    def view_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(view.shape[1:]) for view in self.train.views]


def select_views(dataset: Dataset, wanted: list[int | str] | None) -> list[int]:
    if wanted is None:
        return list(range(len(dataset.views)))
    chosen = []
    for view in wanted:
        if isinstance(view, str):
            if view not in dataset.view_names:
                raise SpecError(f"data.views: {dataset.name} has no view {view!r}; views: {dataset.view_names}")
            chosen.append(dataset.view_names.index(view))
        elif not 0 <= view < len(dataset.views):
            raise SpecError(f"data.views: {dataset.name} has views 0..{len(dataset.views) - 1}, not {view}")
        else:
            chosen.append(view)
    return chosen


def load_spec_dataset(spec: RunSpec) -> Dataset:
    return load_dataset(spec.data.name, spec.data.root, spec.data.path)


def file_noise(spec: RunSpec, dataset: Dataset) -> np.ndarray:
    """(N,) noisy labels from `noise.path`, aligned with the dataset (-1 on its given test split)."""
    return align_noisy_labels(read_noisy_labels(spec.noise.path, spec.noise.key), dataset.train_mask, dataset.num_classes)


def check_data(spec: RunSpec) -> tuple[Dataset, list[int]]:
    """Load what a run will read (dataset, views, noise file) so that a missing or malformed file
    is reported before anything is written; returns the dataset and the selected views."""
    dataset = load_spec_dataset(spec)
    views = select_views(dataset, spec.data.views)
    if spec.noise.type == "file":
        file_noise(spec, dataset)
    return dataset, views


def _pool_noise(spec: RunSpec, dataset: Dataset, views: list[np.ndarray], pool: np.ndarray, seed: int) -> NoisyLabels:
    """Noisy labels of the training pool; T is filled in by the caller for inst and file noise."""
    labels, classes = dataset.labels, dataset.num_classes
    if spec.noise.type == "file":
        noisy = file_noise(spec, dataset)[pool]
        return NoisyLabels(noisy=noisy, flipped=noisy != labels[pool], T=np.eye(classes))
    class_map = spec.noise.class_map or dataset.class_map
    if spec.noise.type == "classmap" and not class_map:
        raise SpecError(f"noise.class_map: {dataset.name} has no default class map; give one")
    try:
        if spec.noise.type == "inst":  # the flips depend on the (selected) views' features
            features = np.concatenate([view[pool].reshape(len(pool), -1) for view in views], axis=1)
            return instance_noisy_labels(labels[pool], features, spec.noise.rate, classes, seed)
        return make_noisy_labels(labels[pool], spec.noise.type, spec.noise.rate, classes, seed, class_map)
    except ValueError as error:
        raise SpecError(f"noise: {error}") from None


def carve_trusted(pool: np.ndarray, labels: np.ndarray, trusted: TrustedSpec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split dataset indices `pool` into (rest, trusted): `per_class` samples drawn at random from
    every class, or a `fraction` stratified by class. Both sorted."""
    if trusted.fraction is not None:
        return split_indices(pool, labels[pool], trusted.fraction, seed)
    rng = np.random.default_rng([seed, 5])  # its own stream: the other splits stay as they were
    chosen = []
    for cls in np.unique(labels[pool]):
        members = pool[labels[pool] == cls]
        if len(members) <= trusted.per_class:
            raise SpecError(f"data.trusted.per_class: class {cls} has only {len(members)} training samples")
        chosen.append(rng.choice(members, trusted.per_class, replace=False))
    picked = np.sort(np.concatenate(chosen))
    return np.setdiff1d(pool, picked), picked


def carve_test_and_trusted(spec: RunSpec, dataset: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Dataset indices of (training pool, test split, trusted set or None), the first two steps
    of `prepare_data`; also run before anything is written, to refuse an impossible trusted set."""
    everything = np.arange(len(dataset))
    if dataset.test_mask is not None:
        pool, test = everything[~dataset.test_mask], everything[dataset.test_mask]
    else:
        pool, test = split_indices(everything, dataset.labels, spec.data.test_fraction, spec.seed)
    trusted = None
    if spec.data.trusted is not None:  # before the noise: these labels stay true
        pool, trusted = carve_trusted(pool, dataset.labels, spec.data.trusted, spec.seed)
    return pool, test, trusted


def prepare_data(spec: RunSpec) -> PreparedData:
    dataset = load_spec_dataset(spec)
    chosen = select_views(dataset, spec.data.views)
    views = [dataset.views[i] for i in chosen]
    labels = dataset.labels
    pool, test, trusted = carve_test_and_trusted(spec, dataset)

    noise_seed = spec.seed if spec.noise.seed is None else spec.noise.seed
    pool_noise = _pool_noise(spec, dataset, views, pool, noise_seed)

    # Validation is stratified on the noisy labels: that is all a practitioner could stratify on.
    position = np.arange(len(pool))
    if spec.data.val == "trusted":  # the trusted set validates; the whole noisy pool trains
        train_pos, val_pos = position, position[:0]
    else:
        train_pos, val_pos = split_indices(position, pool_noise.noisy, spec.data.val_fraction, spec.seed)
    val_labels = pool_noise.noisy[val_pos] if spec.data.val == "noisy" else labels[pool[val_pos]]
    # Instance-dependent and real (file) noise have no T but the average one: the training split's own.
    train_T = (
        empirical_T(labels[pool[train_pos]], pool_noise.noisy[train_pos], dataset.num_classes)
        if spec.noise.type in ("inst", "file") else pool_noise.T
    )
    train_noise = NoisyLabels(noisy=pool_noise.noisy[train_pos], flipped=pool_noise.flipped[train_pos], T=train_T)

    # Statistics from the training split only: validation and test stay unseen.
    views = standardize_views(views, pool[train_pos], spec.data.standardize)

    def split(index: np.ndarray, split_labels: np.ndarray) -> Split:
        return Split(index=index, views=[view[index] for view in views], labels=split_labels)

    trusted_split = None if trusted is None else split(trusted, labels[trusted])
    return PreparedData(
        train=split(pool[train_pos], train_noise.noisy),
        val=trusted_split if spec.data.val == "trusted" else split(pool[val_pos], val_labels),
        test=split(test, labels[test]),
        train_true=labels[pool[train_pos]],
        noise=train_noise,
        num_classes=dataset.num_classes,
        view_names=[dataset.view_names[i] for i in chosen],
        trusted=trusted_split,
    )

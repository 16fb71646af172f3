"""Datasets that ship with nlx or its dependencies: nothing is downloaded."""

from __future__ import annotations

import random
from contextlib import contextmanager
from importlib import resources
from collections.abc import Iterator

import numpy as np

from nlx.data.registry import Dataset, register_dataset
from nlx.errors import DataError

# Classic confusions of handwritten digits (Patrini et al.'s MNIST map): 2->7, 3->8, 5<->6, 7->1.
DIGIT_CONFUSIONS = {2: 7, 3: 8, 5: 6, 6: 5, 7: 1}
DIGIT_NAMES = [str(c) for c in range(10)]

# UCI Multiple Features: six feature sets of the same 2,000 handwritten digits, in the order
# of the original files (Fourier, profile correlations, Karhunen-Loeve, pixel averages,
# Zernike moments, morphological features).
MFEAT_VIEWS = ["fou", "fac", "kar", "pix", "zer", "mor"]
MFEAT_WIDTHS = [76, 216, 64, 240, 47, 6]


@register_dataset(
    "digits",
    description="scikit-learn's 8x8 handwritten digits, one 1x8x8 image view (MLPs flatten it)",
    summary={"classes": "10", "size": "1797 (test carved)", "views": "pixels (1, 8, 8)"},
)
def digits() -> Dataset:
    """scikit-learn's 1,797 8x8 handwritten digits, as 1x8x8 images scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    return Dataset(
        name="digits",
        views=[images],
        view_names=["pixels"],
        labels=bunch.target.astype(np.int64),
        class_names=[str(c) for c in bunch.target_names],
        class_map=DIGIT_CONFUSIONS,
    )


@contextmanager
def kept_global_rng_state() -> Iterator[None]:
    """mnist1d seeds Python's and numpy's global generators; put them back as they were."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def make_mnist1d(num_samples: int = 5000) -> Dataset:
    """MNIST-1D generated locally (never `get_dataset`, which downloads): 40-long signals,
    80% train / 20% given test split, as one (1, 40) view so that 1-D convolutions apply."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    with kept_global_rng_state():
        data = make_dataset(args)
    signals = np.concatenate([data["x"], data["x_test"]]).astype(np.float32)[:, None, :]
    labels = np.concatenate([data["y"], data["y_test"]]).astype(np.int64)
    test_mask = np.arange(len(labels)) >= len(data["y"])
    return Dataset("mnist1d", [signals], ["signal"], labels, DIGIT_NAMES, test_mask=test_mask)


@register_dataset(
    "mnist1d",
    description="MNIST-1D (Greydanus 2020), generated locally with the mnist1d package",
    summary={"classes": "10", "size": "4000 / 1000", "views": "signal (1, 40)"},
)
def mnist1d() -> Dataset:
    return make_mnist1d()


@register_dataset(
    "mfeat",
    description="UCI Multiple Features handwritten digits (Duin), six feature views, shipped with nlx",
    summary={"classes": "10", "size": "2000 (test carved)",
             "views": ", ".join(f"{v} ({w},)" for v, w in zip(MFEAT_VIEWS, MFEAT_WIDTHS))},
)
def mfeat() -> Dataset:
    """The 2,000 digits (200 per class) as six float32 feature views; built by scripts/build_mfeat.py."""
    try:
        with resources.files("nlx.data").joinpath("files/mfeat.npz").open("rb") as handle:
            with np.load(handle, allow_pickle=False) as archive:
                views = [archive[f"x_{name}"].astype(np.float32) for name in MFEAT_VIEWS]
                labels = archive["y"].astype(np.int64)
    except (FileNotFoundError, KeyError) as error:
        raise DataError(f"mfeat: the packaged nlx/data/files/mfeat.npz is missing or incomplete ({error})") from None
    return Dataset("mfeat", views, list(MFEAT_VIEWS), labels, DIGIT_NAMES, class_map=DIGIT_CONFUSIONS)

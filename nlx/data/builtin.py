"""Datasets that ship with nlx's dependencies: nothing is downloaded."""

from __future__ import annotations

from functools import cache

import numpy as np

from nlx.data.registry import Dataset, register_dataset

# Classic confusions of handwritten digits (Patrini et al.'s MNIST map): 2->7, 3->8, 5<->6, 7->1.
DIGIT_CONFUSIONS = {2: 7, 3: 8, 5: 6, 6: 5, 7: 1}


@register_dataset("digits")
@cache
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

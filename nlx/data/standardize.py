"""Per-view standardisation with statistics of the training split only.

Statistics are taken per entry of axis 1 over every other axis: per feature for a feature view
(N, D), per channel for an image (N, C, H, W) or a signal (N, C, L), which keeps images images
(a per-pixel standardisation would erase the spatial structure convolutions rely on).

Default (`data.standardize: null`): feature views are standardised (their features come in
arbitrary units: mfeat's range from 0-1 to thousands), images and signals are left as the loader
gives them (pixels in [0, 1], MNIST-1D already centred), which also keeps results of runs made
before the option existed.
"""

from __future__ import annotations

import numpy as np


def wants_standardizing(view: np.ndarray, option: bool | None) -> bool:
    return view.ndim == 2 if option is None else option


def fit_standardizer(train_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std), each shaped (1, C, 1, ...) to broadcast over rows; a constant entry gets std 1
    so that it maps to 0 instead of NaN."""
    axes = tuple(a for a in range(train_rows.ndim) if a != 1)
    mean = train_rows.mean(axis=axes, keepdims=True, dtype=np.float64)
    std = train_rows.std(axis=axes, keepdims=True, dtype=np.float64)
    return mean, np.where(std > 0, std, 1.0)


def standardize_views(views: list[np.ndarray], train_index: np.ndarray, option: bool | None) -> list[np.ndarray]:
    """New float32 views standardised with the statistics of rows `train_index`; views that the
    option leaves alone come back unchanged (the same arrays)."""
    out = []
    for view in views:
        if not wants_standardizing(view, option):
            out.append(view)
            continue
        mean, std = fit_standardizer(view[train_index])
        out.append(((view - mean) / std).astype(np.float32))
    return out

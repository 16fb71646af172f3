"""Deterministic, stratified index splits."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.model_selection import train_test_split


def split_indices(
    indices: np.ndarray, labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split `indices` into (kept, held_out) with `fraction` held out, stratified by `labels`.

    Stratification fails when a class has a single member; then fall back to a random split and
    warn, rather than refusing to run.
    """
    try:
        kept, held = train_test_split(indices, test_size=fraction, random_state=seed, stratify=labels)
    except ValueError as error:
        warnings.warn(f"stratified split impossible ({error}); using a random split", stacklevel=2)
        kept, held = train_test_split(indices, test_size=fraction, random_state=seed, stratify=None)
    return np.sort(kept), np.sort(held)

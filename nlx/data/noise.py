"""Label-noise generation as pure numpy functions.

Convention: a transition matrix ``T`` of shape ``(C, C)`` holds
``T[i, j] = P(noisy = j | true = i)``, so every row sums to 1. This is the
Patrini et al. / T-Revision convention and the *transpose* of cleanlab's
``noise_matrix`` (where ``noise_matrix[i][j] = P(noisy = i | true = j)``).

Noise kinds (:data:`NOISE_TYPES`): ``none``; ``sym`` (flip to a uniform *other*
class w.p. ``r``); ``usym`` (resample exactly ``round(r N)`` labels from *all*
classes, DivideMix/IEG style, realised rate ~ ``r (C-1)/C``); ``asym`` (pair flip
``i -> i+1 mod C`` w.p. ``r``); ``classmap`` (``i -> class_map[i]`` w.p. ``r``).

All functions are pure: randomness only comes from an explicit
``np.random.Generator`` (or a seed) and inputs are never modified.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from nlx.data.noise_labels import parse_noise_label  # noqa: F401  (re-exported: the inverse of noise_label)

NOISE_TYPES = ("none", "sym", "usym", "asym", "classmap")  # class-conditional: a T describes them
INSTANCE_NOISE_TYPES = ("inst",)  # instance-dependent: see nlx/data/instance_noise.py
ALL_NOISE_TYPES = NOISE_TYPES + INSTANCE_NOISE_TYPES


@dataclass(frozen=True)
class NoisyLabels:
    """Result of :func:`make_noisy_labels`.

    Attributes
    ----------
    noisy : np.ndarray, shape (N,), int64
        The noisy labels.
    flipped : np.ndarray, shape (N,), bool
        ``noisy != true``; a resampled label that landed on its own class is not flipped.
    T : np.ndarray, shape (C, C), float64
        The true transition matrix, ``T[i, j] = P(noisy = j | true = i)``.
    """

    noisy: np.ndarray
    flipped: np.ndarray
    T: np.ndarray

    @property
    def realised_rate(self) -> float:
        """Fraction of labels whose noisy value differs from the true one (0.0 if N == 0)."""
        return float(self.flipped.mean()) if self.flipped.size else 0.0


def _check_rate(rate: float) -> float:
    rate = float(rate)
    if not 0.0 <= rate < 1.0:  # also rejects NaN
        raise ValueError(f"noise rate must be in [0, 1), got {rate!r}")
    return rate


def _check_classes(num_classes: int, minimum: int = 2) -> int:
    if int(num_classes) != num_classes or num_classes < minimum:
        raise ValueError(f"num_classes must be an integer >= {minimum}, got {num_classes!r}")
    return int(num_classes)


def _check_labels(y: np.ndarray, num_classes: int, name: str = "labels") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must have an integer dtype, got {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes}), got range [{y.min()}, {y.max()}]")
    return y.astype(np.int64)  # always a copy, so callers' arrays stay untouched


def symmetric_T(num_classes: int, rate: float) -> np.ndarray:
    """Symmetric noise, shape (C, C): ``1 - r`` on the diagonal, ``r / (C - 1)`` elsewhere."""
    c, r = _check_classes(num_classes), _check_rate(rate)
    T = np.full((c, c), r / (c - 1))
    np.fill_diagonal(T, 1.0 - r)
    return T


def uniform_T(num_classes: int, rate: float) -> np.ndarray:
    """Uniform ("usym") noise, shape (C, C): ``(1 - r) I + r / C`` (share r redrawn from all C)."""
    c, r = _check_classes(num_classes), _check_rate(rate)
    return (1.0 - r) * np.eye(c) + r / c


def pairflip_T(num_classes: int, rate: float) -> np.ndarray:
    """Pair-flip ("asym") noise, shape (C, C): ``T[i, i] = 1 - r``, ``T[i, (i + 1) % C] = r``."""
    c, r = _check_classes(num_classes), _check_rate(rate)
    T = (1.0 - r) * np.eye(c)
    T[np.arange(c), (np.arange(c) + 1) % c] += r
    return T


def classmap_T(num_classes: int, rate: float, class_map: Mapping[int, int]) -> np.ndarray:
    """Class-map noise: each mapped class ``i`` moves to ``class_map[i]`` with probability ``r``.

    Unmapped classes keep identity rows (they are never corrupted).

    Parameters
    ----------
    class_map : Mapping[int, int]
        Source class -> target class; keys and values in ``[0, C)``, no ``i -> i``.
    """
    c, r = _check_classes(num_classes), _check_rate(rate)
    T = np.eye(c)
    for src, dst in class_map.items():
        if not (0 <= src < c and 0 <= dst < c):
            raise ValueError(f"class_map entry {src}->{dst} is outside [0, {c})")
        if src == dst:
            raise ValueError(f"class_map entry {src}->{dst} maps a class to itself")
        T[src, src], T[src, dst] = 1.0 - r, r
    return T


def transition_matrix(
    kind: str, num_classes: int, rate: float, class_map: Mapping[int, int] | None = None
) -> np.ndarray:
    """Build the ``(C, C)`` transition matrix for a noise ``kind``; ``"none"`` is the identity."""
    if kind == "none":
        return np.eye(_check_classes(num_classes, minimum=1))
    if kind == "sym":
        return symmetric_T(num_classes, rate)
    if kind == "usym":
        return uniform_T(num_classes, rate)
    if kind == "asym":
        return pairflip_T(num_classes, rate)
    if kind == "classmap":
        if class_map is None:
            raise ValueError("noise kind 'classmap' requires a class_map")
        return classmap_T(num_classes, rate, class_map)
    raise ValueError(f"unknown noise kind {kind!r}; expected one of {NOISE_TYPES}")


def sample_from_T(y: np.ndarray, T: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw each noisy label independently from row ``T[y_i]``.

    Parameters
    ----------
    y : np.ndarray, shape (N,)
        True labels in ``[0, C)``.
    T : np.ndarray, shape (C, C)
        Row-stochastic transition matrix.
    rng : np.random.Generator
        Source of randomness (one uniform draw per sample).

    Returns
    -------
    np.ndarray, shape (N,), int64
        Noisy labels.
    """
    T = np.asarray(T, dtype=np.float64)
    if T.ndim != 2 or T.shape[0] != T.shape[1]:
        raise ValueError(f"T must be a square matrix, got shape {T.shape}")
    if (T < 0).any() or not np.allclose(T.sum(axis=1), 1.0):
        raise ValueError("T must be non-negative with rows summing to 1")
    y = _check_labels(y, T.shape[0])
    cum = np.cumsum(T, axis=1)
    cum[:, -1] = 1.0  # guard against round-off leaving the last bin short
    u = rng.random(y.size)
    # Inverse CDF: the label is the number of bin edges at or below u (zero-mass bins are skipped).
    return (u[:, None] >= cum[y]).sum(axis=1).astype(np.int64)


def make_noisy_labels(
    y: np.ndarray,
    kind: str,
    rate: float,
    num_classes: int,
    seed: int | None,
    class_map: Mapping[int, int] | None = None,
) -> NoisyLabels:
    """Corrupt true labels ``y`` with noise of the given ``kind`` and ``rate``.

    ``sym``/``asym``/``classmap`` sample every label from its row of ``T``;
    ``usym`` resamples exactly ``round(rate * N)`` uniformly chosen labels from
    all C classes. ``rng = np.random.default_rng(seed)`` is the only randomness.

    Parameters
    ----------
    y : np.ndarray, shape (N,)
        True integer labels in ``[0, C)``; not modified.
    kind : str
        One of :data:`NOISE_TYPES`.
    rate : float
        Noise rate ``r`` in ``[0, 1)``; ``0`` keeps the labels unchanged.
    num_classes : int
        Number of classes ``C``.
    seed : int or None
        Seed for ``np.random.default_rng``.
    class_map : Mapping[int, int], optional
        Required for ``kind="classmap"``; see :func:`classmap_T`.

    Returns
    -------
    NoisyLabels
        Noisy labels, flip mask and the true transition matrix.
    """
    if kind not in NOISE_TYPES:
        raise ValueError(f"unknown noise kind {kind!r}; expected one of {NOISE_TYPES}")
    rate = _check_rate(rate)
    c = _check_classes(num_classes, minimum=1 if kind == "none" else 2)
    y = _check_labels(y, c)
    T = transition_matrix(kind, c, rate, class_map)  # validates class_map even when rate == 0
    if kind == "none" or rate == 0.0:
        noisy = y.copy()
    elif kind == "usym":
        rng = np.random.default_rng(seed)
        noisy = y.copy()
        picked = rng.choice(y.size, size=int(round(rate * y.size)), replace=False)
        noisy[picked] = rng.integers(0, c, size=picked.size)
    else:
        noisy = sample_from_T(y, T, np.random.default_rng(seed))
    return NoisyLabels(noisy=noisy, flipped=noisy != y, T=T)


def empirical_T(y_true: np.ndarray, y_noisy: np.ndarray, num_classes: int) -> np.ndarray:
    """Row-normalised joint counts, ``T_hat[i, j] = #(true=i, noisy=j) / #(true=i)``.

    A class absent from ``y_true`` gets an identity row (no evidence of noise).
    """
    c = _check_classes(num_classes, minimum=1)
    y_true, y_noisy = _check_labels(y_true, c, "y_true"), _check_labels(y_noisy, c, "y_noisy")
    if y_true.shape != y_noisy.shape:
        raise ValueError(f"y_true and y_noisy differ in shape: {y_true.shape} vs {y_noisy.shape}")
    counts = np.bincount(y_true * c + y_noisy, minlength=c * c).reshape(c, c).astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    T_hat = np.divide(counts, totals, out=np.eye(c), where=totals > 0)
    return T_hat


def estimation_error(T_hat: np.ndarray, T: np.ndarray) -> float:
    """Relative L1 error ``sum|T_hat - T| / sum|T|`` (T-Revision's definition)."""
    T_hat, T = np.asarray(T_hat, dtype=np.float64), np.asarray(T, dtype=np.float64)
    if T_hat.shape != T.shape:
        raise ValueError(f"T_hat and T differ in shape: {T_hat.shape} vs {T.shape}")
    denom = np.abs(T).sum()
    if denom == 0:
        raise ValueError("reference T is all zeros")
    return float(np.abs(T_hat - T).sum() / denom)


def file_noise_label(path: str | None, key: str | None) -> str:
    """Label of noise read from a file: ``"file:"`` and the dict key, else the file's stem."""
    from pathlib import PurePath

    return f"file:{key or PurePath(path or '').stem}"


def noise_label(kind: str, rate: float) -> str:
    """Inverse of :func:`parse_noise_label`: ``("sym", 0.4)`` -> ``"sym0.4"``; none ignores rate."""
    if kind not in ALL_NOISE_TYPES:
        raise ValueError(f"unknown noise kind {kind!r}; expected one of {ALL_NOISE_TYPES}")
    return "none" if kind == "none" else f"{kind}{_check_rate(rate):g}"

"""Instance-dependent label noise (``inst``), the part-dependent generator of Xia et al. 2020
(NeurIPS, "Part-dependent label noise"), as a pure numpy function.

Each sample ``n`` gets its own flip rate ``q_n``, drawn from a normal with mean ``rate`` and
standard deviation 0.1 truncated to [0, 1]; where it flips to depends on its features: class
``y``'s random projection ``W[y]`` (shape (D, C)) maps the standardised features to scores over
the other classes, whose softmax spreads ``q_n``. The noise therefore breaks the class-conditional
assumption behind transition-matrix methods: two samples of one class flip differently. The "true
T" of such noise is only an average, the row-normalised joint of true and noisy labels.
"""

from __future__ import annotations

import numpy as np

from nlx.data.noise import NoisyLabels, _check_classes, _check_labels, _check_rate, empirical_T

FLIP_RATE_SD = 0.1  # spread of per-sample flip rates around `rate`, as in the paper's code


def truncated_normal(mean: float, sd: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` draws from N(mean, sd^2) restricted to [0, 1], by redrawing those outside."""
    out = rng.normal(mean, sd, size)
    bad = (out < 0) | (out > 1)
    while bad.any():
        out[bad] = rng.normal(mean, sd, int(bad.sum()))
        bad = (out < 0) | (out > 1)
    return out


def instance_flip_probs(features: np.ndarray, y: np.ndarray, rate: float, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Each sample's distribution over noisy labels.

    Parameters
    ----------
    features : np.ndarray, shape (N, D)
        One feature vector per sample (standardised here per column).
    y : np.ndarray, shape (N,), int
        True labels in ``[0, C)``.
    rate : float in [0, 1)
        Mean per-sample flip rate.

    Returns
    -------
    np.ndarray, shape (N, C)
        Rows sum to 1; ``P[n, y_n] = 1 - q_n``.
    """
    x = np.asarray(features, dtype=np.float64).reshape(len(y), -1)
    x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    q = truncated_normal(rate, FLIP_RATE_SD, len(y), rng) if rate > 0 else np.zeros(len(y))
    W = rng.standard_normal((num_classes, x.shape[1], num_classes))
    scores = np.einsum("nd,ndc->nc", x, W[y])
    scores[np.arange(len(y)), y] = -np.inf  # the flip goes to another class
    scores -= scores.max(axis=1, keepdims=True)
    spread = np.exp(scores)
    spread /= spread.sum(axis=1, keepdims=True)
    P = q[:, None] * spread
    P[np.arange(len(y)), y] += 1.0 - q
    return P


def instance_noisy_labels(
    y: np.ndarray, features: np.ndarray, rate: float, num_classes: int, seed: int | None
) -> NoisyLabels:
    """Corrupt ``y`` (N,) with instance-dependent noise driven by ``features`` (N, ...).

    ``rng = np.random.default_rng(seed)`` is the only randomness. The realised flip rate is
    ``rate`` in expectation (``mean(q)`` up to truncation). ``T`` is the empirical
    ``P(noisy = j | true = i)`` of the drawn labels.
    """
    rate = _check_rate(rate)
    c = _check_classes(num_classes)
    y = _check_labels(y, c)
    rng = np.random.default_rng(seed)
    P = instance_flip_probs(features, y, rate, c, rng)
    cum = np.cumsum(P, axis=1)
    cum[:, -1] = 1.0
    noisy = (rng.random(len(y))[:, None] >= cum).sum(axis=1).astype(np.int64)
    return NoisyLabels(noisy=noisy, flipped=noisy != y, T=empirical_T(y, noisy, c))

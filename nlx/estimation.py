"""Transition-matrix estimation from a classifier trained on noisy labels, as pure numpy functions.

Both estimators take ``probs``, the classifier's estimate of ``p(noisy = j | x)`` for every
training sample, and return ``T_hat`` in nlx's convention ``T[i, j] = P(noisy = j | true = i)``
(rows sum to 1). Score an estimate with :func:`nlx.data.noise.estimation_error`.

- :func:`anchor_T` (Patrini et al. 2017, T-Revision): the sample that looks most like class i is
  taken as an anchor point of i (its clean posterior is ``e_i``), so its noisy posterior *is* row
  i of T. Dropping the top percentile first guards against over-confident outliers.
- :func:`confident_joint_T` (cleanlab's confident joint): count the samples whose predicted
  probability of a class clears that class's average self-confidence, as (given label, guessed
  true label) pairs, calibrate the counts to the label totals, and row-normalise per true class.
"""

from __future__ import annotations

import numpy as np

ESTIMATORS = ("anchor", "confident_joint")


def _check_probs(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] == 0 or probs.shape[1] < 2:
        raise ValueError(f"probs must have shape (N, C) with N >= 1 and C >= 2, got {probs.shape}")
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ValueError("probs must be finite and non-negative")
    return probs


def row_normalise(M: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to 1; an all-zero row becomes the identity row (no evidence of noise).

    Parameters
    ----------
    M : np.ndarray, shape (C, C), non-negative
    """
    M = np.asarray(M, dtype=np.float64)
    totals = M.sum(axis=1, keepdims=True)
    return np.divide(M, totals, out=np.eye(len(M)), where=totals > 0)


def anchor_T(probs: np.ndarray, percentile: float | None = 97.0) -> np.ndarray:
    """Anchor-point estimate of T.

    For each noisy class ``i`` the anchor is the sample with the highest ``probs[:, i]``, after
    (when ``percentile`` is given) setting the values at or above that percentile of the column
    to zero, as T-Revision does; row ``i`` of ``T_hat`` is the anchor's ``probs`` row.

    Parameters
    ----------
    probs : np.ndarray, shape (N, C)
        ``probs[n, j]`` estimates ``p(noisy = j | x_n)``; rows need not be exactly normalised.
    percentile : float in (0, 100] or None
        Drop probabilities at or above this percentile of each column; None keeps the maximum.

    Returns
    -------
    np.ndarray, shape (C, C)
        Row-stochastic ``T_hat[i, j] = P(noisy = j | true = i)``.
    """
    probs = _check_probs(probs)
    if percentile is not None and not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    c = probs.shape[1]
    T_hat = np.empty((c, c))
    for i in range(c):
        column = probs[:, i].copy()
        if percentile is not None:
            threshold = np.percentile(column, percentile, method="higher")
            kept = column < threshold
            if kept.any():  # all values tied at the top: nothing to drop in favour of
                column[~kept] = 0.0
        T_hat[i] = probs[int(np.argmax(column))]
    return row_normalise(T_hat)


def confident_joint(probs: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """Calibrated confident joint, counts of (given label, guessed true label).

    Class ``k``'s threshold is the mean of ``probs[:, k]`` over samples labelled ``k``. A sample
    counts towards ``(noisy_n, k)`` where ``k`` is its most probable class among those whose
    probability clears their threshold; samples clearing none are not counted. Each row is then
    rescaled to the number of samples carrying that given label (cleanlab's calibration).

    Parameters
    ----------
    probs : np.ndarray, shape (N, C)
        Estimates of ``p(noisy = j | x_n)``.
    noisy : np.ndarray, shape (N,), int
        The given (noisy) labels in ``[0, C)``.

    Returns
    -------
    np.ndarray, shape (C, C), float64
        ``J[i, k]`` ~ number of samples with given label ``i`` and true label ``k``.
    """
    probs = _check_probs(probs)
    noisy = np.asarray(noisy, dtype=np.int64)
    n, c = probs.shape
    if noisy.shape != (n,) or (noisy < 0).any() or (noisy >= c).any():
        raise ValueError(f"noisy must have shape ({n},) with values in [0, {c})")
    label_counts = np.bincount(noisy, minlength=c).astype(np.float64)
    self_confidence = np.bincount(noisy, weights=probs[np.arange(n), noisy], minlength=c)
    # An absent label gets an unreachable threshold: nobody can be guessed into it.
    thresholds = np.divide(self_confidence, label_counts, out=np.full(c, np.inf), where=label_counts > 0)
    above = probs >= thresholds
    confident = above.any(axis=1)
    guessed = np.where(above, probs, -np.inf).argmax(axis=1)
    J = np.bincount(noisy[confident] * c + guessed[confident], minlength=c * c).reshape(c, c).astype(np.float64)
    row_totals = J.sum(axis=1, keepdims=True)
    return np.divide(J, row_totals, out=np.zeros_like(J), where=row_totals > 0) * label_counts[:, None]


def confident_joint_T(probs: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """T from the confident joint: ``T_hat[i, j] ∝ J[j, i]`` (true ``i``, noisy ``j``), row-normalised.

    Parameters
    ----------
    probs : np.ndarray, shape (N, C)
    noisy : np.ndarray, shape (N,), int

    Returns
    -------
    np.ndarray, shape (C, C)
        Row-stochastic ``T_hat[i, j] = P(noisy = j | true = i)``.
    """
    return row_normalise(confident_joint(probs, noisy).T)


def estimate_T(estimator: str, probs: np.ndarray, noisy: np.ndarray, percentile: float | None = 97.0) -> np.ndarray:
    """Dispatch by name (one of :data:`ESTIMATORS`); shapes as in the estimators."""
    if estimator == "anchor":
        return anchor_T(probs, percentile)
    if estimator == "confident_joint":
        return confident_joint_T(probs, noisy)
    raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")

"""T estimators on synthetic posteriors whose true T is known."""

from __future__ import annotations

import numpy as np
import pytest

from nlx.data.noise import empirical_T, estimation_error, pairflip_T, sample_from_T, symmetric_T
from nlx.estimation import anchor_T, confident_joint, confident_joint_T, estimate_T, row_normalise


def synthetic(T: np.ndarray, n: int = 3000, purity: float | None = None, seed: int = 0):
    """True labels, noisy labels drawn from T, and exact noisy posteriors ``clean @ T``.

    With ``purity=None`` every clean posterior is one-hot (all samples are anchors); otherwise
    clean posteriors are Dirichlet blends whose weight on the true class is spread in
    [purity, 1], so only a few samples come close to being anchors."""
    rng = np.random.default_rng(seed)
    c = len(T)
    y = rng.integers(0, c, n)
    clean = np.eye(c)[y]
    if purity is not None:
        weight = rng.uniform(purity, 1.0, size=(n, 1))
        clean = weight * clean + (1 - weight) * rng.dirichlet(np.ones(c), size=n)
    noisy = sample_from_T(y, T, rng)
    return y, noisy, clean @ T


@pytest.mark.parametrize("T", [pairflip_T(10, 0.4), symmetric_T(10, 0.4), symmetric_T(4, 0.2)])
def test_anchor_recovers_T_from_exact_posteriors(T):
    _, noisy, probs = synthetic(T, purity=0.5)
    assert estimation_error(anchor_T(probs, percentile=None), T) < 0.05
    # Without outliers, dropping the top 3% costs a little: the near-anchors left are less pure.
    assert estimation_error(anchor_T(probs, percentile=97), T) < 0.3


def test_anchor_is_exact_when_every_sample_is_an_anchor():
    T = pairflip_T(6, 0.3)
    _, _, probs = synthetic(T)
    np.testing.assert_allclose(anchor_T(probs, percentile=None), T, atol=1e-12)


def test_anchor_percentile_ignores_an_overconfident_outlier():
    T = pairflip_T(5, 0.4)
    _, _, probs = synthetic(T, purity=0.6)
    outlier = np.zeros((1, 5))
    outlier[0, 0] = 1.0  # claims P(noisy=0|x) = 1, which no clean sample can under T
    probs = np.vstack([probs, outlier])
    assert estimation_error(anchor_T(probs, percentile=None), T) > estimation_error(anchor_T(probs, percentile=97), T)


def test_estimates_are_row_stochastic():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(7) * 0.3, size=500)
    noisy = rng.integers(0, 7, 500)
    for estimator in ("anchor", "confident_joint"):
        T_hat = estimate_T(estimator, probs, noisy)
        assert T_hat.shape == (7, 7)
        assert (T_hat >= 0).all()
        np.testing.assert_allclose(T_hat.sum(axis=1), 1.0)


@pytest.mark.parametrize("T", [pairflip_T(10, 0.4), symmetric_T(5, 0.3)])
def test_confident_joint_matches_the_realised_noise_on_anchor_data(T):
    y, noisy, probs = synthetic(T)
    np.testing.assert_allclose(confident_joint_T(probs, noisy), empirical_T(y, noisy, len(T)), atol=1e-12)


def test_confident_joint_rows_are_calibrated_to_label_counts():
    T = pairflip_T(4, 0.3)
    _, noisy, probs = synthetic(T, purity=0.4)
    J = confident_joint(probs, noisy)
    np.testing.assert_allclose(J.sum(axis=1), np.bincount(noisy, minlength=4))


def test_row_normalise_keeps_empty_rows_as_identity():
    M = np.array([[2.0, 2.0], [0.0, 0.0]])
    np.testing.assert_allclose(row_normalise(M), [[0.5, 0.5], [0.0, 1.0]])


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError):
        anchor_T(np.ones(5))
    with pytest.raises(ValueError):
        anchor_T(np.ones((3, 2)), percentile=0)
    with pytest.raises(ValueError):
        confident_joint_T(np.full((3, 2), 0.5), np.array([0, 1, 2]))
    with pytest.raises(ValueError):
        estimate_T("magic", np.full((3, 2), 0.5), np.array([0, 1, 1]))

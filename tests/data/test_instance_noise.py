"""Instance-dependent noise: the average flip rate is `rate`, flips depend on features (so two
samples of one class flip differently), the stored T is the realised average, and it is seeded."""

from __future__ import annotations

import numpy as np
import pytest

from nlx.data.instance_noise import instance_flip_probs, instance_noisy_labels
from nlx.data.noise import empirical_T, parse_noise_label
from nlx.data.prepare import prepare_data
from nlx.specs import RunSpec


def blobs(n: int = 4000, c: int = 5, d: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    return y, rng.normal(size=(n, d)) + y[:, None]


@pytest.mark.parametrize("rate", [0.2, 0.4])
def test_average_flip_rate_is_the_rate(rate):
    y, x = blobs()
    out = instance_noisy_labels(y, x, rate, 5, seed=1)
    assert abs(out.realised_rate - rate) < 0.03
    np.testing.assert_allclose(out.T, empirical_T(y, out.noisy, 5))
    np.testing.assert_allclose(out.T.sum(axis=1), 1.0)


def test_flip_distributions_depend_on_the_sample():
    y, x = blobs()
    P = instance_flip_probs(x, y, 0.4, 5, np.random.default_rng(0))
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    assert (P[np.arange(len(y)), y] <= 1).all()
    same_class = P[y == 0]
    # Class-conditional noise would give every row of one class the same distribution.
    assert same_class[:, 1:].std(axis=0).mean() > 0.05


def test_seeded():
    y, x = blobs(500)
    a, b, c = (instance_noisy_labels(y, x, 0.4, 5, seed=s).noisy for s in (3, 3, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_inst_runs_through_specs_and_data_preparation():
    assert parse_noise_label("inst0.4") == ("inst", 0.4)
    spec = RunSpec.model_validate({"noise": {"type": "inst", "rate": 0.4}})
    assert spec.noise.label == "inst0.4"
    data = prepare_data(spec)
    assert abs(data.noise.realised_rate - 0.4) < 0.06
    np.testing.assert_allclose(data.noise.T, empirical_T(data.train_true, data.train.labels, data.num_classes))

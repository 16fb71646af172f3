"""Property tests for nlx.data.noise (statistical checks use ~4 standard deviations)."""

from __future__ import annotations

import numpy as np
import pytest

from nlx.data.noise import (
    NOISE_TYPES,
    NoisyLabels,
    classmap_T,
    empirical_T,
    estimation_error,
    make_noisy_labels,
    noise_label,
    pairflip_T,
    parse_noise_label,
    sample_from_T,
    symmetric_T,
    transition_matrix,
    uniform_T,
)

N = 20_000
CLASS_COUNTS = (2, 3, 10)
NOISY_KINDS = ("sym", "usym", "asym", "classmap")


def class_map_for(c: int) -> dict[int, int]:
    # A few non-trivial mappings, leaving at least one class unmapped when C > 2.
    return {2: {0: 1}, 3: {0: 1, 2: 0}, 10: {3: 5, 7: 1, 9: 0, 1: 2}}[c]


def balanced_labels(c: int, n: int = N, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.arange(n) % c).astype(np.int64)


def make(
    kind: str, c: int, rate: float = 0.4, seed: int = 1, y: np.ndarray | None = None
) -> NoisyLabels:
    y = balanced_labels(c) if y is None else y
    cmap = class_map_for(c) if kind == "classmap" else None
    return make_noisy_labels(y, kind, rate, c, seed, class_map=cmap)


def within_sd(observed: float, p: float, n: int, k: float = 4.0) -> bool:
    sd = np.sqrt(p * (1 - p) / n)
    return abs(observed - p) <= k * sd + 1e-12


# --------------------------------------------------------------------------- T builders


@pytest.mark.parametrize("c", CLASS_COUNTS)
@pytest.mark.parametrize("rate", [0.0, 0.2, 0.5, 0.9])
@pytest.mark.parametrize("kind", NOISE_TYPES)
def test_T_is_row_stochastic(kind: str, c: int, rate: float) -> None:
    T = transition_matrix(kind, c, rate, class_map_for(c) if kind == "classmap" else None)
    assert T.shape == (c, c) and T.dtype == np.float64
    assert np.all((T >= 0) & (T <= 1))
    np.testing.assert_allclose(T.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("c", CLASS_COUNTS)
def test_builders_at_rate_zero_are_identity(c: int) -> None:
    builders = (symmetric_T(c, 0), uniform_T(c, 0), pairflip_T(c, 0))
    for T in (*builders, classmap_T(c, 0, class_map_for(c))):
        np.testing.assert_array_equal(T, np.eye(c))
    np.testing.assert_array_equal(transition_matrix("none", c, 0.3), np.eye(c))


@pytest.mark.parametrize("c", CLASS_COUNTS)
def test_symmetric_structure(c: int) -> None:
    r = 0.3
    T = symmetric_T(c, r)
    off = T[~np.eye(c, dtype=bool)]
    assert np.allclose(off, off[0]) and np.isclose(off[0], r / (c - 1))
    assert np.allclose(np.diag(T), 1 - r)


@pytest.mark.parametrize("c", CLASS_COUNTS)
def test_uniform_structure(c: int) -> None:
    r = 0.6
    T = uniform_T(c, r)
    off = T[~np.eye(c, dtype=bool)]
    assert np.allclose(off, r / c) and np.allclose(np.diag(T), 1 - r + r / c)


@pytest.mark.parametrize("c", CLASS_COUNTS)
def test_pairflip_and_classmap_support(c: int) -> None:
    r = 0.35
    T = pairflip_T(c, r)
    allowed = np.eye(c, dtype=bool) | np.roll(np.eye(c, dtype=bool), 1, axis=1)
    assert np.all(T[~allowed] == 0) and np.allclose(T[np.arange(c), (np.arange(c) + 1) % c], r)
    cmap = class_map_for(c)
    T = classmap_T(c, r, cmap)
    for i in range(c):
        e = np.eye(c)
        expected = e[i] if i not in cmap else (1 - r) * e[i] + r * e[cmap[i]]
        np.testing.assert_allclose(T[i], expected)


@pytest.mark.parametrize("bad_map", [{0: 0}, {5: 1}, {1: 5}, {-1: 0}])
def test_classmap_rejects_bad_maps(bad_map: dict[int, int]) -> None:
    with pytest.raises(ValueError):
        classmap_T(3, 0.2, bad_map)


# --------------------------------------------------------------------------- sampling


def test_sample_from_T_respects_zero_entries_and_degenerate_rows() -> None:
    # Row 0 is deterministic to class 2, row 1 never hits class 1, row 2 is identity.
    T = np.array([[0.0, 0.0, 1.0], [0.5, 0.0, 0.5], [0.0, 0.0, 1.0]])
    y = np.repeat(np.arange(3), 2000)
    noisy = sample_from_T(y, T, np.random.default_rng(0))
    assert np.all(noisy[y == 0] == 2) and np.all(noisy[y == 2] == 2)
    assert not np.any(noisy[y == 1] == 1)
    assert within_sd(float(np.mean(noisy[y == 1] == 0)), 0.5, 2000)


@pytest.mark.parametrize("c", CLASS_COUNTS)
@pytest.mark.parametrize("kind", ["sym", "asym"])
def test_realised_rate_is_binomial_around_r(kind: str, c: int) -> None:
    r = 0.4
    out = make(kind, c, r)
    assert out.noisy.dtype == np.int64 and out.flipped.dtype == bool
    np.testing.assert_array_equal(out.flipped, out.noisy != balanced_labels(c))
    assert within_sd(out.realised_rate, r, N)


@pytest.mark.parametrize("c", CLASS_COUNTS)
def test_classmap_realised_rate(c: int) -> None:
    r = 0.4
    y = balanced_labels(c)
    out = make("classmap", c, r, y=y)
    n_mapped = int(np.isin(y, list(class_map_for(c))).sum())
    assert within_sd(out.flipped.sum() / n_mapped, r, n_mapped)


@pytest.mark.parametrize("c", CLASS_COUNTS)
def test_asym_moves_only_to_next_class(c: int) -> None:
    y = balanced_labels(c)
    out = make("asym", c, 0.45, y=y)
    assert out.flipped.any()
    np.testing.assert_array_equal(out.noisy[out.flipped], (y[out.flipped] + 1) % c)


@pytest.mark.parametrize("c", CLASS_COUNTS)
def test_sym_never_flips_to_own_class_and_hits_all_others(c: int) -> None:
    y = balanced_labels(c)
    out = make("sym", c, 0.5, y=y)
    for i in range(c):
        targets = set(out.noisy[(y == i) & out.flipped].tolist())
        assert targets == set(range(c)) - {i}


@pytest.mark.parametrize("c", CLASS_COUNTS)
def test_classmap_moves_only_mapped_classes_to_their_target(c: int) -> None:
    y = balanced_labels(c)
    cmap = class_map_for(c)
    out = make("classmap", c, 0.5, y=y)
    assert not out.flipped[~np.isin(y, list(cmap))].any()
    for src, dst in cmap.items():
        moved = out.noisy[(y == src) & out.flipped]
        assert moved.size > 0 and np.all(moved == dst)


@pytest.mark.parametrize("c", CLASS_COUNTS)
@pytest.mark.parametrize("r", [0.2, 0.5, 0.8])
def test_usym_picks_round_rN_and_resamples_from_all_classes(c: int, r: float) -> None:
    out = make("usym", c, r)
    k = round(r * N)
    p_change = (c - 1) / c  # a picked label changes iff its redraw is another class
    # Flips among the k picked are Binomial(k, (C-1)/C): realised rate ≈ r (C-1)/C ...
    assert within_sd(out.flipped.sum() / k, p_change, k)
    # ... and the unchanged share among picked ≈ 1/C.
    assert within_sd((k - out.flipped.sum()) / k, 1 / c, k)
    np.testing.assert_allclose(out.T, uniform_T(c, r))


def test_usym_flips_never_exceed_picked_count() -> None:
    # Exactly round(rN) labels are resampled, so the flip count is capped; per-sample
    # Bernoulli picking would exceed the cap for a good share of these seeds.
    y = balanced_labels(10, n=10)
    for seed in range(200):
        assert make("usym", 10, 0.3, seed=seed, y=y).flipped.sum() <= 3


@pytest.mark.parametrize("c", CLASS_COUNTS)
@pytest.mark.parametrize("kind", NOISY_KINDS)
def test_empirical_T_recovers_T(kind: str, c: int) -> None:
    y = balanced_labels(c)
    out = make(kind, c, 0.4, y=y)
    T_hat = empirical_T(y, out.noisy, c)
    np.testing.assert_allclose(T_hat.sum(axis=1), 1.0)
    # Entry-wise binomial tolerance: each row is estimated from the n_i labels of class i.
    n_i = np.bincount(y, minlength=c)[:, None]
    assert np.all(np.abs(T_hat - out.T) <= 5 * np.sqrt(out.T * (1 - out.T) / n_i) + 1e-12)
    assert estimation_error(T_hat, out.T) < 0.1


@pytest.mark.parametrize("kind", NOISY_KINDS)
def test_determinism(kind: str) -> None:
    a, b, other = make(kind, 10, seed=7), make(kind, 10, seed=7), make(kind, 10, seed=8)
    np.testing.assert_array_equal(a.noisy, b.noisy)
    np.testing.assert_array_equal(a.flipped, b.flipped)
    assert not np.array_equal(a.noisy, other.noisy)


@pytest.mark.parametrize("kind", NOISE_TYPES)
def test_none_and_zero_rate_keep_labels(kind: str) -> None:
    y = balanced_labels(3, n=500)
    out = make(kind, 3, rate=0.0, y=y) if kind != "none" else make("none", 3, rate=0.7, y=y)
    np.testing.assert_array_equal(out.noisy, y)
    assert out.realised_rate == 0.0 and not out.flipped.any()
    np.testing.assert_array_equal(out.T, np.eye(3))
    assert out.noisy is not y


@pytest.mark.parametrize("kind", NOISE_TYPES)
def test_input_not_modified(kind: str) -> None:
    y = balanced_labels(10, n=2000)
    y_before = y.copy()
    y.flags.writeable = False  # any in-place write would raise
    out = make(kind, 10, 0.5, y=y)
    np.testing.assert_array_equal(y, y_before)
    assert not np.shares_memory(out.noisy, y)


def test_empty_input() -> None:
    out = make_noisy_labels(np.array([], dtype=np.int64), "sym", 0.3, 4, 0)
    assert out.noisy.shape == (0,) and out.realised_rate == 0.0


# --------------------------------------------------------------------------- empirical_T / error


def test_empirical_T_absent_class_gets_identity_row() -> None:
    y_true = np.array([0, 0, 2, 2])
    y_noisy = np.array([0, 2, 2, 2])
    T_hat = empirical_T(y_true, y_noisy, 3)
    np.testing.assert_allclose(T_hat, [[0.5, 0, 0.5], [0, 1, 0], [0, 0, 1]])


def test_estimation_error() -> None:
    T = symmetric_T(4, 0.3)
    assert estimation_error(T, T) == 0.0
    assert estimation_error(pairflip_T(4, 0.3), T) > 0
    A = np.array([[0.9, 0.1], [0.2, 0.8]])
    B = np.array([[0.7, 0.3], [0.2, 0.8]])
    expected = (0.2 + 0.2 + 0 + 0) / (0.7 + 0.3 + 0.2 + 0.8)
    assert estimation_error(A, B) == pytest.approx(expected)
    with pytest.raises(ValueError):
        estimation_error(np.eye(2), np.eye(3))


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize(
    "kind,rate",
    [("sym", 0.4), ("usym", 0.5), ("asym", 0.45), ("classmap", 0.3), ("sym", 0.0), ("sym", 1e-5)],
)
def test_noise_label_round_trip(kind: str, rate: float) -> None:
    text = noise_label(kind, rate)
    assert text.startswith(kind)
    assert parse_noise_label(text) == (kind, pytest.approx(rate))


def test_none_label() -> None:
    assert noise_label("none", 0.7) == "none"
    assert parse_noise_label("none") == ("none", 0.0)
    assert noise_label("sym", 0.4) == "sym0.4"


@pytest.mark.parametrize(
    "text", ["sym", "sym1.0", "foo0.4", "sym-0.1", "", "none0.2", "sym0.4x", "0.4", "sym1e5"]
)
def test_parse_rejects_bad_strings(text: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_noise_label(text)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_rate(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        make_noisy_labels(np.array([0, 1]), "sym", rate, 2, 0)


def test_bad_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        make_noisy_labels(np.array([0, 1]), "gauss", 0.2, 2, 0)
    with pytest.raises(ValueError, match="kind"):
        transition_matrix("gauss", 2, 0.2)
    with pytest.raises(ValueError):
        noise_label("gauss", 0.2)


@pytest.mark.parametrize("y", [[0, 3], [-1, 0], [[0, 1]]])
def test_labels_out_of_range_or_bad_shape(y: list) -> None:
    with pytest.raises(ValueError):
        make_noisy_labels(np.array(y), "sym", 0.2, 3, 0)


def test_classmap_requires_map() -> None:
    with pytest.raises(ValueError, match="class_map"):
        make_noisy_labels(np.array([0, 1]), "classmap", 0.2, 2, 0)

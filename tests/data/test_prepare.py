"""A run's data: view subsets, training-only standardisation, the cache, noise read from a file."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from nlx.data.cache import cache_key, clear_cache
from nlx.data.prepare import check_data, prepare_data
from nlx.data.registry import DataSource, dataset_entry, load_dataset
from nlx.data.standardize import fit_standardizer, standardize_views
from nlx.errors import DataError
from nlx.specs import RunSpec

from .fixture_files import write_cifar10, write_npz


def spec(**sections) -> RunSpec:
    return RunSpec.model_validate({"noise": {"type": "none"}, **sections})


def test_view_subset_by_name_and_index_selects_those_arrays(tmp_path):
    arrays = write_npz(tmp_path / "d.npz")
    prepared = prepare_data(spec(data={"name": "npz", "path": str(tmp_path / "d.npz"), "views": ["b", 0], "standardize": False}))
    assert prepared.view_names == ["b", "a"] and prepared.view_shapes == [(2, 4), (3,)]
    rows = prepared.train.index
    np.testing.assert_allclose(prepared.train.views[0], arrays["x_b"][rows].astype(np.float32))
    np.testing.assert_allclose(prepared.train.views[1], arrays["x_a"][rows].astype(np.float32))


def test_standardisation_uses_training_statistics_only(tmp_path):
    arrays = write_npz(tmp_path / "d.npz", n=80)
    prepared = prepare_data(spec(data={"name": "npz", "path": str(tmp_path / "d.npz"), "views": ["a"]}))
    train = prepared.train.views[0]  # a feature view: standardised by default
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(train.std(axis=0), 1, atol=1e-4)
    raw_train = arrays["x_a"][prepared.train.index]
    mean, std = raw_train.mean(axis=0), raw_train.std(axis=0)
    expected_test = (arrays["x_a"][prepared.test.index] - mean) / std  # the test rows, with training statistics
    np.testing.assert_allclose(prepared.test.views[0], expected_test, rtol=1e-4, atol=1e-5)
    assert abs(prepared.test.views[0].mean()) > 1e-3  # not re-centred on itself


def test_images_are_left_alone_by_default_and_standardised_per_channel_on_request():
    images = np.random.default_rng(0).random((10, 3, 4, 4)).astype(np.float32)
    assert standardize_views([images], np.arange(5), None)[0] is images
    out = standardize_views([images], np.arange(5), True)[0]
    mean, _ = fit_standardizer(images[:5])
    assert mean.shape == (1, 3, 1, 1)
    np.testing.assert_allclose(out[:5].mean(axis=(0, 2, 3)), 0, atol=1e-5)


def test_constant_feature_maps_to_zero_not_nan():
    view = np.ones((6, 2), dtype=np.float32)
    assert np.array_equal(standardize_views([view], np.arange(6), True)[0], np.zeros((6, 2)))


def test_cache_returns_the_same_object_until_the_file_changes(tmp_path):
    path = tmp_path / "d.npz"
    write_npz(path, n=40)
    first = load_dataset("npz", path=str(path))
    assert load_dataset("npz", path=str(path)) is first
    write_npz(path, n=48)  # same name, same path, new content
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # even if mtime ticked coarsely
    assert len(load_dataset("npz", path=str(path))) == 48


def test_cache_key_covers_root_and_every_file(tmp_path):
    entry = dataset_entry("cifar10")
    write_cifar10(tmp_path / "a")
    key_a = cache_key(entry, DataSource.from_spec(str(tmp_path / "a"), None))
    assert key_a != cache_key(entry, DataSource.from_spec(str(tmp_path / "b"), None))
    batch = tmp_path / "a" / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes() + b"\0")
    assert cache_key(entry, DataSource.from_spec(str(tmp_path / "a"), None)) != key_a
    clear_cache()


def _cifar_noise_files(tmp_path):
    labels = np.concatenate(write_cifar10(tmp_path, per_batch=20, n_test=10)[:5])  # 100 training labels
    noisy = labels.copy()
    noisy[::4] = (noisy[::4] + 1) % 10  # a quarter flipped
    torch.save({"clean_label": labels, "worse_label": noisy, "random_label1": torch.as_tensor(labels)}, tmp_path / "CIFAR-10_human.pt")
    np.save(tmp_path / "noisy.npy", noisy)
    return labels, noisy


@pytest.mark.parametrize(("path", "key", "label"), [("CIFAR-10_human.pt", "worse_label", "file:worse_label"), ("noisy.npy", None, "file:noisy")])
def test_noise_from_file_is_aligned_with_the_training_order(tmp_path, path, key, label):
    labels, noisy = _cifar_noise_files(tmp_path)
    run = spec(data={"name": "cifar10", "root": str(tmp_path), "val_fraction": 0.2},
               noise={"type": "file", "path": str(tmp_path / path), "key": key})
    assert run.noise.label == label
    prepared = prepare_data(run)
    rows = prepared.train.index
    np.testing.assert_array_equal(prepared.train.labels, noisy[rows])
    np.testing.assert_array_equal(prepared.noise.flipped, noisy[rows] != labels[rows])
    assert prepared.noise.realised_rate == pytest.approx((noisy[rows] != labels[rows]).mean())
    np.testing.assert_allclose(prepared.noise.T.sum(axis=1), 1)
    assert (prepared.test.index >= 100).all()  # the given test split keeps its true labels
    true = load_dataset("cifar10", root=str(tmp_path)).labels
    np.testing.assert_array_equal(prepared.test.labels, true[prepared.test.index])


def test_tensor_entry_of_a_torch_dict_is_read_too(tmp_path):
    labels, _ = _cifar_noise_files(tmp_path)
    run = spec(data={"name": "cifar10", "root": str(tmp_path)},
               noise={"type": "file", "path": str(tmp_path / "CIFAR-10_human.pt"), "key": "random_label1"})
    assert not prepare_data(run).noise.flipped.any()


@pytest.mark.parametrize(
    ("noise", "message"),
    [
        ({"path": "CIFAR-10_human.pt"}, "noise.key: .* pick one of .*worse_label"),
        ({"path": "CIFAR-10_human.pt", "key": "nope"}, "noise.key: .* has no 'nope'"),
        ({"path": "noisy.npy", "key": "x"}, "noise.key: .* has no keys"),
        ({"path": "missing.npy"}, "noise.path: no such file"),
        ({"path": "short.npy"}, "noise.path: 3 labels, but the training set has 100"),
    ],
)
def test_bad_noise_files_name_the_field(tmp_path, noise, message):
    _cifar_noise_files(tmp_path)
    np.save(tmp_path / "short.npy", np.array([1, 2, 3]))
    noise = {"type": "file", **noise, "path": str(tmp_path / noise["path"])}
    with pytest.raises(DataError, match=message):
        check_data(spec(data={"name": "cifar10", "root": str(tmp_path)}, noise=noise))


def test_noise_file_that_would_run_code_is_refused(tmp_path):
    _cifar_noise_files(tmp_path)

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    torch.save({"worse_label": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(DataError, match="noise.path: .* neither"):
        check_data(spec(data={"name": "cifar10", "root": str(tmp_path)},
                        noise={"type": "file", "path": str(tmp_path / "evil.pt"), "key": "worse_label"}))

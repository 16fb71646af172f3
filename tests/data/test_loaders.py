"""Loaders on tiny files in each on-disk format, built-in datasets, and the errors for bad files."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest

from nlx.data.builtin import MFEAT_VIEWS, MFEAT_WIDTHS, make_mnist1d
from nlx.data.registry import load_dataset
from nlx.errors import DataError

from .fixture_files import write_cifar10, write_cifar100, write_mnist, write_npz


def test_mnist_reads_idx_files_training_first(tmp_path):
    arrays = write_mnist(tmp_path, n_train=30, n_test=10)
    data = load_dataset("mnist", root=str(tmp_path))
    assert len(data) == 40 and data.views[0].shape == (40, 1, 28, 28) and data.views[0].dtype == np.float32
    assert data.test_mask.sum() == 10 and not data.test_mask[:30].any()
    np.testing.assert_allclose(data.views[0][0, 0], arrays["train"][0][0] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(data.labels[30:], arrays["t10k"][1])
    assert data.num_classes == 10 and data.class_map


def test_fashion_mnist_reads_gzipped_idx_files_with_its_class_names(tmp_path):
    arrays = write_mnist(tmp_path, n_train=20, n_test=5, folder="FashionMNIST", gz=True)
    data = load_dataset("fashion_mnist", root=str(tmp_path))
    assert data.views[0].shape == (25, 1, 28, 28) and data.test_mask.sum() == 5
    np.testing.assert_allclose(data.views[0][3, 0], arrays["train"][0][3] / 255.0, rtol=1e-6)
    assert data.class_names[9] == "ankle boot" and data.class_map[6] == 0  # shirt -> t-shirt/top


def test_idx_files_directly_in_root_as_debian_installs_them(tmp_path):
    arrays = write_mnist(tmp_path, n_train=12, n_test=4, folder="FashionMNIST", gz=True)
    flat = tmp_path / "fashion-mnist"
    (tmp_path / "FashionMNIST" / "raw").rename(flat)
    data = load_dataset("fashion_mnist", root=str(flat))
    assert len(data) == 16 and data.labels[12:].tolist() == arrays["t10k"][1].tolist()


def test_cifar10_reads_python_batches_in_order(tmp_path):
    labels = write_cifar10(tmp_path, per_batch=6, n_test=8)
    data = load_dataset("cifar10", root=str(tmp_path))
    assert data.views[0].shape == (38, 3, 32, 32) and 0 <= data.views[0].min() and data.views[0].max() <= 1
    np.testing.assert_array_equal(data.labels, np.concatenate(labels))
    assert data.test_mask.sum() == 8 and data.class_names[9] == "truck"


def test_cifar100_uses_fine_labels_and_meta_names(tmp_path):
    write_cifar100(tmp_path, n_train=12, n_test=5)
    data = load_dataset("cifar100", root=str(tmp_path))
    assert data.num_classes == 100 and len(data) == 17 and data.class_names[3] == "c3"
    assert data.labels[:12].tolist() == list(range(12))


def test_cifar_batch_that_would_run_code_is_refused(tmp_path):
    write_cifar10(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({"data": Evil()}))
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        load_dataset("cifar10", root=str(tmp_path))


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10", "cifar100"])
def test_missing_files_say_what_was_expected_where(tmp_path, name):
    with pytest.raises(DataError, match=f"{name}: missing {tmp_path}.*data.root"):
        load_dataset(name, root=str(tmp_path))


def test_truncated_idx_file_is_an_error(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="header says shape"):
        load_dataset("mnist", root=str(tmp_path))


def test_npz_layout_with_views_split_and_class_names(tmp_path):
    arrays = write_npz(tmp_path / "d.npz", test=True)
    data = load_dataset("npz", path=str(tmp_path / "d.npz"))
    assert data.view_names == ["a", "b"] and [v.shape for v in data.views] == [(40, 3), (40, 2, 4)]
    np.testing.assert_allclose(data.views[1], arrays["x_b"].astype(np.float32))
    assert data.class_names == ["w", "x", "y", "z"] and data.test_mask.sum() == 8


def test_npz_single_view_minimal(tmp_path):
    np.savez(tmp_path / "s.npz", x=np.ones((6, 2)), y=np.array([0, 1, 2, 0, 1, 2]))
    data = load_dataset("npz", path=str(tmp_path / "s.npz"))
    assert data.view_names == ["x"] and data.class_names == ["0", "1", "2"] and data.test_mask is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"x_b": np.zeros((39, 2))}, "view 'b' has 39 rows but there are 40 labels"),
        ({"x_a": None}, "missing array 'x_a'"),
        ({"y": np.arange(40) % 5}, r"labels must lie in \[0, 4\)"),
        ({"y": np.zeros(40)}, "y must be a 1-D integer array"),
        ({"test_mask": np.zeros(40, dtype=int)}, "test_mask must be a boolean"),
    ],
)
def test_malformed_npz_names_the_file_and_problem(tmp_path, extra, message):
    write_npz(tmp_path / "bad.npz", **extra)
    with pytest.raises(DataError, match=message) as info:
        load_dataset("npz", path=str(tmp_path / "bad.npz"))
    assert str(tmp_path / "bad.npz") in str(info.value)


def test_npz_missing_or_not_a_zip(tmp_path):
    with pytest.raises(DataError, match="data.path: no such file"):
        load_dataset("npz", path=str(tmp_path / "nope.npz"))
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_dataset("npz", path=str(tmp_path / "junk.npz"))


def test_mfeat_ships_six_views():
    data = load_dataset("mfeat")
    assert data.view_names == MFEAT_VIEWS and [v.shape[1] for v in data.views] == MFEAT_WIDTHS
    assert len(data) == 2000 and np.bincount(data.labels).tolist() == [200] * 10


def test_mnist1d_is_generated_locally_and_leaves_global_rngs_alone():
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.rand())
    random.seed(123)
    np.random.seed(123)
    data = make_mnist1d(num_samples=100)
    assert (random.random(), np.random.rand()) == expected
    assert data.views[0].shape == (100, 1, 40) and data.test_mask.sum() == 20
    np.testing.assert_array_equal(make_mnist1d(num_samples=100).views[0], data.views[0])  # deterministic


def test_digits_is_one_image_view():
    data = load_dataset("digits")
    assert data.views[0].shape == (1797, 1, 8, 8) and data.test_mask is None

"""`nlx datasets`, and runs on a disk dataset with noise read from a file, end to end."""

from __future__ import annotations

import numpy as np

from nlx.store.db import open_db
from nlx.store.repo import RunFilter, Store

from tests.data.fixture_files import write_mnist, write_npz


def test_datasets_lists_every_dataset_and_whether_its_files_are_there(cli, tmp_path):
    result = cli("datasets", "--root", tmp_path)
    assert result.exit_code == 0, result.output
    for name in ("digits", "mnist1d", "mfeat", "mnist", "fashion_mnist", "cifar10", "cifar100", "npz"):
        assert name in result.stdout
    assert result.stdout.count("missing 4/4") == 2 and "fou (76,)" in result.stdout  # mnist, fashion_mnist
    write_mnist(tmp_path)
    assert cli("datasets", "--root", tmp_path).stdout.count("missing 4/4") == 1
    write_mnist(tmp_path, folder="FashionMNIST", gz=True)
    assert "missing 4/4" not in cli("datasets", "--root", tmp_path).stdout


def test_datasets_describes_a_given_npz_file(cli, tmp_path):
    write_npz(tmp_path / "d.npz", test=True)
    result = cli("datasets", "--path", tmp_path / "d.npz")
    assert result.exit_code == 0 and "32 / 8" in result.stdout and "b (2, 4)" in result.stdout


def test_run_on_npz_with_noise_from_a_file_stores_its_realised_rate(cli, tmp_path, experiments_file, db_path):
    arrays = write_npz(tmp_path / "d.npz", n=60, test=True)
    noisy = arrays["y"][:52].copy()
    noisy[:13] = (noisy[:13] + 1) % 4
    np.save(tmp_path / "noisy.npy", noisy)
    result = cli("run", "tiny", "data.name=npz", f"data.path={tmp_path / 'd.npz'}", "noise.type=file", "noise.rate=0",
                 f"noise.path={tmp_path / 'noisy.npy'}", "train.epochs=1", "--config", experiments_file, "--db", db_path, "--quiet")
    assert result.exit_code == 0, result.output
    with Store(open_db(str(db_path))) as store:
        [run] = store.runs(RunFilter())
        assert run.noise == "file:noisy" and run.dataset == "npz:d"
        assert 0.1 < run.realised_noise_rate < 0.45

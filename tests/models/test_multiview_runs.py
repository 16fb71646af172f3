"""Every registered method trains the multiview network with every fusion, end to end through
the engine, on a small two-view dataset registered for this module only; and a network that
cannot take a dataset is refused before anything is written."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nlx.data import registry
from nlx.data.builtin import digits
from nlx.data.registry import Dataset
from nlx.runs import execute_runs
from nlx.store.db import open_db
from nlx.store.repo import Store

DATASET = "_digits_signal_and_features"
FUSIONS = ["concat", "sum", "lowrank"]


def signal_and_features() -> Dataset:
    """300 digits as two views: the top half of the image as a 1x32 signal, the bottom half as
    32 features."""
    base = digits()
    keep = np.arange(0, len(base), 6)
    flat = base.views[0][keep].reshape(len(keep), 64)
    return Dataset(DATASET, [flat[:, None, :32].copy(), flat[:, 32:].copy()], ["top", "bottom"], base.labels[keep], base.class_names)


@pytest.fixture(scope="module")
def two_view_dataset():
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(registry._ENTRIES, DATASET, registry.DatasetEntry(DATASET, lambda source: signal_and_features()))
        yield DATASET


@pytest.fixture(scope="module")
def store(two_view_dataset, tmp_path_factory):
    with Store(open_db(str(tmp_path_factory.mktemp("multiview") / "runs.db"), create=True)) as store:
        yield store


# `any_method` is every registered method but test doubles (see conftest.py).
@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_method_trains_multiview_with_every_fusion(store, run_spec_for, any_method, fusion):
    model = {"arch": "multiview", "encoder": ["cnn1d", "mlp"], "hidden": [16], "fusion": fusion, "embed": 8, "rank": 2}
    spec = run_spec_for(any_method, {"name": DATASET}, model)
    outcomes = execute_runs([spec], store)
    assert [o.status for o in outcomes] == ["finished"] * len(outcomes), [o.error for o in outcomes]
    run = store.get_run(outcomes[-1].run_id)
    assert (run.method, run.model) == (any_method, spec.model.label)
    assert math.isfinite(run.last_test_acc)


def test_a_network_that_cannot_take_the_dataset_is_refused_before_any_write(two_view_dataset, cli, experiments_file, db_path):
    for overrides, message in [
        (["model.arch=lenet"], "model.arch: lenet takes one view, got 2"),
        (["model.arch=multiview", "model.encoder=lenet"], "model.encoder: view 0: lenet needs image views"),
        (["data.views=[top]", "model.arch=preact_resnet18"], "model.arch: preact_resnet18 needs image views (C, H, W), got (1, 32)"),
    ]:
        result = cli("run", "tiny", f"data.name={DATASET}", *overrides, "--config", experiments_file, "--db", db_path, "--quiet")
        assert result.exit_code == 2, result.output
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert not db_path.exists()

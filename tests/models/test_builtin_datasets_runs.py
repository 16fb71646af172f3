"""Every registered method trains on the built-in datasets end to end through the engine: MNIST-1D
as one signal view with the 1-D CNN, and mfeat's six feature views fused by the multiview network.
Both are small versions of the real data (registered for this module only) so that the whole grid
stays fast: MNIST-1D's own generator making 500 signals (400 train / 100 test), and every 6th of
mfeat's 2,000 samples from the shipped arrays; shapes, views and test splits stay the real ones."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nlx.data import registry
from nlx.data.builtin import make_mnist1d
from nlx.data.registry import Dataset, load_dataset
from nlx.runs import execute_runs
from nlx.store.db import open_db
from nlx.store.repo import Store

SETTINGS = {  # dataset -> (data fields, model section)
    "mnist1d": ({"augment": "gaussian"}, {"arch": "cnn1d"}),
    "mfeat": ({"augment": "dropout"}, {"arch": "multiview", "encoder": "mlp", "hidden": [16], "fusion": "concat"}),
}


def small(name: str) -> Dataset:
    if name == "mnist1d":
        return make_mnist1d(num_samples=500)  # the built-in loader's generator, 10x fewer signals
    base = load_dataset(name)
    keep = np.arange(0, len(base), 6)  # classes are interleaved: all ten stay present
    return Dataset(f"_{name}_small", [view[keep] for view in base.views], list(base.view_names), base.labels[keep], list(base.class_names), class_map=base.class_map)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        for name in SETTINGS:
            patch.setitem(registry._ENTRIES, f"_{name}_small", registry.DatasetEntry(f"_{name}_small", lambda source, name=name: small(name)))
        with Store(open_db(str(tmp_path_factory.mktemp("builtin") / "runs.db"), create=True)) as store:
            yield store


def test_the_subsets_keep_the_real_shapes_and_classes(store):
    signals = registry.load_dataset("_mnist1d_small")
    assert [v.shape[1:] for v in signals.views] == [(1, 40)] and signals.test_mask.sum() == 100
    features = registry.load_dataset("_mfeat_small")
    assert [v.shape[1] for v in features.views] == [76, 216, 64, 240, 47, 6]
    for data in (signals, features):
        assert set(np.unique(data.labels)) == set(range(10))


# `any_method` is every registered method but test doubles (see conftest.py).
@pytest.mark.parametrize("dataset", list(SETTINGS))
def test_every_method_trains_on_the_builtin_datasets(store, run_spec_for, any_method, dataset):
    data, model = SETTINGS[dataset]
    spec = run_spec_for(any_method, {"name": f"_{dataset}_small", **data}, model)
    outcomes = execute_runs([spec], store)
    assert [o.status for o in outcomes] == ["finished"] * len(outcomes), [o.error for o in outcomes]
    run = store.get_run(outcomes[-1].run_id)
    assert (run.method, run.model) == (any_method, spec.model.label)
    for value in (run.last_test_acc, run.best_val_test_acc, run.realised_noise_rate):
        assert value is not None and math.isfinite(value)
    last = {key: value for _, key, _, value in store.metrics([run.id], ["train/loss", "val/loss", "test/loss"])}  # by epoch: the last wins
    assert len(last) == 3 and all(v is not None and math.isfinite(v) for v in last.values()), last

"""nlx.reports.export: the store's tables as CSV that pandas reads as it is."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from nlx.reports.export import METRIC_COLUMNS, RUN_COLUMNS, export_csv, flatten

T_HAT = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.25, 0.25, 0.5]])


def export(store, table: str, runs=None) -> tuple[int, pd.DataFrame]:
    out = io.StringIO()
    count = export_csv(store, store.runs() if runs is None else runs, table, out)
    return count, pd.read_csv(io.StringIO(out.getvalue()))


@pytest.fixture
def runs(store, add_run):
    add_run(seed=0, epochs=[{"val/acc": 0.5, "train/loss": 2.0}, {"val/acc": 0.6, "train/loss": float("nan")}],
            summary={"best_val_epoch": 1, "best_val_acc": 0.6, "best_val_test_acc": 0.55, "last_test_acc": 0.55},
            matrices=[{"T": T_HAT, "kind": "estimated", "stage": "warmup", "estimator": "anchor", "error": 0.125}])
    add_run(seed=1, noise={"type": "classmap", "rate": 0.3, "class_map": {0: 2}}, epochs=[{"val/acc": 0.4}],
            status="failed", error="RuntimeError: out of memory\nTraceback (most recent call last):\n  ...")
    return store.runs()


def test_runs(store, runs):
    count, frame = export(store, "runs")
    assert count == len(frame) == 2
    assert list(frame.columns[: len(RUN_COLUMNS)]) == list(RUN_COLUMNS)
    spec_columns = list(frame.columns[len(RUN_COLUMNS):])
    assert spec_columns == sorted(spec_columns) and all(c.startswith("spec.") for c in spec_columns)
    first, failed = frame.iloc[0], frame.iloc[1]
    assert (first.id, first.status, first.noise, first.seed) == (runs[0].id, "finished", "sym0.4", 0)
    assert first.best_val_test_acc == pytest.approx(0.55) and first.epochs_done == 2
    assert first.realised_noise_rate == pytest.approx(0.4)
    assert pd.Timestamp(first.created_at) == pd.Timestamp(runs[0].created_at)
    assert failed.error == "RuntimeError: out of memory" and pd.isna(first.error)
    # The spec, flattened: nested keys dotted, lists as JSON, keys one run lacks left empty.
    assert first["spec.noise.rate"] == pytest.approx(0.4) and first["spec.data.name"] == "digits"
    assert json.loads(first["spec.model.hidden"]) == [256, 256]
    assert failed["spec.noise.class_map.0"] == 2 and pd.isna(first["spec.noise.class_map.0"])
    assert first["spec.method.params.label_smoothing"] == 0.0


def test_metrics(store, runs):
    count, frame = export(store, "metrics")
    assert list(frame.columns) == list(METRIC_COLUMNS)
    assert count == len(frame) == 5  # 2 keys x 2 epochs + 1
    loss = frame[(frame.run_id == runs[0].id) & (frame.key == "train/loss")].sort_values("epoch")
    assert loss.value.iloc[0] == 2.0 and pd.isna(loss.value.iloc[1])  # NaN was stored as None
    other = frame[frame.run_id == runs[1].id].iloc[0]
    assert (other.noise, other.seed, other.key, other.value) == ("classmap0.3", 1, "val/acc", 0.4)


def test_matrices(store, runs, num_classes):
    count, frame = export(store, "matrices")
    assert list(frame.columns) == ["run_id", "kind", "stage", "epoch", "estimator", "error", "row", "col", "value"]
    # Each run has its true T from start_run; the first also an estimated one.
    matrices = frame.groupby(["run_id", "kind"])
    assert count == len(frame) == 3 * num_classes**2
    assert all(len(group) == num_classes**2 for _, group in matrices)
    estimated = frame[frame.kind == "estimated"]
    assert set(estimated.stage) == {"warmup"} and set(estimated.estimator) == {"anchor"}
    assert set(estimated.error) == {0.125} and set(estimated.epoch) == {0}
    values = np.zeros_like(T_HAT)
    values[estimated.row, estimated.col] = estimated.value
    np.testing.assert_array_equal(values, T_HAT)
    true = frame[(frame.kind == "true") & (frame.run_id == runs[1].id)]
    assert pd.isna(true.epoch).all() and np.allclose(true.value, 1 / num_classes)


def test_only_the_given_runs(store, runs):
    count, frame = export(store, "metrics", runs=[runs[1], runs[1]])
    assert count == 1 and set(frame.run_id) == {runs[1].id}


def test_no_runs_writes_a_header(store):
    for table, columns in (("runs", RUN_COLUMNS), ("metrics", METRIC_COLUMNS)):
        count, frame = export(store, table, runs=[])
        assert count == 0 and list(frame.columns) == list(columns) and frame.empty


def test_bad_table(store, runs):
    with pytest.raises(ValueError, match="runs, metrics, matrices"):
        export_csv(store, runs, "checkpoints", io.StringIO())


def test_flatten():
    assert flatten({"a": {"b": 1, "c": {"d": None}}, "e": [1, 2], "f": "x"}) == {
        "a.b": 1, "a.c.d": None, "e": "[1, 2]", "f": "x",
    }

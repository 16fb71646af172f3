"""CSV export of the store's tables, for pandas, R or a spreadsheet.

Every table is written with the csv module in a shape `pandas.read_csv` takes as it is:
one header line, None as an empty field, floats at full precision.
"""

from __future__ import annotations

import csv
import json
import operator
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

from nlx.store.models import Run
from nlx.store.repo import Store

TABLES = ("runs", "metrics", "matrices")
RUN_COLUMNS = (
    "id", "experiment", "status", "dataset", "model", "method", "noise", "noise_type", "noise_rate",
    "seed", "realised_noise_rate", "epochs_done", "best_val_epoch", "best_val_acc",
    "best_val_test_acc", "last_test_acc", "created_at", "duration_s", "error",
)
METRIC_COLUMNS = ("run_id", "experiment", "dataset", "model", "method", "noise", "seed", "epoch", "key", "value")
MATRIX_COLUMNS = ("run_id", "kind", "stage", "epoch", "estimator", "error", "row", "col", "value")
_CHUNK = 500  # run ids per query: keeps memory flat and stays under SQLite's parameter limit


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}, "c": [1, 2]} -> {"a.b": 1, "c": "[1, 2]"}: nested dicts become dotted
    keys and lists JSON text, so that every value fits in one CSV field."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list):
            flat[name] = json.dumps(value)
        else:
            flat[name] = value
    return flat


def _chunks(runs: Sequence[Run]) -> Iterator[list[int]]:
    ids = [run.id for run in runs]
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


_RUN_FIELDS = operator.attrgetter(*RUN_COLUMNS)
_CREATED_AT, _ERROR = RUN_COLUMNS.index("created_at"), RUN_COLUMNS.index("error")


def _run_row(run: Run) -> list[Any]:
    """RUN_COLUMNS of a run, in that order."""
    row = list(_RUN_FIELDS(run))
    row[_CREATED_AT] = run.created_at.isoformat() if run.created_at else None
    # A traceback spans many lines; its first one says what went wrong.
    row[_ERROR] = run.error.strip().splitlines()[0] if run.error and run.error.strip() else None
    return row


def _write_runs(store: Store, runs: Sequence[Run], writer: Any) -> int:
    # Runs sharing a config hash have equal specs but for seed and experiment, so each spec's JSON
    # is parsed, flattened and laid out in columns once per hash (at 10,000 runs, doing it per
    # run took most of an export), then the run's own seed and experiment are put in.
    flat_specs: dict[str, dict[str, Any]] = {}
    for run in runs:
        if run.config_hash not in flat_specs:
            flat_specs[run.config_hash] = flatten(json.loads(run.spec_json), "spec.")
    spec_columns = sorted(set().union(*flat_specs.values()))
    # A spec without some key (an older spec version) leaves that field empty.
    spec_cells = {config: [flat.get(column) for column in spec_columns] for config, flat in flat_specs.items()}
    own_fields = [(spec_columns.index(column), name) for column, name in
                  (("spec.seed", "seed"), ("spec.experiment", "experiment")) if column in spec_columns]

    def row(run: Run) -> list[Any]:
        cells = spec_cells[run.config_hash].copy()
        for index, name in own_fields:
            cells[index] = getattr(run, name)
        return _run_row(run) + cells

    writer.writerow([*RUN_COLUMNS, *spec_columns])
    # One writerows call over generated rows: at 10,000 runs the per-row Python is the cost.
    writer.writerows(map(row, runs))
    return len(runs)


def _write_metrics(store: Store, runs: Sequence[Run], writer: Any) -> int:
    writer.writerow(METRIC_COLUMNS)
    by_id = {run.id: run for run in runs}
    count = 0
    for ids in _chunks(runs):
        for run_id, key, epoch, value in store.metrics(ids):
            run = by_id[run_id]
            writer.writerow([run_id, run.experiment, run.dataset, run.model, run.method, run.noise,
                             run.seed, epoch, key, value])
            count += 1
    return count


def _write_matrices(store: Store, runs: Sequence[Run], writer: Any) -> int:
    writer.writerow(MATRIX_COLUMNS)
    count = 0
    for ids in _chunks(runs):
        for matrix in store.matrices(ids):
            head = [matrix.run_id, matrix.kind, matrix.stage, matrix.epoch, matrix.estimator, matrix.error]
            for i, values in enumerate(json.loads(matrix.values_json)):
                for j, value in enumerate(values):
                    writer.writerow([*head, i, j, value])
                    count += 1
    return count


_WRITERS: dict[str, Callable[[Store, Sequence[Run], Any], int]] = {
    "runs": _write_runs, "metrics": _write_metrics, "matrices": _write_matrices,
}


def export_csv(store: Store, runs: Sequence[Run], table: str, out: TextIO) -> int:
    """Write `table` ("runs", "metrics" or "matrices") of `runs` to `out` as CSV with a header;
    returns the number of data rows written.

    runs: one row per run, its summary then its spec flattened into `spec.<dotted.key>` columns.
    metrics: long format, one row per (run, epoch, key); empty value = not finite.
    matrices: long format, one row per entry T[row, col] of every true or estimated matrix.
    """
    if table not in _WRITERS:
        raise ValueError(f"unknown table {table!r}; expected one of {', '.join(TABLES)}")
    runs = list({run.id: run for run in runs}.values())  # a run listed twice is written once
    # "\n", not csv's default "\r\n": `out` is usually stdout or a file opened in text mode.
    return _WRITERS[table](store, runs, csv.writer(out, lineterminator="\n"))

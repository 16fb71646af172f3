"""CSV export of the store's tables, for pandas, R or a spreadsheet.

Every table is written with the csv module in a shape `pandas.read_csv` takes as it is:
one header line, None as an empty field, floats at full precision.
"""

from __future__ import annotations

import csv
import json
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


def _run_row(run: Run) -> dict[str, Any]:
    """RUN_COLUMNS of a run, in that order."""
    row = {column: getattr(run, column) for column in RUN_COLUMNS}
    row["created_at"] = run.created_at.isoformat() if run.created_at else None
    # A traceback spans many lines; its first one says what went wrong.
    row["error"] = run.error.strip().splitlines()[0] if run.error and run.error.strip() else None
    return row


def _flat_specs(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Each run's spec flattened into `spec.<dotted.key>` fields. Runs with one config hash have
    equal specs but for seed and experiment: the spec is parsed once per hash (at 10,000 runs,
    parsing and flattening every spec's JSON took most of an export)."""
    by_config: dict[str, dict[str, Any]] = {}
    specs = []
    for run in runs:
        flat = by_config.get(run.config_hash)
        if flat is None:
            flat = by_config[run.config_hash] = flatten(json.loads(run.spec_json), "spec.")
            specs.append(flat)
            continue
        own = dict(flat)
        own["spec.seed"], own["spec.experiment"] = run.seed, run.experiment
        specs.append(own)
    return specs


def _write_runs(store: Store, runs: Sequence[Run], writer: Any) -> int:
    specs = _flat_specs(runs)
    spec_columns = sorted(set().union(*specs)) if specs else []
    writer.writerow([*RUN_COLUMNS, *spec_columns])
    # One writerows call over generated rows: at 10,000 runs the per-row Python is the cost.
    writer.writerows(
        # A run without some spec key (an older spec version) leaves that field empty.
        [*_run_row(run).values(), *map(spec.get, spec_columns)]
        for run, spec in zip(runs, specs)
    )
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

"""What the experiment benches share: mean ± std cells and the finished runs of a spec list with
their per-epoch metrics."""

from __future__ import annotations

import statistics

from nlx.specs import RunSpec
from nlx.store.db import open_db
from nlx.store.repo import RunFilter, Store


def fmt(values: list[float], scale: float = 100.0) -> str:
    """`mean ± std` of `values` times `scale` ('-' when there are none)."""
    if not values:
        return "-"
    mean = statistics.fmean(values) * scale
    std = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{mean:5.1f} ± {std:4.1f}"


def finished_runs_with_metrics(db: str, specs: list[RunSpec], keys: list[str]) -> list[tuple]:
    """(run, {key: per-epoch values}) for every finished run in `db` of one of `specs`."""
    wanted = {spec.spec_hash() for spec in specs}
    with Store(open_db(db)) as store:
        runs = [r for r in store.runs(RunFilter(status="finished")) if r.spec_hash in wanted]
        rows = store.metrics([r.id for r in runs], keys)
    per_run: dict[int, dict[str, list[float]]] = {}
    for run_id, key, _, value in rows:
        if value is not None:
            per_run.setdefault(run_id, {}).setdefault(key, []).append(value)
    return [(run, per_run.get(run.id, {})) for run in runs]

"""What the experiment benches share: the network and optimiser each dataset is benched with,
mean ± std cells and the finished runs of a spec list with their per-epoch metrics."""

from __future__ import annotations

import argparse
import json
import statistics
from typing import NamedTuple

from nlx.reports.common import method_sort_key, noise_sort_key
from nlx.specs import RunSpec
from nlx.store.db import open_db
from nlx.store.repo import RunFilter, Store

MLP = {"arch": "mlp", "hidden": [256, 256]}
MULTIVIEW = {"arch": "multiview", "encoder": "mlp", "hidden": [128], "fusion": "concat", "rank": 4, "embed": 64}
# dataset -> (model section, train fields): the network and optimiser each dataset is benched with.
DEFAULTS: dict[str, tuple[dict, dict]] = {
    "digits": (MLP, {"optimizer": "sgd", "lr": 0.05, "batch_size": 64}),  # the quickstart
    "mnist1d": ({"arch": "cnn1d"}, {"optimizer": "adam", "lr": 0.01, "weight_decay": 0.0, "batch_size": 128}),  # mnist1d_quick
    "mfeat": (MULTIVIEW, {"optimizer": "adam", "lr": 0.001, "weight_decay": 0.0, "batch_size": 128}),  # mfeat_fusion (concat)
    # Read from disk (--root): the official T-Revision code's MNIST optimiser, on the quickstart MLP.
    "fashion_mnist": (MLP, {"optimizer": "sgd", "lr": 0.01, "weight_decay": 1e-4, "batch_size": 128}),
}


def dataset_overrides(dataset: str, base: str = "digits") -> list[str]:
    """KEY=VALUE overrides that move an experiment written for `base` onto `dataset` with its
    DEFAULTS row (model section and optimiser); only data.name for `base` or an unknown dataset,
    so the experiment's own runs keep their specs. Later overrides win."""
    overrides = [f"data.name={dataset}"]
    if dataset != base and dataset in DEFAULTS:
        model, train = DEFAULTS[dataset]
        overrides.append(f"model={json.dumps(model)}")
        overrides += [f"train.{key}={json.dumps(value)}" for key, value in train.items()]
    return overrides


def fmt(values: list[float], scale: float = 100.0) -> str:
    """`mean ± std` of `values` times `scale` ('-' when there are none)."""
    if not values:
        return "-"
    mean = statistics.fmean(values) * scale
    std = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{mean:5.1f} ± {std:4.1f}"


def missing_specs(db: str, specs: list[RunSpec]) -> list[RunSpec]:
    """The specs without a finished run in `db` (created if absent), so a bench resumes; prints
    how many are reused."""
    with Store(open_db(db, create=True)) as store:
        done = {run.spec_hash for run in store.runs(RunFilter(status="finished"))}
    todo = [spec for spec in specs if spec.spec_hash() not in done]
    print(f"{len(specs) - len(todo)} run(s) reused, {len(todo)} to run", flush=True)
    return todo


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


class RunFigures(NamedTuple):
    """One finished run's figures in a bench table (accuracies and shares as fractions)."""

    run_id: int
    best: float  # test accuracy at the best-validation epoch
    last: float  # test accuracy at the last epoch
    clean: float  # 1 - realised noise rate
    key_mean: float | None  # the table's own metric averaged over epochs; None when not logged
    seconds: float  # mean epoch time


def figures_by_cell(db: str, specs: list[RunSpec], key: str) -> dict[tuple[str, str, str], list[RunFigures]]:
    """The finished runs of `specs` by (dataset, noise, method), in table order (noise in paper
    order, CE first), with the epoch mean of `key`."""
    cells: dict[tuple[str, str, str], list[RunFigures]] = {}
    for run, metrics in finished_runs_with_metrics(db, specs, [key, "time/epoch_s"]):
        cells.setdefault((run.dataset, run.noise, run.method), []).append(RunFigures(
            run.id, run.best_val_test_acc, run.last_test_acc, 1 - run.realised_noise_rate,
            statistics.fmean(metrics[key]) if key in metrics else None, statistics.fmean(metrics["time/epoch_s"]),
        ))
    order = sorted(cells, key=lambda k: (k[0], noise_sort_key(k[1]), method_sort_key(k[2])))
    return {cell: cells[cell] for cell in order}


def gain_and_cost(cells: dict[tuple[str, str, str], list[RunFigures]], cell: tuple[str, str, str]) -> tuple[float, float]:
    """A cell's last-epoch accuracy minus CE's (points) and its epoch time over CE's, for the same
    dataset and noise; NaN when there are no CE runs."""
    dataset, noise, _ = cell
    ce, values = cells.get((dataset, noise, "ce"), []), cells[cell]
    if not ce:
        return float("nan"), float("nan")
    d_last = 100 * (statistics.fmean(v.last for v in values) - statistics.fmean(v.last for v in ce))
    return d_last, statistics.fmean(v.seconds for v in values) / statistics.fmean(v.seconds for v in ce)


def experiment_bench_parser(doc: str, experiment: str) -> argparse.ArgumentParser:
    """The command line shared by the benches that run one experiment of experiments.yaml
    (selection, meta): KEY=VALUE overrides, --dataset, --db, --seeds, --jobs, --table-only."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help=f"KEY=VALUE overrides of the {experiment} experiment")
    parser.add_argument("--dataset", default="digits", help="data.name of every run; mnist1d and mfeat also take their network and optimiser from DEFAULTS")
    parser.add_argument("--db", default=f"{experiment}.db")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one thread each when > 1)")
    parser.add_argument("--table-only", action="store_true", help="print the table of what --db holds")
    return parser

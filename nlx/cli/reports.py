"""`nlx compare`, `nlx plot-curves`, `nlx export-csv`: thin wrappers over nlx.reports."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from nlx.cli.common import DbOption, console, handle_errors
from nlx.data.noise_labels import parse_noise_label
from nlx.errors import SpecError
from nlx.reports.export import export_csv
from nlx.reports.tables import compare_table, render, rich_table
from nlx.store.db import open_db
from nlx.store.repo import RunFilter, Store

DEFAULT_CURVES = ["test/acc", "train_flipped/acc_noisy", "train/loss"]
# What the table and the curves group and filter by: read from the run rows, nothing else.
COMPARE_COLUMNS = ("id", "experiment", "status", "dataset", "model", "method", "noise")  # experiment: trials and tuned rows

Experiment = Annotated[Optional[str], typer.Option("--experiment", help="only this experiment")]
Dataset = Annotated[Optional[str], typer.Option("--dataset", help="only this dataset")]
Method = Annotated[Optional[str], typer.Option("--method", help="only this method")]
Noise = Annotated[Optional[str], typer.Option("--noise", help="noise settings, comma-separated, e.g. sym0.4,asym0.4")]


class Metric(str, Enum):
    best_val_test_acc = "best_val_test_acc"
    last_test_acc = "last_test_acc"


class Format(str, Enum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    latex = "latex"


class ExportTable(str, Enum):
    runs = "runs"
    metrics = "metrics"
    matrices = "matrices"


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
    app.command("plot-curves")(plot)
    app.command("export-csv")(export)


def run_filter(experiment=None, dataset=None, method=None, noise=None, run_ids=None, status=None) -> RunFilter:
    labels = None
    if noise:
        labels = [item.strip() for item in noise.split(",") if item.strip()]
        for label in labels:
            try:
                parse_noise_label(label)
            except ValueError as error:
                raise SpecError(f"--noise: {error}") from None
    return RunFilter(run_ids=run_ids, experiment=experiment, dataset=dataset, method=method, noise=labels, status=status)


@handle_errors
def compare(
    noise: Noise = None,
    dataset: Dataset = None,
    method: Method = None,
    experiment: Experiment = None,
    metric: Annotated[Metric, typer.Option(help="test accuracy at the best-validation epoch, or at the last epoch")] = Metric.best_val_test_acc,
    fmt: Annotated[Format, typer.Option("--format", help="output format")] = Format.table,
    db: DbOption = None,
) -> None:
    """The paper table: rows dataset/model/method, columns noise, cells mean ± std (n) over seeds, in %."""
    with Store(open_db(db)) as store:
        runs = store.run_rows(run_filter(experiment, dataset, method, noise, status="finished"), COMPARE_COLUMNS + (metric.value,))
        table = compare_table(runs, metric.value)
        if not table.rows:
            console.print("no finished runs match", style="yellow")
            raise typer.Exit(0)
        if fmt is Format.table:
            console.print(rich_table(table))
        else:
            sys.stdout.write(render(table, fmt.value))


@handle_errors
def plot(
    run_ids: Annotated[Optional[list[int]], typer.Argument(help="run ids; default: all finished runs matching the filters", show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="output file: .png, .svg or .pdf")] = Path("curves.png"),
    metric: Annotated[Optional[list[str]], typer.Option("--metric", "-m", help=f"metric key, repeatable [default: {', '.join(DEFAULT_CURVES)}]", show_default=False)] = None,
    noise: Noise = None,
    dataset: Dataset = None,
    method: Method = None,
    experiment: Experiment = None,
    db: DbOption = None,
) -> None:
    """Learning curves grouped by method and noise: mean over seeds with a ± std band."""
    from nlx.reports.curves import plot_curves  # matplotlib (about a second): only when drawing

    with Store(open_db(db)) as store:
        status = None if run_ids else "finished"
        runs = store.run_rows(run_filter(experiment, dataset, method, noise, run_ids, status), COMPARE_COLUMNS)
        if not runs:
            raise SpecError("no runs match")
        try:
            groups = plot_curves(store, runs, list(metric or DEFAULT_CURVES), out)
        except ValueError as error:
            raise SpecError(str(error)) from None
        console.print(f"wrote {out} ({len(groups)} group(s) from {len(runs)} run(s))")


@handle_errors
def export(
    table: Annotated[ExportTable, typer.Option("--table", help="runs (flattened spec + summary), metrics (long format) or matrices")] = ExportTable.runs,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="output file [default: stdout]", show_default=False)] = None,
    noise: Noise = None,
    dataset: Dataset = None,
    method: Method = None,
    experiment: Experiment = None,
    db: DbOption = None,
) -> None:
    """Export runs, per-epoch metrics or transition matrices as CSV that pandas.read_csv reads as-is."""
    with Store(open_db(db)) as store:
        runs = store.run_rows(run_filter(experiment, dataset, method, noise))
        if out is None:
            export_csv(store, runs, table.value, sys.stdout)
            return
        with out.open("w", newline="") as handle:
            rows = export_csv(store, runs, table.value, handle)
        console.print(f"wrote {rows} row(s) to {out}")

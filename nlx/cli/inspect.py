"""`nlx ls` and `nlx show`: what is in the store."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
import yaml
from rich.columns import Columns
from rich.table import Table

from nlx.cli.common import DbOption, console, handle_errors, print_rows
from nlx.store.db import open_db
from nlx.store.models import ESTIMATED_T, TRUE_T
from nlx.errors import SpecError
from nlx.store.repo import STATUSES, RunFilter, Store, display_status


def register(app: typer.Typer) -> None:
    app.command("ls")(list_runs)
    app.command("show")(show)


LS_COLUMNS = (
    "id", "experiment", "status", "heartbeat_at", "dataset", "model", "method", "noise", "realised_noise_rate",
    "seed", "epochs_done", "best_val_test_acc", "last_test_acc", "created_at",
)


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


@handle_errors
def list_runs(
    experiment: Annotated[Optional[str], typer.Option(help="only this experiment")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="only this dataset")] = None,
    method: Annotated[Optional[str], typer.Option(help="only this method")] = None,
    noise: Annotated[Optional[str], typer.Option(help="only these noise settings, e.g. sym0.4,asym0.4")] = None,
    status: Annotated[Optional[str], typer.Option(help=f"only runs with this status: {' | '.join(STATUSES)}")] = None,
    db: DbOption = None,
) -> None:
    """List runs with their status and summary accuracies (%)."""
    if status is not None and status not in STATUSES:
        raise SpecError(f"--status {status!r}: expected one of {', '.join(STATUSES)}")
    with Store(open_db(db)) as store:
        where = RunFilter(
            experiment=experiment, dataset=dataset, method=method,
            status="running" if status == "stale" else status,  # stale is a running run gone silent
            noise=noise.split(",") if noise else None,
        )
        header = ("id", "experiment", "status", "dataset", "model", "method", "noise", "real", "seed", "epochs", "best-val test", "last test", "created")
        rows = [
            (
                str(run.id), run.experiment, display_status(run), run.dataset, run.model, run.method, run.noise,
                "" if run.realised_noise_rate is None else f"{run.realised_noise_rate:.3f}",
                str(run.seed), str(run.epochs_done), _percent(run.best_val_test_acc), _percent(run.last_test_acc),
                run.created_at.strftime("%Y-%m-%d %H:%M"),
            )
            for run in store.run_rows(where, LS_COLUMNS)
            if status not in ("running", "stale") or display_status(run) == status
        ]
        print_rows(header, rows, right=[True] + [False] * 6 + [True] * 5 + [False])


def _matrix_table(title: str, values: list[list[float]]) -> Table:
    size = len(values)
    table = Table(title=title, show_header=True, header_style="dim")
    table.add_column("true\\noisy", style="dim")
    for j in range(size):
        table.add_column(str(j), justify="right")
    for i, row in enumerate(values):
        table.add_row(str(i), *(f"[bold]{v:.2f}[/]" if i == j else (f"{v:.2f}" if v else "·") for j, v in enumerate(row)))
    return table


def _matrix_title(matrix) -> str:
    if matrix.kind == TRUE_T:
        return "true T"
    return f"estimated T ({matrix.estimator}, epoch {matrix.epoch}, error {matrix.error:.3f})"


@handle_errors
def show(
    run_id: Annotated[int, typer.Argument(help="run id (see `nlx ls`)")],
    db: DbOption = None,
) -> None:
    """A run's spec, realised noise, transition matrices, summary and checkpoints."""
    with Store(open_db(db)) as store:
        run = store.get_run(run_id)
        console.print(f"[bold]run {run.id}[/]  {run.experiment}  status [bold]{display_status(run)}[/]  seed {run.seed}  nlx {run.nlx_version}")
        if run.error:
            console.print(f"[red]error:[/] {run.error.splitlines()[0]}", highlight=False)
        console.print(yaml.safe_dump(json.loads(run.spec_json), sort_keys=False).rstrip(), highlight=False)
        realised = "n/a" if run.realised_noise_rate is None else f"{run.realised_noise_rate:.4f}"
        console.print(f"noise {run.noise}: realised rate {realised} over {run.num_train or 0} training samples")
        matrices = store.matrices([run.id])
        estimated = [m for m in matrices if m.kind == ESTIMATED_T]
        # The true T, and the latest estimate when the method makes one: side by side.
        shown = [m for m in matrices if m.kind == TRUE_T] + estimated[-1:]
        console.print(Columns([_matrix_table(_matrix_title(m), json.loads(m.values_json)) for m in shown]))
        if estimated:  # the error over epochs: early estimates are often the better ones
            trail = "  ".join(f"{m.epoch}:{m.error:.3f}" for m in estimated if m.error is not None)
            console.print(f"T error by epoch  {trail}", highlight=False)
        for link in store.links(run.id):
            if link.run_id == run.id:
                console.print(f"{link.relation}: run {link.source_run_id} ({link.checkpoint_tag} checkpoint)")
            else:
                console.print(f"run {link.run_id} started from this run ({link.relation}, {link.checkpoint_tag} checkpoint)")
        summary = Table("best val epoch", "best val acc", "test acc at best val", "last test acc", "epochs", "duration (s)")
        summary.add_row(
            str(run.best_val_epoch), _percent(run.best_val_acc), _percent(run.best_val_test_acc),
            _percent(run.last_test_acc), str(run.epochs_done), "" if run.duration_s is None else f"{run.duration_s:.1f}",
        )
        console.print(summary)
        checkpoints = Table("checkpoint", "epoch", "bytes", "sha256")
        for tag, epoch, size, sha in store.checkpoints(run.id):
            checkpoints.add_row(tag, str(epoch), f"{size:,}", sha[:16])
        console.print(checkpoints)

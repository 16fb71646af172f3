"""`nlx plot-t` and `nlx estimate-t`: looking at a run's transition matrices."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from nlx.cli.common import DbOption, console, handle_errors
from nlx.errors import SpecError
from nlx.store.db import open_db
from nlx.store.repo import Store

ESTIMATORS = ("anchor", "confident_joint")  # nlx.estimation.ESTIMATORS, without importing numpy


def register(app: typer.Typer) -> None:
    app.command("plot-t")(plot_t)
    app.command("estimate-t")(estimate_t)


@handle_errors
def plot_t(
    run_id: Annotated[int, typer.Argument(help="run id (see `nlx ls`)")],
    out: Annotated[Path, typer.Option("--out", help="image file: .png, .svg or .pdf")],
    epoch: Annotated[Optional[int], typer.Option(help="the estimate stored at this epoch (default: the last)")] = None,
    db: DbOption = None,
) -> None:
    """Draw a run's true T and its estimate as two heatmaps, with the estimation error."""
    from nlx.reports.tmatrix import plot_transition, run_matrices  # matplotlib: only when drawing

    try:
        with Store(open_db(db)) as store:
            run = store.get_run(run_id)
            true_T, estimate, caption = run_matrices(store, run_id, epoch)
        plot_transition(true_T, estimate, caption, out, title=f"run {run.id}: {run.method} on {run.dataset} {run.noise}")
    except ValueError as error:
        raise SpecError(str(error)) from None
    console.print(f"wrote {out} ({caption})", highlight=False)


def _int_list(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SpecError(f"--epochs {text!r}: expected comma-separated epoch numbers, e.g. 5,10,15") from None


@handle_errors
def estimate_t(
    run_id: Annotated[int, typer.Argument(help="run id (see `nlx ls`)")],
    epochs: Annotated[Optional[str], typer.Option(help="only these kept epochs, e.g. 5,10,15 (default: every kept one, else best and last)")] = None,
    estimator: Annotated[Optional[str], typer.Option(help=f"one of {', '.join(ESTIMATORS)} (default: all)")] = None,
    percentile: Annotated[float, typer.Option(help="anchor estimator: drop probabilities at or above this percentile")] = 97.0,
    db: DbOption = None,
) -> None:
    """Re-estimate T from a run's stored checkpoints and print the error of each against the
    true T (keep per-epoch checkpoints with train.keep_checkpoints=N)."""
    from nlx.reestimate import reestimate_run  # imports torch: only when re-estimating

    if estimator is not None and estimator not in ESTIMATORS:
        raise SpecError(f"--estimator {estimator!r}: expected one of {', '.join(ESTIMATORS)}")
    with Store(open_db(db)) as store:
        results = reestimate_run(store, run_id, _int_list(epochs), (estimator,) if estimator else ESTIMATORS, percentile)
    table = Table("checkpoint", "epoch", "estimator", "error", title=f"run {run_id}: T re-estimated from checkpoints")
    best = min(results, key=lambda r: r.error)
    for r in results:
        mark = " ← lowest" if r is best else ""
        table.add_row(r.tag, str(r.epoch), r.estimator, f"{r.error:.4f}{mark}")
    console.print(table)

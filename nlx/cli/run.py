"""`nlx run` and `nlx validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from nlx.cli.common import DbOption, console, handle_errors
from nlx.cli.progress import RunProgress, make_progress
from nlx.config import DEFAULT_CONFIG, expand, load_experiments
from nlx.runs import execute_runs, plan_runs
from nlx.store.db import open_db
from nlx.store.repo import Store

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="experiments file")]


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("validate")(validate)


@handle_errors
def run(
    name: Annotated[str, typer.Argument(help="experiment name in the experiments file")],
    overrides: Annotated[Optional[list[str]], typer.Argument(help="KEY=VALUE overrides of dotted fields, e.g. noise.rate=0.6", show_default=False)] = None,
    seeds: Annotated[Optional[int], typer.Option("--seeds", help="run seeds 0..N-1 instead of the experiment's seeds")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    db: DbOption = None,
    device: Annotated[Optional[str], typer.Option("--device", help="auto | cpu | cuda (overrides train.device)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
) -> None:
    """Run an experiment: every grid cell times every seed, one stored run each.

    Exit code 0 when all runs finished, 1 when any failed (the rest still run), 2 for a bad spec
    or argument (nothing is written).
    """
    overrides = list(overrides or [])
    if device is not None:
        overrides.append(f"train.device={device}")
    specs = plan_runs(name, config, overrides, seeds)  # validates everything before any write
    with Store(open_db(db, create=True)) as store:
        console.print(f"{name}: {len(specs)} run(s) -> {store.engine.url.render_as_string(hide_password=True)}")
        if quiet:
            outcomes = execute_runs(specs, store)
        else:
            with make_progress() as progress:
                outcomes = execute_runs(specs, store, lambda: RunProgress(progress))
        failed = [o for o in outcomes if o.status != "finished"]
        for outcome in failed:
            console.print(f"[red]run {outcome.run_id} failed:[/] {outcome.error}", highlight=False)
        console.print(f"{len(outcomes) - len(failed)} finished, {len(failed)} failed (runs {min(o.run_id for o in outcomes)}-{max(o.run_id for o in outcomes)})")
        if failed:
            raise typer.Exit(1)


@handle_errors
def validate(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Check every experiment of a file, including every grid cell, without running anything."""
    experiments = load_experiments(config)
    total = 0
    for name, experiment in experiments.items():
        runs = expand(name, experiment)
        total += len(runs)
        console.print(f"  {name}: {len(runs)} run(s)")
    console.print(f"ok: {config}: {len(experiments)} experiment(s), {total} run(s)")

"""`nlx sweep NAME`, `nlx sweep show S`, `nlx sweep best S` and `nlx plot-sweep S`: thin wrappers
over nlx.sweeps."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from typer.core import TyperGroup

from nlx.cli.common import DbOption, console, err_console, handle_errors
from nlx.cli.run import DEFAULT_CONFIG, ConfigOption, GpusOption, JobsOption, QuietOption, report_outcomes, with_progress
from nlx.store.db import open_db, resolve_url
from nlx.store.repo import Store

# nlx.sweeps imports optuna and torch, nlx.reports.sweep matplotlib (seconds): imported inside the
# commands, so that the other commands of this command line start fast.


class SweepGroup(TyperGroup):
    """`nlx sweep NAME ...` means `nlx sweep start NAME ...`; `show` and `best` are subcommands."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["start", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=SweepGroup,
    no_args_is_help=True,
    help="Optuna sweeps: `nlx sweep NAME --trials N` runs (or continues) a study (options: `nlx sweep start --help`); `show` and `best` read it.",
)


class Launcher(str, Enum):
    local = "local"
    submitit = "submitit"


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="sweep")
    root.command("plot-sweep")(plot)


@app.command("start")
@handle_errors
def start(
    name: Annotated[str, typer.Argument(help="experiment with a `sweep` section")],
    overrides: Annotated[Optional[list[str]], typer.Argument(help="KEY=VALUE overrides of the base spec", show_default=False)] = None,
    trials: Annotated[int, typer.Option("--trials", "-n", min=1, help="trials to add to the study (shared by the workers)")] = 10,
    study: Annotated[Optional[str], typer.Option("--study", help="study name [default: the experiment name]", show_default=False)] = None,
    jobs: JobsOption = 1,
    gpus: GpusOption = None,
    launcher: Annotated[Launcher, typer.Option(help="local processes, or SLURM jobs through submitit")] = Launcher.local,
    partition: Annotated[Optional[str], typer.Option(help="submitit: SLURM partition")] = None,
    time_min: Annotated[int, typer.Option("--time", help="submitit: minutes per job")] = 60,
    gpus_per_job: Annotated[int, typer.Option(help="submitit: GPUs per job")] = 0,
    jobs_folder: Annotated[Path, typer.Option(help="submitit: folder for job logs")] = Path("sweep-jobs"),
    config: ConfigOption = DEFAULT_CONFIG,
    db: DbOption = None,
) -> None:
    """Run or continue an Optuna study: every trial is an nlx run, pruned per epoch on val/acc.

    Re-running the same command adds trials; trials left running by a crashed worker are failed
    after the heartbeat grace period and retried. Start it on several machines with one
    `--db postgresql://...` and they share the study.
    """
    from nlx.dispatch import parse_gpus
    from nlx.sweeps import SlurmOptions, plan_sweep, run_sweep

    plan = plan_sweep(name, config, list(overrides or []), study)  # validates before any write
    url = resolve_url(db)
    slurm = SlurmOptions(jobs_folder, partition, time_min, gpus_per_job, cluster=None)
    console.print(f"study {plan.study}: {trials} trial(s), {jobs} worker(s) ({launcher.value})")
    dead = run_sweep(plan, url, trials, jobs, parse_gpus(gpus), launcher.value, slurm)
    print_summary(url, plan.study)
    if dead:
        err_console.print(f"{len(dead)} worker(s) died (exit codes {dead}); their trials are retried by the next `nlx sweep`")
        raise typer.Exit(1)


def print_summary(url: str, name: str) -> None:
    from nlx.sweeps import open_study, study_report

    report = study_report(open_study(url, name), importances=False)
    console.print(f"study {name}: {_states(report.states)}", highlight=False)
    if report.best is not None:
        console.print(f"best: trial {report.best.number} value {report.best.value:.4f} {report.best.params}", highlight=False)


@app.command("show")
@handle_errors
def show(
    study: Annotated[str, typer.Argument(help="study name")],
    top: Annotated[int, typer.Option(help="rows of the top-k table")] = 5,
    db: DbOption = None,
) -> None:
    """The best trial and its parameters, the top-k trials, and parameter importances."""
    from nlx.sweeps import RUN_ID_ATTR, open_study, study_report

    report = study_report(open_study(resolve_url(db), study), top)
    console.print(f"[bold]study {report.name}[/] ({report.direction}): {_states(report.states)}", highlight=False)
    if report.best is None:
        console.print("no completed trial yet", style="yellow")
        return
    best = report.best
    console.print(f"best: trial {best.number} (run {best.user_attrs.get(RUN_ID_ATTR)}) value {best.value:.4f}", highlight=False)
    for key, value in best.params.items():
        console.print(f"  {key} = {value}", highlight=False)
    keys = list(best.params)
    table = Table("trial", "run", "value", *keys, title=f"top {len(report.top)}")
    for trial in report.top:
        table.add_row(
            str(trial.number), str(trial.user_attrs.get(RUN_ID_ATTR, "")), f"{trial.value:.4f}",
            *(_format(trial.params.get(key)) for key in keys),
        )
    console.print(table)
    if report.importances:
        importances = Table("parameter", "importance", title="parameter importances (fANOVA)")
        for key, value in report.importances.items():
            importances.add_row(key, f"{value:.3f}")
        console.print(importances)


def _states(counts: dict[str, int]) -> str:
    """"9 complete, 3 pruned": trials by state."""
    return ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))


def _format(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@app.command("best")
@handle_errors
def best(
    study: Annotated[str, typer.Argument(help="study name")],
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="fresh seeds to run the best parameters with")] = 3,
    db: DbOption = None,
    quiet: QuietOption = False,
) -> None:
    """Re-run the best trial's spec over fresh seeds as experiment `tuned:STUDY`, so that
    `nlx compare` shows the tuned method as a row next to the others."""
    from nlx.sweeps import open_study, run_best

    url = resolve_url(db)
    loaded = open_study(url, study)
    with Store(open_db(url)) as store:
        outcomes = with_progress(quiet, lambda reporter: run_best(store, loaded, seeds, reporter))
    report_outcomes(outcomes, planned=seeds)


@handle_errors
def plot(
    study: Annotated[str, typer.Argument(help="study name")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output file: .png, .svg or .pdf")] = Path("sweep.png"),
    db: DbOption = None,
) -> None:
    """Optimisation history (every trial, best so far) and parameter importances."""
    from nlx.reports.sweep import plot_sweep
    from nlx.sweeps import open_study

    report_study = open_study(resolve_url(db), study)
    plot_sweep(report_study, out)
    console.print(f"wrote {out}")

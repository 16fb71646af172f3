"""`nlx run` and `nlx validate`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional, TypeVar

import typer
from rich.table import Table

from nlx.cli.common import DbOption, console, handle_errors
from nlx.cli.progress import RunProgress, make_progress
from nlx.store.db import open_db
from nlx.store.repo import Store

# nlx.runs and nlx.engine import torch (seconds): they are imported inside the commands that
# train, so that report commands sharing this command line start fast.

if TYPE_CHECKING:
    from nlx.runs import RunOutcome
    from nlx.specs import RunSpec

DEFAULT_CONFIG = Path("experiments.yaml")  # nlx.config.DEFAULT_CONFIG, without importing pydantic
T = TypeVar("T")
ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="experiments file")]


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("resume")(resume)
    app.command("rerun")(rerun)
    app.command("diff")(diff)
    app.command("validate")(validate)


QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]
JobsOption = Annotated[int, typer.Option("--jobs", "-j", min=1, help="worker processes on this machine, each with the same torch CPU thread count ($NLX_THREADS, default 1)")]
GpusOption = Annotated[Optional[str], typer.Option("--gpus", help="GPUs to pin workers to round-robin, e.g. 0,1 (sets CUDA_VISIBLE_DEVICES per worker)")]


@handle_errors
def run(
    name: Annotated[str, typer.Argument(help="experiment name in the experiments file")],
    overrides: Annotated[Optional[list[str]], typer.Argument(help="KEY=VALUE overrides of dotted fields, e.g. noise.rate=0.6", show_default=False)] = None,
    seeds: Annotated[Optional[int], typer.Option("--seeds", help="run seeds 0..N-1 instead of the experiment's seeds")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    db: DbOption = None,
    device: Annotated[Optional[str], typer.Option("--device", help="auto | cpu | cuda (overrides train.device)")] = None,
    quiet: QuietOption = False,
    jobs: JobsOption = 1,
    gpus: GpusOption = None,
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="torch CPU threads per process [default: $NLX_THREADS, else 1]; CPU metrics are identical for equal counts, whatever --jobs is")] = None,
) -> None:
    """Run an experiment: every grid cell times every seed, one stored run each.

    Exit code 0 when all runs finished, 1 when any failed (the rest still run), 2 for a bad spec
    or argument (nothing is written).
    """
    from nlx.dispatch import cpu_threads, execute_parallel, parse_gpus, use_cpu_threads
    from nlx.runs import plan_runs

    overrides = list(overrides or [])
    if device is not None:
        overrides.append(f"train.device={device}")
    gpu_list = parse_gpus(gpus)
    specs = plan_runs(name, config, overrides, seeds)  # validates everything before any write
    threads = cpu_threads(threads)  # checks $NLX_THREADS before anything is written
    use_cpu_threads(threads)
    with Store(open_db(db, create=True)) as store:
        url = store.engine.url.render_as_string(hide_password=False)
        console.print(f"{name}: {len(specs)} run(s) -> {store.engine.url.render_as_string(hide_password=True)}")
        if jobs == 1 and not gpu_list:
            execute_and_report(specs, store, quiet)
            return
        console.print(f"{jobs} worker process(es){' on GPUs ' + ','.join(gpu_list) if gpu_list else ''}")
        outcomes = execute_parallel(specs, store, url, jobs, gpu_list, on_outcome=print_outcome, threads=threads)
        report_outcomes(outcomes, planned=len(specs))


def print_outcome(outcome: RunOutcome) -> None:
    spec = outcome.spec
    line = f"run {outcome.run_id} {spec.method.name} {spec.noise.label} seed {spec.seed}: {outcome.status}"
    console.print(line + (f" ({outcome.error.splitlines()[0]})" if outcome.error else ""), highlight=False)


def execute_and_report(specs: list[RunSpec], store: Store, quiet: bool) -> None:
    """Run specs with progress bars, print a summary; exit 1 when any run failed, 130 when a
    signal interrupted them (the interrupted run is checkpointed: `nlx resume` continues it)."""
    from nlx.runs import execute_runs, graceful_stop

    with graceful_stop() as stop:
        outcomes = with_progress(quiet, lambda reporter: execute_runs(specs, store, reporter, stop=stop))
    report_outcomes(outcomes, planned=len(specs))


def with_progress(quiet: bool, work: Callable[[Callable[[], RunProgress | None]], T]) -> T:
    """Call `work` with a factory of per-run progress bars (or of None when quiet)."""
    if quiet:
        return work(lambda: None)
    with make_progress() as progress:
        return work(lambda: RunProgress(progress))


def report_outcomes(outcomes: list, planned: int) -> None:
    failed = [o for o in outcomes if o.status == "failed"]
    interrupted = [o for o in outcomes if o.status == "interrupted"]
    for outcome in failed:
        console.print(f"[red]run {outcome.run_id} failed:[/] {outcome.error}", highlight=False)
    finished = len(outcomes) - len(failed) - len(interrupted)
    ids = [o.run_id for o in outcomes] or [0]  # pretraining runs may come before the ones asked for
    console.print(f"{finished} finished, {len(failed)} failed (runs {min(ids)}-{max(ids)})")
    if len(outcomes) < planned and not interrupted:
        console.print(f"[red]{planned - len(outcomes)} planned run(s) not started[/] (every worker died)")
        raise typer.Exit(1)
    if interrupted:
        run_id = interrupted[0].run_id
        console.print(f"[yellow]run {run_id} interrupted[/]: continue it with `nlx resume {run_id}`; "
                      f"{planned - len(outcomes)} planned run(s) not started")
        raise typer.Exit(130)
    if failed:
        raise typer.Exit(1)


@handle_errors
def resume(
    run_id: Annotated[int, typer.Argument(help="a stale, interrupted or failed run (see `nlx ls`)")],
    db: DbOption = None,
    quiet: QuietOption = False,
) -> None:
    """Continue a run in place from its last checkpoint; epochs after it are trained again and
    their rows replaced, so on the CPU the result equals an uninterrupted run."""
    from nlx.dispatch import use_cpu_threads
    from nlx.runs import graceful_stop, resume_run

    use_cpu_threads()  # as the run's start had (NLX_THREADS, else 1): CPU sums depend on it
    with Store(open_db(db)) as store, graceful_stop() as stop:
        outcome = with_progress(quiet, lambda reporter: resume_run(store, run_id, reporter, stop=stop))
        report_outcomes([outcome], planned=1)


@handle_errors
def rerun(
    run_id: Annotated[int, typer.Argument(help="run to reproduce (see `nlx ls`)")],
    db: DbOption = None,
    quiet: QuietOption = False,
) -> None:
    """Run again from a run's stored spec (not from today's experiments file), as a new run.

    On the CPU the new run reproduces the old one's metrics exactly.
    """
    from nlx.dispatch import use_cpu_threads
    from nlx.engine import pick_device
    from nlx.runs import stored_spec

    use_cpu_threads()
    with Store(open_db(db)) as store:
        spec = stored_spec(store, run_id)
        pick_device(spec.train.device)  # a run made on a GPU machine: say so before writing
        console.print(f"rerun of run {run_id} ({spec.experiment})")
        execute_and_report([spec], store, quiet)


@handle_errors
def diff(
    run_a: Annotated[int, typer.Argument(help="first run id")],
    run_b: Annotated[int, typer.Argument(help="second run id")],
    db: DbOption = None,
) -> None:
    """Print only the spec fields in which two runs differ."""
    from nlx.runs import spec_differences, stored_spec

    with Store(open_db(db)) as store:
        differences = spec_differences(stored_spec(store, run_a), stored_spec(store, run_b))
    if not differences:
        console.print(f"runs {run_a} and {run_b} have identical specs")
        return
    table = Table("field", f"run {run_a}", f"run {run_b}")
    for key, left, right in differences:
        table.add_row(key, str(left), str(right))
    console.print(table)


@handle_errors
def validate(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Check every experiment of a file, including every grid cell, without running anything."""
    from nlx.config import expand, load_experiments
    from nlx.runs import check_runnable

    experiments = load_experiments(config)
    total = 0
    for name, experiment in experiments.items():
        runs = expand(name, experiment)
        for spec in runs:
            check_runnable(spec)
        total += len(runs)
        if experiment.sweep is not None:
            from nlx.sweeps import plan_sweep  # every bound of every distribution, as `nlx sweep` would

            plan_sweep(name, config, [])
        console.print(f"  {name}: {len(runs)} run(s){' + sweep' if experiment.sweep else ''}")
    console.print(f"ok: {config}: {len(experiments)} experiment(s), {total} run(s)")

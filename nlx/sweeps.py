"""Sweeps: an Optuna study over the `sweep` section of an experiment, where every trial is an
ordinary nlx run.

The study lives in Optuna's own RDB storage on the runs' database URL (Optuna's Alembic keeps
`alembic_version`, nlx's keeps `nlx_alembic_version`), so re-running `nlx sweep` continues it and
processes on several machines join it through one PostgreSQL URL (Optuna's documented recipe).
Each trial's run reports `report` (default `val/acc`) every epoch to the pruner; a pruned run
ends with status `pruned`. Crashed workers are found by Optuna's heartbeat: a trial silent for
the grace period is failed (and so is its run) and retried with the same parameters.

Links: the trial keeps its run id (user attribute `nlx_run_id`); trial runs are stored under the
experiment `sweep:STUDY`, which `nlx compare` leaves out (each trial is a different setting, not a
seed), and `nlx sweep best` stores its runs under `tuned:STUDY`.
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from pydantic import ValidationError

from nlx.config import expand, get_experiment, parse_override, set_dotted
from nlx.engine import Reporter
from nlx.errors import NlxError, SpecError, StoreError, describe_validation_error
from nlx.runs import RunOutcome, RunPruned, check_runnable, execute_runs, graceful_stop, stored_spec, train_and_record
from nlx.specs import RunSpec, SweepSpec
from nlx.store.models import TRIAL_PREFIX, TUNED_PREFIX
from nlx.store.db import BUSY_TIMEOUT_MS, configure_sqlite, open_db
from nlx.store.repo import Store

# A worker beats every HEARTBEAT_S; a trial silent for GRACE_S is failed and retried (at most
# MAX_RETRY times) by the next worker that asks for a trial, here or on another machine.
HEARTBEAT_S = int(os.environ.get("NLX_SWEEP_HEARTBEAT_S", 10))
GRACE_S = int(os.environ.get("NLX_SWEEP_GRACE_S", 60))
MAX_RETRY = 2
RUN_ID_ATTR = "nlx_run_id"

optuna.logging.set_verbosity(optuna.logging.WARNING)


class TrialFailed(NlxError):
    """A trial's run failed; the study records the trial as failed and the worker goes on."""


@dataclass(frozen=True)
class SweepPlan:
    """What every trial starts from: the base spec (one grid cell, the first seed) and the sweep."""

    study: str
    experiment: str
    base: RunSpec
    sweep: SweepSpec


def trial_spec(base: RunSpec, params: dict[str, Any]) -> RunSpec:
    """The base spec with the trial's values set at their dotted fields, validated."""
    tree = base.model_dump(mode="json")
    for key, value in params.items():
        set_dotted(tree, key, value)
    try:
        return RunSpec.model_validate(tree)
    except ValidationError as error:
        raise SpecError(f"sweep: {describe_validation_error(error)}") from None


def plan_sweep(name: str, config: Path, overrides: list[str], study: str | None = None) -> SweepPlan:
    """Validate the sweep before anything is written: one grid cell, and every bound of every
    distribution gives a valid spec (a bad field is named)."""
    experiment = get_experiment(name, config)
    if experiment.sweep is None:
        raise SpecError(f"{name}: no `sweep` section (add one to search its hyperparameters)")
    specs = expand(name, experiment, [parse_override(text) for text in overrides])
    cells = {spec.config_hash() for spec in specs}
    if len(cells) > 1:
        raise SpecError(f"{name}: a trial is one run, but the grid has {len(cells)} cells; fix its axes with KEY=VALUE")
    study = study or name
    base = RunSpec.model_validate({**specs[0].model_dump(mode="json"), "experiment": TRIAL_PREFIX + study})
    check_runnable(base)
    for key, distribution in experiment.sweep.params.items():
        for value in distribution.values():
            trial_spec(base, {key: value})
    return SweepPlan(study, name, base, experiment.sweep)


# --- storage and study ---------------------------------------------------------------------
class FailStaleRunAndRetry:
    """Optuna's heartbeat callback: mark the stale trial's run failed, then retry the trial."""

    def __init__(self, url: str):
        self.url = url
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        run_id = trial.user_attrs.get(RUN_ID_ATTR)
        if run_id is not None:
            with Store(open_db(self.url)) as store:
                if store.get_run(run_id).status in ("running", "pending"):
                    store.finish_run(run_id, "failed", f"sweep worker lost: no heartbeat for {GRACE_S}s (trial {trial.number} retried)")
        self.retry(study, trial)


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage on the runs' database, with heartbeats. On SQLite every transaction
    takes the write lock up front and waits in the busy timeout, as nlx's own do: Optuna's
    read-then-write transactions would otherwise fail with "database is locked" under workers."""
    with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            url,
            engine_kwargs={"connect_args": {"timeout": BUSY_TIMEOUT_MS / 1000}} if url.startswith("sqlite") else {},
            heartbeat_interval=HEARTBEAT_S,
            grace_period=GRACE_S,
            heartbeat_stale_trial_callback=FailStaleRunAndRetry(url),
        )
    if storage.engine.dialect.name == "sqlite":
        configure_sqlite(storage.engine, every_transaction_writes=True)
        storage.engine.dispose()  # connections made so far lack the pragmas
    return storage


def make_sampler(sweep: SweepSpec, offset: int = 0) -> optuna.samplers.BaseSampler:
    """Seeded; `offset` (worker index, trials so far) keeps parallel workers from drawing the
    same random start-up points."""
    seed = None if sweep.sampler.seed is None else sweep.sampler.seed + offset
    if sweep.sampler.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=sweep.sampler.n_startup_trials)


def make_pruner(sweep: SweepSpec) -> optuna.pruners.BasePruner:
    pruner = sweep.pruner
    if pruner.name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=pruner.n_startup_trials, n_warmup_steps=pruner.n_warmup_steps)
    if pruner.name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=pruner.min_resource, max_resource="auto", reduction_factor=pruner.reduction_factor
        )
    return optuna.pruners.NopPruner()


def load_study(plan: SweepPlan, storage: optuna.storages.BaseStorage, offset: int = 0) -> optuna.Study:
    study = optuna.create_study(
        study_name=plan.study, storage=storage, direction=plan.sweep.direction, load_if_exists=True,
        sampler=make_sampler(plan.sweep, offset), pruner=make_pruner(plan.sweep),
    )
    return study


def prepare_study(plan: SweepPlan, url: str) -> int:
    """Create the nlx schema, Optuna's tables and the study (or find them); returns the number of
    trials the study already has."""
    open_db(url, create=True).dispose()
    storage = open_storage(url)
    try:
        study = load_study(plan, storage)
        if "nlx_experiment" not in study.user_attrs:
            study.set_user_attr("nlx_experiment", plan.experiment)
            study.set_user_attr("nlx_base_spec", plan.base.model_dump_json())
            study.set_user_attr("nlx_sweep", plan.sweep.model_dump_json())
        return len(study.trials)
    finally:
        storage.engine.dispose()


# --- trials --------------------------------------------------------------------------------
def suggest(trial: optuna.Trial, key: str, distribution: Any) -> Any:
    if distribution.type == "float":
        return trial.suggest_float(key, distribution.low, distribution.high, log=distribution.log, step=distribution.step)
    if distribution.type == "int":
        return trial.suggest_int(key, distribution.low, distribution.high, step=distribution.step, log=distribution.log)
    return trial.suggest_categorical(key, distribution.choices)


@dataclass
class PruningReporter:
    """The engine's reporter for a trial: reports the metric every epoch and stops the run when
    the pruner says so (the epoch is already stored)."""

    trial: optuna.Trial
    key: str
    inner: Reporter | None = None

    def start(self, run_id: int, spec: RunSpec, total_epochs: int, done: int = 0) -> None:
        if self.inner:
            self.inner.start(run_id, spec, total_epochs, done)

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        if self.inner:
            self.inner.epoch(epoch, metrics)
        value = metrics.get(self.key)
        if value is not None and math.isfinite(value):
            self.trial.report(value, epoch)
        if self.trial.should_prune():
            raise RunPruned(f"pruned at epoch {epoch} ({self.key} {value:.4f})")

    def end(self, status: str) -> None:
        if self.inner:
            self.inner.end(status)


@dataclass
class Objective:
    plan: SweepPlan
    store: Store
    stop: threading.Event | None = None
    log: Callable[[str], None] = print
    outcomes: list[RunOutcome] = field(default_factory=list)

    def __call__(self, trial: optuna.Trial) -> float:
        params = {key: suggest(trial, key, dist) for key, dist in self.plan.sweep.params.items()}
        spec = trial_spec(self.plan.base, params)
        run_id = self.store.create_run(spec)
        trial.set_user_attr(RUN_ID_ATTR, run_id)
        reporter = PruningReporter(trial, self.plan.sweep.report)
        outcome = train_and_record(spec, self.store, run_id, lambda: reporter, stop=self.stop)
        self.outcomes.append(outcome)
        if outcome.status == "pruned":
            self.log(f"trial {trial.number} (run {run_id}): pruned ({outcome.error})")
            raise optuna.TrialPruned(outcome.error)
        if outcome.status == "interrupted":
            raise KeyboardInterrupt
        if outcome.status == "failed":
            self.log(f"trial {trial.number} (run {run_id}): failed: {outcome.error}")
            raise TrialFailed(outcome.error)
        value = getattr(self.store.get_run(run_id), self.plan.sweep.objective)
        if value is None:
            raise TrialFailed(f"run {run_id} has no {self.plan.sweep.objective}")
        self.log(f"trial {trial.number} (run {run_id}): {self.plan.sweep.objective} {value:.4f}")
        return float(value)


def sweep_worker(plan: SweepPlan, url: str, trials: int, offset: int = 0) -> dict[str, int]:
    """Run `trials` trials of the study in this process (a local worker, a SLURM job, or another
    machine); returns how its runs ended."""
    from nlx.dispatch import use_cpu_threads

    use_cpu_threads()  # the same count in every worker, wherever it runs: trials stay comparable
    storage = open_storage(url)
    try:
        study = load_study(plan, storage, offset)
        with Store(open_db(url)) as store, graceful_stop() as stop:
            objective = Objective(plan, store, stop, log=lambda line: print(line, flush=True))
            study.optimize(objective, n_trials=trials, catch=(TrialFailed,))
    finally:
        storage.engine.dispose()
    counts: dict[str, int] = {}
    for outcome in objective.outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts


def shares(trials: int, workers: int) -> list[int]:
    """`trials` split as evenly as possible over `workers` (the first ones take one more)."""
    return [trials // workers + (i < trials % workers) for i in range(workers)]


@dataclass(frozen=True)
class SlurmOptions:
    folder: Path = Path("sweep-jobs")
    partition: str | None = None
    time_min: int = 60
    gpus_per_job: int = 0
    cluster: str | None = None  # None: SLURM when available; "local": submitit's local executor


def submit_workers(plan: SweepPlan, url: str, trial_shares: list[int], options: SlurmOptions) -> list[dict[str, int]]:
    """Run the workers as jobs through submitit (SLURM, or its local executor) and wait for them."""
    try:
        import submitit
    except ImportError:
        raise SpecError("--launcher submitit: install submitit (pip install 'nlx[slurm]')") from None
    executor = submitit.AutoExecutor(folder=str(options.folder), cluster=options.cluster)
    parameters: dict[str, Any] = {"timeout_min": options.time_min, "name": f"nlx-sweep-{plan.study}"}
    if executor.cluster == "slurm":
        parameters["slurm_partition"] = options.partition
        parameters["gpus_per_node"] = options.gpus_per_job
    executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    jobs = [executor.submit(sweep_worker, plan, url, n, i) for i, n in enumerate(trial_shares) if n]
    return [job.result() for job in jobs]


def run_sweep(
    plan: SweepPlan,
    url: str,
    trials: int,
    jobs: int = 1,
    gpus: list[str] | None = None,
    launcher: str = "local",
    slurm: SlurmOptions | None = None,
) -> list[int]:
    """Add `trials` trials to the study with `jobs` workers; returns the exit codes of worker
    processes that died (empty when none did)."""
    if trials < 1:
        raise SpecError("--trials: must be at least 1")
    existing = prepare_study(plan, url)
    split = shares(trials, jobs)
    if launcher == "submitit":
        submit_workers(plan, url, split, slurm or SlurmOptions())
        return []
    if jobs == 1 and not gpus:
        sweep_worker(plan, url, trials, existing)
        return []
    from nlx.dispatch import start_workers

    workers = start_workers(
        sweep_worker, [(plan, url, n, existing + 100 * i) for i, n in enumerate(split) if n], gpus or []
    )
    for worker in workers:
        worker.join()
    return [worker.exitcode for worker in workers if worker.exitcode != 0]


# --- after a sweep -------------------------------------------------------------------------
def open_study(url: str, name: str) -> optuna.Study:
    storage = open_storage(url)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [summary.study_name for summary in optuna.get_all_study_summaries(storage)]
        raise StoreError(f"no study {name!r} in this database; studies: {', '.join(names) or 'none'}") from None


@dataclass(frozen=True)
class StudyReport:
    name: str
    direction: str
    states: dict[str, int]
    best: optuna.trial.FrozenTrial | None
    top: list[optuna.trial.FrozenTrial]
    importances: dict[str, float]


def study_report(study: optuna.Study, top: int = 5, importances: bool = True) -> StudyReport:
    """Trial counts by state, the best and top-k completed trials, and (unless `importances` is
    False: fANOVA fits a forest, which a one-line summary does not need) parameter importances."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    states: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    ranked = sorted(complete, key=lambda t: t.value, reverse=reverse)
    return StudyReport(
        study.study_name, study.direction.name.lower(), states, ranked[0] if ranked else None, ranked[:top],
        param_importances(study) if importances else {},
    )


def param_importances(study: optuna.Study) -> dict[str, float]:
    """fANOVA importances over the completed trials; empty when there are too few to say."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}
    try:
        return optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
        )
    except (RuntimeError, ValueError):  # e.g. every completed trial has the same parameters
        return {}


def best_run_specs(store: Store, study: optuna.Study, seeds: int) -> list[RunSpec]:
    """The best trial's run spec over `seeds` fresh seeds (not the one tuning used), stored under
    the experiment `tuned:STUDY` so that `nlx compare` shows it as a row of its own."""
    if seeds < 1:
        raise SpecError("--seeds: must be at least 1")
    try:
        best = study.best_trial
    except ValueError:
        raise StoreError(f"study {study.study_name!r} has no completed trial yet") from None
    spec = stored_spec(store, best.user_attrs[RUN_ID_ATTR])
    fresh = [seed for seed in range(seeds + 1) if seed != spec.seed][:seeds]
    return [
        RunSpec.model_validate({**spec.model_dump(mode="json"), "seed": seed, "experiment": TUNED_PREFIX + study.study_name})
        for seed in fresh
    ]


def run_best(store: Store, study: optuna.Study, seeds: int, reporter=lambda: None) -> list[RunOutcome]:
    specs = best_run_specs(store, study, seeds)
    with graceful_stop() as stop:
        return execute_runs(specs, store, reporter, stop=stop)

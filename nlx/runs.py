"""Running experiments: plan every run (validating all of them before anything is written), then
execute them one by one, recording failures without stopping the rest."""

from __future__ import annotations

import contextlib
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlx.config import expand, get_experiment, parse_override
from nlx.data.prepare import carve_test_and_trusted, check_data
from nlx.engine import Reporter, RunInterrupted, load_checkpoint, pick_device, train_run
from nlx.errors import NlxError, SpecError, StoreError
from nlx.methods import get_method
from nlx.models import check_model
from nlx.reports.export import flatten
from nlx.specs import RunSpec
from nlx.store.models import INIT_FROM
from nlx.store.repo import Store, display_status

INIT_TAG = "best"  # a fine-tuning run starts from its source run's best-validation checkpoint


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    spec: RunSpec
    status: str  # finished | failed | interrupted | pruned
    error: str | None = None


def plan_runs(name: str, config: Path, overrides: list[str], seeds: int | None = None) -> list[RunSpec]:
    """Every run an `nlx run NAME ...` would do, validated; raises SpecError naming the field."""
    parsed = [parse_override(text) for text in overrides]
    specs = expand(name, get_experiment(name, config), parsed, seeds)
    for spec in specs:
        check_runnable(spec)
    return specs


def check_runnable(spec: RunSpec) -> None:
    """What the spec's schema cannot know, found before any write: a missing CUDA device, missing
    or malformed data files, views the dataset lacks, a network that cannot take the data."""
    pick_device(spec.train.device)
    dataset, views = check_data(spec)
    check_model(spec.model, [dataset.views[i].shape[1:] for i in views], dataset.num_classes)
    if spec.data.trusted is not None:  # enough samples of every class for the trusted set
        carve_test_and_trusted(spec, dataset)
    check_needs(spec)


def stored_spec(store: Store, run_id: int) -> RunSpec:
    """The exact spec a run was made from (not today's experiments.yaml): what `rerun` replays."""
    return RunSpec.model_validate_json(store.get_run(run_id).spec_json)


def spec_differences(a: RunSpec, b: RunSpec) -> list[tuple[str, Any, Any]]:
    """(dotted field, value in a, value in b) for every field where two specs differ."""
    left, right = flatten(a.model_dump(mode="json")), flatten(b.model_dump(mode="json"))
    return [(key, left.get(key), right.get(key)) for key in sorted(left.keys() | right.keys()) if left.get(key) != right.get(key)]


@contextlib.contextmanager
def graceful_stop() -> Iterator[threading.Event]:
    """The first SIGINT/SIGTERM asks the running run to checkpoint and stop (the event is set);
    a second Ctrl-C interrupts at once. Outside the main thread, signals are left alone."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def request_stop(_signum: int, _frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C: now

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def check_needs(spec: RunSpec) -> None:
    """A method that needs a checkpoint must be told where from, and one that needs a trusted
    set must be given one, before anything is written."""
    needs = get_method(spec.method.name).needs
    if "trusted" in needs and spec.data.trusted is None:
        raise SpecError(
            f"data.trusted: {spec.method.name} needs a trusted clean set carved out before noise; "
            "give data.trusted.per_class (e.g. 10) or data.trusted.fraction (e.g. 0.02)"
        )
    if "checkpoint" in needs and spec.method.params.get("init_from") is None:
        raise SpecError(
            f"method.params.init_from: {spec.method.name} does not train from scratch; give a finished run id "
            "to start from its best checkpoint, or 'auto' to pretrain (or reuse) a CE run"
        )


class RunPruned(Exception):
    """Raised by a reporter (a sweep's pruner) to stop a run early: the run ends `pruned`, its
    epochs so far stay stored."""


class InitSourceError(NlxError):
    exit_code = 1


def init_source(spec: RunSpec, store: Store, run: Callable[[RunSpec], "RunOutcome"]) -> int:
    """The run whose best checkpoint `spec` starts from: `init_from` as given, or with `auto` a
    finished run of the method's pretraining spec, reused when one exists, else run now."""
    init_from = spec.method.params["init_from"]
    if init_from == "auto":
        pretrain = get_method(spec.method.name).pretraining_spec(spec)
        source = store.reusable_run(pretrain.spec_hash(), INIT_TAG)
        if source is None:
            outcome = run(pretrain)
            if outcome.status != "finished":
                raise InitSourceError(f"pretraining run {outcome.run_id} {outcome.status}: {outcome.error}")
            source = outcome.run_id
        return source
    source_spec = RunSpec.model_validate_json(store.get_run(int(init_from)).spec_json)
    for field in ("data", "noise", "model", "seed"):
        if getattr(source_spec, field) != getattr(spec, field):
            raise InitSourceError(f"method.params.init_from: run {init_from} has a different {field} than this run")
    return int(init_from)


def execute_runs(
    specs: list[RunSpec],
    store: Store,
    reporter: Callable[[], Reporter | None] = lambda: None,
    stop: threading.Event | None = None,
) -> list[RunOutcome]:
    """Create and train a run per spec (and any pretraining run a spec needs first); after an
    interruption the remaining specs are not started."""
    outcomes: list[RunOutcome] = []

    def run_one(spec: RunSpec) -> RunOutcome:
        run_id = store.create_run(spec)
        outcome = train_and_record(spec, store, run_id, reporter, stop=stop, run=run_one)
        outcomes.append(outcome)
        return outcome

    for spec in specs:
        if run_one(spec).status == "interrupted":
            break
    return outcomes


def resume_run(
    store: Store, run_id: int, reporter: Callable[[], Reporter | None] = lambda: None, stop: threading.Event | None = None
) -> RunOutcome:
    """Continue a stale, interrupted or failed run in place, from its last checkpoint."""
    run = store.get_run(run_id)
    status = display_status(run)
    if status not in RESUMABLE:
        raise StoreError(f"run {run_id} is {status}; only {', '.join(sorted(RESUMABLE))} runs can be resumed")
    spec = stored_spec(store, run_id)
    check_runnable(spec)
    store.find_checkpoint(run_id, "last")  # a corrupted checkpoint is refused before any write
    return train_and_record(spec, store, run_id, reporter, resume=True, stop=stop)


RESUMABLE = {"stale", "interrupted", "failed", "pending"}


def initial_state(spec: RunSpec, store: Store, run_id: int, run: Callable[[RunSpec], RunOutcome] | None) -> dict | None:
    """For a method that needs a checkpoint: the source run's method state, linked to this run.
    On resume (`run` is None) the source is the one linked when the run was first made."""
    if "checkpoint" not in get_method(spec.method.name).needs:
        return None
    if run is None:
        [source] = [link.source_run_id for link in store.links(run_id) if link.run_id == run_id and link.relation == INIT_FROM]
    else:
        source = init_source(spec, store, run)
        store.link_runs(run_id, source, INIT_FROM, INIT_TAG)
    return load_checkpoint(store.load_checkpoint(source, INIT_TAG))["method"]


def train_and_record(
    spec: RunSpec,
    store: Store,
    run_id: int,
    reporter: Callable[[], Reporter | None],
    resume: bool = False,
    stop: threading.Event | None = None,
    run: Callable[[RunSpec], RunOutcome] | None = None,
) -> RunOutcome:
    """Train, and record how it ended: finished, interrupted (checkpointed) or failed (reason).
    `run` executes (and records) a pretraining run when the method needs one."""
    progress = None
    try:
        init_state = initial_state(spec, store, run_id, None if resume else run)
        progress = reporter()
        train_run(spec, store, run_id, progress, resume=resume, stop=stop, init_state=init_state)
    except RunPruned as error:
        store.finish_run(run_id, "pruned", str(error) or None)
        if progress:
            progress.end("pruned")
        return RunOutcome(run_id, spec, "pruned", str(error) or None)
    except (RunInterrupted, KeyboardInterrupt) as error:
        reason = str(error) or "interrupted by the user"
        store.finish_run(run_id, "interrupted", reason)
        if progress:
            progress.end("interrupted")
        if isinstance(error, KeyboardInterrupt):
            raise
        return RunOutcome(run_id, spec, "interrupted", reason)
    except Exception as error:  # noqa: BLE001  a failed run must not stop the others
        reason = f"{type(error).__name__}: {error}"
        store.finish_run(run_id, "failed", reason + "\n" + traceback.format_exc(limit=5))
        if progress:
            progress.end("failed")
        return RunOutcome(run_id, spec, "failed", reason)
    store.finish_run(run_id, "finished")
    if progress:
        progress.end("finished")
    return RunOutcome(run_id, spec, "finished")

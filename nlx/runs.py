"""Running experiments: plan every run (validating all of them before anything is written), then
execute them one by one, recording failures without stopping the rest."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nlx.config import expand, get_experiment, parse_override
from nlx.engine import Reporter, load_checkpoint, pick_device, train_run
from nlx.errors import NlxError, SpecError
from nlx.methods import get_method
from nlx.specs import RunSpec
from nlx.store.models import INIT_FROM
from nlx.store.repo import Store

INIT_TAG = "best"  # a fine-tuning run starts from its source run's best-validation checkpoint


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    spec: RunSpec
    status: str  # finished | failed | interrupted
    error: str | None = None


def plan_runs(name: str, config: Path, overrides: list[str], seeds: int | None = None) -> list[RunSpec]:
    """Every run an `nlx run NAME ...` would do, validated; raises SpecError naming the field."""
    parsed = [parse_override(text) for text in overrides]
    specs = expand(name, get_experiment(name, config), parsed, seeds)
    for spec in specs:
        pick_device(spec.train.device)  # a missing CUDA is a bad argument, found before any write
        check_needs(spec)
    return specs


def check_needs(spec: RunSpec) -> None:
    """A method that needs a checkpoint must be told where from, before anything is written."""
    if "checkpoint" in get_method(spec.method.name).needs and spec.method.params.get("init_from") is None:
        raise SpecError(
            f"method.params.init_from: {spec.method.name} does not train from scratch; give a finished run id "
            "to start from its best checkpoint, or 'auto' to pretrain (or reuse) a CE run"
        )


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
) -> list[RunOutcome]:
    outcomes: list[RunOutcome] = []

    def run_one(spec: RunSpec) -> RunOutcome:
        outcome = execute_one(spec, store, reporter, run_one)
        outcomes.append(outcome)
        return outcome

    for spec in specs:
        run_one(spec)
    return outcomes


def execute_one(
    spec: RunSpec, store: Store, reporter: Callable[[], Reporter | None], run: Callable[[RunSpec], RunOutcome]
) -> RunOutcome:
    """One run, recorded as finished or failed; `run` executes (and records) a pretraining run."""
    run_id = store.create_run(spec)
    progress = None
    try:
        init_state = None
        if "checkpoint" in get_method(spec.method.name).needs:
            check_needs(spec)
            source = init_source(spec, store, run)
            init_state = load_checkpoint(store.load_checkpoint(source, INIT_TAG))["method"]
            store.link_runs(run_id, source, INIT_FROM, INIT_TAG)
        progress = reporter()
        train_run(spec, store, run_id, progress, init_state)
    except KeyboardInterrupt:
        store.finish_run(run_id, "interrupted", "interrupted by the user")
        if progress:
            progress.end("interrupted")
        raise
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

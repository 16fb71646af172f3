"""Running experiments: plan every run (validating all of them before anything is written), then
execute them one by one, recording failures without stopping the rest."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlx.config import expand, get_experiment, parse_override
from nlx.engine import Reporter, pick_device, train_run
from nlx.reports.export import flatten
from nlx.specs import RunSpec
from nlx.store.repo import Store


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
    return specs


def stored_spec(store: Store, run_id: int) -> RunSpec:
    """The exact spec a run was made from (not today's experiments.yaml): what `rerun` replays."""
    return RunSpec.model_validate_json(store.get_run(run_id).spec_json)


def spec_differences(a: RunSpec, b: RunSpec) -> list[tuple[str, Any, Any]]:
    """(dotted field, value in a, value in b) for every field where two specs differ."""
    left, right = flatten(a.model_dump(mode="json")), flatten(b.model_dump(mode="json"))
    return [(key, left.get(key), right.get(key)) for key in sorted(left.keys() | right.keys()) if left.get(key) != right.get(key)]


def execute_runs(
    specs: list[RunSpec],
    store: Store,
    reporter: Callable[[], Reporter | None] = lambda: None,
) -> list[RunOutcome]:
    outcomes = []
    for spec in specs:
        run_id = store.create_run(spec)
        progress = reporter()
        try:
            train_run(spec, store, run_id, progress)
        except KeyboardInterrupt:
            store.finish_run(run_id, "interrupted", "interrupted by the user")
            if progress:
                progress.end("interrupted")
            raise
        except Exception as error:  # noqa: BLE001  a failed run must not stop the others
            reason = f"{type(error).__name__}: {error}"
            store.finish_run(run_id, "failed", reason + "\n" + traceback.format_exc(limit=5))
            outcomes.append(RunOutcome(run_id, spec, "failed", reason))
            if progress:
                progress.end("failed")
            continue
        store.finish_run(run_id, "finished")
        outcomes.append(RunOutcome(run_id, spec, "finished"))
        if progress:
            progress.end("finished")
    return outcomes

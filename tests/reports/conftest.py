"""A real store in a temporary folder, and a helper that records runs in it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from nlx.specs import RunSpec
from nlx.store.db import open_db
from nlx.store.repo import Store

NUM_CLASSES = 3


@pytest.fixture
def store(tmp_path) -> Store:
    with Store(open_db(str(tmp_path / "t.db"), create=True)) as store:
        yield store


def record_run(
    store: Store,
    *,
    seed: int = 0,
    noise: dict[str, Any] | None = None,
    arch: str = "mlp",
    epochs: Sequence[dict[str, float]] = (),
    summary: dict[str, Any] | None = None,
    status: str | None = "finished",
    error: str | None = None,
    matrices: Sequence[dict[str, Any]] = (),
    experiment: str = "e",
) -> int:
    """Create, start and log a run; `epochs[i]` is the metrics dict of epoch i, `summary` is
    written with the last epoch, `matrices` with the first. status None leaves it running."""
    spec = RunSpec(experiment=experiment, noise=noise or {"type": "sym", "rate": 0.4},
                   model={"arch": arch}, seed=seed)
    run_id = store.create_run(spec)
    flip_mask = np.array([True, False, False, True, False])
    store.start_run(run_id, "cpu", np.arange(5), np.array([1, 0, 2, 0, 1]), flip_mask,
                    np.full((NUM_CLASSES, NUM_CLASSES), 1 / NUM_CLASSES))
    for epoch, metrics in enumerate(epochs):
        last = epoch == len(epochs) - 1
        store.log_epoch(run_id, epoch, metrics, summary=(summary or {}) if last else {},
                        matrices=matrices if epoch == 0 else ())
    if not epochs and summary:
        store.log_epoch(run_id, 0, {}, summary=summary, matrices=matrices)
    if status is not None:
        store.finish_run(run_id, status, error)
    return run_id


@pytest.fixture
def num_classes() -> int:
    """The size of the true T that record_run stores."""
    return NUM_CLASSES


@pytest.fixture
def add_run(store) -> Callable[..., int]:
    return lambda **kwargs: record_run(store, **kwargs)

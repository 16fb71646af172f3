"""Re-estimating T from a run's stored checkpoints (`nlx estimate-t`).

The run's spec rebuilds its data (same seed: same noisy labels) and its method; each checkpoint's
state is loaded, the method predicts on the training set, and every estimator turns those
predictions into a T_hat scored against the run's stored true T. The notebook behind nlx found
that early checkpoints often estimate better than late ones; this makes that visible per run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from nlx.data.noise import estimation_error
from nlx.data.prepare import prepare_data
from nlx.engine import DeviceData, build_method, load_checkpoint, predict_logits
from nlx.errors import StoreError
from nlx.estimation import ESTIMATORS, estimate_T
from nlx.specs import RunSpec
from nlx.store.models import TRUE_T
from nlx.store.repo import Store

EPOCH_TAG = re.compile(r"^epoch(\d+)$")


@dataclass(frozen=True)
class Reestimate:
    tag: str
    epoch: int
    estimator: str
    T: np.ndarray  # (C, C)
    error: float


def reestimate_run(
    store: Store,
    run_id: int,
    epochs: list[int] | None = None,
    estimators: tuple[str, ...] = ESTIMATORS,
    percentile: float | None = 97.0,
) -> list[Reestimate]:
    """One estimate per (checkpoint, estimator): the kept `epochK` checkpoints (only those in
    `epochs` when given), or `best` and `last` when the run kept none."""
    run = store.get_run(run_id)
    spec = RunSpec.model_validate_json(run.spec_json)
    true_T = next((np.array(json.loads(m.values_json)) for m in store.matrices([run_id]) if m.kind == TRUE_T), None)
    if true_T is None:
        raise StoreError(f"run {run_id} has no stored true T (did it start?)")
    stored = {tag: epoch for tag, epoch, _, _ in store.checkpoints(run_id)}
    kept = {tag: epoch for tag, epoch in stored.items() if EPOCH_TAG.match(tag)}
    if epochs is not None:
        missing = sorted(set(epochs) - set(kept.values()))
        if missing:
            raise StoreError(
                f"run {run_id} kept no checkpoint for epoch(s) {', '.join(map(str, missing))}; kept: "
                f"{', '.join(map(str, sorted(kept.values()))) or 'none (set train.keep_checkpoints)'}"
            )
        kept = {tag: epoch for tag, epoch in kept.items() if epoch in epochs}
    chosen = kept or {tag: epoch for tag, epoch in stored.items() if tag in ("best", "last")}
    if not chosen:
        raise StoreError(f"run {run_id} has no checkpoints")

    device = torch.device("cpu")
    prepared = prepare_data(spec)
    data = DeviceData.from_prepared(prepared, device)
    results = []
    for tag, epoch in sorted(chosen.items(), key=lambda item: item[1]):
        state = load_checkpoint(store.load_checkpoint(run_id, tag))["method"]
        probs = train_probs(spec, prepared, data, state)
        for estimator in estimators:
            T_hat = estimate_T(estimator, probs, prepared.train.labels, percentile)
            results.append(Reestimate(tag, epoch, estimator, T_hat, estimation_error(T_hat, true_T)))
    return results


def train_probs(spec: RunSpec, prepared, data: DeviceData, state: dict) -> np.ndarray:
    """(N, C) softmax of the checkpointed method's predictions on the training split."""
    # A method that needs a checkpoint builds from it; load_state_dict overwrites anyway.
    method = build_method(spec, prepared, data, torch.Generator(), init_state=state)
    method.load_state_dict(state)
    method.train_mode(False)
    return F.softmax(predict_logits(method, data.train_views, spec.train.eval_batch_size), dim=1).numpy()

"""forward and trevision: their losses, their stages, and what they store as T."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nlx.data.noise import pairflip_T
from nlx.methods.tmatrix import forward_nll, importance_weighted_ce
from nlx.runs import execute_runs
from nlx.specs import RunSpec
from nlx.store.db import open_db
from nlx.store.models import ESTIMATED_T
from nlx.store.repo import Store


def spec_for(method: str, params: dict | None = None, epochs: int = 6, noise: str = "asym") -> RunSpec:
    return RunSpec.model_validate({
        "noise": {"type": noise, "rate": 0.4},
        "model": {"hidden": [16]},
        "method": {"name": method, "params": params or {}},
        "train": {"epochs": epochs, "batch_size": 256, "device": "cpu"},
    })


@pytest.fixture
def store(db_path):
    with Store(open_db(str(db_path), create=True)) as store:
        yield store


def estimates(store: Store, run_id: int):
    return [m for m in store.matrices([run_id]) if m.kind == ESTIMATED_T]


def test_losses_reduce_to_cross_entropy_without_noise():
    logits, y = torch.randn(16, 5), torch.randint(0, 5, (16,))
    ce = F.cross_entropy(logits, y)
    torch.testing.assert_close(forward_nll(logits, y, torch.eye(5)), ce)
    torch.testing.assert_close(importance_weighted_ce(logits, y, torch.eye(5)), ce)


def test_reweighted_loss_is_the_mean_of_per_sample_losses():
    # The official code adds the loss sample by sample; the batch expression must agree with it.
    logits, y = torch.randn(32, 4), torch.randint(0, 4, (32,))
    T = torch.as_tensor(pairflip_T(4, 0.3), dtype=torch.float32)
    one_by_one = torch.stack([importance_weighted_ce(logits[i : i + 1], y[i : i + 1], T) for i in range(32)]).mean()
    torch.testing.assert_close(importance_weighted_ce(logits, y, T), one_by_one)


def test_reweighted_loss_sends_gradient_to_the_slack_only_through_T():
    logits = torch.randn(8, 3, requires_grad=True)
    dT = torch.zeros(3, 3, requires_grad=True)
    importance_weighted_ce(logits, torch.randint(0, 3, (8,)), torch.eye(3) * 0.8 + 0.2 / 3 + dT).backward()
    assert dT.grad.abs().sum() > 0


def test_forward_with_the_true_T_stores_it_every_epoch(store):
    spec = spec_for("forward", {"t_source": "true"}, epochs=3)
    [outcome] = execute_runs([spec], store)
    assert outcome.status == "finished", outcome.error
    stored = estimates(store, outcome.run_id)
    assert [m.stage for m in stored] == ["forward"] * 3
    assert {m.estimator for m in stored} == {"forward/true"}
    assert all(m.error == pytest.approx(0.0, abs=1e-6) for m in stored)  # float32 on the device


def test_forward_estimates_T_once_after_the_warmup(store):
    spec = spec_for("forward", {"warmup_epochs": 2}, epochs=4)
    [outcome] = execute_runs([spec], store)
    assert outcome.status == "finished", outcome.error
    stored = estimates(store, outcome.run_id)
    assert [m.stage for m in stored] == ["warmup", "warmup", "forward", "forward"]
    assert all(0 < m.error < 2 for m in stored)
    forward = [store_T(m) for m in stored if m.stage == "forward"]
    np.testing.assert_array_equal(forward[0], forward[1])  # fixed once estimated
    np.testing.assert_allclose(forward[0].sum(axis=1), 1.0, atol=1e-6)


def store_T(matrix) -> np.ndarray:
    return np.array(json.loads(matrix.values_json))


def test_stage_lengths_scale_with_epochs_unless_given(build_method):
    assert [s.epochs for s in build_method(spec_for("trevision", epochs=40)).stages()] == [12, 14, 14]
    assert [s.epochs for s in build_method(spec_for("trevision", epochs=10)).stages()] == [3, 3, 4]
    given = build_method(spec_for("trevision", {"warmup_epochs": 5, "revise_epochs": 2}, epochs=10)).stages()
    assert [(s.name, s.epochs) for s in given] == [("warmup", 5), ("reweight", 3), ("revise", 2)]
    assert [s.epochs for s in build_method(spec_for("forward", {"t_source": "true"}, epochs=7)).stages()] == [7]


def test_trevision_slack_starts_at_zero_and_is_learned(store, build_method):
    method = build_method(spec_for("trevision"))
    assert torch.count_nonzero(method.dT.weight) == 0
    spec = spec_for("trevision", {"warmup_epochs": 2, "revise_epochs": 2, "lr_revision": 1e-3}, epochs=6)
    [outcome] = execute_runs([spec], store)
    assert outcome.status == "finished", outcome.error
    stored = estimates(store, outcome.run_id)
    assert [m.stage for m in stored] == ["warmup"] * 2 + ["reweight"] * 2 + ["revise"] * 2
    reweight, revised = store_T([m for m in stored if m.stage == "reweight"][-1]), store_T(stored[-1])
    # dT moved, and no entry by more than Adam's ~lr per step allows (2 epochs of 6 steps).
    assert 0 < np.abs(revised - reweight).max() < 2 * 6 * 1e-3 * 1.5


def test_noisy_validation_scores_the_noisy_label_model(build_method):
    # Once T is known, the engine's val metrics (and best-epoch choice) use log(p @ T) on a
    # noisy validation split: a corrected model is judged by how well it predicts noisy labels.
    method = build_method(spec_for("forward", {"t_source": "true"}))
    views = [torch.randn(5, 64)]
    T = torch.as_tensor(method.ctx.true_T, dtype=torch.float32)
    expected = (F.softmax(method.predict(views), dim=1) @ T).log()
    torch.testing.assert_close(method.predict_noisy(views), expected)
    assert build_method(spec_for("trevision")).predict_noisy(views).shape == (5, 10)  # warm-up: plain logits

"""DivideMix: the GMM split, sharpening, mixup, the ramp and prior penalty on small tensors; the
co-divide in a run (selection logged after warm-up only); empty splits; checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nlx.data.builtin import digits
from nlx.data.registry import Dataset, register_dataset
from nlx.methods.dividemix import (
    gmm_clean_probability, linear_rampup, mixup, mixup_lambda, normalise_losses, sharpen, uniform_prior_penalty,
)
from nlx.runs import execute_runs
from nlx.store.db import open_db
from nlx.store.repo import Store

from .conftest import Harness, assert_round_trip_continues_identically, tiny_spec


def test_gmm_split_recovers_a_known_clean_set():
    rng = np.random.default_rng(0)
    clean = rng.random(400) < 0.6
    losses = np.where(clean, rng.normal(0.15, 0.05, 400), rng.normal(0.7, 0.1, 400)).clip(0, None)
    prob = gmm_clean_probability(normalise_losses(torch.as_tensor(losses)).numpy())
    assert prob.shape == (400,) and ((0 <= prob) & (prob <= 1)).all()
    assert ((prob > 0.5) == clean).mean() > 0.97
    order = np.argsort(losses)  # a larger loss never has a higher clean probability
    assert (np.diff(prob[order]) <= 1e-9).all()


def test_normalise_losses_maps_to_unit_interval_and_survives_constants():
    out = normalise_losses(torch.tensor([2.0, 4.0, 3.0]))
    assert torch.allclose(out, torch.tensor([0.0, 1.0, 0.5]))
    assert torch.equal(normalise_losses(torch.full((4,), 3.0)), torch.zeros(4))


def test_sharpen_math():
    p = torch.tensor([[0.6, 0.4], [0.25, 0.75]])
    assert torch.allclose(sharpen(p, 0.5), torch.tensor([[0.36 / 0.52, 0.16 / 0.52], [0.0625 / 0.625, 0.5625 / 0.625]]))
    assert torch.allclose(sharpen(p, 1.0), p)
    p = torch.softmax(torch.randn(5, 7, generator=torch.Generator().manual_seed(0)), 1)
    q = sharpen(p, 0.3)
    assert torch.allclose(q.sum(1), torch.ones(5))
    assert torch.equal(q.argmax(1), p.argmax(1))  # order kept: the argmax is the input's
    assert (q.max(1).values > p.max(1).values).all()  # and it gains mass
    assert (sharpen(torch.tensor([[0.5, 0.3, 0.2]]), 0.01)[0, 0] > 0.999)


def test_mixup_is_one_convex_pairing_for_inputs_and_targets():
    x = torch.arange(6.0).reshape(3, 2)
    t = torch.eye(3)
    perm = torch.tensor([2, 0, 1])
    mx, mt = mixup([x, t], 0.75, perm)
    assert torch.allclose(mx, 0.75 * x + 0.25 * x[perm])
    assert torch.allclose(mt[0], torch.tensor([0.75, 0.0, 0.25]))
    assert torch.allclose(mt.sum(1), torch.ones(3))
    same = mixup([x], 1.0, perm)[0]
    assert torch.equal(same, x)


def test_mixup_lambda_is_the_larger_beta_draw():
    assert mixup_lambda(0.5, 4.0) == pytest.approx(0.5)
    draws = [mixup_lambda(u, 4.0) for u in np.linspace(0.01, 0.99, 99)]
    assert all(0.5 <= d <= 1.0 for d in draws)
    assert mixup_lambda(0.1, 4.0) == pytest.approx(mixup_lambda(0.9, 4.0))  # symmetric Beta
    assert np.mean([mixup_lambda(u, 0.1) for u in np.linspace(0.01, 0.99, 99)]) > 0.9  # small alpha: little mixing


def test_lambda_u_ramp_and_prior_penalty():
    assert linear_rampup(10, 10, 16) == 0.0
    assert linear_rampup(18, 10, 16) == pytest.approx(0.5)
    assert linear_rampup(40, 10, 16) == 1.0
    assert linear_rampup(3, 10, 16) == 0.0
    assert uniform_prior_penalty(torch.zeros(4, 5)).abs() < 1e-6
    skewed = torch.zeros(4, 5)
    skewed[:, 0] = 5.0
    assert uniform_prior_penalty(skewed) > 0.5


def test_run_logs_selection_after_warm_up_only(db_path):
    spec = tiny_spec("dividemix", {"warm_up": 1}, train={"epochs": 2})
    with Store(open_db(str(db_path), create=True)) as store:
        [outcome] = execute_runs([spec], store)
        assert outcome.status == "finished", outcome.error
        rows = store.metrics([outcome.run_id])
    keys = {(k, e) for _, k, e, _ in rows}
    assert ("select/precision", 0) not in keys and ("dividemix/loss_x", 0) not in keys
    for e in (1,):
        assert {("select/precision", e), ("select/recall", e), ("select/fraction", e), ("dividemix/loss_u", e),
                ("dividemix/labelled1", e), ("dividemix/lambda_u", e)} <= keys
    values = {(k, e): v for _, k, e, v in rows}
    assert values[("select/fraction", 1)] == pytest.approx(values[("dividemix/labelled1", 1)])


@pytest.mark.parametrize("threshold", [1e-12, 1 - 1e-12])
def test_all_labelled_or_none_labelled_does_not_crash(threshold):
    h = Harness(tiny_spec("dividemix", {"warm_up": 1, "p_threshold": threshold}, train={"epochs": 2}))
    h.run_epoch()
    steps = h.run_epoch()
    labelled = (h.method.prob > threshold).sum(1)
    assert len(steps) == sum(-(-int(n) // 128) for n in labelled)  # one step per labelled batch
    for step in steps:
        assert torch.isfinite(step["loss"])
        if threshold < 0.5:
            assert step["loss_u"] == 0


def test_unlabelled_batches_are_full_size_and_from_the_peers_noisy_set():
    h = Harness(tiny_spec("dividemix", {"warm_up": 1}, train={"epochs": 2, "batch_size": 64}))
    h.run_epoch()
    h.method.stage = h.stage_epochs[1]
    h.method.start_epoch(1)
    for batch in h.method.batches():
        peer_clean = h.method.prob[1 - batch.net] > 0.5
        assert peer_clean[batch.idx].all()
        if batch.unlabelled is not None:
            assert len(batch.unlabelled.y) == 64
            assert not peer_clean[batch.unlabelled.idx].any()
        assert torch.equal(batch.clean_prob, h.method.prob[1 - batch.net][batch.idx])


def test_confidence_penalty_defaults_on_for_asym_noise_only():
    assert Harness(tiny_spec("dividemix", noise={"type": "asym"})).method.conf_penalty
    assert not Harness(tiny_spec("dividemix")).method.conf_penalty


def test_checkpoint_round_trip_continues_training_identically():
    spec = tiny_spec("dividemix", {"warm_up": 1}, data={"augment": "crop_flip"}, train={"epochs": 3})
    assert_round_trip_continues_identically(spec, epochs_before=2, epochs_after=1)


@register_dataset("_digits_two_views")
def digits_two_views() -> Dataset:
    """Digits as two flat feature views (top and bottom half of the image): multi-view features."""
    base = digits()
    flat = base.views[0].reshape(len(base), 64)
    return Dataset("_digits_two_views", [flat[:, :32].copy(), flat[:, 32:].copy()], ["top", "bottom"], base.labels, base.class_names)


@pytest.mark.parametrize("augment", ["gaussian", "dropout"])
def test_two_feature_views_with_feature_augmentation(augment):
    h = Harness(tiny_spec("dividemix", {"warm_up": 1}, data={"name": "_digits_two_views", "augment": augment}, train={"epochs": 2}))
    assert h.method.views_per_sample == 2
    h.run_epoch()
    steps = h.run_epoch()
    assert steps and all(torch.isfinite(s["loss"]) and s["loss_u"] >= 0 for s in steps)
    assert h.method.predict(h.data.test_views).shape == (len(h.data.test_labels), 10)

"""Co-teaching: the forget-rate ramp, small-loss selection, the cross update, selection metrics
in a real run, and two-network checkpoints."""

from __future__ import annotations

import pytest
import torch

from nlx.methods.coteaching import forget_rate_at, small_loss_positions, small_loss_positions_per_class
from nlx.runs import execute_runs
from nlx.store.db import open_db
from nlx.store.repo import Store

from .conftest import Harness, assert_round_trip_continues_identically, tiny_spec


def test_forget_rate_ramps_linearly_to_tau_then_stays():
    rates = [forget_rate_at(e, 0.5, 10) for e in range(15)]
    assert rates[0] == 0.0
    assert rates[5] == pytest.approx(0.25)
    assert all(b > a for a, b in zip(rates[:10], rates[1:11]))
    assert rates[10:] == [0.5] * 5


def test_forget_rate_exponent_and_no_ramp():
    assert forget_rate_at(5, 0.4, 10, exponent=2.0) == pytest.approx(0.4 * 0.25)
    assert forget_rate_at(0, 0.4, 0) == 0.4


def test_small_loss_positions_keep_the_smallest_share_and_never_none():
    losses = torch.tensor([0.9, 0.1, 0.5, 0.3, 2.0, 0.2, 0.7, 1.5, 0.05, 0.4])
    picked = small_loss_positions(losses, 0.7)
    assert sorted(picked.tolist()) == [1, 5, 8]
    assert len(small_loss_positions(losses[:3], 0.99)) == 1
    assert len(small_loss_positions(losses, 0.0)) == 10


def test_per_class_selection_keeps_the_same_share_of_every_label():
    # Class 1's losses are all larger than class 0's: a batch-wide cut would drop class 1 entirely.
    losses = torch.tensor([0.5, 0.1, 0.9, 0.3, 2.0, 2.2, 3.0, 2.1])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    assert sorted(small_loss_positions(losses, 0.5).tolist()) == [0, 1, 2, 3]
    assert sorted(small_loss_positions_per_class(losses, labels, 0.5).tolist()) == [1, 3, 4, 7]
    # At least one per class present, everything at rate 0; labels need not be contiguous.
    assert sorted(small_loss_positions_per_class(losses, labels * 3, 0.99).tolist()) == [1, 4]
    assert len(small_loss_positions_per_class(losses, labels, 0.0)) == 8


@pytest.mark.parametrize("per_class", [False, True])
def test_train_step_selects_per_class_only_when_asked(per_class):
    h = Harness(tiny_spec("coteaching", {"per_class": per_class}))
    h.method.rate = 0.5
    batch = next(iter(h.ctx.train_batches(batch_size=128)))
    h.method.train_step(batch)
    kept = h.method.selected[batch.idx]
    counts = torch.bincount(batch.y, minlength=10)
    per_class_quota = torch.clamp(torch.round(0.5 * counts.double()).long(), min=1) * (counts > 0)
    kept_counts = torch.bincount(batch.y[kept], minlength=10)
    assert torch.equal(kept_counts, per_class_quota) == per_class
    if not per_class:
        assert int(kept.sum()) == 64


def test_default_forget_rate_is_the_spec_noise_rate_and_peers_pick_for_each_other():
    h = Harness(tiny_spec("coteaching", noise={"rate": 0.3}))
    assert h.method.tau == pytest.approx(0.3)
    h.method.rate = 0.5
    batch = next(iter(h.ctx.train_batches(batch_size=40)))
    # Make the networks disagree so that "whose pick trains whom" is observable.
    net1, net2 = h.method.nets
    with torch.no_grad():
        net2.classifier.weight.mul_(-1)
    before = [p.detach().clone() for p in net1.parameters()]
    import torch.nn.functional as F

    with torch.no_grad():
        loss2 = F.cross_entropy(net2(batch.views), batch.y, reduction="none")
    peer_pick = small_loss_positions(loss2, 0.5)
    # Expected update of net 1: one SGD step on net 2's small-loss samples only.
    reference = type(net1)(h.ctx.view_shapes, 10, [32])
    reference.load_state_dict(net1.state_dict())
    optimizer = torch.optim.SGD(reference.parameters(), lr=h.ctx.spec.train.lr, momentum=0.9, weight_decay=5e-4)
    F.cross_entropy(reference(batch.views)[peer_pick], batch.y[peer_pick]).backward()
    optimizer.step()
    h.method.train_step(batch)
    for a, b, old in zip(net1.parameters(), reference.parameters(), before):
        assert not torch.equal(a, old)
        assert torch.allclose(a, b, atol=1e-6)


def test_run_logs_selection_quality_and_forget_rate(db_path, cli, tmp_path):
    spec = tiny_spec("coteaching", {"num_gradual": 2}, noise={"rate": 0.5}, train={"epochs": 3})
    with Store(open_db(str(db_path), create=True)) as store:
        [outcome] = execute_runs([spec], store)
        assert outcome.status == "finished", outcome.error
        rows = store.metrics([outcome.run_id])
    by_epoch = {(k, e): v for _, k, e, v in rows}
    assert [by_epoch[("coteaching/forget_rate", e)] for e in range(3)] == pytest.approx([0.0, 0.25, 0.5])
    assert by_epoch[("select/fraction", 0)] == pytest.approx(1.0)
    assert by_epoch[("select/fraction", 2)] == pytest.approx(0.5, abs=0.03)  # per-batch int() rounding
    for e in range(3):
        assert 0 <= by_epoch[("select/precision", e)] <= 1
        assert {("coteaching/loss1", e), ("coteaching/loss2", e), ("train/loss", e)} <= by_epoch.keys()
    out = tmp_path / "precision.png"
    result = cli("plot-curves", "--db", db_path, "--metric", "select/precision", "--out", out)
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000


def test_checkpoint_round_trip_continues_training_identically():
    spec = tiny_spec("coteaching", {"num_gradual": 2})
    assert_round_trip_continues_identically(spec, epochs_before=1, epochs_after=1)

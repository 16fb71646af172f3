"""L_DMI: the loss, the refusal to start without a checkpoint, `init_from: auto` pretraining that
is linked and reused."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nlx.methods.base import Batch
from nlx.methods.dmi import MissingCheckpoint, dmi_loss
from nlx.runs import execute_runs
from nlx.specs import RunSpec
from nlx.store.db import open_db
from nlx.store.models import INIT_FROM
from nlx.store.repo import Store

from .conftest import tiny_spec


def spec_for(params: dict, method: str = "dmi", noise: str = "asym", seed: int = 0) -> RunSpec:
    return RunSpec.model_validate({
        "noise": {"type": noise, "rate": 0.4},
        "model": {"hidden": [16]},
        "method": {"name": method, "params": params},
        "train": {"epochs": 2, "batch_size": 256, "device": "cpu"},
        "seed": seed,
    })


@pytest.fixture
def store(db_path):
    with Store(open_db(str(db_path), create=True)) as store:
        yield store


def test_dmi_loss_prefers_predictions_that_determine_the_labels():
    y = torch.arange(4).repeat(8)
    informative = F.one_hot(y, 4).float() * 5
    uninformative = torch.zeros(32, 4)  # U has identical rows: det 0, the loss is at its maximum
    assert dmi_loss(informative, y) < dmi_loss(uninformative, y)
    assert dmi_loss(uninformative, y) == pytest.approx(-torch.log(torch.tensor(1e-3)).item())
    # A consistent relabelling (a permutation: invertible noise) leaves the loss unchanged.
    torch.testing.assert_close(dmi_loss(informative, (y + 1) % 4), dmi_loss(informative, y))


def test_dmi_refuses_to_start_without_a_checkpoint(cli, experiments_file, db_path, build_method):
    result = cli("run", "tiny", "--config", experiments_file, "--db", db_path, "method.name=dmi", "noise.type=asym")
    assert result.exit_code == 2
    assert "init_from" in result.output
    assert not db_path.exists()
    with pytest.raises(MissingCheckpoint, match="init_from"):
        build_method(spec_for({}))


def test_dmi_auto_pretrains_links_and_reuses_the_ce_run(store):
    [ce, dmi] = execute_runs([spec_for({"init_from": "auto"})], store)
    assert (ce.spec.method.name, ce.status, dmi.status) == ("ce", "finished", "finished"), dmi.error
    [link] = store.links(dmi.run_id)
    assert (link.run_id, link.source_run_id, link.relation, link.checkpoint_tag) == (dmi.run_id, ce.run_id, INIT_FROM, "best")

    # Another DMI run on the same data/noise/model/seed reuses it; another seed pretrains anew.
    outcomes = execute_runs([spec_for({"init_from": "auto", "lr": 1e-5}), spec_for({"init_from": "auto"}, seed=1)], store)
    assert [o.spec.method.name for o in outcomes] == ["dmi", "ce", "dmi"]
    assert store.links(outcomes[0].run_id)[0].source_run_id == ce.run_id
    assert store.links(outcomes[2].run_id)[0].source_run_id == outcomes[1].run_id
    assert sum(run.method == "ce" for run in store.runs()) == 2


def test_dmi_from_a_run_id_checks_that_the_run_matches(store):
    [ce] = execute_runs([spec_for({}, method="ce")], store)
    [ok] = execute_runs([spec_for({"init_from": ce.run_id})], store)
    assert ok.status == "finished", ok.error
    [bad] = execute_runs([spec_for({"init_from": ce.run_id}, noise="sym")], store)
    assert bad.status == "failed" and "different noise" in bad.error


def test_dmi_loss_has_a_usable_gradient_for_ten_classes():
    # With a joint in frequencies, det(U) ~ 1e-12 for 10 classes and the eps inside the log
    # flattens the loss; in counts (as the official code) the gradient is alive.
    torch.manual_seed(0)
    y = torch.randint(0, 10, (64,))
    logits = (3 * F.one_hot(y, 10).float() + torch.randn(64, 10)).requires_grad_()
    dmi_loss(logits, y).backward()
    assert logits.grad.abs().sum() > 1e-2


def dmi_from_a_ce_network(build_method, params: dict):
    ce = build_method(spec_for({}, method="ce"))
    return build_method(spec_for(params), init_state=ce.state_dict())


def set_gradients(method, norm: float) -> list[torch.Tensor]:
    params = list(method.net.parameters())
    for p in params:
        p.grad = torch.ones_like(p)
    scale = norm / torch.nn.utils.get_total_norm([p.grad for p in params])
    for p in params:
        p.grad *= scale
    return [p.grad for p in params]


def test_a_gradient_spike_is_capped_at_clip_spikes_times_the_running_mean(build_method):
    method = dmi_from_a_ce_network(build_method, {"init_from": 1, "clip_spikes": 5.0})
    set_gradients(method, 2.0)
    method.cap_gradient_spike()  # the first step sets the scale
    assert method.norm_mean.item() == pytest.approx(2.0) and method.capped.item() == 0

    grads = set_gradients(method, 100.0)  # a spike: 50x the mean
    direction = torch.cat([g.flatten() for g in grads]) / 100.0
    method.cap_gradient_spike()
    capped = torch.cat([p.grad.flatten() for p in method.net.parameters()])
    assert capped.norm().item() == pytest.approx(10.0, rel=1e-5)  # 5 x the mean of 2
    torch.testing.assert_close(capped / 10.0, direction)  # same direction, shorter
    assert method.capped.item() == 1
    assert method.norm_mean.item() == pytest.approx(0.98 * 2.0 + 0.02 * 10.0)  # the capped norm enters the mean

    set_gradients(method, 3.0)  # an ordinary step is untouched
    method.cap_gradient_spike()
    assert torch.nn.utils.get_total_norm([p.grad for p in method.net.parameters()]).item() == pytest.approx(3.0, rel=1e-5)
    assert method.capped.item() == 0

    # The running mean is part of the checkpoint: a resumed run caps where the original would.
    restored = dmi_from_a_ce_network(build_method, {"init_from": 1, "clip_spikes": 5.0})
    restored.load_state_dict(method.state_dict())
    assert restored.norm_mean.item() == pytest.approx(method.norm_mean.item())


def test_without_clip_spikes_a_spike_goes_through(build_method):
    method = dmi_from_a_ce_network(build_method, {"init_from": 1, "clip_spikes": None})
    y = torch.arange(10).repeat(3)
    step = method.train_step(Batch(views=[torch.randn(30, 64)], y=y, idx=torch.arange(30)))
    assert step["capped"].item() == 0 and method.norm_mean is None


def test_before_step_sees_unscaled_gradients_on_the_amp_path(harness):
    """ctx.optimize's AMP branch (CUDA only in a run) driven with CPU's gradient scaler: the hook
    that caps DMI's spikes must see the true gradients, not ones scaled by 2**16."""
    ctx = harness(tiny_spec("ce")).ctx
    ctx._amp = True
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    x, y = torch.randn(8, 4), torch.arange(8) % 3
    F.cross_entropy(net(x), y).backward()
    expected = [p.grad.clone() for p in net.parameters()]
    seen = []
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    ctx.optimize(F.cross_entropy(net(x), y), optimizer, before_step=lambda: seen.append([p.grad.clone() for p in net.parameters()]))
    assert len(seen) == 1
    for got, want in zip(seen[0], expected):
        torch.testing.assert_close(got, want)

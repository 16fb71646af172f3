"""Meta-learning methods (L2R, IEG, IEG+DivideMix) and the trusted set: the L2R meta-gradient
against finite differences, weight normalisation, fixed-size meta batches, the never-empty
mislabelled selection, the EMA, co-guessing, and that only the trusted set's true labels reach a
method."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nlx.context import endless_positions
from nlx.data.prepare import prepare_data
from nlx.engine import trust_metrics, weight_metrics
from nlx.errors import SpecError
from nlx.methods.base import Batch
from nlx.methods.ieg import label_mix, possibly_mislabelled
from nlx.methods.ieg_dividemix import co_guess
from nlx.methods.l2r import meta_weights
from nlx.methods.meta import EMA, normalise_weights, trusted_loss_gradient, virtual_parameters
from nlx.runs import check_needs, execute_runs
from nlx.specs import RunSpec
from nlx.store.db import open_db
from nlx.store.repo import Store

from .conftest import Harness, assert_round_trip_continues_identically, tiny_spec

TRUSTED = {"trusted": {"per_class": 3}}


class Tiny(nn.Module):
    """A two-layer net over a list of views, like nlx's models."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(4, 5)
        self.out = nn.Linear(5, 3)

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(views[0])))


def tiny_batches(seed: int = 0) -> tuple[Batch, Batch]:
    g = torch.Generator().manual_seed(seed)
    noisy = Batch([torch.randn(6, 4, generator=g, dtype=torch.float64)], torch.randint(3, (6,), generator=g), torch.arange(6))
    clean = Batch([torch.randn(5, 4, generator=g, dtype=torch.float64)], torch.randint(3, (5,), generator=g), torch.arange(5))
    return noisy, clean


# --- the meta-gradient ----------------------------------------------------------------------
def test_l2r_meta_gradient_equals_finite_differences():
    torch.manual_seed(0)
    net = Tiny().double()
    noisy, clean = tiny_batches()
    lr = 0.3
    losses = F.cross_entropy(net(noisy.views), noisy.y, reduction="none")
    eps = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    virtual = virtual_parameters(net, (eps * losses).sum(), lr)
    _, [grad] = trusted_loss_gradient(net, virtual, clean, [eps])

    def trusted_loss_after_step(weights: torch.Tensor) -> float:
        # An explicit SGD step on a copy of the parameters, no autograd through it.
        params = dict(net.named_parameters())
        step_loss = (weights * F.cross_entropy(net(noisy.views), noisy.y, reduction="none")).sum()
        grads = torch.autograd.grad(step_loss, list(params.values()), allow_unused=True)
        moved = {n: (p - lr * g if g is not None else p).detach() for (n, p), g in zip(params.items(), grads)}
        return float(F.cross_entropy(torch.func.functional_call(net, moved, (clean.views,)), clean.y))

    h = 1e-5
    numeric = torch.tensor([
        (trusted_loss_after_step(h * torch.eye(6, dtype=torch.float64)[i]) - trusted_loss_after_step(-h * torch.eye(6, dtype=torch.float64)[i])) / (2 * h)
        for i in range(6)
    ], dtype=torch.float64)
    assert grad.abs().max() > 1e-4  # not trivially zero
    assert torch.allclose(grad, numeric, rtol=1e-5, atol=1e-9)


def test_virtual_step_with_momentum_mimics_sgd():
    torch.manual_seed(1)
    net = Tiny().double()
    noisy, _ = tiny_batches()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    for _ in range(2):  # fill the momentum buffers
        opt.zero_grad()
        F.cross_entropy(net(noisy.views), noisy.y).backward()
        opt.step()
    loss = F.cross_entropy(net(noisy.views), noisy.y)
    virtual = virtual_parameters(net, loss, 0.1, opt, momentum=0.9)
    opt.zero_grad()
    loss.backward()
    opt.step()  # the real step: virtual params must equal the stepped ones
    for name, p in net.named_parameters():
        assert torch.allclose(virtual[name].detach(), p.detach(), atol=1e-12), name


def test_l2r_weights_are_non_negative_and_sum_to_one():
    torch.manual_seed(2)
    net = Tiny()
    noisy, clean = tiny_batches(3)
    noisy = Batch([noisy.views[0].float()], noisy.y, noisy.idx)
    clean = Batch([clean.views[0].float()], clean.y, clean.idx)
    weights, losses, meta_loss = meta_weights(net, noisy, clean, lr=0.1)
    assert (weights >= 0).all() and torch.isclose(weights.sum(), torch.tensor(1.0))
    assert losses.shape == (6,) and losses.requires_grad and torch.isfinite(meta_loss)


def test_normalise_weights_clamps_normalises_and_handles_all_zero():
    w = normalise_weights(torch.tensor([0.2, -0.5, 0.6, 0.0]))
    assert torch.allclose(w, torch.tensor([0.25, 0.0, 0.75, 0.0]))
    assert torch.equal(normalise_weights(torch.tensor([-1.0, 0.0, -2.0])), torch.zeros(3))


# --- meta batches ----------------------------------------------------------------------------
@pytest.mark.parametrize("count,size", [(10, 4), (3, 8), (8, 8), (1, 5)])
def test_meta_batches_always_have_the_requested_size(count, size):
    stream = endless_positions(count, size, torch.Generator().manual_seed(0))
    batches = [next(stream) for _ in range(25)]
    assert all(len(b) == size for b in batches)
    drawn = torch.cat(batches)
    assert drawn.min() >= 0 and drawn.max() < count
    passes = drawn[: (len(drawn) // count) * count].reshape(-1, count)
    assert all(torch.equal(p.sort().values, torch.arange(count)) for p in passes)  # each pass a permutation


def test_context_meta_batches_are_trusted_and_fixed_size():
    harness = Harness(tiny_spec("l2r", data=TRUSTED))  # 30 trusted samples, batches of 128
    stream = harness.ctx.meta_batches(128)
    for _ in range(3):
        batch = next(stream)
        assert len(batch.y) == 128 and len(batch.views[0]) == 128
        assert batch.idx.max() < harness.ctx.trusted_size == 30


# --- IEG pieces ------------------------------------------------------------------------------
def test_mislabelled_selection_is_never_empty():
    equal = torch.full((8,), 0.125)
    assert possibly_mislabelled(equal, 0.5).all()  # quantile == minimum: `<` would pick nothing
    zeros = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.0])
    assert possibly_mislabelled(zeros, 0.3).sum() == 6
    spread = torch.tensor([0.1, 0.4, 0.2, 0.3])
    assert possibly_mislabelled(spread, 0.5).tolist() == [True, False, True, False]
    assert possibly_mislabelled(spread, 1.1).all()
    for seed in range(20):
        w = normalise_weights(torch.randn(16, generator=torch.Generator().manual_seed(seed)))
        for q in (0.0, 0.1, 0.5, 0.9):
            assert possibly_mislabelled(w, q).any()


def test_ema_follows_the_tensorflow_schedule():
    torch.manual_seed(3)
    source, target = nn.Linear(2, 2), nn.Linear(2, 2)
    ema = EMA(source, target, decay=0.999)
    assert torch.equal(target.weight, source.weight)  # starts as a copy
    expected = source.weight.detach().clone()
    for t in range(1, 6):
        with torch.no_grad():
            source.weight.add_(1.0)
        ema.update()
        decay = min(0.999, (1 + t) / (10 + t))
        expected = decay * expected + (1 - decay) * source.weight.detach()
        assert ema.updates == t and abs(ema.current_decay() - decay) < 1e-12
        assert torch.allclose(target.weight, expected)
    assert not target.weight.requires_grad
    late = EMA(source, nn.Linear(2, 2), decay=0.5)
    late.updates = 10_000
    assert late.current_decay() == 0.5


def test_co_guess_weights_networks_by_their_meta_weights():
    p1 = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1]])
    p2 = torch.tensor([[0.1, 0.9], [0.1, 0.9], [0.1, 0.9]])
    w1, w2 = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    guess = co_guess([p1, p2], [w1, w2], T=1.0)
    assert torch.allclose(guess[0], p1[0]) and torch.allclose(guess[1], p2[1])
    assert torch.allclose(guess[2], torch.tensor([0.5, 0.5]))  # both zero: equal say
    assert torch.allclose(co_guess([p1, p2], [w1, w2], T=0.5).sum(1), torch.ones(3))


def test_label_mix():
    onehot, guess = torch.eye(2), torch.tensor([[0.2, 0.8], [0.6, 0.4]])
    mixed = label_mix(torch.tensor([1.0, 0.0]), onehot, guess)
    assert torch.allclose(mixed, torch.tensor([[1.0, 0.0], [0.6, 0.4]]))


def test_weight_and_trust_metrics():
    flipped = torch.tensor([False, False, True, True, False])
    weights = torch.tensor([0.5, 0.25, 0.25, 0.0, float("nan")])
    m = weight_metrics(weights, flipped)
    assert m["meta/weight_clean_share"] == pytest.approx(0.75) and m["meta/zero_share"] == pytest.approx(0.25)
    t = trust_metrics(torch.tensor([1.0, 0.0, 1.0, 0.0, float("nan")]), flipped)
    assert t["meta/eps_mean"] == pytest.approx(0.5) and t["meta/eps_precision"] == pytest.approx(0.5)


# --- the trusted set ---------------------------------------------------------------------------
def test_trusted_set_is_carved_before_noise_and_disjoint():
    spec = tiny_spec("ce", data={"trusted": {"per_class": 4}}, noise={"type": "sym", "rate": 0.6})
    prepared = prepare_data(spec)
    trusted = prepared.trusted
    assert np.bincount(trusted.labels).tolist() == [4] * 10
    assert not set(trusted.index) & (set(prepared.train.index) | set(prepared.val.index) | set(prepared.test.index))
    from nlx.data.registry import load_dataset

    assert np.array_equal(trusted.labels, load_dataset("digits").labels[trusted.index])  # true labels
    by_fraction = prepare_data(tiny_spec("ce", data={"trusted": {"fraction": 0.05}}))
    assert abs(len(by_fraction.trusted.index) - 0.05 * (len(by_fraction.trusted.index) + len(by_fraction.train.index) + len(by_fraction.val.index))) <= 2
    as_val = prepare_data(tiny_spec("ce", data={"trusted": {"per_class": 4}, "val": "trusted"}))
    assert np.array_equal(as_val.val.index, as_val.trusted.index) and np.array_equal(as_val.val.labels, as_val.trusted.labels)


def test_methods_that_need_a_trusted_set_refuse_to_run_without_one():
    with pytest.raises(SpecError, match="data.trusted"):
        check_needs(tiny_spec("ieg"))
    check_needs(tiny_spec("ieg", data=TRUSTED))
    with pytest.raises(ValueError, match="trusted"):
        RunSpec.model_validate({"data": {"val": "trusted"}})
    with pytest.raises(ValueError, match="exactly one"):
        RunSpec.model_validate({"data": {"trusted": {"per_class": 2, "fraction": 0.1}}})


def test_only_the_trusted_sets_true_labels_reach_a_method(tmp_path, monkeypatch):
    """The engine hands a method noisy training labels and, when it needs one, the trusted set:
    no tensor the context holds equals the true labels of the noisy training set."""
    import nlx.engine

    contexts = []
    original = nlx.engine.MethodContext

    def spy(*args, **kwargs):
        ctx = original(*args, **kwargs)
        contexts.append(ctx)
        return ctx

    monkeypatch.setattr(nlx.engine, "MethodContext", spy)
    specs = [tiny_spec(m, data=TRUSTED, train={"epochs": 1}, noise={"rate": 0.6}) for m in ("l2r", "ce")]
    with Store(open_db(str(tmp_path / "runs.db"), create=True)) as store:
        outcomes = execute_runs(specs, store)
        assert [o.status for o in outcomes] == ["finished", "finished"]
        stored = [store.labels(o.run_id) for o in outcomes]
    prepared = prepare_data(specs[0])
    true_train = torch.as_tensor(prepared.train_true)
    l2r_ctx, ce_ctx = contexts
    assert ce_ctx.trusted_size == 0 and l2r_ctx.trusted_size == 30  # only a method that needs it
    for ctx in contexts:
        for value in vars(ctx).values():
            for tensor in value if isinstance(value, list) else [value]:
                if isinstance(tensor, torch.Tensor) and tensor.shape == true_train.shape and tensor.dtype == torch.int64:
                    assert not torch.equal(tensor, true_train)
    assert torch.equal(l2r_ctx._trusted_labels, torch.as_tensor(prepared.trusted.labels))
    for labels in stored:  # indices stored with the run, disjoint from the training split
        assert np.array_equal(labels["trusted_index"], prepared.trusted.index)
        assert not set(labels["trusted_index"]) & set(labels["train_index"])


# --- the methods in a run --------------------------------------------------------------------
@pytest.mark.parametrize("method", ["l2r", "ieg", "ieg_dividemix"])
def test_meta_methods_log_their_metrics(tmp_path, method):
    spec = tiny_spec(method, data={**TRUSTED, "augment": "gaussian"}, train={"epochs": 1})
    with Store(open_db(str(tmp_path / "runs.db"), create=True)) as store:
        [outcome] = execute_runs([spec], store)
        assert outcome.status == "finished", outcome.error
        rows = store.metrics([outcome.run_id], ["meta/loss", "meta/weight_clean_share", "meta/zero_share", "meta/eps_mean", "meta/eps_precision"])
    values = {key: value for _, key, _, value in rows}
    assert 0 <= values["meta/weight_clean_share"] <= 1 and 0 <= values["meta/zero_share"] <= 1
    assert values["meta/loss"] > 0
    assert ("meta/eps_mean" in values) == (method != "l2r")


@pytest.mark.parametrize("method", ["l2r", "ieg", "ieg_dividemix"])
def test_meta_methods_resume_identically(method):
    spec = tiny_spec(method, data={**TRUSTED, "augment": "gaussian"}, train={"epochs": 2, "batch_size": 256})
    assert_round_trip_continues_identically(spec, epochs_before=1, epochs_after=1)

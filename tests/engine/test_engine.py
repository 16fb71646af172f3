"""The engine: methods see only noisy labels, runs are deterministic, summaries match the epoch
rows, divergence fails the run with a reason, and checkpoints restore the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nlx.data.prepare import prepare_data
from nlx.engine import DeviceData, evaluate, load_checkpoint
from nlx.methods import register_method
from nlx.methods.ce import CrossEntropy
from nlx.runs import execute_runs
from nlx.specs import RunSpec
from nlx.store.db import open_db
from nlx.store.repo import Store

SEEN: dict[str, list] = {}


@register_method("_spy")
class Spy(CrossEntropy):
    """CE that records every label and tensor it is handed."""

    def setup(self) -> None:
        super().setup()
        SEEN["ctx_tensors"] = [v for v in vars(self.ctx).values() if isinstance(v, torch.Tensor)]
        SEEN["ctx_tensors"] += [t for v in vars(self.ctx).values() if isinstance(v, list) for t in v if isinstance(t, torch.Tensor)]
        SEEN["batches"] = []

    def train_step(self, batch):
        SEEN["batches"].append((batch.idx.clone(), batch.y.clone()))
        return super().train_step(batch)


@register_method("_diverge")
class Diverge(CrossEntropy):
    """CE whose loss turns NaN at epoch 1, step 3."""

    def start_epoch(self, epoch: int) -> dict[str, float]:
        self.epoch, self.step = epoch, 0
        return {}

    def train_step(self, batch):
        out = super().train_step(batch)
        if self.epoch == 1 and self.step == 3:
            out["loss"] = out["loss"] * float("nan")
        self.step += 1
        return out


def tiny_spec(**changes) -> RunSpec:
    base = {
        "noise": {"type": "sym", "rate": 0.4},
        "model": {"hidden": [32]},
        "train": {"epochs": 3, "batch_size": 128, "device": "cpu"},
    }
    for key, value in changes.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return RunSpec.model_validate(base)


@pytest.fixture
def store(db_path):
    with Store(open_db(str(db_path), create=True)) as store:
        yield store


def test_methods_never_receive_true_training_labels(store):
    spec = tiny_spec(method={"name": "_spy"})
    [outcome] = execute_runs([spec], store)
    assert outcome.status == "finished"
    data = prepare_data(spec)
    noisy, true = torch.as_tensor(data.train.labels), torch.as_tensor(data.train_true)
    assert (noisy != true).float().mean() > 0.3  # the check below would be vacuous without noise
    for idx, y in SEEN["batches"]:
        assert torch.equal(y, noisy[idx])
    for tensor in SEEN["ctx_tensors"]:
        if tensor.dtype == torch.int64 and tensor.shape == true.shape:
            assert not torch.equal(tensor, true)
    assert sum(len(idx) for idx, _ in SEEN["batches"]) == 3 * len(noisy)


def test_same_seed_same_noise_and_metrics_different_seed_different_noise(store):
    a, b, c = execute_runs([tiny_spec(seed=1), tiny_spec(seed=1), tiny_spec(seed=2)], store)
    labels = [store.labels(o.run_id)["noisy_labels"] for o in (a, b, c)]
    assert np.array_equal(labels[0], labels[1])
    assert not np.array_equal(labels[0], labels[2])
    metrics = [[(k, e, v) for _, k, e, v in store.metrics([o.run_id]) if not k.startswith("time/")] for o in (a, b)]
    assert metrics[0] == metrics[1]


def test_summary_matches_epoch_rows_and_noise_is_recorded(store):
    spec = tiny_spec(train={"epochs": 4})
    [outcome] = execute_runs([spec], store)
    run = store.get_run(outcome.run_id)
    rows = store.metrics([run.id], ["val/acc", "test/acc"])
    val = [v for _, k, _, v in rows if k == "val/acc"]
    test = [v for _, k, _, v in rows if k == "test/acc"]
    best = int(np.argmax(val))  # first of ties, like the engine
    assert run.best_val_epoch == best
    assert run.best_val_test_acc == pytest.approx(test[best])
    assert run.last_test_acc == pytest.approx(test[-1])
    assert run.epochs_done == 4
    flips = store.labels(run.id)["flip_mask"]
    assert run.realised_noise_rate == pytest.approx(flips.mean())
    assert abs(run.realised_noise_rate - 0.4) < 0.06
    [true_T] = [m for m in store.matrices([run.id]) if m.kind == "truth"]
    assert true_T.num_classes == 10


def test_every_design_metric_is_logged_each_epoch(store):
    [outcome] = execute_runs([tiny_spec()], store)
    rows = store.metrics([outcome.run_id])
    keys = {k for _, k, _, _ in rows}
    expected = {
        "train/loss", "train/acc", "train_clean/acc", "train_flipped/acc_noisy", "train_flipped/acc_true",
        "val/loss", "val/acc", "test/loss", "test/acc", "lr", "time/epoch_s",
    }
    assert expected <= keys
    for key in expected:
        assert sorted(e for _, k, e, _ in rows if k == key) == [0, 1, 2]


def test_non_finite_loss_fails_the_run_naming_epoch_and_step(store):
    spec = tiny_spec(method={"name": "_diverge"})
    ok = tiny_spec(seed=5)
    bad, good = execute_runs([spec, ok], store)
    assert bad.status == "failed" and good.status == "finished"  # the rest still run
    run = store.get_run(bad.run_id)
    assert run.status == "failed"
    assert "non-finite loss at epoch 1 step 3" in run.error
    assert run.epochs_done == 1  # epoch 0 was written, epoch 1 was not


def test_best_checkpoint_restores_the_best_epoch_model(store):
    spec = tiny_spec(train={"epochs": 4})
    [outcome] = execute_runs([spec], store)
    run = store.get_run(outcome.run_id)
    state = load_checkpoint(store.load_checkpoint(run.id, "best"))
    assert state["epoch"] == run.best_val_epoch
    assert dict((tag, epoch) for tag, epoch, _, _ in store.checkpoints(run.id)) == {"best": run.best_val_epoch, "last": 3}

    from nlx.context import MethodContext

    prepared = prepare_data(spec)
    data = DeviceData.from_prepared(prepared, torch.device("cpu"))
    ctx = MethodContext(spec, torch.device("cpu"), prepared.view_shapes, 10, data.train_views, data.train_noisy, torch.Generator())
    method = CrossEntropy(CrossEntropy.Params(), ctx)
    method.setup()
    method.load_state_dict(state["method"])
    assert evaluate(method, data, 512)["test/acc"] == pytest.approx(run.best_val_test_acc)


@register_method("_select_small_loss")
class SelectHalf(CrossEntropy):
    """CE that reports its first half of the training set as 'clean' (a fixed, known selection)."""

    def clean_selection(self):
        selected = torch.zeros(self.ctx.train_size, dtype=torch.bool)
        selected[: self.ctx.train_size // 2] = True
        return selected


def test_selection_quality_is_scored_against_the_flip_mask(store):
    [outcome] = execute_runs([tiny_spec(method={"name": "_select_small_loss"}, train={"epochs": 1})], store)
    flipped = store.labels(outcome.run_id)["flip_mask"]
    half = len(flipped) // 2
    clean_selected = (~flipped[:half]).sum()
    metrics = {k: v for _, k, _, v in store.metrics([outcome.run_id]) if k.startswith("select/")}
    assert metrics["select/precision"] == pytest.approx(clean_selected / half)
    assert metrics["select/recall"] == pytest.approx(clean_selected / (~flipped).sum())
    assert metrics["select/fraction"] == pytest.approx(half / len(flipped))

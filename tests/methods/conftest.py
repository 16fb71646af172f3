"""Helpers for method tests: a tiny digits context, one epoch by hand, and a checkpoint
round-trip through the engine's own serialisation."""

from __future__ import annotations

import pytest
import torch

from nlx.context import MethodContext
from nlx.data.prepare import prepare_data
from nlx.engine import BestTracker, DeviceData, load_checkpoint, serialise_checkpoint, training_state
from nlx.methods import get_method
from nlx.specs import RunSpec


def tiny_spec(method: str, params: dict | None = None, **changes) -> RunSpec:
    base = {
        "noise": {"type": "sym", "rate": 0.4},
        "model": {"hidden": [32]},
        "method": {"name": method, "params": params or {}},
        "train": {"epochs": 3, "batch_size": 128, "device": "cpu"},
    }
    for key, value in changes.items():
        base[key] = {**base.get(key, {}), **value}
    return RunSpec.model_validate(base)


class Harness:
    """A method on a fresh context over the spec's data, driven epoch by epoch like the engine."""

    def __init__(self, spec: RunSpec):
        prepared = prepare_data(spec)
        self.data = DeviceData.from_prepared(prepared, torch.device("cpu"))
        generator = torch.Generator().manual_seed(spec.seed)
        cls = get_method(spec.method.name)
        trusted = "trusted" in cls.needs  # as the engine: only a method that needs it gets it
        self.ctx = MethodContext(
            spec, torch.device("cpu"), prepared.view_shapes, prepared.num_classes,
            self.data.train_views, self.data.train_noisy, generator,
            trusted_views=self.data.trusted_views if trusted else None,
            trusted_labels=self.data.trusted_labels if trusted else None,
        )
        self.method = cls(cls.Params.model_validate(spec.method.params), self.ctx)
        self.method.setup()
        self.epoch = 0
        self.stage_epochs = [stage for stage in self.method.stages() for _ in range(stage.epochs)]

    def run_epoch(self) -> list[dict[str, torch.Tensor]]:
        self.method.stage = self.stage_epochs[self.epoch]
        self.method.start_epoch(self.epoch)
        self.method.train_mode(True)
        steps = [self.method.train_step(batch) for batch in self.method.batches()]
        self.method.end_epoch(self.epoch)
        self.epoch += 1
        return steps

    def checkpoint(self) -> dict:
        state = training_state(self.method, self.epoch, BestTracker(), self.ctx.generator, self.ctx.device_generator)
        return load_checkpoint(serialise_checkpoint(state))

    def restore(self, state: dict) -> None:
        self.method.load_state_dict(state["method"])
        self.ctx.generator.set_state(state["rng"]["batches"])
        self.ctx.device_generator.set_state(state["rng"]["method"])
        self.epoch = state["epoch"]

    def parameters(self) -> list[torch.Tensor]:
        return [p.detach().clone() for name, obj in self.method._tracked.items() if isinstance(obj, torch.nn.Module) for p in obj.parameters()]


@pytest.fixture
def harness():
    return Harness


def assert_round_trip_continues_identically(spec: RunSpec, epochs_before: int, epochs_after: int) -> None:
    """Train, checkpoint, keep training; a fresh method restored from the checkpoint must take
    exactly the same steps (losses and final parameters bit-identical on CPU)."""
    original = Harness(spec)
    for _ in range(epochs_before):
        original.run_epoch()
    state = original.checkpoint()
    expected = [original.run_epoch() for _ in range(epochs_after)]

    restored = Harness(spec)
    restored.restore(state)
    got = [restored.run_epoch() for _ in range(epochs_after)]
    assert len(got) == len(expected)
    for steps_a, steps_b in zip(expected, got):
        assert len(steps_a) == len(steps_b) > 0
        for a, b in zip(steps_a, steps_b):
            assert a.keys() == b.keys()
            for key in a:
                assert torch.equal(a[key], b[key]), key
    for a, b in zip(original.parameters(), restored.parameters()):
        assert torch.equal(a, b)
    selection_a, selection_b = original.method.clean_selection(), restored.method.clean_selection()
    assert (selection_a is None) == (selection_b is None)
    if selection_a is not None:
        assert torch.equal(selection_a, selection_b)


def build(spec: RunSpec, init_state: dict | None = None):
    """A method built on real digits data without the engine loop, to inspect its state."""
    prepared = prepare_data(spec)
    data = DeviceData.from_prepared(prepared, torch.device("cpu"))
    ctx = MethodContext(
        spec, torch.device("cpu"), prepared.view_shapes, prepared.num_classes, data.train_views, data.train_noisy,
        torch.Generator().manual_seed(0), val_views=data.val_views, val_labels=data.val_labels,
        true_T=prepared.noise.T, init_state=init_state,
    )
    cls = get_method(spec.method.name)
    method = cls(cls.Params.model_validate(spec.method.params), ctx)
    method.setup()
    return method


@pytest.fixture
def build_method():
    return build

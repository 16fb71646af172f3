"""A method built on real digits data without the engine loop, to inspect its state."""

from __future__ import annotations

import pytest
import torch

from nlx.context import MethodContext
from nlx.data.prepare import prepare_data
from nlx.engine import DeviceData
from nlx.methods import get_method
from nlx.specs import RunSpec


def build(spec: RunSpec, init_state: dict | None = None):
    prepared = prepare_data(spec)
    data = DeviceData.from_prepared(prepared, torch.device("cpu"))
    ctx = MethodContext(
        spec, torch.device("cpu"), prepared.view_shapes, prepared.num_classes, data.train_views, data.train_noisy,
        torch.Generator().manual_seed(0), val_views=data.val_views, val_labels=data.val_labels, true_T=prepared.noise.T, init_state=init_state,
    )
    cls = get_method(spec.method.name)
    method = cls(cls.Params.model_validate(spec.method.params), ctx)
    method.setup()
    return method



@pytest.fixture
def build_method():
    return build

"""Every network: output shapes on tiny inputs, the sizes the papers give, and a spec error
naming the field when a network cannot take the data."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from nlx.errors import SpecError, describe_validation_error
from nlx.models import build_model, check_model, encoder_names, model_names, parameter_count
from nlx.specs import ModelSpec, RunSpec

CLASSES = 3


def forward(spec: ModelSpec, shapes: list[tuple[int, ...]], batch: int = 2) -> torch.Tensor:
    torch.manual_seed(0)
    net = build_model(spec, shapes, CLASSES)
    return net([torch.randn(batch, *shape) for shape in shapes])


def test_every_network_is_listed():
    assert model_names() == ["cnn1d", "lenet", "mlp", "multiview", "preact_resnet18"]
    assert encoder_names() == ["cnn1d", "lenet", "mlp", "preact_resnet18"]


@pytest.mark.parametrize(
    ("model", "shapes"),
    [
        ({"arch": "mlp", "hidden": [8]}, [(1, 8, 8), (5,)]),  # views flattened and concatenated
        ({"arch": "lenet"}, [(1, 8, 8)]),
        ({"arch": "lenet"}, [(3, 6, 5)]),
        ({"arch": "cnn1d"}, [(1, 40)]),
        ({"arch": "cnn1d"}, [(40,)]),  # a flat vector is one channel
        ({"arch": "cnn1d"}, [(3, 7)]),
        ({"arch": "preact_resnet18"}, [(3, 8, 8)]),
        ({"arch": "preact_resnet18"}, [(1, 5, 7)]),
        ({"arch": "multiview", "encoder": ["mlp", "cnn1d", "lenet"], "hidden": [8]}, [(6,), (1, 12), (1, 8, 8)]),
        ({"arch": "multiview", "encoder": "preact_resnet18", "fusion": "lowrank", "rank": 2}, [(3, 4, 4), (1, 4, 4)]),
    ],
)
def test_output_shapes(model, shapes):
    assert forward(ModelSpec(**model), shapes, batch=3).shape == (3, CLASSES)


@pytest.mark.parametrize("fusion", ["concat", "sum", "lowrank"])
def test_multiview_with_one_view(fusion):
    out = forward(ModelSpec(arch="multiview", fusion=fusion, hidden=[8], embed=4), [(7,)])
    assert out.shape == (2, CLASSES) and torch.isfinite(out).all()


def test_preact_resnet18_has_the_standard_size():
    net = build_model(ModelSpec(arch="preact_resnet18"), [(3, 32, 32)], 10)
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(11.17e6, rel=1e-3)
    assert parameter_count(ModelSpec(arch="preact_resnet18"), [(3, 32, 32)], 10) == sum(p.numel() for p in net.parameters())


def test_cnn1d_is_the_mnist1d_papers_size():
    # 25 channels, kernels 5/3/3, a 125-input linear layer on 1x40 signals: 5,210 parameters.
    net = build_model(ModelSpec(arch="cnn1d"), [(1, 40)], 10)
    assert net.classifier.in_features == 125
    assert sum(p.numel() for p in net.parameters()) == 5210


def test_lenet_keeps_its_parameter_names():
    # Checkpoints stored before the encoders were factored out must still load.
    net = build_model(ModelSpec(arch="lenet"), [(1, 8, 8)], 10)
    assert list(net.state_dict()) == [
        "features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias",
        "classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias",
    ]


@pytest.mark.parametrize(
    ("model", "shapes", "message"),
    [
        ({"arch": "lenet"}, [(64,)], "model.arch: lenet needs image views (C, H, W)"),
        ({"arch": "lenet"}, [(1, 2, 2)], "model.arch: lenet needs images of at least 4x4"),
        ({"arch": "preact_resnet18"}, [(216,)], "model.arch: preact_resnet18 needs image views"),
        ({"arch": "cnn1d"}, [(1, 8, 8)], "model.arch: cnn1d needs 1-D signals"),
        ({"arch": "cnn1d"}, [(1, 2)], "model.arch: cnn1d needs signals of length at least 3"),
        ({"arch": "lenet"}, [(1, 8, 8), (1, 8, 8)], "model.arch: lenet takes one view, got 2"),
        ({"arch": "multiview", "encoder": ["mlp", "lenet"]}, [(5,), (5,)], "model.encoder: view 1: lenet needs image views"),
        ({"arch": "multiview", "encoder": ["mlp", "mlp"]}, [(5,)], "model.encoder: 2 encoders for 1 views"),
    ],
)
def test_a_network_that_cannot_take_the_data_names_the_field(model, shapes, message):
    with pytest.raises(SpecError) as error:
        check_model(ModelSpec(**model), shapes, CLASSES)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("model", "field"),
    [
        ({"encoder": "vit"}, "model.encoder: unknown encoder 'vit'"),
        ({"encoder": ["mlp", "multiview"]}, "model.encoder: unknown encoder 'multiview'"),
        ({"encoder": []}, "model.encoder"),
        ({"fusion": "mean"}, "model.fusion"),
        ({"rank": 0}, "model.rank"),
        ({"embed": 0}, "model.embed"),
    ],
)
def test_bad_multiview_settings_name_the_field(model, field):
    with pytest.raises(ValidationError) as error:
        RunSpec.model_validate({"model": {"arch": "multiview", **model}})
    assert field in describe_validation_error(error.value)


def test_check_model_draws_no_random_numbers():
    torch.manual_seed(0)
    check_model(ModelSpec(arch="multiview", fusion="lowrank"), [(6,), (4,)], CLASSES)
    drawn = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(drawn, torch.rand(1))


def test_labels_tell_fusions_apart():
    assert ModelSpec(arch="lenet").label == "lenet"
    assert ModelSpec(arch="multiview").label == "multiview-concat"
    assert ModelSpec(arch="multiview", fusion="lowrank", rank=8).label == "multiview-lowrank8"
    assert ModelSpec(arch="multiview", encoder=["cnn1d", "mlp"], fusion="sum").label == "multiview[cnn1d,mlp]-sum"


def test_multiview_settings_a_network_ignores_leave_the_spec_hash_alone():
    # A spec of another network hashes its model as before these settings existed, so stored
    # runs are still found for reuse.
    assert RunSpec().content()["model"] == {"arch": "mlp", "hidden": [256, 256], "dropout": 0.0}
    assert RunSpec(model={"arch": "lenet", "fusion": "lowrank"}).spec_hash() == RunSpec(model={"arch": "lenet"}).spec_hash()
    concat = RunSpec(model={"arch": "multiview"})
    assert concat.spec_hash() == RunSpec(model={"arch": "multiview", "rank": 9, "embed": 3}).spec_hash()
    lowrank = RunSpec(model={"arch": "multiview", "fusion": "lowrank"})
    assert len({concat.spec_hash(), lowrank.spec_hash(), RunSpec(model={"arch": "multiview", "fusion": "lowrank", "rank": 2}).spec_hash()}) == 3

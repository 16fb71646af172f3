"""Networks. Every network's forward takes `views`: a list of tensors, one per view.

`mlp` concatenates all views (early fusion); `lenet`, `cnn1d` and `preact_resnet18` take one
view; `multiview` gives each view its own encoder and fuses their embeddings (late fusion). Each
network but `multiview` offers its feature extractor as such an encoder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nlx.errors import SpecError
from nlx.models.cnn1d import cnn1d, cnn1d_encoder
from nlx.models.common import Encoder, ShapeError
from nlx.models.fusion import build_fusion
from nlx.models.lenet import LeNet, lenet_encoder
from nlx.models.mlp import MLP, mlp_encoder
from nlx.models.multiview import MultiView
from nlx.models.preact_resnet import preact_resnet18, preact_resnet18_encoder

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Network:
    build: Callable[[Any, list[Shape], int], nn.Module]  # (ModelSpec, view shapes, classes)
    encoder: Callable[[Any, Shape], Encoder] | None = None  # (ModelSpec, one view's shape)


def _multiview(spec, view_shapes: list[Shape], num_classes: int) -> nn.Module:
    names = [spec.encoder] * len(view_shapes) if isinstance(spec.encoder, str) else spec.encoder
    if len(names) != len(view_shapes):
        raise SpecError(
            f"model.encoder: {len(names)} encoders for {len(view_shapes)} views; give one name for all views or one per view"
        )
    encoders = []
    for index, (name, shape) in enumerate(zip(names, view_shapes)):
        try:
            encoders.append(_NETWORKS[name].encoder(spec, shape))
        except ShapeError as error:
            raise SpecError(f"model.encoder: view {index}: {error}") from None
    fusion = build_fusion(spec.fusion, [encoder.width for encoder in encoders], spec.embed, spec.rank)
    return MultiView(encoders, fusion, num_classes, spec.dropout)


_NETWORKS: dict[str, Network] = {
    "mlp": Network(lambda spec, shapes, classes: MLP(shapes, classes, spec.hidden, spec.dropout), mlp_encoder),
    "lenet": Network(lambda spec, shapes, classes: LeNet(shapes, classes, spec.dropout), lenet_encoder),
    "cnn1d": Network(cnn1d, cnn1d_encoder),
    "preact_resnet18": Network(preact_resnet18, preact_resnet18_encoder),
    "multiview": Network(_multiview),
}


def model_names() -> list[str]:
    return sorted(_NETWORKS)


def encoder_names() -> list[str]:
    """Networks that `multiview` can use as a view's encoder (`model.encoder`)."""
    return sorted(name for name, network in _NETWORKS.items() if network.encoder is not None)


def build_model(spec, view_shapes: list[Shape], num_classes: int) -> nn.Module:
    """A fresh network for `spec` (a ModelSpec) on inputs of the given per-view shapes; a
    SpecError naming the field when it cannot take them."""
    try:
        return _NETWORKS[spec.arch].build(spec, [tuple(shape) for shape in view_shapes], num_classes)
    except ShapeError as error:
        raise SpecError(f"model.arch: {error}") from None


def check_model(spec, view_shapes: list[Shape], num_classes: int) -> None:
    """Raise a SpecError when the network cannot take views of these shapes, before a run
    starts. Every network checks the shapes it is built for, so building it is the check; on the
    meta device that takes no memory and draws no random numbers. (A forward pass on meta tensors
    would also catch mismatches a constructor overlooks, but its first call costs seconds.)"""
    with torch.device("meta"):
        build_model(spec, view_shapes, num_classes)


def parameter_count(spec, view_shapes: list[Shape], num_classes: int) -> int:
    """How many parameters the network has on these shapes (built on the meta device: cheap
    even for large networks, e.g. for a benchmark's table of networks)."""
    with torch.device("meta"):
        return sum(p.numel() for p in build_model(spec, view_shapes, num_classes).parameters())


__all__ = ["build_model", "check_model", "encoder_names", "model_names", "parameter_count"]

"""Networks. Every network's forward takes `views`: a list of tensors, one per view."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from nlx.models.lenet import LeNet
from nlx.models.mlp import MLP

# name -> builder(spec, view_shapes, num_classes)
_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "mlp": lambda spec, shapes, classes: MLP(shapes, classes, spec.hidden, spec.dropout),
    "lenet": lambda spec, shapes, classes: LeNet(shapes, classes, spec.dropout),
}


def model_names() -> list[str]:
    return sorted(_BUILDERS)


def build_model(spec, view_shapes: list[tuple[int, ...]], num_classes: int) -> nn.Module:
    """A fresh network for `spec` (a ModelSpec) on inputs of the given per-view shapes."""
    return _BUILDERS[spec.arch](spec, view_shapes, num_classes)

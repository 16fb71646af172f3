"""What the networks share: the per-view encoder each offers to `multiview`, the one-view
classifier built on it, and the checks of view shapes (with their error)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class ShapeError(ValueError):
    """A view shape a network cannot take. The caller names the spec field to blame:
    `model.arch` for a one-view network, `model.encoder` for an encoder inside `multiview`."""


@dataclass
class Encoder:
    """A feature extractor of one view: (B, *shape) -> (B, width)."""

    module: nn.Module
    width: int


def only_view(arch: str, view_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """The shape of the single view a one-view network takes."""
    if len(view_shapes) != 1:
        raise ShapeError(
            f"{arch} takes one view, got {len(view_shapes)} of shapes {view_shapes}; "
            f"fuse them with model.arch=multiview, model.encoder={arch}"
        )
    return view_shapes[0]


def image_shape(arch: str, shape: tuple[int, ...], smallest: int = 1) -> tuple[int, int, int]:
    """(C, H, W) of an image view, or a ShapeError saying what `arch` needs."""
    if len(shape) != 3:
        raise ShapeError(f"{arch} needs image views (C, H, W), got {shape}")
    if min(shape[1:]) < smallest:
        raise ShapeError(f"{arch} needs images of at least {smallest}x{smallest} pixels, got {shape}")
    return shape  # type: ignore[return-value]


class OneView(nn.Module):
    """An encoder's features, dropout, then a linear classifier."""

    def __init__(self, encoder: Encoder, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.features = encoder.module
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.width, num_classes)

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.dropout(self.features(views[0])))

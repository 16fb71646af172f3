"""Multi-layer perceptron over the flattened, concatenated views (early fusion), and the MLP
encoder of one view for `multiview`."""

from __future__ import annotations

import math

import torch
from torch import nn

from nlx.models.common import Encoder


def mlp_layers(width: int, hidden: list[int], dropout: float) -> tuple[list[nn.Module], int]:
    """Linear + ReLU (+ dropout) per hidden width, from `width` inputs; and the output width."""
    layers: list[nn.Module] = []
    for out in hidden:
        layers += [nn.Linear(width, out), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = out
    return layers, width


def mlp_encoder(spec, shape: tuple[int, ...]) -> Encoder:
    layers, width = mlp_layers(math.prod(shape), spec.hidden, spec.dropout)
    return Encoder(nn.Sequential(nn.Flatten(), *layers), width)


class MLP(nn.Module):
    def __init__(self, view_shapes: list[tuple[int, ...]], num_classes: int, hidden: list[int], dropout: float = 0.0):
        super().__init__()
        layers, width = mlp_layers(sum(math.prod(shape) for shape in view_shapes), hidden, dropout)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat([view.flatten(1) for view in views], dim=1)
        return self.classifier(self.features(x))

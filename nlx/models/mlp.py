"""Multi-layer perceptron over the flattened, concatenated views."""

from __future__ import annotations

import math

import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, view_shapes: list[tuple[int, ...]], num_classes: int, hidden: list[int], dropout: float = 0.0):
        super().__init__()
        width = sum(math.prod(shape) for shape in view_shapes)
        layers: list[nn.Module] = []
        for out in hidden:
            layers += [nn.Linear(width, out), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat([view.flatten(1) for view in views], dim=1)
        return self.classifier(self.features(x))

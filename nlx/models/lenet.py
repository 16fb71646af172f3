"""A small LeNet-style CNN for single-channel images (e.g. digits' 1x8x8, MNIST's 1x28x28)."""

from __future__ import annotations

import torch
from torch import nn

from nlx.errors import SpecError


class LeNet(nn.Module):
    def __init__(self, view_shapes: list[tuple[int, ...]], num_classes: int, dropout: float = 0.0):
        super().__init__()
        if len(view_shapes) != 1 or len(view_shapes[0]) != 3:
            raise SpecError(f"model.arch: lenet needs one image view (C, H, W), got shapes {view_shapes}")
        channels, height, width = view_shapes[0]
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        flat = 32 * (height // 4) * (width // 4)
        self.classifier = nn.Sequential(
            nn.Linear(flat, 128), nn.ReLU(), nn.Dropout(dropout), nn.Linear(128, num_classes)
        )

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.features(views[0]))

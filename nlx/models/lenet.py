"""A small LeNet-style CNN for single-channel images (e.g. digits' 1x8x8, MNIST's 1x28x28), and
its encoder of one image view for `multiview`."""

from __future__ import annotations

import torch
from torch import nn

from nlx.models.common import Encoder, image_shape, only_view

HIDDEN = 128  # width of the fully connected layer after the convolutions


def lenet_convs(channels: int) -> nn.Sequential:
    """(B, C, H, W) -> (B, 32 * (H // 4) * (W // 4))."""
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
    )


def _flat_width(height: int, width: int) -> int:
    return 32 * (height // 4) * (width // 4)


def lenet_encoder(spec, shape: tuple[int, ...]) -> Encoder:
    """The convolutions and the hidden layer: LeNet without its dropout and last layer."""
    channels, height, width = image_shape("lenet", shape, smallest=4)
    return Encoder(nn.Sequential(lenet_convs(channels), nn.Linear(_flat_width(height, width), HIDDEN), nn.ReLU()), HIDDEN)


class LeNet(nn.Module):
    def __init__(self, view_shapes: list[tuple[int, ...]], num_classes: int, dropout: float = 0.0):
        super().__init__()
        channels, height, width = image_shape("lenet", only_view("lenet", view_shapes), smallest=4)
        # Module names and order as in the first release, so stored checkpoints still load.
        self.features = lenet_convs(channels)
        self.classifier = nn.Sequential(
            nn.Linear(_flat_width(height, width), HIDDEN), nn.ReLU(), nn.Dropout(dropout), nn.Linear(HIDDEN, num_classes)
        )

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.features(views[0]))

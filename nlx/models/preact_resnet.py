"""PreAct-ResNet18 as DivideMix's official code defines it (the network behind its CIFAR
numbers): a 3x3 stem conv (64 channels) + BN + ReLU, four stages of two pre-activation basic
blocks (64, 128, 256, 512 channels; the first block of stages 2-4 has stride 2), average pooling
and a linear layer; 11.17M parameters for 10 classes. The pooling is adaptive, so images of any
size work (on 32x32 inputs it equals the original 4x4 average pool)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nlx.models.common import Encoder, OneView, image_shape, only_view

STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # (channels, stride of the stage's first block)
BLOCKS_PER_STAGE = 2


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class PreActBlock(nn.Module):
    """BN-ReLU-conv twice, plus a skip connection (a strided 1x1 conv where the shape changes).

    As in DivideMix's code, the skip starts from the pre-activated input relu(bn(x)), also where
    it is the identity (He et al.'s pre-activation block adds x itself there); kept so that
    results compare with the paper's."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        reshapes = stride != 1 or in_channels != out_channels
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False) if reshapes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(activated))))
        return out + self.shortcut(activated)


def preact_resnet18_encoder(spec, shape: tuple[int, ...]) -> Encoder:
    """Everything up to the linear layer: (B, C, H, W) -> (B, 512)."""
    channels, _, _ = image_shape("preact_resnet18", shape)
    layers: list[nn.Module] = [conv3x3(channels, 64), nn.BatchNorm2d(64), nn.ReLU()]
    width = 64
    for out, stride in STAGES:
        for block in range(BLOCKS_PER_STAGE):
            layers.append(PreActBlock(width, out, stride if block == 0 else 1))
            width = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return Encoder(nn.Sequential(*layers), width)


def preact_resnet18(spec, view_shapes: list[tuple[int, ...]], num_classes: int) -> nn.Module:
    return OneView(preact_resnet18_encoder(spec, only_view("preact_resnet18", view_shapes)), num_classes, spec.dropout)

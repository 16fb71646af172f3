"""Late fusion over several views: one encoder per view (any network that offers one, e.g. an
MLP for feature vectors, cnn1d for signals, lenet for images), a fusion of their embeddings
(`nlx.models.fusion`), dropout and a linear classifier."""

from __future__ import annotations

import torch
from torch import nn

from nlx.models.common import Encoder


class MultiView(nn.Module):
    def __init__(self, encoders: list[Encoder], fusion: nn.Module, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.encoders = nn.ModuleList(encoder.module for encoder in encoders)
        self.fusion = fusion
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(fusion.width, num_classes)

    def embed(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        """Each view's embedding, (B, w_m) per view."""
        return [encoder(view) for encoder, view in zip(self.encoders, views)]

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.dropout(self.fusion(self.embed(views))))

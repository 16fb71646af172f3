"""Fusion of per-view embeddings z_m (B, w_m) into one vector (B, width), picked by
`model.fusion`:

- `concat`: [z_1, ..., z_V]; width = sum of w_m.
- `sum`: sum_m relu(P_m z_m), P_m a linear map to `embed` (the views' widths may differ). The
  ReLU keeps the sum from collapsing into a linear map of the concatenation, which is all a
  sum of linear projections followed by a linear classifier would be.
- `lowrank`: low-rank multimodal fusion (Liu et al., ACL 2018). Tensor fusion would take the
  outer product Z of the views' [z_m; 1] and contract it with a weight tensor W of shape
  (w_1 + 1, ..., w_V + 1, embed); LMF factorises W = sum_r (w_1^(r) x ... x w_V^(r)) with
  per-view factors w_m^(r) of shape (w_m + 1, embed), which gives, without ever forming Z or W,

      h = sum_r prod_m ([z_m; 1] @ w_m^(r))          (prod elementwise over views)

  The appended 1 keeps every lower-order interaction (each view alone, each pair, ...) in the
  product. `[z; 1] @ w` is an affine map of z, so each factor is an `nn.Linear` whose bias is the
  row that multiplies the 1. No rank weights or bias outside the sum: both would be absorbed by
  the factors and the classifier.

With one view, concat is the identity, sum one projection and lowrank an affine map.
"""

from __future__ import annotations

import torch
from torch import nn

FUSIONS = ("concat", "sum", "lowrank")


class ConcatFusion(nn.Module):
    def __init__(self, widths: list[int]):
        super().__init__()
        self.width = sum(widths)

    def forward(self, embeddings: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(embeddings, dim=1)


class SumFusion(nn.Module):
    def __init__(self, widths: list[int], embed: int):
        super().__init__()
        self.width = embed
        self.projections = nn.ModuleList(nn.Sequential(nn.Linear(width, embed), nn.ReLU()) for width in widths)

    def forward(self, embeddings: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([project(z) for project, z in zip(self.projections, embeddings)]).sum(0)


class LowRankFusion(nn.Module):
    def __init__(self, widths: list[int], embed: int, rank: int):
        super().__init__()
        self.width, self.rank = embed, rank
        # factors[m] holds w_m^(r) for every r at once: weight (rank * embed, w_m), bias (rank * embed,).
        self.factors = nn.ModuleList(nn.Linear(width, rank * embed) for width in widths)

    def forward(self, embeddings: list[torch.Tensor]) -> torch.Tensor:
        product = None
        for factor, z in zip(self.factors, embeddings):
            projected = factor(z).view(len(z), self.rank, self.width)  # (B, r, embed)
            product = projected if product is None else product * projected
        return product.sum(1)


def build_fusion(kind: str, widths: list[int], embed: int, rank: int) -> nn.Module:
    """A fusion module with a `width` attribute: the size of what it returns."""
    if kind == "concat":
        return ConcatFusion(widths)
    if kind == "sum":
        return SumFusion(widths, embed)
    if kind == "lowrank":
        return LowRankFusion(widths, embed, rank)
    raise ValueError(f"unknown fusion {kind!r}; known: {', '.join(FUSIONS)}")

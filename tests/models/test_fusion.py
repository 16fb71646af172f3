"""Fusion heads: low-rank fusion is tensor fusion with a factorised weight tensor, and every
fusion passes gradients back to every view's encoder."""

from __future__ import annotations

import pytest
import torch

from nlx.models import build_model
from nlx.models.fusion import LowRankFusion, SumFusion
from nlx.specs import ModelSpec


def with_one(z: torch.Tensor) -> torch.Tensor:
    return torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype)], dim=1)


def tensor_fusion(fusion: LowRankFusion, embeddings: list[torch.Tensor]) -> torch.Tensor:
    """The same fusion computed the long way (Zadeh et al.'s tensor fusion): rebuild the full
    weight tensor W = sum_r w_1^(r) x ... x w_V^(r), of shape (w_1 + 1, ..., w_V + 1, embed), and
    contract it with the outer product of the views' [z_m; 1]."""
    axes = "ijkl"[: len(embeddings)]
    factors = []  # w_m for every rank at once: (w_m + 1, rank, embed)
    for linear, z in zip(fusion.factors, embeddings):
        stacked = torch.cat([linear.weight.T, linear.bias[None]], dim=0)
        factors.append(stacked.view(z.shape[1] + 1, fusion.rank, fusion.width))
    W = torch.einsum(",".join(f"{a}re" for a in axes) + f"->{axes}e", *factors)
    Z = torch.einsum(",".join(f"b{a}" for a in axes) + f"->b{axes}", *[with_one(z) for z in embeddings])
    return torch.einsum(f"b{axes},{axes}e->be", Z, W)


@pytest.mark.parametrize(("widths", "rank"), [([3, 2], 1), ([3, 2], 3), ([2, 3, 4], 2), ([5], 2)])
def test_lowrank_equals_tensor_fusion_with_the_factorised_weights(widths, rank):
    torch.manual_seed(0)
    fusion = LowRankFusion(widths, embed=4, rank=rank).double()
    embeddings = [torch.randn(5, width, dtype=torch.float64) for width in widths]
    torch.testing.assert_close(fusion(embeddings), tensor_fusion(fusion, embeddings))


def test_rank_one_fusion_of_two_views_is_a_bilinear_form_with_the_ones_appended():
    torch.manual_seed(0)
    fusion = LowRankFusion([2, 3], embed=1, rank=1).double()
    z1, z2 = torch.randn(1, 2, dtype=torch.float64), torch.randn(1, 3, dtype=torch.float64)
    a = torch.cat([fusion.factors[0].weight[0], fusion.factors[0].bias])  # w_1, (3,)
    b = torch.cat([fusion.factors[1].weight[0], fusion.factors[1].bias])  # w_2, (4,)
    expected = with_one(z1)[0] @ torch.outer(a, b) @ with_one(z2)[0]
    torch.testing.assert_close(fusion([z1, z2]), expected.view(1, 1))


def test_lowrank_is_affine_in_each_view():
    torch.manual_seed(0)
    fusion = LowRankFusion([3, 2], embed=4, rank=3).double()
    z1 = torch.randn(2, 3, dtype=torch.float64)
    u, v = torch.randn(2, 2, dtype=torch.float64), torch.randn(2, 2, dtype=torch.float64)
    t = 0.3
    mixed = fusion([z1, t * u + (1 - t) * v])
    torch.testing.assert_close(mixed, t * fusion([z1, u]) + (1 - t) * fusion([z1, v]))


def test_sum_fusion_projects_views_of_different_widths_to_one():
    fusion = SumFusion([3, 7], embed=5)
    assert fusion([torch.randn(2, 3), torch.randn(2, 7)]).shape == (2, 5)


@pytest.mark.parametrize("fusion", ["concat", "sum", "lowrank"])
def test_gradients_reach_every_views_encoder(fusion):
    torch.manual_seed(0)
    spec = ModelSpec(arch="multiview", encoder=["mlp", "cnn1d", "lenet"], fusion=fusion, hidden=[8], embed=6, rank=2)
    shapes = [(6,), (1, 12), (1, 8, 8)]
    net = build_model(spec, shapes, 3)
    net([torch.randn(4, *shape) for shape in shapes]).logsumexp(1).sum().backward()
    for index, encoder in enumerate(net.encoders):
        for name, parameter in encoder.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, (index, name)

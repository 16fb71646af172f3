"""Batched, on-device augmentations, picked by name with `data.augment` and used by methods that
need two "views" of a sample (DivideMix; later the meta-learning methods) through
`ctx.augment(views)`.

Each augmentation maps one view's batch `x` (B, ...) to a tensor of the same shape, drawing its
randomness from the run's device generator (so a run is reproducible and a checkpoint restores
it). Which to use depends on the data:

- `crop_flip`: images (C, H, W). Random crop after zero padding of max(1, H // 8) pixels (4 for
  CIFAR's 32x32, as in the papers; 1 for digits' 8x8) and a horizontal flip with probability 1/2.
- `gaussian`: features or 1-D signals. Adds N(0, (0.1 * s)^2) noise, s = each feature's standard
  deviation over the batch, so the perturbation follows the data's own scale.
- `dropout`: features. Zeroes each entry with probability 0.1 and rescales the rest by 1 / 0.9.
- `none`: identity. Methods then treat the data as un-augmentable (DivideMix guesses labels from
  a single forward pass, K=1, instead of averaging two augmented copies).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
_AUGMENTATIONS: dict[str, Augmentation] = {}
_IMAGE_ONLY = {"crop_flip"}

GAUSSIAN_SCALE = 0.1
DROPOUT_P = 0.1


def register_augmentation(name: str) -> Callable[[Augmentation], Augmentation]:
    def decorator(fn: Augmentation) -> Augmentation:
        _AUGMENTATIONS[name] = fn
        return fn

    return decorator


def augmentation_names() -> list[str]:
    return sorted(_AUGMENTATIONS)


def check_augmentation(name: str, view_shapes: list[tuple[int, ...]]) -> str | None:
    """Why `name` cannot apply to views of these per-sample shapes, or None when it can."""
    if name not in _AUGMENTATIONS:
        return f"unknown augmentation {name!r}; known: {', '.join(augmentation_names())}"
    if name in _IMAGE_ONLY and any(len(shape) != 3 for shape in view_shapes):
        return f"{name} needs image views (C, H, W), got shapes {view_shapes}"
    return None


def augment_views(name: str, views: list[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
    fn = _AUGMENTATIONS[name]
    return [fn(view, generator) for view in views]


@register_augmentation("none")
def identity(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return x


@register_augmentation("crop_flip")
def crop_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H, W): per-sample random crop of the zero-padded image, then flip."""
    batch, _, height, width = x.shape
    pad = max(1, height // 8)
    padded = F.pad(x, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (2, batch), generator=generator, device=x.device)
    rows = offsets[0, :, None] + torch.arange(height, device=x.device)  # (B, H)
    cols = offsets[1, :, None] + torch.arange(width, device=x.device)  # (B, W)
    # Advanced indexing gathers every sample's window at once: (B, H, W, C) -> (B, C, H, W).
    batch_index = torch.arange(batch, device=x.device)[:, None, None]
    cropped = padded.permute(0, 2, 3, 1)[batch_index, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    flip = torch.rand(batch, generator=generator, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], cropped.flip(-1), cropped)


@register_augmentation("gaussian")
def gaussian(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    scale = x.std(dim=0, unbiased=False, keepdim=True) if len(x) > 1 else torch.zeros_like(x[:1])
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + GAUSSIAN_SCALE * scale * noise


@register_augmentation("dropout")
def feature_dropout(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= DROPOUT_P
    return x * keep / (1 - DROPOUT_P)

"""Shared machinery of the meta-learning methods (L2R, IEG, IEG+DivideMix): the virtual SGD step
taken with `torch.func.functional_call` (no copy of the module), the trusted-batch loss at the
virtual parameters, meta weights from its gradient, and the EMA of a network.

The idea (Ren et al. 2018): give every sample of a noisy batch a weight w_i, take one SGD step on
sum_i w_i * l_i(theta), giving theta'(w); the samples whose up-weighting would lower the loss on
a trusted (clean) batch at theta'(w) are the ones worth learning from. The gradient of the
trusted loss with respect to w, at w = 0 (L2R) or w = 1/B (IEG), is computed by differentiating
through the virtual step (second order: a Hessian-vector product, which autograd does for us).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from nlx.methods.base import Batch


def virtual_parameters(
    net: nn.Module,
    loss: torch.Tensor,
    lr: float,
    optimizer: torch.optim.Optimizer | None = None,
    momentum: float = 0.0,
) -> dict[str, torch.Tensor]:
    """theta' = theta - lr * (g + momentum * buffer + weight_decay * theta), g = d loss / d theta,
    kept in the autograd graph (create_graph) so that theta' can be differentiated with respect to
    whatever `loss` depends on (the example weights). With an SGD `optimizer`, its momentum
    buffers and weight decay make the virtual step mimic the real one (IEG's meta momentum);
    `momentum=0` ignores the buffers. Parameters without a gradient path stay as they are."""
    names, params = zip(*[(name, p) for name, p in net.named_parameters() if p.requires_grad])
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    state = getattr(optimizer, "state", {})
    decay = float(optimizer.param_groups[0].get("weight_decay", 0.0)) if isinstance(optimizer, torch.optim.SGD) else 0.0
    virtual = {}
    for name, p, g in zip(names, params, grads):
        if g is None:
            virtual[name] = p
            continue
        step = g + decay * p.detach()
        buffer = state.get(p, {}).get("momentum_buffer") if momentum else None
        if buffer is not None:
            step = step + momentum * buffer
        virtual[name] = p - lr * step
    return virtual


def call_with(net: nn.Module, parameters: dict[str, torch.Tensor], views: list[torch.Tensor]) -> torch.Tensor:
    """The network's output with `parameters` in place of its own (buffers stay the module's)."""
    return functional_call(net, parameters, (views,), strict=False)


def trusted_loss_gradient(
    net: nn.Module, virtual: dict[str, torch.Tensor], trusted: Batch, wrt: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Mean CE of the trusted batch at the virtual parameters, and its gradient with respect to
    each tensor of `wrt` (the example weights, IEG's eps). The graph is kept: the real step
    reuses the forward pass of the noisy batch."""
    meta_loss = F.cross_entropy(call_with(net, virtual, trusted.views).float(), trusted.y)
    grads = torch.autograd.grad(meta_loss, list(wrt), allow_unused=True, retain_graph=True)
    return meta_loss.detach(), [torch.zeros_like(t) if g is None else g for t, g in zip(wrt, grads)]


def normalise_weights(raw: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B,): clamped at zero and normalised to sum to one; a batch whose weights are all
    zero stays all zero (no sample helps the trusted loss: the step learns nothing from it)."""
    clamped = raw.clamp(min=0)
    total = clamped.sum()
    return torch.where(total > 0, clamped / total.clamp(min=1e-12), torch.zeros_like(clamped))


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, C) logits, (B, C) target distributions -> (B,) per-sample cross-entropy."""
    return -(F.log_softmax(logits.float(), dim=1) * targets).sum(1)


class EMA:
    """Exponential moving average of a network's parameters, as TensorFlow's
    ExponentialMovingAverage with `num_updates` (which the IEG code uses): after the t-th update
    (t = 1, 2, ...) the decay is min(decay, (1 + t) / (10 + t)), so early averages are not
    dominated by the random initialisation. Buffers (batch-norm statistics) are copied."""

    def __init__(self, source: nn.Module, target: nn.Module, decay: float):
        self.source, self.target, self.decay = source, target, decay
        self.updates = 0
        target.load_state_dict(source.state_dict())
        for p in target.parameters():
            p.requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = self.current_decay()
        for avg, p in zip(self.target.parameters(), self.source.parameters()):
            avg.mul_(decay).add_(p.detach(), alpha=1 - decay)
        for avg, b in zip(self.target.buffers(), self.source.buffers()):
            avg.copy_(b)


class WeightLog:
    """Per-sample weights of the current epoch over training positions (NaN = not weighted yet),
    which the engine scores against the flip mask."""

    def __init__(self, size: int, device: torch.device):
        self.values = torch.full((size,), float("nan"), device=device)

    def reset(self) -> None:
        self.values.fill_(float("nan"))

    def record(self, idx: torch.Tensor, weights: torch.Tensor) -> None:
        self.values[idx] = weights.detach().float()


"""Co-teaching (Han et al., NeurIPS 2018): two networks, each updated on the small-loss samples
its peer selects in every mini-batch.

Deep networks fit clean labels before noisy ones, so early in training the samples with small
loss are mostly clean. Each network ranks the batch by its own loss and hands its smallest
(1 - R(e)) share to the *other* network, which trains only on those: the two networks filter
different errors, so one network's mistakes are not reinforced by itself. R(e) ramps up from 0,
because at first nothing has been learned and every sample looks alike.

Paper defaults: tau = the noise rate (here the spec's nominal rate), T_k = 10 epochs, c = 1. The
paper's optimiser (Adam, lr 0.001, linear decay from epoch 80 of 200) is the spec's `train`
section, not a method parameter.

`per_class` (off by default, as in the paper) ranks the losses within each noisy-label class of
the batch and keeps the same share (1 - R(e)) of every class. Under heavy symmetric noise the
labels are nearly uniform, so a batch-wide ranking mostly measures how likely the networks find
each *class*: the least favoured class is dropped first, is then learned even less, and the
selection collapses onto a few classes (digits, sym0.8: test accuracy ~11% after the first ramp
epoch). Ranking within classes keeps only the clean-vs-noisy signal.

`clean_selection()` reports network 1's small-loss selection accumulated over the epoch: the
samples network 2 was trained on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from nlx.methods import register_method
from nlx.methods.base import Batch, Method


class CoteachingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    forget_rate: float | None = Field(None, ge=0, lt=1, description="tau, the share dropped per batch; None = the spec's noise rate")
    num_gradual: int = Field(10, ge=0, description="T_k, epochs over which the forget rate ramps from 0 to tau")
    exponent: float = Field(1.0, gt=0, description="c, the shape of the ramp: tau * min((epoch / T_k)^c, 1)")
    per_class: bool = Field(False, description="rank losses within each noisy-label class of the batch (keep the same share of every class), not over the whole batch as the paper does")


def forget_rate_at(epoch: int, forget_rate: float, num_gradual: int, exponent: float = 1.0) -> float:
    """R(epoch) = tau * min((epoch / T_k)^c, 1), epochs counted from 0; tau at once when T_k = 0."""
    if num_gradual <= 0:
        return forget_rate
    return forget_rate * min((epoch / num_gradual) ** exponent, 1.0)


def small_loss_positions(losses: torch.Tensor, forget_rate: float) -> torch.Tensor:
    """Indices into the batch of the int((1 - forget_rate) * B) smallest losses (at least one)."""
    keep = max(1, int((1.0 - forget_rate) * len(losses)))
    return torch.argsort(losses.detach())[:keep]


def small_loss_positions_per_class(losses: torch.Tensor, labels: torch.Tensor, forget_rate: float) -> torch.Tensor:
    """Indices into the batch of the smallest losses within each label class: of the n_c samples
    labelled c, the round((1 - forget_rate) * n_c) smallest, at least one per class present.

    Under heavy symmetric noise the loss ranking over a whole batch is dominated by how likely
    the network finds each *class*, so a batch-wide cut drops the disfavoured classes first and
    the selection collapses onto a few classes; ranking within each class removes that bias."""
    by_loss = torch.argsort(losses.detach())
    grouped = by_loss[torch.argsort(labels[by_loss], stable=True)]  # by label, then by loss
    counts = torch.bincount(labels, minlength=int(labels.max()) + 1)
    starts = torch.cumsum(counts, 0) - counts
    sorted_labels = labels[grouped]
    rank = torch.arange(len(labels), device=labels.device) - starts[sorted_labels]
    quota = torch.clamp(torch.round((1.0 - forget_rate) * counts.double()).long(), min=1)
    return grouped[rank < quota[sorted_labels]]


@register_method("coteaching")
class Coteaching(Method):
    Params = CoteachingParams

    def setup(self) -> None:
        ctx = self.ctx
        self.nets, self.optimizers = self.build_networks(2)
        self.tau = ctx.noise_rate if self.params.forget_rate is None else self.params.forget_rate
        self.rate = 0.0
        self.selected = torch.zeros(ctx.train_size, dtype=torch.bool, device=ctx.device)

    def start_epoch(self, epoch: int) -> dict[str, float]:
        self.rate = forget_rate_at(epoch, self.tau, self.params.num_gradual, self.params.exponent)
        self.selected = torch.zeros_like(self.selected)
        return {"forget_rate": self.rate}

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        with self.ctx.autocast():
            logits = [net(batch.views) for net in self.nets]
            losses = [F.cross_entropy(out, batch.y, reduction="none") for out in logits]
            if self.params.per_class:
                picks = [small_loss_positions_per_class(loss, batch.y, self.rate) for loss in losses]
            else:
                picks = [small_loss_positions(loss, self.rate) for loss in losses]
            # Cross update: network 1 learns from network 2's picks and vice versa.
            update1 = losses[0][picks[1]].mean()
            update2 = losses[1][picks[0]].mean()
        self.ctx.optimize(update1, self.optimizers[0])
        self.ctx.optimize(update2, self.optimizers[1])
        self.selected[batch.idx[picks[0]]] = True
        update1, update2 = update1.detach(), update2.detach()
        return {"loss": (update1 + update2) / 2, "loss1": update1, "loss2": update2}

    def predict(self, views: list[torch.Tensor]) -> torch.Tensor:
        return (self.nets[0](views) + self.nets[1](views)) / 2

    def clean_selection(self) -> torch.Tensor:
        return self.selected

    def extra_state(self) -> dict[str, torch.Tensor]:
        return {"selected": self.selected.clone(), "rate": torch.tensor(self.rate, dtype=torch.float64)}

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        self.selected = state["selected"].to(self.ctx.device)
        self.rate = float(state["rate"])

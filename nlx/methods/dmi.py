"""L_DMI (Xu et al., NeurIPS 2019): the information-theoretic loss ``-log |det(U)|``, where
``U = softmax(f(x))^T onehot(y)`` is the (C, C) empirical joint (in counts) of predictions and noisy
labels over a batch. Its determinant is invariant (up to a factor) to any invertible class-
conditional noise, which is why it is robust; its gradient ``U^-T`` explodes when ``U`` is near
singular, as it is for a fresh network. So DMI never trains from scratch: it fine-tunes the best
checkpoint of a CE run (`init_from`: a run id, or `auto` to pretrain or reuse one) with a very
small learning rate.

Even fine-tuned, a batch now and then has a nearly singular ``U`` (its smallest singular value
near 0), and its gradient is tens of times the usual one. Without a guard such spikes wrecked 2 of
3 Fashion-MNIST runs at the paper's lr 1e-6 (accuracy from 87% to 19-46%, and once U was singular
the gradient vanished and the run stayed there). So each step's gradient norm is capped at
``clip_spikes`` times a running mean of the recent norms (``None`` trains as the official code does)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from nlx.errors import NlxError
from nlx.methods import register_method
from nlx.methods.base import Batch, Method


class DMIParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    init_from: int | Literal["auto"] | None = Field(
        None, description="run id whose best checkpoint to fine-tune, or 'auto' (pretrain/reuse CE with the same data, noise, model, training and seed)"
    )
    lr: float = Field(1e-6, gt=0, description="fine-tuning learning rate (the run's train.lr is the pretraining's)")
    eps: float = Field(1e-3, ge=0, description="added to |det(U)| inside the log, as the official code does")
    clip_spikes: float | None = Field(
        5.0, gt=1, description="cap each step's gradient norm at this many times the running mean of recent norms; null: no cap (the official code)"
    )


# Weight of the newest (capped) gradient norm in the running mean the spike cap is relative to.
NORM_MEAN_DECAY = 0.98


class MissingCheckpoint(NlxError):
    exit_code = 2


def dmi_loss(logits: torch.Tensor, y: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """``-log(|det(U)| + eps)`` with ``U = softmax(logits)^T onehot(y)``, the joint in counts.

    Counts, not frequencies, as the official code does: the two differ by the constant
    ``C log B`` without eps, but with eps a normalised U of 10 classes has det ~1e-12 and the
    eps swamps it, leaving no gradient at all.

    Parameters
    ----------
    logits : torch.Tensor, shape (B, C)
    y : torch.Tensor, shape (B,), int64 noisy labels
    """
    probs = F.softmax(logits.float(), dim=1)
    joint = probs.T @ F.one_hot(y, probs.shape[1]).float()
    return -torch.log(torch.linalg.det(joint).abs() + eps)


@register_method("dmi")
class DMI(Method):
    Params = DMIParams
    needs = frozenset({"checkpoint"})

    def setup(self) -> None:
        state = self.ctx.init_state
        if state is None or "net" not in state.get("tracked", {}):
            raise MissingCheckpoint(
                "dmi needs a checkpoint with a network named 'net' to start from: set method.params.init_from "
                "to a finished CE run id, or to 'auto'"
            )
        self.net = self.track("net", self.ctx.build_network())
        self.net.load_state_dict(state["tracked"]["net"])
        self.optimizer = self.track("optimizer", self.ctx.build_optimizer(self.net.parameters(), lr=self.params.lr))
        self.scheduler = self.track("scheduler", self.ctx.build_scheduler(self.optimizer))
        self.norm_mean: torch.Tensor | None = None  # running mean of capped gradient norms, on the device
        self.capped = torch.zeros((), device=self.ctx.device)  # whether the last step was capped

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        with self.ctx.autocast():
            logits = self.net(batch.views)
        loss = dmi_loss(logits, batch.y, self.params.eps)
        cap = self.cap_gradient_spike if self.params.clip_spikes is not None else None
        self.ctx.optimize(loss, self.optimizer, before_step=cap)
        return {"loss": loss.detach(), "capped": self.capped}

    def cap_gradient_spike(self) -> None:
        """Scale the gradients down to `clip_spikes` x the running mean norm when above it, with
        tensor ops only (no host sync per step)."""
        grads = [p.grad for p in self.net.parameters() if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads)
        if self.norm_mean is None:  # the first step, from the CE checkpoint, sets the scale
            self.norm_mean = norm.detach().clone()
        limit = self.params.clip_spikes * self.norm_mean
        torch._foreach_mul_(grads, torch.clamp(limit / (norm + 1e-12), max=1.0))
        self.capped = (norm > limit).float()
        # A non-finite norm (an AMP overflow: that step is skipped) leaves the mean as it was.
        capped_norm = torch.minimum(norm, limit)
        updated = NORM_MEAN_DECAY * self.norm_mean + (1 - NORM_MEAN_DECAY) * capped_norm
        self.norm_mean = torch.where(torch.isfinite(capped_norm), updated, self.norm_mean)

    def extra_state(self) -> dict:
        return {"norm_mean": None if self.norm_mean is None else self.norm_mean.item()}

    def load_extra_state(self, state: dict) -> None:
        value = state.get("norm_mean")
        self.norm_mean = None if value is None else torch.tensor(value, device=self.ctx.device)

    def predict(self, views: list[torch.Tensor]) -> torch.Tensor:
        return self.net(views)

"""Learning to reweight (Ren, Zeng, Yang & Urtasun, ICML 2018): per mini-batch, weights of the
noisy samples from one meta-gradient step on a trusted clean batch.

Every step:
1. per-sample losses l_i of the noisy batch; example weights eps_i start at zero;
2. a virtual SGD step theta'(eps) = theta - lr * grad sum_i eps_i l_i(theta), built with
   `torch.func.functional_call` (see `meta.py`; the module is not copied);
3. the trusted batch's mean loss L(theta'(eps)); its gradient with respect to eps, at eps = 0,
   is -lr * <grad L(theta), grad l_i(theta)>: samples whose gradient agrees with the clean one;
4. w = max(-dL/deps, 0), normalised to sum to one (an all-zero batch stays zero and teaches
   nothing), then the real step on sum_i w_i l_i with the spec's optimizer.

At eps = 0 the virtual step does not move theta, so the virtual learning rate only scales the
gradient and the normalisation removes it: L2R has no meta learning rate to tune. Weights are
normalised per batch as in the paper (the research notes warn this forces a share of every batch
to count even when the whole batch is noisy). Trusted batches always have `meta_batch_size`
samples, drawn across passes over the trusted set.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from nlx.methods import register_method
from nlx.methods.base import Batch, Method
from nlx.methods.meta import WeightLog, normalise_weights, trusted_loss_gradient, virtual_parameters


class L2RParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    meta_batch_size: int | None = Field(None, ge=1, description="trusted samples per step; None = train.batch_size (the paper: equal)")


@register_method("l2r")
class LearningToReweight(Method):
    Params = L2RParams
    needs = frozenset({"trusted"})

    def setup(self) -> None:
        [self.net], [self.optimizer] = self.build_networks(1)
        self.meta_size = self.params.meta_batch_size or self.ctx.spec.train.batch_size
        self.weights = WeightLog(self.ctx.train_size, self.ctx.device)
        self.meta_stream = None

    def start_epoch(self, epoch: int) -> dict[str, float]:
        # A fresh stream per epoch: a resumed run, whose generator is saved at epoch ends, draws
        # the same trusted batches as an uninterrupted one.
        self.meta_stream = self.ctx.meta_batches(self.meta_size)
        self.weights.reset()
        return {}

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        trusted = next(self.meta_stream)
        weights, losses, meta_loss = meta_weights(self.net, batch, trusted, self.optimizer.param_groups[0]["lr"])
        loss = (weights * losses).sum()
        self.ctx.optimize(loss, self.optimizer)
        self.weights.record(batch.idx, weights)
        return {"loss": loss.detach(), "ce": losses.detach().mean(), "meta/loss": meta_loss}

    def predict(self, views: list[torch.Tensor]) -> torch.Tensor:
        return self.net(views)

    def sample_weights(self) -> torch.Tensor:
        return self.weights.values


def meta_weights(net: torch.nn.Module, batch: Batch, trusted: Batch, lr: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B,) normalised L2R weights (detached), (B,) per-sample losses (in the graph, for the real
    step) and the trusted loss at the virtual parameters."""
    losses = F.cross_entropy(net(batch.views).float(), batch.y, reduction="none")
    eps = torch.zeros_like(losses, requires_grad=True)
    virtual = virtual_parameters(net, (eps * losses).sum(), lr)
    meta_loss, [grad_eps] = trusted_loss_gradient(net, virtual, trusted, [eps])
    return normalise_weights(-grad_eps).detach(), losses, meta_loss

"""T-Revision (Xia et al., NeurIPS 2019), vectorised over the batch.

Three stages: `warmup` (CE on the noisy labels, keeping the best-validation weights, whose
predictions on the training set give T_hat by anchor points); `reweight` (from those weights,
importance-weighted CE with beta = p(y|x) / (p(.|x) @ T_hat)[y]); `revise` (from the best
reweight weights, the same loss with T_hat + dT, where the slack dT starts at zero and is learned
with the network by Adam at a tiny learning rate). The official code adds the loss one sample at
a time; here one batch is one tensor expression, so the batch size only changes what it should.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from nlx.errors import SpecError
from nlx.methods import register_method
from nlx.methods.base import Batch, Stage
from nlx.methods.tmatrix import EstimationParams, TransitionMethod, importance_weighted_ce

# Share of train.epochs per stage when not given: the paper's 20 warm-up epochs matter most for
# the estimate; the remaining budget is split between reweighting and revision.
WARMUP_SHARE, REVISE_SHARE = 0.3, 0.35
FUSED_ADAM_DEVICES = ("cpu", "cuda")  # where torch has a fused Adam kernel


class TRevisionParams(EstimationParams):
    warmup_epochs: int | None = Field(None, ge=1, description="CE epochs before estimating T; None: 30% of train.epochs")
    revise_epochs: int | None = Field(None, ge=1, description="epochs learning dT; None: 35% of train.epochs")
    lr_revision: float = Field(5e-7, gt=0, description="Adam learning rate of the revision stage (network and dT)")
    weight_decay_revision: float = Field(1e-4, ge=0, description="Adam weight decay of the revision stage")


@register_method("trevision")
class TRevision(TransitionMethod):
    Params = TRevisionParams

    def setup(self) -> None:
        super().setup()
        c = self.ctx.num_classes
        self.dT = self.track("dT", _Slack(c).to(self.ctx.device))
        # Built now, not at the stage switch, so checkpoints always hold the same objects.
        params = list(self.net.parameters()) + list(self.dT.parameters())
        self.revise_optimizer = self.track(
            "revise_optimizer",
            # Fused: one kernel for the whole update. The per-tensor Adam cost the revision stage a
            # third more than a CE step on the small MLPs (bench/method_cost.py); results as Adam's.
            torch.optim.Adam(params, lr=self.params.lr_revision, weight_decay=self.params.weight_decay_revision,
                             fused=self.ctx.device.type in FUSED_ADAM_DEVICES),
        )

    def stages(self) -> list[Stage]:
        epochs = self.ctx.epochs
        warmup = self.params.warmup_epochs or max(1, round(WARMUP_SHARE * epochs))
        revise = self.params.revise_epochs or max(1, round(REVISE_SHARE * epochs))
        reweight = epochs - warmup - revise
        if reweight < 1:
            raise SpecError(f"method.params: warm-up {warmup} + revision {revise} epochs leave none of train.epochs={epochs} for reweighting")
        return [Stage("warmup", warmup), Stage("reweight", reweight), Stage("revise", revise)]

    def start_epoch(self, epoch: int) -> dict[str, float]:
        if self.stage.name == "reweight" and self.T_hat is None:
            self.restore_best()
            self.set_T(self.estimate())
        elif self.stage.name == "revise" and not self.revising:
            self.restore_best()
            self.revising = True
        return {}

    @property
    def revising(self) -> bool:
        return bool(self.dT.started)

    @revising.setter
    def revising(self, value: bool) -> None:
        self.dT.started.fill_(value)

    def end_epoch(self, epoch: int) -> dict[str, float]:
        extra = super().end_epoch(epoch)
        if self.stage.name == "reweight":
            extra |= self.select_model()  # the revision starts from the best reweighted weights
        if self.stage.name == "revise":
            extra["dT_abs_sum"] = float(self.dT.weight.detach().abs().sum())
        return extra

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        if self.stage.name == "warmup":
            return self.warmup_step(batch)
        with self.ctx.autocast():
            logits = self.net(batch.views)
        if self.stage.name == "reweight":
            loss = importance_weighted_ce(logits, batch.y, self.T_hat)
            self.ctx.optimize(loss, self.optimizer)
        else:
            loss = importance_weighted_ce(logits, batch.y, self.T_hat + self.dT.weight)
            self.ctx.optimize(loss, self.revise_optimizer)
        return {"loss": loss.detach()}

    def current_T(self) -> torch.Tensor | None:
        if self.T_hat is not None and self.revising:
            return self.T_hat + self.dT.weight.detach()
        return self.T_hat

    def transition_matrix(self):
        T = super().transition_matrix()
        if T is not None and self.stage.name == "revise":
            T = T + self.dT.weight.detach().cpu().numpy()
        return T


class _Slack(nn.Module):
    """The learnable correction dT (C, C), zero at the start, and whether revision has begun."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_classes, num_classes))
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))

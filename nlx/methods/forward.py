"""Forward loss correction (Patrini et al., CVPR 2017): train on ``softmax(f(x)) @ T`` against the
noisy labels, with T estimated from a CE warm-up (anchor points) or, as an oracle for ablations,
the noise's true T."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from nlx.errors import SpecError
from nlx.methods import register_method
from nlx.methods.base import Batch, Stage
from nlx.methods.tmatrix import EstimationParams, TransitionMethod, clone_state, forward_nll


class ForwardParams(EstimationParams):
    t_source: Literal["estimated", "true"] = Field("estimated", description="T from the warm-up model, or the true T (oracle)")
    warmup_epochs: int | None = Field(None, ge=0, description="CE epochs before estimating T; None: 30% of train.epochs (0 with the true T)")
    restart: Literal["scratch", "best"] = Field(
        "scratch", description="after estimating T, train a fresh network (as the paper does) or continue from the best warm-up weights"
    )


@register_method("forward")
class Forward(TransitionMethod):
    Params = ForwardParams

    def setup(self) -> None:
        super().setup()
        # The initial weights and optimizer state, so `restart: scratch` retrains the same init.
        self.initial = (clone_state(self.net.state_dict()), self.optimizer.state_dict())
        if self.params.t_source == "true":
            self.set_T(self.ctx.true_T)

    def warmup_epochs(self) -> int:
        if self.params.warmup_epochs is not None:
            return self.params.warmup_epochs
        return 0 if self.params.t_source == "true" else max(1, round(0.3 * self.ctx.epochs))

    def stages(self) -> list[Stage]:
        warmup = self.warmup_epochs()
        if warmup >= self.ctx.epochs:
            raise SpecError(f"method.params.warmup_epochs: {warmup} leaves no epoch of train.epochs={self.ctx.epochs} for the corrected stage")
        return [stage for stage in (Stage("warmup", warmup), Stage("forward", self.ctx.epochs - warmup)) if stage.epochs]

    def start_epoch(self, epoch: int) -> dict[str, float]:
        if self.stage.name == "forward" and self.T_hat is None:
            self.restore_best()
            self.set_T(self.estimate())
            if self.params.restart == "scratch":
                self.net.load_state_dict(self.initial[0])
                self.optimizer.load_state_dict(self.initial[1])
        return {}

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        if self.stage.name == "warmup":
            return self.warmup_step(batch)
        with self.ctx.autocast():
            logits = self.net(batch.views)
        loss = forward_nll(logits, batch.y, self.T_hat)
        self.ctx.optimize(loss, self.optimizer)
        return {"loss": loss.detach()}

"""Cross-entropy on the noisy labels: the baseline every robust method is measured against."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from nlx.methods import register_method
from nlx.methods.base import Batch, Method


class CEParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="0 = plain cross-entropy")


@register_method("ce")
class CrossEntropy(Method):
    Params = CEParams

    def setup(self) -> None:
        [self.net], [self.optimizer] = self.build_networks(1)

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        with self.ctx.autocast():
            logits = self.net(batch.views)
            loss = F.cross_entropy(logits, batch.y, label_smoothing=self.params.label_smoothing)
        self.ctx.optimize(loss, self.optimizer)
        return {"loss": loss.detach()}

    def predict(self, views: list[torch.Tensor]) -> torch.Tensor:
        return self.net(views)

"""What the transition-matrix methods share: a CE warm-up with validation model selection, T
estimated from the selected warm-up model's predictions on the (noisy) training set, and the
losses that use T. `forward` and `trevision` build on `TransitionMethod`."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from nlx.estimation import estimate_T
from nlx.methods.base import Batch, Method


class EstimationParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    estimator: Literal["anchor", "confident_joint"] = Field("anchor", description="how T is estimated after the warm-up")
    percentile: float | None = Field(97.0, gt=0, le=100, description="anchor estimator: drop probabilities at or above this percentile (None: keep the max)")
    track_warmup_T: bool = Field(True, description="estimate (and store) T after every warm-up epoch, not only at its end")


def forward_nll(logits: torch.Tensor, y: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    """Forward-corrected loss (Patrini et al. 2017): ``-log (softmax(logits) @ T)[y]``, mean.

    logits (B, C) model the clean posterior; ``@ T`` turns them into the noisy posterior that
    the noisy labels y (B,) are drawn from."""
    noisy_post = F.softmax(logits.float(), dim=1) @ T
    return F.nll_loss(noisy_post.clamp_min(1e-12).log(), y)


def importance_weighted_ce(logits: torch.Tensor, y: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    """T-Revision's reweighted loss: CE on the noisy label times ``beta = p(y|x) / (p(.|x) @ T)[y]``.

    The network's probabilities enter beta detached, so the network sees plain importance-
    weighted CE; T (which carries the learnable slack dT when revising) keeps its gradient, the
    only path by which dT is learned. (The official code, looping per sample, lets gradients flow
    through beta into the network too.)"""
    logits = logits.float()
    probs = F.softmax(logits, dim=1).detach()
    clean = probs.gather(1, y[:, None]).squeeze(1)
    noisy = (probs @ T).gather(1, y[:, None]).squeeze(1)
    beta = clean / noisy.clamp_min(1e-12)
    return (beta * F.cross_entropy(logits, y, reduction="none")).mean()


def clone_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in state.items()}


class TransitionMethod(Method):
    """One network; a `warmup` stage of CE whose best-validation weights estimate T."""

    def setup(self) -> None:
        self.net = self.track("net", self.ctx.build_network())
        self.optimizer = self.track("optimizer", self.ctx.build_optimizer(self.net.parameters()))
        self.scheduler = self.track("scheduler", self.ctx.build_scheduler(self.optimizer))
        self.T_hat: torch.Tensor | None = None  # (C, C) on the device, once estimated
        self.best_val = -1.0
        self.best_state: dict[str, Any] | None = None  # best-validation weights of the current stage

    # --- stage bookkeeping --------------------------------------------------------------------
    def warmup_epochs(self) -> int:
        raise NotImplementedError

    def select_model(self) -> dict[str, float]:
        """Keep the weights with the best validation accuracy of the current stage."""
        val_acc = self.val_accuracy()
        if val_acc > self.best_val:
            self.best_val, self.best_state = val_acc, clone_state(self.net.state_dict())
        return {"val_acc_selected": self.best_val}

    def restore_best(self) -> None:
        """Continue from the stage's best-validation weights; the next stage selects afresh."""
        if self.best_state is not None:
            self.net.load_state_dict(self.best_state)
        self.best_val, self.best_state = -1.0, None

    @torch.no_grad()
    def val_accuracy(self) -> float:
        """Accuracy on the validation split, by the criterion the engine uses for it."""
        self.net.eval()
        predict = self.predict_noisy if self.ctx.spec.data.val == "noisy" else self.predict
        hits, total = torch.zeros((), device=self.ctx.device), 0
        for batch in self.ctx.val_batches():
            hits += (predict(batch.views).argmax(1) == batch.y).sum()
            total += len(batch.y)
        self.net.train()
        return float(hits) / max(total, 1)

    @torch.no_grad()
    def train_probs(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, C) softmax outputs on the training set in order, and the (N,) noisy labels."""
        self.net.eval()
        probs, labels = [], []
        for batch in self.ctx.train_batches(self.ctx.spec.train.eval_batch_size, shuffle=False):
            probs.append(F.softmax(self.net(batch.views).float(), dim=1))
            labels.append(batch.y)
        self.net.train()
        return torch.cat(probs).cpu().numpy(), torch.cat(labels).cpu().numpy()

    def estimate(self) -> np.ndarray:
        probs, noisy = self.train_probs()
        return estimate_T(self.params.estimator, probs, noisy, self.params.percentile)

    def set_T(self, T: np.ndarray) -> None:
        self.T_hat = torch.as_tensor(T, dtype=torch.float32, device=self.ctx.device)

    # --- hooks -------------------------------------------------------------------------------
    def end_epoch(self, epoch: int) -> dict[str, float]:
        extra = super().end_epoch(epoch)
        if self.stage.name == "warmup":
            extra |= self.select_model()
            if self.params.track_warmup_T:
                self._warmup_T = self.estimate()
        return extra

    def warmup_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        with self.ctx.autocast():
            loss = F.cross_entropy(self.net(batch.views), batch.y)
        self.ctx.optimize(loss, self.optimizer)
        return {"loss": loss.detach()}

    def transition_estimator(self) -> str:
        if getattr(self.params, "t_source", "estimated") == "true":
            return f"{self.name}/true"
        return f"{self.name}/{self.params.estimator}"

    def transition_matrix(self) -> np.ndarray | None:
        if self.stage is not None and self.stage.name == "warmup":
            return getattr(self, "_warmup_T", None)
        return None if self.T_hat is None else self.T_hat.cpu().numpy().astype(np.float64)

    def predict(self, views: list[torch.Tensor]) -> torch.Tensor:
        return self.net(views)

    def current_T(self) -> torch.Tensor | None:
        """The T the method trains with now; None before it has one (warm-up)."""
        return self.T_hat

    def predict_noisy(self, views: list[torch.Tensor]) -> torch.Tensor:
        """log(softmax(f(x)) @ T): the noisy-label posterior the loss fits, once T is known."""
        T = self.current_T()
        logits = self.net(views)
        if T is None:
            return logits
        return (F.softmax(logits.float(), dim=1) @ T).clamp_min(1e-12).log()

    def extra_state(self) -> dict[str, Any]:
        return {"T_hat": self.T_hat, "best_val": self.best_val, "best_state": self.best_state}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.T_hat, self.best_val, self.best_state = state["T_hat"], state["best_val"], state["best_state"]

"""IEG (Zhang, Zhang, Arik, Lee & Pfister, "Distilling effective supervision from severe label
noise", CVPR 2020): meta re-weighting of both the noisy label and a guessed label, plus
semi-supervised regularisation (mixup with guessed labels, consistency) and an EMA model.

Every step, on a noisy batch and a fixed-size trusted batch:
1. label guessing: softmax over the logit-normalised outputs of K copies of the batch (the raw
   batch and K - 1 augmented ones; K = 1, the model's own output, where `data.augment` is none),
   averaged and sharpened with temperature T;
2. meta step (see `meta.py`): example weights w start at 1/B and label-mixing coefficients eps at
   `grad_eps_init`; the loss sum_i w_i CE(eps_i * onehot(y_i) + (1 - eps_i) * guess_i, f(x_i))
   takes a virtual SGD step (meta learning rate, with the optimizer's momentum buffers scaled by
   `meta_momentum`); the trusted loss at the virtual parameters is differentiated with respect
   to w and eps. New weights: max(-dL/dw, 0) normalised to sum one (all-zero handled); new eps:
   1 where dL/deps < 0 (trusting the noisy label helps), else 0 (use the guess);
3. possibly mislabelled samples: those with weight below the `mis_threshold` quantile of the
   batch's weights (never empty: `<=` when the quantile is the minimum; >= 1 selects all, the
   default 1.1 as the paper's appendix recommends, which keeps each loss term's batch size fixed);
4. loss = (mean CE with the new eps + sum_i w_i CE with the initial eps) / 2
        + mixup loss: the trusted batch (true labels) and the selected samples' K copies (guessed
          labels) mixed together, Beta(beta, beta), logit-normalised CE: trusted part
          + ce_factor * guessed part
        + consistency_factor * KL(f(raw copy) || f(augmented copy)) over the selected samples
          (needs K >= 2: without augmentation there is no second view and the term is zero);
5. the real step, then the EMA (decay min(ema_decay, (1 + t) / (10 + t)), as TensorFlow's
   ExponentialMovingAverage with num_updates in the official code); evaluation uses the EMA.

Defaults are the official code's (ce_factor 5, consistency_factor 20, meta_momentum 0.9,
grad_eps_init 0.9, T 0.5, beta 0.5, EMA 0.999). The official meta step size equals its learning
rate (0.1); here `meta_lr` None means the optimizer's current learning rate. Mixup draws one
lambda per batch with DivideMix's helper (the official code approximates a per-sample Beta).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from nlx.methods import register_method
from nlx.methods.base import Batch, Method
from nlx.methods.dividemix import mixup, mixup_lambda, sharpen
from nlx.methods.meta import EMA, WeightLog, normalise_weights, soft_cross_entropy, trusted_loss_gradient, virtual_parameters


class IEGParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    meta_batch_size: int | None = Field(None, ge=1, description="trusted samples per step; None = train.batch_size")
    meta_lr: float | None = Field(None, gt=0, description="step size of the virtual step; None = the optimizer's current lr")
    meta_momentum: float = Field(0.9, ge=0, lt=1, description="scale of the optimizer's momentum buffer in the virtual step")
    grad_eps_init: float = Field(0.9, ge=0, le=1, description="initial eps: weight of the noisy label against the guess")
    ce_factor: float = Field(5.0, ge=0, description="weight of the guessed-label mixup loss (p in the paper)")
    consistency_factor: float = Field(20.0, ge=0, description="weight of the KL consistency loss (k in the paper)")
    T: float = Field(0.5, gt=0, description="sharpening temperature of guessed labels")
    beta: float = Field(0.5, gt=0, description="mixup Beta(beta, beta)")
    ema_decay: float = Field(0.999, ge=0, lt=1, description="decay of the EMA model used for evaluation")
    mis_threshold: float = Field(1.1, gt=0, description="weight quantile below which a sample is possibly mislabelled; >= 1: all")
    guesses: int | None = Field(None, ge=1, description="K copies for label guessing; None = 2 with augmentation, 1 without")
    logit_norm: bool = Field(True, description="normalise logits to unit RMS before guessing and the mixup losses (official code)")


def logit_norm(logits: torch.Tensor, enabled: bool = True) -> torch.Tensor:
    """(B, C) logits divided by their root mean square over the whole batch (official IEG)."""
    if not enabled:
        return logits
    return logits * torch.rsqrt(logits.pow(2).mean() + 1e-8)


def possibly_mislabelled(weights: torch.Tensor, threshold: float) -> torch.Tensor:
    """(B,) bool: weights below their `threshold` quantile; never empty (`<=` when the quantile is
    the minimum, e.g. all weights equal); every sample when threshold >= 1."""
    if threshold >= 1:
        return torch.ones_like(weights, dtype=torch.bool)
    cut = torch.quantile(weights.float(), threshold)
    chosen = weights < cut
    return chosen if bool(chosen.any()) else weights <= cut


def label_mix(eps: torch.Tensor, onehot: torch.Tensor, guess: torch.Tensor) -> torch.Tensor:
    """(B,), (B, C), (B, C) -> (B, C): eps * noisy label + (1 - eps) * guessed label."""
    return eps[:, None] * onehot + (1 - eps[:, None]) * guess


@dataclass
class Learner:
    """One network trained IEG-style, with its optimizer and EMA."""

    net: nn.Module
    optimizer: torch.optim.Optimizer
    ema: EMA


@dataclass
class Forward:
    """A network's outputs on the K copies of a batch, and its (unsharpened) guess."""

    logits: list[torch.Tensor]  # K x (B, C); [0] is the raw batch
    probs: torch.Tensor  # (B, C) mean softmax of the logit-normalised outputs, detached


@dataclass
class MetaResult:
    weights: torch.Tensor  # (B,) normalised, detached
    eps: torch.Tensor  # (B,) in {0, 1}, detached
    meta_loss: torch.Tensor


@register_method("ieg")
class IEG(Method):
    Params = IEGParams
    needs = frozenset({"trusted"})
    networks = 1

    def setup(self) -> None:
        ctx = self.ctx
        nets, optimizers = self.build_networks(self.networks)
        suffixes = [""] if self.networks == 1 else [str(i + 1) for i in range(self.networks)]
        self.learners = [
            Learner(net, opt, EMA(net, self.track(f"ema{s}", ctx.build_network()), self.params.ema_decay))
            for net, opt, s in zip(nets, optimizers, suffixes)
        ]
        self.K = self.params.guesses or (2 if ctx.augments else 1)
        self.meta_size = self.params.meta_batch_size or ctx.spec.train.batch_size
        self.weights = WeightLog(ctx.train_size, ctx.device)
        self.eps = WeightLog(ctx.train_size, ctx.device)
        self.meta_stream = None

    def start_epoch(self, epoch: int) -> dict[str, float]:
        self.meta_stream = self.ctx.meta_batches(self.meta_size)  # fresh per epoch: resumable
        self.weights.reset()
        self.eps.reset()
        return {}

    # --- the pieces of a step ------------------------------------------------------------------
    def copies(self, batch: Batch) -> list[list[torch.Tensor]]:
        """The raw batch and K - 1 augmented copies (views each)."""
        return [batch.views] + [self.ctx.augment(batch.views) for _ in range(self.K - 1)]

    def forward(self, net: nn.Module, copies: list[list[torch.Tensor]]) -> Forward:
        logits = [net(views).float() for views in copies]
        with torch.no_grad():
            probs = torch.stack([torch.softmax(logit_norm(x, self.params.logit_norm), 1) for x in logits]).mean(0)
        return Forward(logits, probs)

    def meta_step(self, learner: Learner, logits: torch.Tensor, onehot: torch.Tensor, guess: torch.Tensor, trusted: Batch) -> MetaResult:
        p = self.params
        size = len(logits)
        w = torch.full((size,), 1.0 / size, device=logits.device, requires_grad=True)
        eps = torch.full((size,), p.grad_eps_init, device=logits.device, requires_grad=True)
        lookahead = (w * soft_cross_entropy(logits, label_mix(eps, onehot, guess))).sum()
        lr = p.meta_lr or learner.optimizer.param_groups[0]["lr"]
        virtual = virtual_parameters(learner.net, lookahead, lr, learner.optimizer, p.meta_momentum)
        meta_loss, (grad_w, grad_eps) = trusted_loss_gradient(learner.net, virtual, trusted, [w, eps])
        return MetaResult(normalise_weights(-grad_w).detach(), (grad_eps < 0).float().detach(), meta_loss)

    def loss(self, learner: Learner, out: Forward, onehot: torch.Tensor, guess: torch.Tensor, meta: MetaResult,
             copies: list[list[torch.Tensor]], trusted: Batch) -> dict[str, torch.Tensor]:
        p, ctx = self.params, self.ctx
        logits = out.logits[0]
        init_eps = torch.full_like(meta.eps, p.grad_eps_init)
        eps_loss = soft_cross_entropy(logits, label_mix(meta.eps, onehot, guess)).mean()
        weighted = (meta.weights * soft_cross_entropy(logits, label_mix(init_eps, onehot, guess))).sum()
        chosen = possibly_mislabelled(meta.weights, p.mis_threshold)
        # Every sample at mis_threshold >= 1 (the default): no boolean indexing, which on a GPU
        # waits for the device to count the selection (a sync per step).
        select = (lambda t: t) if p.mis_threshold >= 1 else (lambda t: t[chosen])

        # Mixup of the trusted batch (true labels) with the selected samples' copies (guesses).
        n_trusted = len(trusted.y)
        inputs = [torch.cat([trusted.views[v]] + [select(c[v]) for c in copies]) for v in range(len(trusted.views))]
        targets = torch.cat([F.one_hot(trusted.y, ctx.num_classes).float()] + [select(guess)] * len(copies))
        lam = mixup_lambda(float(torch.rand((), generator=ctx.generator)), p.beta)
        perm = torch.randperm(len(targets), generator=ctx.device_generator, device=targets.device)
        *mixed, mixed_targets = mixup(inputs + [targets], lam, perm)
        mixed_logits = learner.net(mixed).float()
        trusted_part = soft_cross_entropy(logit_norm(mixed_logits[:n_trusted], p.logit_norm), mixed_targets[:n_trusted]).mean()
        guessed_part = soft_cross_entropy(logit_norm(mixed_logits[n_trusted:], p.logit_norm), mixed_targets[n_trusted:]).mean()

        if len(out.logits) > 1:  # KL(raw || augmented): the raw prediction is the fixed target
            raw = select(logits).detach()
            q = torch.softmax(raw, 1)
            kl = [(q * (torch.log_softmax(raw, 1) - torch.log_softmax(select(x), 1))).sum(1).mean() for x in out.logits[1:]]
            consistency = torch.stack(kl).mean()
        else:
            consistency = torch.zeros((), device=logits.device)
        total = (eps_loss + weighted) / 2 + trusted_part + p.ce_factor * guessed_part + p.consistency_factor * consistency
        return {
            "loss": total, "eps_loss": eps_loss.detach(), "weighted_loss": weighted.detach(), "mix_trusted": trusted_part.detach(),
            "mix_guessed": guessed_part.detach(), "consistency": consistency.detach(),
            "meta/mislabelled_share": chosen.float().mean(),
        }

    def finish(self, learner: Learner, loss: torch.Tensor) -> None:
        self.ctx.optimize(loss, learner.optimizer)
        learner.ema.update()

    # --- the step ----------------------------------------------------------------------------
    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        [learner] = self.learners
        trusted = next(self.meta_stream)
        copies = self.copies(batch)
        onehot = F.one_hot(batch.y, self.ctx.num_classes).float()
        out = self.forward(learner.net, copies)
        guess = sharpen(out.probs, self.params.T)
        meta = self.meta_step(learner, out.logits[0], onehot, guess, trusted)
        metrics = self.loss(learner, out, onehot, guess, meta, copies, trusted)
        self.finish(learner, metrics["loss"])
        self.weights.record(batch.idx, meta.weights)
        self.eps.record(batch.idx, meta.eps)
        return metrics | {"loss": metrics["loss"].detach(), "meta/loss": meta.meta_loss}

    def predict(self, views: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([learner.ema.target(views) for learner in self.learners]).mean(0)

    def sample_weights(self) -> torch.Tensor:
        return self.weights.values

    def label_trust(self) -> torch.Tensor:
        return self.eps.values

    def extra_state(self) -> dict[str, torch.Tensor]:
        return {"ema_updates": torch.tensor([learner.ema.updates for learner in self.learners])}

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        for learner, updates in zip(self.learners, state["ema_updates"].tolist()):
            learner.ema.updates = int(updates)

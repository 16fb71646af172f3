"""DivideMix (Li, Socher & Hoi, ICLR 2020): co-divide the training set with a two-component
Gaussian mixture over per-sample losses, then train each network semi-supervised (MixMatch) on
the split made by its peer, treating the noisy samples as unlabelled.

Epoch by epoch:
- warm-up (`warm_up` epochs): both networks learn with cross-entropy on all noisy labels, plus a
  negative-entropy penalty under asymmetric noise (confident early predictions would otherwise
  split pair-flipped classes wrongly).
- then, at the start of every epoch, each network's per-sample CE loss (full pass, eval mode) is
  min-max normalised and a 2-component GMM gives p(clean) as the posterior of the small-mean
  component. Samples with p(clean) > p_threshold form the labelled set, the rest the unlabelled
  set. Network 1 trains on network 2's split and vice versa (co-divide), so the errors of one
  network's split are not confirmed by itself.
- a step of network k: label co-refinement of the labelled batch (w * noisy one-hot + (1 - w) *
  the network's own prediction, w = p(clean), then sharpened with temperature T); co-guessing for
  the unlabelled batch (the average of both networks' predictions, sharpened); mixup of all
  inputs and targets with lambda ~ Beta(alpha, alpha), lambda = max(lambda, 1 - lambda); loss =
  mixed CE on the labelled part + lambda_u(t) * squared error on the unlabelled part + a penalty
  pulling the mean prediction to the uniform prior. lambda_u(t) ramps linearly over
  `rampup_length` epochs after warm-up.

Views: with an augmentation (`data.augment`), guesses average K=2 augmented copies, as in the
paper. With `none` (pre-extracted features, which cannot be augmented) two copies would be
identical, so guesses come from one forward pass (K=1) and each sample enters the mixup once.

Defaults are the paper's CIFAR-10 settings (official code). The paper tuned lambda_u by noise
level (0 at 20% sym and 40% asym, 25 at 50%, 25 at 80%, 150 at 90%) and averaged the loss over
the last 5 epochs at 90% noise (`loss_history`). `clean_selection()` reports network 1's labelled
set (the samples network 2 trains on as labelled); None during warm-up.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import betaincinv
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from nlx.methods import register_method
from nlx.methods.base import Batch, Method, Stage


class DivideMixParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    warm_up: int = Field(10, ge=0, description="epochs of plain CE before the first division")
    p_threshold: float = Field(0.5, gt=0, lt=1, description="clean probability above which a sample is labelled")
    T: float = Field(0.5, gt=0, description="sharpening temperature of refined and guessed labels")
    alpha: float = Field(4.0, gt=0, description="mixup Beta(alpha, alpha)")
    lambda_u: float = Field(25.0, ge=0, description="weight of the unlabelled loss after ramp-up")
    rampup_length: int = Field(16, ge=1, description="epochs over which lambda_u ramps up after warm-up")
    conf_penalty: bool | None = Field(None, description="negative-entropy penalty in warm-up; None = on for asym noise")
    loss_history: int = Field(1, ge=1, description="epochs of normalised losses averaged before the GMM fit (paper: 5 at 90% noise)")
    gmm_max_iter: int = Field(10, ge=1)
    gmm_tol: float = Field(1e-2, gt=0)
    gmm_reg_covar: float = Field(5e-4, gt=0)


# --- pure helpers ---------------------------------------------------------------------------
def sharpen(probs: torch.Tensor, T: float) -> torch.Tensor:
    """(B, C) -> (B, C): p^(1/T) renormalised; T < 1 moves mass to the largest entries."""
    powered = probs ** (1.0 / T)
    return powered / powered.sum(dim=1, keepdim=True)


def mixup(tensors: list[torch.Tensor], lam: float, perm: torch.Tensor) -> list[torch.Tensor]:
    """Each (N, ...) tensor becomes lam * x + (1 - lam) * x[perm]; one lam and pairing for all,
    so inputs of every view and their targets stay aligned."""
    return [lam * x + (1 - lam) * x[perm] for x in tensors]


def mixup_lambda(u: float, alpha: float) -> float:
    """max(l, 1 - l) for l ~ Beta(alpha, alpha), drawn by inverting the CDF at uniform `u` (so a
    seeded generator makes it reproducible). The max keeps each mixed sample closer to its own."""
    lam = float(betaincinv(alpha, alpha, u))
    return max(lam, 1.0 - lam)


def linear_rampup(progress: float, warm_up: int, length: int) -> float:
    """0 until `warm_up` epochs, then linearly to 1 over `length` epochs (progress in epochs)."""
    return float(np.clip((progress - warm_up) / length, 0.0, 1.0))


def normalise_losses(losses: torch.Tensor) -> torch.Tensor:
    """Min-max to [0, 1] (a constant vector maps to zeros)."""
    low, high = losses.min(), losses.max()
    return (losses - low) / (high - low).clamp(min=1e-12)


def gmm_clean_probability(losses: np.ndarray, max_iter: int = 10, tol: float = 1e-2, reg_covar: float = 5e-4, seed: int = 0) -> np.ndarray:
    """(n,) losses -> (n,) posterior of the lower-mean component of a 2-component GMM: p(clean)."""
    gmm = GaussianMixture(n_components=2, max_iter=max_iter, tol=tol, reg_covar=reg_covar, random_state=seed)
    column = losses.reshape(-1, 1).astype(np.float64)
    with warnings.catch_warnings():  # the paper's 10 EM steps often stop short of tol: expected
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm.fit(column)
    return gmm.predict_proba(column)[:, int(gmm.means_.argmin())]


def uniform_prior_penalty(logits: torch.Tensor) -> torch.Tensor:
    """KL(uniform || mean prediction): keeps the network from putting every sample in one class."""
    mean = torch.softmax(logits, dim=1).mean(0)
    prior = torch.full_like(mean, 1.0 / len(mean))
    return (prior * torch.log(prior / mean)).sum()


@dataclass
class DivideBatch(Batch):
    net: int = 0  # which network this step trains
    clean_prob: torch.Tensor | None = None  # (B,) the peer's p(clean) of the labelled samples
    unlabelled: Batch | None = None  # a batch of the peer's noisy set; None when it is empty


@register_method("dividemix")
class DivideMix(Method):
    Params = DivideMixParams

    def setup(self) -> None:
        ctx = self.ctx
        self.nets, self.optimizers = self.build_networks(2)
        penalty = self.params.conf_penalty
        self.conf_penalty = ctx.spec.noise.type == "asym" if penalty is None else penalty
        self.views_per_sample = 2 if ctx.augments else 1
        self.prob = torch.empty(0)  # (2, n) p(clean) under each network; empty before the first split
        self.history = torch.empty(0)  # (H, 2, n) recent normalised losses
        self.epoch = 0

    def stages(self) -> list[Stage]:
        warm = min(self.params.warm_up, self.ctx.epochs)
        stages = [Stage("warmup", warm), Stage("train", self.ctx.epochs - warm)]
        return [stage for stage in stages if stage.epochs > 0]

    # --- per epoch: the co-divide ----------------------------------------------------------
    def start_epoch(self, epoch: int) -> dict[str, float]:
        self.epoch = epoch
        if self.stage is None or self.stage.name != "train":
            return {}
        losses = torch.stack([normalise_losses(self._per_sample_loss(net)) for net in self.nets]).cpu()
        self.history = torch.cat([self.history, losses[None]])[-self.params.loss_history :] if len(self.history) else losses[None]
        averaged = self.history.mean(0).numpy()
        seed = int(torch.randint(2**31 - 1, (), generator=self.ctx.generator))
        p = self.params
        self.prob = torch.stack([
            torch.as_tensor(gmm_clean_probability(averaged[k], p.gmm_max_iter, p.gmm_tol, p.gmm_reg_covar, seed), dtype=torch.float32)
            for k in range(2)
        ]).to(self.ctx.device)
        labelled = (self.prob > p.p_threshold).float().mean(1).tolist()
        ramp = linear_rampup(epoch, p.warm_up, p.rampup_length)
        return {"labelled1": labelled[0], "labelled2": labelled[1], "lambda_u": p.lambda_u * ramp}

    @torch.no_grad()
    def _per_sample_loss(self, net: torch.nn.Module) -> torch.Tensor:
        net.eval()
        losses = [F.cross_entropy(net(b.views).float(), b.y, reduction="none") for b in self.ctx.train_batches(shuffle=False)]
        net.train()
        return torch.cat(losses)

    def batches(self) -> Iterator[Batch]:
        # One network after the other, as in the paper: network k steps through its peer's
        # labelled set, each labelled batch paired with a full-size batch of the peer's noisy set.
        for k in (0, 1):
            if self.stage.name != "train":
                for batch in self.ctx.train_batches():
                    yield DivideBatch(batch.views, batch.y, batch.idx, net=k)
                continue
            clean = self.prob[1 - k] > self.params.p_threshold
            labelled, unlabelled = clean.nonzero().flatten(), (~clean).nonzero().flatten()
            noisy_stream = self._endless(unlabelled) if len(unlabelled) else None
            labelled_batches = list(self.ctx.train_batches(positions=labelled))
            self.steps_per_phase = max(1, len(labelled_batches))
            for step, batch in enumerate(labelled_batches):
                self.step = step
                yield DivideBatch(
                    batch.views, batch.y, batch.idx, net=k, clean_prob=self.prob[1 - k][batch.idx],
                    unlabelled=None if noisy_stream is None else next(noisy_stream),
                )

    def _endless(self, positions: torch.Tensor) -> Iterator[Batch]:
        """Full-size batches of `positions`, reshuffled and drawn across pass boundaries."""
        size = self.ctx.spec.train.batch_size
        buffer = positions[:0]
        while True:
            while len(buffer) < size:
                buffer = torch.cat([buffer, positions[torch.randperm(len(positions), generator=self.ctx.generator).to(positions.device)]])
            yield self.ctx.batch_at(buffer[:size])
            buffer = buffer[size:]

    # --- per step ----------------------------------------------------------------------------
    def train_step(self, batch: DivideBatch) -> dict[str, torch.Tensor]:
        if self.stage.name != "train":
            return self._warmup_step(batch)
        return self._semi_supervised_step(batch)

    def _warmup_step(self, batch: DivideBatch) -> dict[str, torch.Tensor]:
        net, optimizer = self.nets[batch.net], self.optimizers[batch.net]
        with self.ctx.autocast():
            logits = net(batch.views)
            loss = F.cross_entropy(logits, batch.y)
            if self.conf_penalty:  # negative entropy: discourages over-confident early fits
                probs = torch.softmax(logits.float(), dim=1)
                loss = loss + (probs * torch.log(probs.clamp(min=1e-12))).sum(1).mean()
        self.ctx.optimize(loss, optimizer)
        return {"loss": loss.detach()}

    def _semi_supervised_step(self, batch: DivideBatch) -> dict[str, torch.Tensor]:
        net, peer, optimizer = self.nets[batch.net], self.nets[1 - batch.net], self.optimizers[batch.net]
        p, K, ctx = self.params, self.views_per_sample, self.ctx
        num_classes = ctx.num_classes
        x_copies = [ctx.augment(batch.views) for _ in range(K)]
        u_copies = [] if batch.unlabelled is None else [ctx.augment(batch.unlabelled.views) for _ in range(K)]
        peer.eval()  # the peer only guesses; it is updated in its own phase
        with torch.no_grad(), ctx.autocast():
            # Label co-refinement: trust the noisy label in proportion to p(clean).
            own = torch.stack([torch.softmax(net(v).float(), 1) for v in x_copies]).mean(0)
            w = batch.clean_prob[:, None]
            targets_x = sharpen(w * F.one_hot(batch.y, num_classes).float() + (1 - w) * own, p.T)
            targets = [targets_x] * K
            if u_copies:  # co-guessing: both networks, all copies
                guesses = [torch.softmax(m(v).float(), 1) for v in u_copies for m in (net, peer)]
                targets += [sharpen(torch.stack(guesses).mean(0), p.T)] * K
        peer.train()

        n_x = K * len(batch.y)
        inputs = [torch.cat([copy[i] for copy in x_copies + u_copies]) for i in range(len(batch.views))]
        all_targets = torch.cat(targets)
        lam = mixup_lambda(float(torch.rand((), generator=ctx.generator)), p.alpha)
        perm = torch.randperm(len(all_targets), generator=ctx.device_generator, device=all_targets.device)
        *mixed_inputs, mixed_targets = mixup(inputs + [all_targets], lam, perm)

        progress = self.epoch + self.step / self.steps_per_phase
        lambda_u = p.lambda_u * linear_rampup(progress, p.warm_up, p.rampup_length)
        with ctx.autocast():
            logits = net(mixed_inputs).float()
            loss_x = -(F.log_softmax(logits[:n_x], 1) * mixed_targets[:n_x]).sum(1).mean()
            if u_copies:
                loss_u = ((torch.softmax(logits[n_x:], 1) - mixed_targets[n_x:]) ** 2).mean()
            else:  # the peer called every sample clean: nothing to guess this epoch
                loss_u = torch.zeros((), device=logits.device)
            penalty = uniform_prior_penalty(logits)
            loss = loss_x + lambda_u * loss_u + penalty
        ctx.optimize(loss, optimizer)
        return {"loss": loss.detach(), "loss_x": loss_x.detach(), "loss_u": loss_u.detach(), "penalty": penalty.detach()}

    def predict(self, views: list[torch.Tensor]) -> torch.Tensor:
        return (self.nets[0](views) + self.nets[1](views)) / 2

    def clean_selection(self) -> torch.Tensor | None:
        if len(self.prob) == 0:
            return None
        return self.prob[0] > self.params.p_threshold

    def extra_state(self) -> dict[str, torch.Tensor]:
        return {"prob": self.prob.clone(), "history": self.history.clone()}

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        self.prob = state["prob"].to(self.ctx.device)
        self.history = state["history"]

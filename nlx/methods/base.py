"""The method interface. The engine never branches on a method's name; it only calls these hooks.

A method is a `Method` subclass registered under its name with `@register_method`. It declares
its hyperparameters as a pydantic `Params` model (the paper's defaults; unknown keys are errors)
and what it `needs` from the engine. The engine then, for every run:

    method = cls(params, ctx); method.setup()
    for stage in method.stages():                      # the engine sets method.stage
        for epoch in stage:                            # epochs count on across stages
            method.start_epoch(epoch)                  # per-epoch work, extra metrics
            for batch in method.batches(): method.train_step(batch)   # default: ctx.train_batches()
            method.end_epoch(epoch)                    # schedulers, extra metrics
            evaluate with method.predict(views); store method.transition_matrix()

A `Batch` carries `views` (one tensor per view), `y` (the NOISY label) and `idx` (position in the
training split). Methods never see true labels of the training set: the engine keeps them to
compute the clean/flipped metrics. The trusted set (`data.trusted`: a small clean set carved out
before noise, read through `ctx.meta_batches` / `ctx.trusted_batches`) is the only clean data a
method may touch, and it is handed over only when the method declares `needs = {"trusted"}`.

How the planned methods map onto this interface:

- Forward correction / T-Revision (multi-stage): `stages()` returns an explicit list, e.g.
  [Stage("warmup", 20), Stage("reweight", 30), Stage("revise", 30)]; `start_epoch` at the first
  epoch of a stage estimates T from `ctx.train_batches(shuffle=False)` predictions; `train_step`
  switches loss by `self.stage`; `transition_matrix()` returns T_hat (+ dT when revising) and the
  engine stores it with its error against the true T every epoch.
- L_DMI (needs a checkpoint): `needs = {"checkpoint"}`; the engine resolves `init_from` to a CE
  run's best checkpoint and hands its state in `ctx.init_state`; `setup()` loads it into its net.
- Co-teaching, DivideMix (two networks): `setup()` builds two nets and two optimizers through
  `ctx` and `track`s all four; `start_epoch` sets the forget rate or fits the GMM on per-sample
  losses from a full pass (`ctx.train_batches(shuffle=False)`), keyed by `batch.idx`;
  `predict` averages both nets; `state_dict` covers everything tracked plus `extra_state()`.
- L2R, IEG, IEG+DivideMix (meta-learning): `needs = {"trusted"}`; `ctx.meta_batches(size)` yields
  fixed-size trusted batches forever; `train_step` does the virtual step with
  `torch.func.functional_call` and the real step with the meta weights; IEG's EMA model is a
  tracked module that `predict` uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class Batch:
    views: list[torch.Tensor]  # each (B, ...) on the run's device
    y: torch.Tensor  # (B,) int64 noisy labels
    idx: torch.Tensor  # (B,) positions in the training split


@dataclass(frozen=True)
class Stage:
    name: str
    epochs: int


class Method:
    name: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = NoParams
    needs: ClassVar[frozenset[str]] = frozenset()  # e.g. {"trusted"}, {"checkpoint"}

    def __init__(self, params: BaseModel, ctx: Any):
        self.params = params
        self.ctx = ctx
        self.stage: Stage | None = None
        self._tracked: dict[str, Any] = {}

    @classmethod
    def pretraining_spec(cls, spec: Any) -> Any:
        """For methods that need a checkpoint and are given `init_from: auto`: the run whose best
        checkpoint they start from. Default: the same data, noise, model, training and seed with
        plain CE."""
        return spec.model_copy(update={"method": type(spec.method)(name="ce")})

    # --- hooks a method implements -------------------------------------------------------
    def setup(self) -> None:
        """Build networks and optimizers through `self.ctx`, and `track` them."""
        raise NotImplementedError

    def stages(self) -> list[Stage]:
        return [Stage("train", self.ctx.epochs)]

    def start_epoch(self, epoch: int) -> dict[str, float]:
        return {}

    def batches(self) -> Iterable[Batch]:
        """This epoch's training batches. Default: the whole noisy training set, shuffled. A
        method that trains on a subset or in phases (DivideMix's labelled set, one network after
        the other) yields its own, e.g. from `ctx.train_batches(positions=...)`; every step of
        one epoch must return the same metric keys."""
        return self.ctx.train_batches()

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One optimisation step. Returns detached scalars; `loss` is logged as `train/loss`."""
        raise NotImplementedError

    def end_epoch(self, epoch: int) -> dict[str, float]:
        for obj in self._tracked.values():
            if isinstance(obj, torch.optim.lr_scheduler.LRScheduler):
                obj.step()
        return {}

    def predict(self, views: list[torch.Tensor]) -> torch.Tensor:
        """(B, C) logits for evaluation."""
        raise NotImplementedError

    def predict_noisy(self, views: list[torch.Tensor]) -> torch.Tensor:
        """(B, C) scores of the NOISY label, which the engine uses on a noisy validation split
        (`data.val: noisy`) for val metrics and best-epoch selection. Methods that model the
        noise (a T) override it; by default the clean prediction stands in."""
        return self.predict(views)

    def clean_selection(self) -> torch.Tensor | None:
        """(n_train,) bool over training positions (`batch.idx`): the samples the method trained
        on as clean this epoch (Co-teaching's small-loss set, DivideMix's labelled set), or None.
        The engine scores it against the flip mask as `select/precision`, `select/recall` and
        `select/fraction`; the method itself never sees the mask."""
        return None

    def sample_weights(self) -> torch.Tensor | None:
        """(n_train,) float over training positions: the weight the method gave each sample this
        epoch (L2R's and IEG's meta weights; NaN where a sample was not weighted), or None. The
        engine scores it against the flip mask as `meta/weight_clean_share` and `meta/zero_share`."""
        return None

    def label_trust(self) -> torch.Tensor | None:
        """(n_train,) float over training positions: how much the method trusted each sample's
        noisy label this epoch, in [0, 1] (IEG's eps: 1 = the noisy label, 0 = the guessed one;
        NaN where not seen), or None. The engine logs `meta/eps_mean` and `meta/eps_precision`
        (share of the trust that went to samples whose label is clean)."""
        return None

    def transition_matrix(self) -> np.ndarray | None:
        """The current (C, C) estimate of T[i, j] = P(noisy = j | true = i), if the method has one."""
        return None

    def transition_estimator(self) -> str:
        """How `transition_matrix()` was obtained, stored with each estimate (e.g. 'trevision/anchor')."""
        return self.name

    def extra_state(self) -> dict[str, Any]:
        """Method state beyond tracked modules/optimizers (e.g. a GMM split), for checkpoints."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    # --- shared machinery ----------------------------------------------------------------
    def track(self, name: str, obj: Any) -> Any:
        """Register a module, optimizer or scheduler for checkpoints, train/eval mode and lr."""
        self._tracked[name] = obj
        return obj

    def build_networks(self, count: int = 1) -> tuple[list[nn.Module], list[torch.optim.Optimizer]]:
        """`count` fresh networks, each with its optimizer and lr scheduler, all tracked (as
        net/optimizer/scheduler for one network, net1/optimizer1/scheduler1, ... for several)."""
        suffixes = [""] if count == 1 else [str(i) for i in range(1, count + 1)]
        nets, optimizers = [], []
        for suffix in suffixes:
            net = self.track(f"net{suffix}", self.ctx.build_network())
            optimizer = self.track(f"optimizer{suffix}", self.ctx.build_optimizer(net.parameters()))
            self.track(f"scheduler{suffix}", self.ctx.build_scheduler(optimizer))
            nets.append(net)
            optimizers.append(optimizer)
        return nets, optimizers

    def train_mode(self, training: bool = True) -> None:
        for obj in self._tracked.values():
            if isinstance(obj, nn.Module):
                obj.train(training)

    def learning_rate(self) -> float:
        for obj in self._tracked.values():
            if isinstance(obj, torch.optim.Optimizer):
                return float(obj.param_groups[0]["lr"])
        return float("nan")

    def state_dict(self) -> dict[str, Any]:
        state = {name: obj.state_dict() for name, obj in self._tracked.items()}
        return {"tracked": state, "extra": self.extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, obj in self._tracked.items():
            obj.load_state_dict(state["tracked"][name])
        self.load_extra_state(state["extra"])

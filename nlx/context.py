"""What the engine hands a method: builders for its networks and optimizers, and the data it may
see (noisy training labels, and a trusted set when it asks for one). True training labels are
deliberately not here."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from nlx.augment import augment_views, check_augmentation
from nlx.errors import SpecError
from nlx.methods.base import Batch
from nlx.models import build_model
from nlx.specs import RunSpec, TrainSpec


def iterate_batches(
    views: list[torch.Tensor],
    labels: torch.Tensor,
    batch_size: int,
    generator: torch.Generator | None = None,
    positions: torch.Tensor | None = None,
) -> Iterator[Batch]:
    """Batches sliced straight from tensors already on the device (no DataLoader, no copies of
    the dataset): of every sample, or of `positions` only. Shuffled with `generator` when given,
    in order otherwise; the last batch may be short."""
    order = torch.arange(len(labels), device=labels.device) if positions is None else positions.to(labels.device)
    if generator is not None:
        order = order[torch.randperm(len(order), generator=generator).to(labels.device, non_blocking=True)]
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        yield Batch(views=[view[idx] for view in views], y=labels[idx], idx=idx)


def endless_positions(count: int, size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Batches of exactly `size` positions in range(count), forever: each pass over the set is a
    fresh permutation and a batch that reaches the end of a pass is completed from the next one,
    so no batch is short, also when `count < size` (a sample then appears more than once)."""
    if count < 1:
        raise ValueError("cannot draw batches from an empty set")
    buffer = torch.empty(0, dtype=torch.int64)
    while True:
        while len(buffer) < size:
            buffer = torch.cat([buffer, torch.randperm(count, generator=generator)])
        yield buffer[:size]
        buffer = buffer[size:]


class MethodContext:
    def __init__(
        self,
        spec: RunSpec,
        device: torch.device,
        view_shapes: list[tuple[int, ...]],
        num_classes: int,
        train_views: list[torch.Tensor],
        train_labels: torch.Tensor,
        generator: torch.Generator,
        val_views: list[torch.Tensor] | None = None,
        val_labels: torch.Tensor | None = None,
        true_T: np.ndarray | None = None,
        init_state: dict | None = None,
        trusted_views: list[torch.Tensor] | None = None,
        trusted_labels: torch.Tensor | None = None,
    ):
        self.spec = spec
        self.device = device
        self.view_shapes = view_shapes
        self.num_classes = num_classes
        self.epochs = spec.train.epochs
        self.noise_rate = spec.noise.rate  # the nominal rate: methods like Co-teaching default to it
        self._train_views = train_views
        self._train_labels = train_labels  # noisy
        self._generator = generator
        # Method-side randomness (augmentation, mixup) is drawn on the device from its own
        # generator: seeded by the run, saved in checkpoints, independent of the batch order.
        self.device_generator = torch.Generator(device=device).manual_seed(spec.seed + 1)
        if (problem := check_augmentation(spec.data.augment, view_shapes)) is not None:
            raise SpecError(f"data.augment: {problem}")
        # Validation labels are whatever the spec allows (noisy or clean, `data.val`): methods
        # that select a model inside a stage (T-Revision's warm-up) use them as the engine does.
        self._val_views = val_views or []
        self._val_labels = val_labels
        # The noise's true T (not labels): only for oracle ablations such as `forward` with
        # `t_source: true`; a method that reads it says so in its parameters.
        self.true_T = true_T
        # For methods that need a checkpoint: the source run's method state (`Method.state_dict`).
        self.init_state = init_state
        # The trusted set (true labels, carved out before noise): handed over only to methods
        # that declare `needs = {"trusted"}`; the only clean data a method may touch.
        self._trusted_views = trusted_views or []
        self._trusted_labels = trusted_labels
        self._amp = spec.train.amp and device.type == "cuda"
        self._scalers: dict[int, torch.amp.GradScaler] = {}

    @property
    def train_size(self) -> int:
        return len(self._train_labels)

    @property
    def generator(self) -> torch.Generator:
        """The run's CPU generator (batch order); methods may draw small host-side numbers from it."""
        return self._generator

    def train_batches(
        self, batch_size: int | None = None, shuffle: bool = True, positions: torch.Tensor | None = None
    ) -> Iterator[Batch]:
        """The noisy training set in batches; shuffled by the run's seeded generator. With
        `positions` (a 1-D tensor of training positions), only that subset."""
        return iterate_batches(
            self._train_views,
            self._train_labels,
            batch_size or self.spec.train.batch_size,
            self._generator if shuffle else None,
            positions,
        )

    def batch_at(self, positions: torch.Tensor) -> Batch:
        """The training samples at these positions, as a batch."""
        return Batch(views=[view[positions] for view in self._train_views], y=self._train_labels[positions], idx=positions)

    @property
    def trusted_size(self) -> int:
        return 0 if self._trusted_labels is None else len(self._trusted_labels)

    def _trusted(self) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The trusted set's views and labels; an error for a method that did not declare the need."""
        if self._trusted_labels is None:
            raise RuntimeError("no trusted set: the method must declare needs = {'trusted'}")
        return self._trusted_views, self._trusted_labels

    def trusted_batches(self, batch_size: int | None = None) -> Iterator[Batch]:
        """The trusted set in order (true labels; `idx` are positions in the trusted set)."""
        views, labels = self._trusted()
        return iterate_batches(views, labels, batch_size or self.spec.train.eval_batch_size)

    def meta_batches(self, size: int) -> Iterator[Batch]:
        """Trusted batches of exactly `size` samples, forever (see `endless_positions`), shuffled
        by the run's batch generator. `idx` are positions in the trusted set."""
        views, labels = self._trusted()
        for positions in endless_positions(len(labels), size, self._generator):
            positions = positions.to(labels.device)
            yield Batch(views=[view[positions] for view in views], y=labels[positions], idx=positions)

    def augment(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        """A randomly augmented copy of a batch's views, by the spec's `data.augment`."""
        return augment_views(self.spec.data.augment, views, self.device_generator)

    @property
    def augments(self) -> bool:
        """False when `data.augment` is none: two 'views' of a sample would be identical."""
        return self.spec.data.augment != "none"

    def val_batches(self, batch_size: int | None = None) -> Iterator[Batch]:
        """The validation split in order (labels noisy or clean, per `data.val`)."""
        if self._val_labels is None:
            return iter(())
        return iterate_batches(self._val_views, self._val_labels, batch_size or self.spec.train.eval_batch_size)

    def build_network(self) -> nn.Module:
        net = build_model(self.spec.model, self.view_shapes, self.num_classes).to(self.device)
        if self.spec.train.compile:
            net.compile()  # in place (nn.Module.compile): state_dict keys stay as they are
        return net

    def build_optimizer(self, parameters: Iterable[nn.Parameter], lr: float | None = None) -> torch.optim.Optimizer:
        train = self.spec.train
        lr = train.lr if lr is None else lr
        if train.optimizer == "sgd":
            return torch.optim.SGD(parameters, lr=lr, momentum=train.momentum, weight_decay=train.weight_decay)
        optimizer = torch.optim.Adam if train.optimizer == "adam" else torch.optim.AdamW
        return optimizer(parameters, lr=lr, weight_decay=train.weight_decay)

    def build_scheduler(self, optimizer: torch.optim.Optimizer, epochs: int | None = None) -> torch.optim.lr_scheduler.LRScheduler:
        """Stepped once per epoch by `Method.end_epoch`; see :func:`lr_scheduler`."""
        return lr_scheduler(self.spec.train, optimizer, epochs)

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self._amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.float16)

    def optimize(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                 before_step: Callable[[], None] | None = None) -> None:
        """zero_grad, backward, step; with a gradient scaler per optimizer under AMP.
        `before_step` runs between backward and step on the true (unscaled) gradients, e.g. to
        clip them."""
        optimizer.zero_grad(set_to_none=True)
        if not self._amp:
            loss.backward()
            if before_step is not None:
                before_step()
            optimizer.step()
            return
        scaler = self._scalers.setdefault(id(optimizer), torch.amp.GradScaler(self.device.type))
        scaler.scale(loss).backward()
        if before_step is not None:
            scaler.unscale_(optimizer)  # step() then skips the step if unscaling found inf/nan
            before_step()
        scaler.step(optimizer)
        scaler.update()


def lr_scheduler(train: TrainSpec, optimizer: torch.optim.Optimizer, epochs: int | None = None) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-epoch learning-rate schedule of `train` over `epochs` (default train.epochs).

    With `train.warmup_epochs` W > 0 the rate first rises linearly (lr / (W + 1), 2 lr / (W + 1),
    ... lr) over W epochs, as in IEG's official `cosine_warmup`, and the schedule proper (a cosine
    over the remaining epochs) starts after it.
    """
    epochs = epochs or train.epochs
    warm = min(train.warmup_epochs, epochs - 1)
    if train.scheduler == "cosine":
        main = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs - warm))
    elif train.scheduler == "step":
        main = torch.optim.lr_scheduler.StepLR(optimizer, step_size=train.step_size, gamma=train.gamma)
    else:
        main = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if warm <= 0:
        return main
    ramp = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1 / (warm + 1), end_factor=1.0, total_iters=warm)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [ramp, main], milestones=[warm])

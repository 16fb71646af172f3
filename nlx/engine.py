"""The training loop: one run of one spec, from seeding to the stored summary.

Reads top to bottom: seed, load data and inject noise, store what the noise did, build the method,
then for every epoch of every stage train, evaluate, and write the epoch in one transaction.
"""

from __future__ import annotations

import io
import random
import threading
import time
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from nlx.context import MethodContext, iterate_batches
from nlx.data.noise import estimation_error
from nlx.data.prepare import PreparedData, prepare_data
from nlx.errors import NlxError, SpecError
from nlx.methods import get_method
from nlx.methods.base import Method
from nlx.specs import RunSpec
from nlx.store.models import ESTIMATED_T
from nlx.store.repo import HEARTBEAT_EVERY_S, Store

NONFINITE_CHECK_EVERY = 50  # steps between host syncs that look for a non-finite loss


class TrainingDiverged(NlxError):
    exit_code = 1


class RunInterrupted(Exception):
    """A stop was requested (SIGINT/SIGTERM); the last completed epoch has been checkpointed."""


class Reporter(Protocol):
    """Progress display; the engine works without one (`--quiet`)."""

    def start(self, run_id: int, spec: RunSpec, total_epochs: int, done: int = 0) -> None: ...
    def epoch(self, epoch: int, metrics: dict[str, float]) -> None: ...
    def end(self, status: str) -> None: ...


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise SpecError("train.device: cuda requested but no CUDA device is available")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class DeviceData:
    """The run's splits as tensors on the device. `train_true`/`flipped` stay with the engine."""

    train_views: list[torch.Tensor]
    train_noisy: torch.Tensor
    train_true: torch.Tensor
    flipped: torch.Tensor
    val_views: list[torch.Tensor]
    val_labels: torch.Tensor
    test_views: list[torch.Tensor]
    test_labels: torch.Tensor
    trusted_views: list[torch.Tensor] | None = None
    trusted_labels: torch.Tensor | None = None

    @classmethod
    def from_prepared(cls, data: PreparedData, device: torch.device) -> "DeviceData":
        def tensors(arrays: list[np.ndarray]) -> list[torch.Tensor]:
            return [torch.as_tensor(a, dtype=torch.float32).to(device) for a in arrays]

        def labels(array: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(array, dtype=torch.int64).to(device)

        return cls(
            train_views=tensors(data.train.views),
            train_noisy=labels(data.train.labels),
            train_true=labels(data.train_true),
            flipped=torch.as_tensor(data.noise.flipped).to(device),
            val_views=tensors(data.val.views),
            val_labels=labels(data.val.labels),
            test_views=tensors(data.test.views),
            test_labels=labels(data.test.labels),
            trusted_views=None if data.trusted is None else tensors(data.trusted.views),
            trusted_labels=None if data.trusted is None else labels(data.trusted.labels),
        )


@dataclass
class BestTracker:
    """The epoch with the best validation accuracy (first of ties) and its test accuracy."""

    val_acc: float = -1.0
    epoch: int | None = None
    test_acc: float | None = None

    def update(self, epoch: int, val_acc: float, test_acc: float) -> bool:
        if val_acc > self.val_acc:
            self.val_acc, self.epoch, self.test_acc = val_acc, epoch, test_acc
            return True
        return False


@torch.no_grad()
def predict_logits(method: Method, views: list[torch.Tensor], batch_size: int, noisy: bool = False) -> torch.Tensor:
    predict = method.predict_noisy if noisy else method.predict
    dummy = torch.empty(len(views[0]), dtype=torch.int64, device=views[0].device)
    return torch.cat([predict(batch.views).float() for batch in iterate_batches(views, dummy, batch_size)])


def mean_or_nan(values: torch.Tensor) -> torch.Tensor:
    return values.float().mean() if len(values) else torch.tensor(float("nan"), device=values.device)


def evaluate(method: Method, data: DeviceData, batch_size: int, noisy_val: bool = False) -> dict[str, float]:
    """Train (split into clean and flipped samples), validation and test metrics.

    On the flipped subset, `acc_noisy` is agreement with the noisy label (memorisation) and
    `acc_true` with the true one (correction). All arithmetic stays on the device; one host
    transfer at the end.
    """
    method.train_mode(False)
    metrics: dict[str, torch.Tensor] = {}
    logits = predict_logits(method, data.train_views, batch_size)
    loss = F.cross_entropy(logits, data.train_noisy, reduction="none")
    pred = logits.argmax(1)
    clean, flipped = ~data.flipped, data.flipped
    metrics["train/acc"] = mean_or_nan(pred == data.train_noisy)
    metrics["train_clean/acc"] = mean_or_nan(pred[clean] == data.train_noisy[clean])
    metrics["train_clean/loss"] = mean_or_nan(loss[clean])
    metrics["train_flipped/loss"] = mean_or_nan(loss[flipped])
    metrics["train_flipped/acc_noisy"] = mean_or_nan(pred[flipped] == data.train_noisy[flipped])
    metrics["train_flipped/acc_true"] = mean_or_nan(pred[flipped] == data.train_true[flipped])
    # A noisy validation split is scored against the method's model of the noisy label.
    for split, views, labels in (("val", data.val_views, data.val_labels), ("test", data.test_views, data.test_labels)):
        logits = predict_logits(method, views, batch_size, noisy=noisy_val and split == "val")
        metrics[f"{split}/loss"] = F.cross_entropy(logits, labels)
        metrics[f"{split}/acc"] = mean_or_nan(logits.argmax(1) == labels)
    method.train_mode(True)
    keys = list(metrics)
    values = torch.stack([metrics[k] for k in keys]).tolist()
    return dict(zip(keys, values))


def training_state(
    method: Method, epoch: int, best: BestTracker, generator: torch.Generator, device_generator: torch.Generator | None = None
) -> dict[str, Any]:
    """A snapshot (tensors copied) of everything needed to continue the run, in types that
    `torch.load(weights_only=True)` accepts."""
    _, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "epoch": epoch,
        "method": method.state_dict(),
        "best": dict(vars(best)),
        "rng": {
            "torch": torch.get_rng_state(),
            "batches": generator.get_state(),
            "method": None if device_generator is None else device_generator.get_state(),
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": position, "has_gauss": has_gauss, "cached": cached},
        },
    }
    return clone_tree(state)


def clone_tree(obj: Any) -> Any:
    """Copy the tensors of a nested dict/list state (5x cheaper than copy.deepcopy)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {key: clone_tree(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(clone_tree(value) for value in obj)
    return obj


def selection_metrics(selected: torch.Tensor, flipped: torch.Tensor) -> dict[str, float]:
    """How well a method's "clean" selection matches the truth: precision (share of selected
    samples whose label is clean), recall (share of clean samples selected), selected fraction."""
    clean = ~flipped
    hits = (selected & clean).sum().float()
    values = torch.stack([
        hits / selected.sum().clamp(min=1), hits / clean.sum().clamp(min=1), selected.float().mean()
    ]).tolist()
    return dict(zip(("select/precision", "select/recall", "select/fraction"), values))


def _seen_and_clean_share(values: torch.Tensor, flipped: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The values a method set this epoch (NaN = not set), and the share of their total on samples
    whose label is clean."""
    seen = torch.isfinite(values)
    v = values[seen].float()
    return v, (v * ~flipped[seen]).sum() / v.sum().clamp(min=1e-12)


def weight_metrics(weights: torch.Tensor, flipped: torch.Tensor) -> dict[str, float]:
    """How a meta-learning method spread its per-sample weights (NaN = not weighted this epoch):
    the share of the total weight on samples whose label is clean, and the share of weighted
    samples given weight zero."""
    w, clean_share = _seen_and_clean_share(weights, flipped)
    values = torch.stack([clean_share, mean_or_nan(w <= 0)]).tolist()
    return dict(zip(("meta/weight_clean_share", "meta/zero_share"), values))


def trust_metrics(trust: torch.Tensor, flipped: torch.Tensor) -> dict[str, float]:
    """The mean trust a method put in the noisy labels, and the share of that trust on samples
    whose label is clean."""
    t, clean_share = _seen_and_clean_share(trust, flipped)
    values = torch.stack([mean_or_nan(t), clean_share]).tolist()
    return dict(zip(("meta/eps_mean", "meta/eps_precision"), values))


def serialise_checkpoint(state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def restore_training_state(
    state: dict[str, Any],
    method: Method,
    best: BestTracker,
    generator: torch.Generator,
    device_generator: torch.Generator | None = None,
) -> int:
    """Put a run back where a checkpoint left it; returns the epoch the checkpoint ended."""
    method.load_state_dict(state["method"])
    vars(best).update(state["best"])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    generator.set_state(rng["batches"])
    if device_generator is not None and rng.get("method") is not None:
        device_generator.set_state(rng["method"])
    numpy = rng["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"], numpy["cached"]))
    return int(state["epoch"])


def load_checkpoint(blob: bytes) -> dict[str, Any]:
    """Safe load: no code runs from a checkpoint (weights_only); the store checked its sha256."""
    return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)


@dataclass
class Checkpointer:
    """Which checkpoints an epoch writes.

    `last` is written once `every_s` seconds have passed since the previous write, and at the
    final epoch. `best` is snapshotted in memory when validation improves and written together
    with `last`, so the stored pair is always consistent and a fast run does not spend its time
    writing blobs. The latest epoch-end snapshot is kept too: an interrupted run writes it.
    """

    every_s: float
    written_at: float = field(default_factory=time.perf_counter)
    latest: dict[str, Any] | None = None
    pending_best: dict[str, Any] | None = None

    def blobs(self, snapshot: Callable[[], dict[str, Any]], improved: bool, final: bool) -> list[tuple[str, int, bytes]]:
        """(tag, epoch the state is from, bytes) of the checkpoints to write this epoch."""
        self.latest = snapshot()  # a copy in memory is cheap; serialising is what costs
        if improved:
            self.pending_best = self.latest
        if final or time.perf_counter() - self.written_at >= self.every_s:
            return self.flush()
        return []

    def flush(self) -> list[tuple[str, int, bytes]]:
        """Serialise the latest snapshot as `last` (and a pending `best`) for writing now."""
        if self.latest is None:
            return []
        self.written_at = time.perf_counter()
        blob = serialise_checkpoint(self.latest)
        written = [("last", self.latest["epoch"], blob)]
        if self.pending_best is not None:
            best = blob if self.pending_best is self.latest else serialise_checkpoint(self.pending_best)
            written.append(("best", self.pending_best["epoch"], best))
            self.pending_best = None
        return written


@dataclass
class StepAccumulator:
    """Per-step scalars kept as device tensors and reduced once per epoch: no host sync per step.

    A non-finite loss is found by looking at the recent losses every NONFINITE_CHECK_EVERY steps
    (one sync each time) and at the end of the epoch; the exact step is reported.
    """

    values: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    sizes: list[int] = field(default_factory=list)
    checked: int = 0

    @property
    def steps(self) -> int:
        return len(self.sizes)

    def add(self, values: dict[str, torch.Tensor], batch_size: int) -> None:
        for key, value in values.items():
            self.values.setdefault(key, []).append(value.detach())
        self.sizes.append(batch_size)

    def bad_step(self) -> int | None:
        """The first step since the last check whose loss is not finite, if any."""
        recent = self.values.get("loss", [])[self.checked :]
        if not recent:
            return None
        finite = torch.isfinite(torch.stack(recent).float())
        if bool(finite.all()):
            self.checked = len(self.sizes)
            return None
        return self.checked + int((~finite).nonzero()[0, 0])

    def means(self) -> dict[str, float]:
        """Sample-weighted means (the last batch of an epoch may be short)."""
        if not self.sizes:
            return {}
        keys = list(self.values)
        device = self.values[keys[0]][0].device
        weights = torch.tensor(self.sizes, dtype=torch.float32, device=device)
        sums = torch.stack([torch.stack(self.values[k]).float() @ weights for k in keys])
        return dict(zip(keys, (sums / weights.sum()).tolist()))


def step_metric_name(method: Method, key: str) -> str:
    """`loss` is train/loss; a key with its own group (`meta/loss`) stays as it is; the rest are
    filed under the method's name."""
    if key == "loss":
        return "train/loss"
    return key if "/" in key else f"{method.name}/{key}"


def build_method(
    spec: RunSpec, prepared: PreparedData, data: DeviceData, generator: torch.Generator, init_state: dict | None = None
) -> Method:
    """The spec's method, set up on a context over `data` (on its device) whose batches `generator`
    shuffles: what the engine trains, and what benches and `nlx estimate-t` rebuild. The trusted
    set goes only to a method that declares it needs one."""
    cls = get_method(spec.method.name)
    trusted = "trusted" in cls.needs
    if trusted and data.trusted_labels is None:
        raise SpecError(f"data.trusted: {spec.method.name} needs a trusted clean set (e.g. data.trusted.per_class=10)")
    ctx = MethodContext(
        spec, data.train_noisy.device, prepared.view_shapes, prepared.num_classes, data.train_views, data.train_noisy,
        generator, val_views=data.val_views, val_labels=data.val_labels, true_T=prepared.noise.T, init_state=init_state,
        trusted_views=data.trusted_views if trusted else None, trusted_labels=data.trusted_labels if trusted else None,
    )
    method = cls(cls.Params.model_validate(spec.method.params), ctx)
    method.setup()
    return method


def train_run(
    spec: RunSpec,
    store: Store,
    run_id: int,
    reporter: Reporter | None = None,
    resume: bool = False,
    stop: threading.Event | None = None,
    init_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one run to the end, writing every epoch. Raises on failure (the caller records it).

    resume: continue from the run's `last` checkpoint (model, optimiser, method state, RNG
    states, epoch); epochs after it are trained again and their rows replaced.
    stop: when set, the current epoch is abandoned, the last completed one is checkpointed and
    RunInterrupted is raised.
    init_state: the method state of the checkpoint a method that needs one starts from.
    """
    device = pick_device(spec.train.device)
    # Data first: some loaders reseed global RNGs, and the run's own seeding must come after.
    prepared = prepare_data(spec)
    seed_everything(spec.seed)
    data = DeviceData.from_prepared(prepared, device)

    generator = torch.Generator().manual_seed(spec.seed)  # batch order: independent of init draws
    method = build_method(spec, prepared, data, generator, init_state)
    ctx = method.ctx
    stages = method.stages()
    total_epochs = sum(stage.epochs for stage in stages)

    best, first_epoch = BestTracker(), 0
    if resume and (blob := store.find_checkpoint(run_id, "last")) is not None:
        first_epoch = restore_training_state(load_checkpoint(blob), method, best, generator, ctx.device_generator) + 1
    store.start_run(
        run_id, str(device), prepared.train.index, prepared.noise.noisy, prepared.noise.flipped, prepared.noise.T,
        first_epoch=first_epoch, trusted_index=None if prepared.trusted is None else prepared.trusted.index,
    )
    if reporter:
        reporter.start(run_id, spec, total_epochs, done=first_epoch)

    epoch, metrics = 0, {}
    checkpointer = Checkpointer(spec.train.checkpoint_every_s)
    for stage in stages:
        method.stage = stage
        for _ in range(stage.epochs):
            if epoch < first_epoch:  # trained before the interruption
                epoch += 1
                continue
            started = beat = time.perf_counter()
            extra = method.start_epoch(epoch)
            method.train_mode(True)
            steps = StepAccumulator()
            for batch in method.batches():
                steps.add(method.train_step(batch), len(batch.y))
                if steps.steps % NONFINITE_CHECK_EVERY == 0 and steps.bad_step() is not None:
                    break
                if stop is not None and stop.is_set():
                    store.save_checkpoints(run_id, checkpointer.flush())
                    raise RunInterrupted(f"interrupted in epoch {epoch}; resumable from epoch {epoch}")
                if time.perf_counter() - beat > HEARTBEAT_EVERY_S:  # long epochs: stay visibly alive
                    store.heartbeat(run_id)
                    beat = time.perf_counter()
            if (bad := steps.bad_step()) is not None:
                raise TrainingDiverged(f"non-finite loss at epoch {epoch} step {bad} (stage {stage.name})")
            lr = method.learning_rate()  # before end_epoch steps the scheduler: the lr this epoch used
            extra |= method.end_epoch(epoch)

            metrics = {step_metric_name(method, k): v for k, v in steps.means().items()}
            metrics |= evaluate(method, data, spec.train.eval_batch_size, noisy_val=spec.data.val == "noisy")
            if (selected := method.clean_selection()) is not None:
                metrics |= selection_metrics(selected.to(device), data.flipped)
            if (weights := method.sample_weights()) is not None:
                metrics |= weight_metrics(weights.to(device), data.flipped)
            if (trust := method.label_trust()) is not None:
                metrics |= trust_metrics(trust.to(device), data.flipped)
            metrics |= {f"{method.name}/{k}": v for k, v in extra.items()} | {"lr": lr}
            improved = best.update(epoch, metrics["val/acc"], metrics["test/acc"])
            metrics["time/epoch_s"] = time.perf_counter() - started

            final = epoch == total_epochs - 1
            blobs = checkpointer.blobs(
                lambda: training_state(method, epoch, best, generator, ctx.device_generator), improved, final
            )
            if spec.train.keep_checkpoints and epoch % spec.train.keep_checkpoints == 0:
                blobs.append((f"epoch{epoch}", epoch, serialise_checkpoint(checkpointer.latest)))  # this epoch's snapshot
            T_hat = method.transition_matrix()
            store.log_epoch(
                run_id,
                epoch,
                metrics,
                summary={
                    "best_val_epoch": best.epoch,
                    "best_val_acc": best.val_acc,
                    "best_val_test_acc": best.test_acc,
                    "last_test_acc": metrics["test/acc"],
                },
                checkpoints=blobs,
                matrices=[] if T_hat is None else [
                    {"T": T_hat, "kind": ESTIMATED_T, "stage": stage.name, "estimator": method.transition_estimator(),
                     "error": estimation_error(T_hat, prepared.noise.T)}
                ],
            )
            if reporter:
                reporter.epoch(epoch, metrics)
            epoch += 1
    return {"best_val_epoch": best.epoch, "best_val_test_acc": best.test_acc, "last_test_acc": metrics.get("test/acc")}

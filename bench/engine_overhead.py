"""Engine overhead: nlx's CE loop against a minimal hand-written PyTorch loop doing the same work,
and nlx's tensor batching against torch.utils.data.DataLoader. Measured side by side in one run
(interleaved repetitions, medians), since shared machines are noisy.

    python bench/engine_overhead.py [--epochs 40] [--repeats 7] [--threads N]

Targets: nlx epoch / hand-written epoch <= 1.05; tensor batching >= 10x faster than a DataLoader.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nlx.context import iterate_batches  # noqa: E402
from nlx.data.prepare import prepare_data  # noqa: E402
from nlx.engine import DeviceData, seed_everything, train_run  # noqa: E402
from nlx.models import build_model  # noqa: E402
from nlx.specs import RunSpec  # noqa: E402
from nlx.store.db import open_db  # noqa: E402
from nlx.store.repo import Store  # noqa: E402

SPEC = dict(
    data={"name": "digits"},
    noise={"type": "sym", "rate": 0.4},
    model={"arch": "mlp", "hidden": [256, 256]},
    train={"epochs": 40, "batch_size": 64, "lr": 0.05, "device": "cpu"},
)


def nlx_epoch_seconds(spec: RunSpec, store: Store) -> float:
    """Wall time per epoch of a whole nlx run (data prep, DB writes, checkpoints included),
    in a store that stays open across runs, as `nlx run` keeps it for all its seeds and cells."""
    run_id = store.create_run(spec)
    started = time.perf_counter()
    train_run(spec, store, run_id)
    return (time.perf_counter() - started) / spec.train.epochs


def handwritten_epoch_seconds(spec: RunSpec) -> float:
    """The same model, data, batch order and per-epoch evaluations, written out by hand."""
    started = time.perf_counter()
    data, model, opt = hand_setup(spec)
    generator = torch.Generator().manual_seed(spec.seed)
    x, y = data.train_views[0], data.train_noisy
    for _ in range(spec.train.epochs):
        model.train()
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), spec.train.batch_size):
            idx = order[start : start + spec.train.batch_size]
            loss = F.cross_entropy(model([x[idx]]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():  # the same evaluations nlx does: train (clean/flipped), val, test
            logits = torch.cat([model([x[i : i + 1024]]) for i in range(0, len(y), 1024)])
            pred, flipped = logits.argmax(1), data.flipped
            losses = F.cross_entropy(logits, y, reduction="none")
            values = [
                (pred == y).float().mean(),
                (pred[~flipped] == y[~flipped]).float().mean(),
                losses[~flipped].mean(),
                losses[flipped].mean(),
                (pred[flipped] == y[flipped]).float().mean(),
                (pred[flipped] == data.train_true[flipped]).float().mean(),
            ]
            for views, labels in ((data.val_views, data.val_labels), (data.test_views, data.test_labels)):
                out = model(views)
                values += [F.cross_entropy(out, labels), (out.argmax(1) == labels).float().mean()]
            torch.stack(values).tolist()
    return (time.perf_counter() - started) / spec.train.epochs


def batching_seconds(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float, float]:
    """One epoch of shuffled batches, no model: nlx's tensor slicing vs DataLoader(TensorDataset)."""
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for batch in iterate_batches([x], y, batch_size, generator):
        pass
    tensor_time = time.perf_counter() - started
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, generator=generator)
    started = time.perf_counter()
    for batch in loader:
        pass
    return tensor_time, time.perf_counter() - started


def hand_setup(spec: RunSpec):
    """Data on the device, a fresh model and its optimizer: the hand-written loops' common start."""
    prepared = prepare_data(spec)
    seed_everything(spec.seed)
    data = DeviceData.from_prepared(prepared, torch.device("cpu"))
    model = build_model(spec.model, prepared.view_shapes, prepared.num_classes)
    opt = torch.optim.SGD(model.parameters(), lr=spec.train.lr, momentum=spec.train.momentum, weight_decay=spec.train.weight_decay)
    return data, model, opt


def training_epoch_seconds(spec: RunSpec, use_dataloader: bool) -> float:
    """Training only (no evaluation), fed by nlx's tensor batches or by a DataLoader."""
    data, model, opt = hand_setup(spec)
    x, y = data.train_views[0], data.train_noisy
    generator = torch.Generator().manual_seed(0)
    loader = DataLoader(TensorDataset(x, y), batch_size=spec.train.batch_size, shuffle=True, generator=generator)
    started = time.perf_counter()
    for _ in range(spec.train.epochs):
        batches = loader if use_dataloader else ((b.views[0], b.y) for b in iterate_batches([x], y, spec.train.batch_size, generator))
        for xb, yb in batches:
            loss = F.cross_entropy(model([xb]), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return (time.perf_counter() - started) / spec.train.epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40, help="epochs per run (the quickstart uses 40)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = RunSpec.model_validate({**SPEC, "train": {**SPEC["train"], "epochs": args.epochs}})

    nlx_times, hand_times = [], []
    with tempfile.TemporaryDirectory() as folder, Store(open_db(str(Path(folder) / "bench.db"), create=True)) as store:
        nlx_epoch_seconds(spec, store)  # warm-up: imports, allocator, first kernels, SQL caches
        handwritten_epoch_seconds(spec)
        for _ in range(args.repeats):  # interleaved so drift hits both alike
            nlx_times.append(nlx_epoch_seconds(spec, store))
            hand_times.append(handwritten_epoch_seconds(spec))
    # Fastest of N: the run least disturbed by other work on the machine (timeit's rule).
    nlx_s, hand_s = min(nlx_times), min(hand_times)
    nlx_med, hand_med = statistics.median(nlx_times), statistics.median(hand_times)

    prepared = prepare_data(spec)
    x = torch.as_tensor(prepared.train.views[0])
    y = torch.as_tensor(prepared.train.labels)
    batch_pairs = [batching_seconds(x, y, spec.train.batch_size) for _ in range(20)]
    tensor_s = statistics.median(t for t, _ in batch_pairs)
    loader_s = statistics.median(d for _, d in batch_pairs)
    loops = [(training_epoch_seconds(spec, False), training_epoch_seconds(spec, True)) for _ in range(args.repeats)]
    loop_tensor_s = statistics.median(t for t, _ in loops)
    loop_loader_s = statistics.median(d for _, d in loops)

    print(f"engine overhead on digits ({len(y)} training samples, MLP 256-256, batch {spec.train.batch_size}, "
          f"{args.epochs} epochs x {args.repeats} interleaved repeats, {torch.get_num_threads()} threads)")
    print(f"  nlx CE epoch (DB writes, checkpoints, evaluations)  {1000 * nlx_s:8.2f} ms")
    print(f"  hand-written PyTorch epoch (same work)              {1000 * hand_s:8.2f} ms")
    print(f"  ratio nlx / hand-written (fastest of {args.repeats})            {nlx_s / hand_s:8.3f}   (target <= 1.05)")
    print(f"  ratio of medians ({1000 * nlx_med:.1f} / {1000 * hand_med:.1f} ms)              {nlx_med / hand_med:8.3f}")
    print("batching one epoch, no model")
    print(f"  nlx tensor batches                                 {1000 * tensor_s:8.3f} ms")
    print(f"  DataLoader(TensorDataset)                          {1000 * loader_s:8.3f} ms")
    print(f"  speed-up                                           {loader_s / tensor_s:8.1f} x   (target >= 10)")
    print("training epoch (no evaluation), tensor batches vs DataLoader")
    print(f"  tensor batches                                     {1000 * loop_tensor_s:8.2f} ms")
    print(f"  DataLoader                                         {1000 * loop_loader_s:8.2f} ms")
    print(f"  speed-up                                           {loop_loader_s / loop_tensor_s:8.2f} x")


if __name__ == "__main__":
    main()

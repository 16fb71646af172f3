"""Built-in datasets with the networks that fit them: epoch time and CE accuracy, clean and noisy.

    python bench/datasets.py [--noise none,sym0.4] [--seeds 2] [--epochs 20] [--only mnist1d] [--threads 1]

For every (dataset, network) pair of PAIRS, trains CE under each noise setting and prints the mean
seconds per epoch and the test accuracy at the best-validation epoch and at the last epoch,
mean ± std over seeds. The gap between best-val and last at sym0.4 is the memorisation of noisy
labels. To bench a new network or dataset, add a row to PAIRS.

With CUDA it then times one CIFAR-scale CE epoch (50,000 random 3x32x32 images, batch 128) of
`preact_resnet18` on the GPU in float32 and with mixed precision (`train.amp`), through
bench/gpu.py; without CUDA it prints one line saying so.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from nlx.data.noise import parse_noise_label  # noqa: E402
from nlx.runs import execute_runs  # noqa: E402
from nlx.specs import RunSpec  # noqa: E402
from nlx.store.db import open_db  # noqa: E402
from nlx.store.repo import Store  # noqa: E402

MLP = {"arch": "mlp", "hidden": [256, 256]}
FUSION = {"arch": "multiview", "encoder": "mlp", "hidden": [128], "embed": 64, "rank": 4}  # as in mfeat_fusion
# (dataset, model section, data fields, train fields over TRAIN): one benched row each.
PAIRS: list[tuple[str, dict, dict, dict]] = [
    ("digits", MLP, {}, {}),
    ("digits", {"arch": "lenet"}, {}, {}),
    ("mnist1d", MLP, {}, {}),
    ("mnist1d", {"arch": "cnn1d"}, {}, {"lr": 0.01}),  # the MNIST-1D paper's CNN and Adam rate
    ("mfeat", MLP, {}, {}),  # all six views concatenated, each standardised (early fusion)
    ("mfeat", {**FUSION, "fusion": "concat"}, {}, {}),  # late fusion of the six views
    ("mfeat", {**FUSION, "fusion": "sum"}, {}, {}),
    ("mfeat", {**FUSION, "fusion": "lowrank"}, {}, {}),
    ("mfeat", MLP, {"views": ["pix"]}, {}),  # one view: what fusion adds over it
]
TRAIN = {"optimizer": "adam", "lr": 0.001, "weight_decay": 0.0, "batch_size": 128, "device": "cpu", "checkpoint_every_s": 1e9}


def spec_for(dataset: str, model: dict, data: dict, train: dict, noise: str, seed: int, epochs: int) -> RunSpec:
    kind, rate = parse_noise_label(noise)
    return RunSpec.model_validate({
        "experiment": "bench_datasets",
        "data": {"name": dataset, **data},
        "noise": {"type": kind, "rate": rate},
        "model": model,
        "method": {"name": "ce"},
        "train": {**TRAIN, **train, "epochs": epochs},
        "seed": seed,
    })


def summary(values: list[float], scale: float = 100.0, digits: int = 2) -> str:
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{scale * statistics.mean(values):.{digits}f} ± {scale * spread:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", default="none,sym0.4")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--only", default="", help="comma-separated dataset names to keep")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep = set(filter(None, args.only.split(",")))

    header = ("dataset", "network", "noise", "s/epoch", "best-val test acc %", "last test acc %", "n")
    rows = []
    with tempfile.TemporaryDirectory() as folder, Store(open_db(str(Path(folder) / "bench.db"), create=True)) as store:
        for dataset, model, data, train in PAIRS:
            if keep and dataset not in keep:
                continue
            for noise in args.noise.split(","):
                specs = [spec_for(dataset, model, data, train, noise, seed, args.epochs) for seed in range(args.seeds)]
                started = time.perf_counter()
                outcomes = execute_runs(specs, store)
                finished = [o.run_id for o in outcomes if o.status == "finished"]
                runs = [store.get_run(run_id) for run_id in finished]
                epoch_s = [value for _, _, _, value in store.metrics(finished, ["time/epoch_s"]) if value is not None]
                rows.append((
                    specs[0].data.label, specs[0].model.label + (f" lr {train['lr']:g}" if "lr" in train else ""), noise,
                    f"{statistics.mean(epoch_s):.3f}" if epoch_s else "-",
                    summary([r.best_val_test_acc for r in runs]), summary([r.last_test_acc for r in runs]),
                    f"{len(runs)}/{len(specs)} ({time.perf_counter() - started:.0f} s)",
                ))
                print(" | ".join(rows[-1]), flush=True)

    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\nCE, Adam 1e-3 (unless the row says), batch 128, {args.epochs} epochs, seeds 0..{args.seeds - 1}, CPU, {args.threads} thread(s)")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))
    print()
    gpu_epochs()


def gpu_epochs() -> None:
    """With CUDA, a timed CIFAR-scale epoch of preact_resnet18 in float32 and mixed precision,
    through the engine's own training step (bench/gpu.py, CE only)."""
    from gpu import main as gpu_main

    gpu_main(["--methods", "ce"])


if __name__ == "__main__":
    main()

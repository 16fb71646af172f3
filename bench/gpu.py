"""The GPU path: CE and DivideMix epochs of `preact_resnet18` on 50,000 random 32x32x3 images
resident on the GPU, in float32 and with mixed precision (`train.amp`), as images per second and
an estimated achieved TFLOP/s against the GPU's peak dense FP16/BF16 tensor throughput.

    python bench/gpu.py [--train 50000] [--batch-size 128] [--methods ce dividemix] [--compile]

Without CUDA it prints one line saying so and exits 0. About 5 minutes on an H100/H200-class GPU.

Epochs are timed as bench/method_cost.py times them (training only: start_epoch, steps,
end_epoch; no evaluation, no database), after a first epoch that pays for CUDA/cuDNN warm-up.
FLOPs per image for one forward+backward come from torch.utils.flop_counter on one batch;
a method's epoch does `passes` of them per training sample (bench/method_cost.py's PASSES).
Achieved TFLOP/s = images/s x passes x FLOPs per image pass; the peaks are approximate vendor
figures (dense, no sparsity) and the float32 rows are read against the same peak.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from method_cost import DEFAULT_PASSES, PASSES, time_spec  # noqa: E402
from nlx.data.registry import Dataset, dataset_names, register_dataset  # noqa: E402
from nlx.models import model_names  # noqa: E402
from nlx.specs import RunSpec  # noqa: E402

ARCH = "preact_resnet18"
TEST = 1_000
VAL_FRACTION = 0.02  # a small validation split: the bench times training

# Approximate peak dense FP16/BF16 tensor-core TFLOP/s by device-name fragment (vendor figures,
# no sparsity). The first fragment found in torch.cuda.get_device_name() wins.
PEAK_TFLOPS = (
    ("GH200", 989.0), ("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("H800", 989.0),
    ("B200", 2250.0), ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0), ("L40", 181.0),
    ("A10G", 70.0), ("A10", 125.0), ("L4", 121.0), ("RTX 4090", 165.0), ("RTX 3090", 71.0),
    ("V100", 125.0), ("T4", 65.0),
)


def peak_tflops(device_name: str) -> float | None:
    return next((peak for fragment, peak in PEAK_TFLOPS if fragment in device_name), None)


def register_random_images(train: int) -> str:
    """A dataset of `train` (+ validation + test) random 3x32x32 images in 10 classes."""
    name = f"random32_{train}"
    pool = int(round(train / (1 - VAL_FRACTION)))

    @cache
    def load() -> Dataset:
        rng = np.random.default_rng(0)
        n = pool + TEST
        return Dataset(
            name=name, views=[rng.standard_normal((n, 3, 32, 32), dtype=np.float32)], view_names=["pixels"],
            labels=rng.integers(0, 10, n).astype(np.int64), class_names=[str(c) for c in range(10)],
            test_mask=np.arange(n) >= pool,
        )

    if name not in dataset_names():
        register_dataset(name)(load)
    return name


def flops_per_image_pass(spec: RunSpec, device: torch.device) -> float:
    """FLOPs of one forward+backward of the network, per image, counted on one batch."""
    from torch.utils.flop_counter import FlopCounterMode

    from nlx.models import build_model

    net = build_model(spec.model, [(3, 32, 32)], 10).to(device)
    x = torch.randn(spec.train.batch_size, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (spec.train.batch_size,), device=device)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(net([x]), y).backward()
    return counter.get_total_flops() / spec.train.batch_size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=50_000, help="training images")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--methods", nargs="+", default=["ce", "dividemix"])
    parser.add_argument("--compile", action="store_true", help="also set train.compile")
    args = parser.parse_args(argv)

    if not torch.cuda.is_available():
        print("no CUDA device: the GPU bench needs one (nothing timed)")
        return
    if ARCH not in model_names():
        raise SystemExit(f"model.arch {ARCH!r} is not registered in this nlx (known: {', '.join(model_names())}); "
                         "the GPU bench needs it")
    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    peak = peak_tflops(name)
    dataset = register_random_images(args.train)

    def spec_for(method: str, amp: bool) -> RunSpec:
        # 3 epochs each; the first epoch of a stage is not timed (time_spec), and it is the one
        # that warms CUDA and cuDNN up. DivideMix: 2 warm-up epochs (1 timed), 1 train epoch.
        epochs = 3
        params = {"warm_up": 2} if method == "dividemix" else {}
        return RunSpec.model_validate({
            "data": {"name": dataset, "val_fraction": VAL_FRACTION, "augment": "crop_flip"},
            "noise": {"type": "sym", "rate": 0.5},
            "model": {"arch": ARCH},
            "method": {"name": method, "params": params},
            "train": {"epochs": epochs, "batch_size": args.batch_size, "device": "cuda", "amp": amp,
                      "compile": args.compile},
            "seed": 0,
        })

    flops = flops_per_image_pass(spec_for("ce", False), device)
    print(f"GPU: {name}; peak dense FP16/BF16 ~{peak or '?'} TFLOP/s (approximate vendor figure)")
    print(f"{ARCH}: {flops / 1e9:.2f} GFLOP per image forward+backward (flop counter); "
          f"{args.train:,} random 3x32x32 images on the GPU, batch {args.batch_size}, crop_flip, "
          f"torch {torch.__version__}{', compiled' if args.compile else ''}")
    print(f"\n{'method':<10} {'stage':<8} {'amp':<5} {'epoch s':>8} {'passes':>7} {'images/s':>10} {'TFLOP/s':>8} {'of peak':>8}")
    for method in args.methods:
        for amp in (False, True):
            spec = spec_for(method, amp)
            started = time.perf_counter()
            times, info, _ = time_spec(spec, device)
            for stage, values in times.items():
                seconds = min(values)
                passes = PASSES.get(method, DEFAULT_PASSES)(stage, info)
                images = info["n_train"] / seconds
                tflops = images * passes * flops / 1e12
                share = f"{100 * tflops / peak:.1f}%" if peak else "?"
                print(f"{method:<10} {stage:<8} {str(amp).lower():<5} {seconds:>8.2f} {passes:>7.2f} {images:>10,.0f} "
                      f"{tflops:>8.1f} {share:>8}", flush=True)
            print(f"  ({method}, amp={amp}: {time.perf_counter() - started:.0f} s in all)", flush=True)
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()

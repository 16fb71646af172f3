"""Method cost: is every method's epoch as cheap as the work it does?

Times a training epoch of every registered method (`method_names()`) on the same data, network
and batch size, and prints

    ratio = method epoch time / (passes per sample x CE epoch time)

where `passes` counts the work a method's epoch does per training sample in units of one
forward+backward pass of one network (a forward-only pass, under no_grad, counts 1/3: the
backward costs about twice the forward). Target: ratio <= 1.3 for every method.

What an epoch is here: what the method does between two evaluations, i.e. the engine's
`start_epoch` (a method's own full-data passes, e.g. DivideMix's per-sample losses for the GMM),
every training step, `end_epoch` (schedulers, a method's model selection on the validation
split), and the engine's per-epoch reduction of step scalars. The engine's evaluation pass
(train/val/test metrics, the same for every method up to the number of networks in `predict`)
is NOT timed, nor are database writes. Multi-stage methods are timed per stage. Methods that
need a trusted set get `data.trusted: {per_class: 10}`, carved out of their training pool, so
their bound is scaled by their training samples / CE's (the count is per training sample).

    python bench/method_cost.py [--epochs 6] [--repeats 3] [--hidden 512 512] [--batch-size 128]

Each (method, stage) is timed as the fastest of its epochs over `--repeats` runs, CE likewise,
in CPU seconds of this process by default (`--clock process`, one torch thread): on a shared
machine other processes change the wall time of an epoch by 2x, its CPU time hardly at all.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nlx.data.prepare import prepare_data  # noqa: E402
from nlx.engine import NONFINITE_CHECK_EVERY, DeviceData, StepAccumulator, build_method, seed_everything  # noqa: E402
from nlx.methods import get_method, method_names  # noqa: E402
from nlx.specs import RunSpec  # noqa: E402

FORWARD_ONLY = 1 / 3  # a no_grad forward pass, in forward+backward units

# Passes per training sample of one epoch of each (method, stage), in forward+backward units of
# one network. `info` has `val` (validation samples / training samples) and `labelled`
# (DivideMix: the labelled share of the training set under each network's split, a pair).
# `trusted` (meta methods) is the trusted samples drawn per training sample (meta_batch_size x
# steps / training samples; about 1 with the default meta batch = batch size) and `views` the K
# copies a step guesses from. A method missing here counts 1 pass per sample (one network, one
# forward+backward): add its entry when it does more.
Passes = Callable[[str, dict[str, Any]], float]


def _dividemix(stage: str, info: dict[str, Any]) -> float:
    if stage == "warmup":
        return 2.0  # both networks, plain CE on every sample
    # start_epoch: per-sample losses of both networks (2 forward-only passes over all samples).
    # Network k then steps over its peer's labelled set, |L| / B steps; each step of B labelled
    # samples draws B unlabelled ones (the labelled share under network k's split is
    # `labelled[k]`, measured after the split) and does: the own network's guess on the labelled batch
    # (forward-only, B), co-guessing by both networks on the unlabelled batch (2 forward-only,
    # 2B), and one forward+backward of the 2B mixed inputs: 3B units per B labelled samples.
    # With an augmentation every sample enters as K = 2 copies (`views`), so all of it doubles.
    per_labelled = info.get("views", 1) * (FORWARD_ONLY * 1 + FORWARD_ONLY * 2 + 2)
    return 2 * FORWARD_ONLY + per_labelled * sum(info["labelled"])


def _tmatrix(main_stage: str) -> Passes:
    def passes(stage: str, info: dict[str, Any]) -> float:
        if stage == "warmup":
            # CE, then model selection on the validation split and T estimated from the
            # training set's predictions (track_warmup_T), each a forward-only pass.
            return 1 + FORWARD_ONLY * (1 + info["val"])
        if stage == "reweight":
            return 1 + FORWARD_ONLY * info["val"]  # + model selection on the validation split
        return 1.0  # forward / revise: one network, one forward+backward (T is C x C)

    return passes


def _l2r(stage: str, info: dict[str, Any]) -> float:
    # Per noisy sample, with t = trusted samples drawn per noisy sample:
    #   forward of the noisy batch (1/3) and its backward with create_graph, the virtual step
    #   theta'(eps) (2/3);
    #   the trusted batch's forward at theta' and its backward (t: a full pass of t samples);
    #   the second-order backward from theta' through the virtual step to eps (2/3: for every
    #   layer it multiplies by the saved activations and weights once each, as a backward does;
    #   the virtual step's own elementwise work on the parameters is not counted);
    #   the real step's backward through the retained noisy forward (2/3).
    # = 1 + t + 4/3: 10/3 at t = 1 (the L2R paper: "about 3x" a normal step).
    return 1 + info["trusted"] + 2 * FORWARD_ONLY * 2


def _ieg(stage: str, info: dict[str, Any], networks: int = 1) -> float:
    # Per noisy sample, per network, with K copies and t trusted samples per noisy sample:
    #   forward of the K copies, kept for the loss, and their backward in the real step (K);
    #   the meta step: backward with create_graph on the raw copy's loss (2/3), the trusted
    #   forward+backward at theta' (t), the second-order backward to w and eps (2/3);
    #   the mixup forward+backward of the trusted batch and the K copies of the possibly
    #   mislabelled samples (every sample at the default mis_threshold 1.1): t + K;
    #   the EMA update (elementwise over the parameters: not counted).
    # = 2K + 2t + 4/3: 16/3 at K = 1, t = 1. IEG+DivideMix: two networks, each all of it (the
    # co-guess is elementwise on (B, C) predictions).
    K = info.get("views", 1)
    return networks * (2 * K + 2 * info["trusted"] + 2 * 2 * FORWARD_ONLY)


PASSES: dict[str, Passes] = {
    "ce": lambda stage, info: 1.0,
    "coteaching": lambda stage, info: 2.0,  # two networks, forward+backward on every sample (the
    # backward runs on the kept (1 - R) share only: counting 2 makes the bound conservative)
    "dividemix": _dividemix,
    "dmi": lambda stage, info: 1.0,  # one network; the loss is a C x C determinant per batch
    "forward": _tmatrix("forward"),
    "ieg": _ieg,
    "ieg_dividemix": lambda stage, info: _ieg(stage, info, networks=2),
    "l2r": _l2r,
    "trevision": _tmatrix("revise"),
}
DEFAULT_PASSES: Passes = lambda stage, info: 1.0  # noqa: E731

# Short stages, so that every stage of every method is reached within a few epochs.
METHOD_PARAMS = {
    "dividemix": {"warm_up": 1},
    "forward": {"warmup_epochs": 1},
    "trevision": {"warmup_epochs": 1, "revise_epochs": 2},
}


TRUSTED = {"per_class": 10}  # the trusted set of methods that need one (carved out of the training pool)


def make_spec(method: str, args: argparse.Namespace) -> RunSpec:
    data: dict[str, Any] = {"name": args.dataset}
    if "trusted" in get_method(method).needs:
        data["trusted"] = TRUSTED
    return RunSpec.model_validate({
        "data": data,
        "noise": {"type": "sym", "rate": 0.4},
        "model": {"arch": "mlp", "hidden": args.hidden},
        "method": {"name": method, "params": METHOD_PARAMS.get(method, {})},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size, "device": "cpu"},
        "seed": 0,
    })


def time_method(name: str, args: argparse.Namespace, init_state: dict | None) -> tuple[dict[str, float], dict[str, Any], Any]:
    """{stage: fastest epoch seconds}, the pass-count info, and the method (for its state)."""
    clock = time.process_time if args.clock == "process" else time.perf_counter
    times, info, method = time_spec(make_spec(name, args), torch.device("cpu"), init_state, clock)
    return {stage: min(values) for stage, values in times.items()}, info, method


def time_spec(spec: RunSpec, device: torch.device, init_state: dict | None = None,
              clock: Callable[[], float] = time.perf_counter) -> tuple[dict[str, list[float]], dict[str, Any], Any]:
    """Train `spec`'s method for its epochs as the engine does, without evaluations or writes:
    {stage: [seconds of each epoch timed]}, the pass-count info, and the method. The first
    epoch of a stage longer than one epoch is left out (one-off work: T estimation, restoring
    weights, CUDA warm-up)."""
    name = spec.method.name
    prepared = prepare_data(spec)
    seed_everything(spec.seed)
    data = DeviceData.from_prepared(prepared, device)
    method = build_method(spec, prepared, data, torch.Generator().manual_seed(spec.seed), init_state)
    trusted = "trusted" in method.needs  # meta methods: the engine gave them the trusted set
    times: dict[str, list[float]] = {}
    info: dict[str, Any] = {"val": len(data.val_labels) / len(data.train_noisy), "labelled": (1.0, 1.0), "n_train": len(data.train_noisy)}
    epoch = 0
    for stage in method.stages():
        method.stage = stage
        for _ in range(stage.epochs):
            started = clock()
            method.start_epoch(epoch)
            method.train_mode(True)
            steps = StepAccumulator()
            for batch in method.batches():
                steps.add(method.train_step(batch), len(batch.y))
                if steps.steps % NONFINITE_CHECK_EVERY == 0:  # the engine's periodic check (a sync)
                    steps.bad_step()
            steps.bad_step()
            method.end_epoch(epoch)
            steps.means()  # the engine's one host transfer of the epoch's step scalars
            if device.type == "cuda":
                torch.cuda.synchronize()
            elapsed = clock() - started
            if name == "dividemix" and stage.name == "train":
                info["labelled"] = tuple((method.prob > method.params.p_threshold).float().mean(1).tolist())
                info["views"] = method.views_per_sample
            if trusted:  # meta methods: trusted samples drawn per training sample, K copies
                info["trusted"] = steps.steps * method.meta_size / len(data.train_noisy)
                info["views"] = getattr(method, "K", 1)
            # The first epoch of a stage does one-off work (T estimation, restoring weights).
            if stage.epochs == 1 or _ > 0:
                times.setdefault(stage.name, []).append(elapsed)
            epoch += 1
    return times, info, method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadier on a shared machine)")
    parser.add_argument("--methods", nargs="*", help="only these (default: every registered method)")
    parser.add_argument("--clock", choices=("process", "wall"), default="process",
                        help="process: CPU seconds of this process (with one thread, other work on a shared machine "
                             "barely moves it); wall: elapsed time")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    names = args.methods or method_names()
    # DMI fine-tunes a checkpoint: a CE network of the same spec stands in for it.
    _, _, ce_method = time_method("ce", args, None)
    init_state = ce_method.state_dict()

    best: dict[str, dict[str, float]] = {}
    infos: dict[str, dict[str, Any]] = {}
    for _ in range(args.repeats):  # interleaved repeats: drift hits every method alike
        for name in ["ce", *[n for n in names if n != "ce"]]:
            times, info, _method = time_method(name, args, init_state)
            infos[name] = info
            for stage, seconds in times.items():
                best.setdefault(name, {})
                best[name][stage] = min(seconds, best[name].get(stage, float("inf")))

    ce_s = best["ce"]["train"]
    n_ce = infos["ce"]["n_train"]
    print(f"method cost on {args.dataset} (sym0.4), MLP {'-'.join(map(str, args.hidden))}, batch {args.batch_size}, "
          f"CPU, {torch.get_num_threads()} thread(s), {args.clock} time; fastest epoch of {args.repeats} repeats x {args.epochs} epochs")
    print(f"CE training epoch: {1000 * ce_s:.1f} ms over {n_ce} training samples; a method with a trusted set "
          f"({TRUSTED}) trains on fewer: its bound is scaled by its training samples / CE's")
    print(f"\n{'method':<14} {'stage':<10} {'epoch ms':>9} {'passes':>7} {'bound ms':>9} {'ratio':>6}  target <= 1.3")
    ratios = []
    for name in best:
        passes_of = PASSES.get(name, DEFAULT_PASSES)
        for stage, seconds in best[name].items():
            passes = passes_of(stage, infos[name])
            bound = passes * ce_s * infos[name]["n_train"] / n_ce  # per training sample
            ratio = seconds / bound
            ratios.append(ratio)
            verdict = "ok" if ratio <= 1.3 else "OVER"
            print(f"{name:<14} {stage:<10} {1000 * seconds:>9.1f} {passes:>7.2f} {1000 * bound:>9.1f} {ratio:>6.2f}  {verdict}")
    print(f"\nworst ratio {max(ratios):.2f}, median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()

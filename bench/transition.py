"""Transition-matrix methods against CE: how well T is estimated, and what it buys in accuracy.

    python bench/transition.py [--dataset digits] [--noise asym0.4,sym0.4] [--seeds 3] [--epochs 40]
        [--arch cnn1d] [--optimizer adam] [--lr 0.01] [--skip dmi]

Runs, per noise setting and seed, CE, forward correction with the anchor estimator and with the
true T (oracle), T-Revision, DMI fine-tuned from the CE run (with --all also forward and
T-Revision with the confident-joint estimator), and any other method named in --methods
(default params), on the dataset's network and optimiser in bench/common.py DEFAULTS (digits: the quickstart
MLP under SGD lr 0.05; mnist1d: the 1-D CNN under Adam lr 1e-2, as in mnist1d_quick; mfeat: multiview concat under Adam 1e-3), which
--arch/--optimizer/--lr override. Prints one row per method and noise: the error sum|T_hat - T| / sum|T| of the T
the method trained with (last stored estimate), the lowest error any warm-up epoch reached (a
diagnostic that needs the true T), and last-epoch / best-val test accuracy, mean ± std over
seeds. Rows "estimator: NAME (ce best/last)" re-estimate T with each estimator from the CE
runs' best-validation and last checkpoints (no training). Targets at asym0.4: T-Revision's final T error < 0.15; forward and T-Revision above CE's
last-epoch accuracy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from common import DEFAULTS, MLP  # noqa: E402
from nlx.data.noise import parse_noise_label  # noqa: E402
from nlx.estimation import ESTIMATORS  # noqa: E402
from nlx.reestimate import reestimate_run  # noqa: E402
from nlx.runs import execute_runs  # noqa: E402
from nlx.specs import RunSpec  # noqa: E402
from nlx.store.db import open_db  # noqa: E402
from nlx.store.models import ESTIMATED_T  # noqa: E402
from nlx.store.repo import Store  # noqa: E402

VARIANTS = {  # label -> (method name, params)
    "ce": ("ce", {}),
    "forward (anchor)": ("forward", {"estimator": "anchor"}),
    "forward (true T)": ("forward", {"t_source": "true"}),
    "trevision (anchor)": ("trevision", {}),
    "dmi (from ce, auto)": ("dmi", {"init_from": "auto"}),  # reuses the ce runs above
    "dmi (lr 1e-4)": ("dmi", {"init_from": "auto", "lr": 1e-4}),  # the paper's 1e-6 barely moves a small MLP
}
SLOW_VARIANTS = {  # --all: the same methods with the confident-joint estimator
    "forward (conf. joint)": ("forward", {"estimator": "confident_joint"}),
    "trevision (conf. joint)": ("trevision", {"estimator": "confident_joint"}),
}


def setup_for(dataset: str, arch: str | None = None, optimizer: str | None = None, lr: float | None = None) -> tuple[dict, dict]:
    """The (model, train) sections for a dataset: its DEFAULTS row (the MLP under SGD for others), overridden."""
    model, train = DEFAULTS.get(dataset, DEFAULTS["digits"])
    if arch and arch != model["arch"]:
        model = dict(MLP) if arch == "mlp" else {"arch": arch}
    overrides = {"optimizer": optimizer, "lr": lr}
    return model, {**train, **{key: value for key, value in overrides.items() if value is not None}}


def spec_for(dataset: str, noise: str, method: str, params: dict, seed: int, epochs: int,
             setup: tuple[dict, dict] | None = None, root: str | None = None) -> RunSpec:
    kind, rate = parse_noise_label(noise)
    model, train = setup or setup_for(dataset)
    return RunSpec.model_validate({
        "experiment": "bench_transition",
        "data": {"name": dataset, **({"root": root} if root else {})},
        "noise": {"type": kind, "rate": rate},
        "model": model,
        "method": {"name": method, "params": params},
        "train": {**train, "epochs": epochs, "device": "cpu", "checkpoint_every_s": 1e9},
        "seed": seed,
    })


def summary(values: list[float | None]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


def estimator_rows(store: Store, noise: str, ce_runs: list[int]) -> list[tuple[str, ...]]:
    """T error of each estimator from the CE runs' best-validation and last checkpoints."""
    errors: dict[tuple[str, str], list[float]] = {}
    for run_id in ce_runs:
        for r in reestimate_run(store, run_id):
            errors.setdefault((r.estimator, r.tag), []).append(r.error)
    rows = []
    for estimator in ESTIMATORS:
        best, last = errors.get((estimator, "best"), []), errors.get((estimator, "last"), [])
        rows.append((noise, f"estimator: {estimator} (ce best/last ckpt)", summary(best), summary(last), "", "", str(len(best))))
        print(" | ".join(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--root", default=None, help="data.root of a dataset read from disk (e.g. fashion_mnist)")
    parser.add_argument("--noise", default="asym0.4,sym0.4")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--methods", default="", help="extra method names to run with default params, comma-separated")
    parser.add_argument("--all", action="store_true", help="also run forward/trevision with the confident-joint estimator")
    parser.add_argument("--arch", default=None, help="network (default: the dataset's row in DEFAULTS)")
    parser.add_argument("--optimizer", default=None, choices=["sgd", "adam", "adamw"], help="optimiser (default: DEFAULTS)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: DEFAULTS)")
    parser.add_argument("--skip", default="", help="method names or row labels to leave out, comma-separated (e.g. 'dmi,forward (true T)')")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    variants = dict(VARIANTS) | (SLOW_VARIANTS if args.all else {}) | {name: (name, {}) for name in filter(None, args.methods.split(","))}
    skip = set(filter(None, args.skip.split(",")))
    variants = {label: variant for label, variant in variants.items() if variant[0] not in skip and label not in skip}
    setup = setup_for(args.dataset, args.arch, args.optimizer, args.lr)

    rows = []
    with tempfile.TemporaryDirectory() as folder, Store(open_db(str(Path(folder) / "bench.db"), create=True)) as store:
        for noise in args.noise.split(","):
            for label, (method, params) in variants.items():
                specs = [spec_for(args.dataset, noise, method, params, seed, args.epochs, setup, args.root) for seed in range(args.seeds)]
                outcomes = execute_runs(specs, store)
                failed = [o.error for o in outcomes if o.status != "finished"]
                runs = [store.get_run(o.run_id) for o in outcomes if o.status == "finished"]
                final_err, warm_err = [], []
                for o in outcomes:
                    estimates = [m for m in store.matrices([o.run_id]) if m.kind == ESTIMATED_T]
                    if estimates:
                        final_err.append(estimates[-1].error)
                        warm = [m.error for m in estimates if m.stage == "warmup"]
                        warm_err.append(min(warm) if warm else None)
                rows.append((
                    noise, label, summary(final_err), summary(warm_err),
                    summary([r.last_test_acc for r in runs]), summary([r.best_val_test_acc for r in runs]),
                    f"{len(runs)}" + (f" ({len(failed)} failed: {failed[0][:60]})" if failed else ""),
                ))
                print(" | ".join(rows[-1]), flush=True)
                if method == "ce":
                    rows += estimator_rows(store, noise, [o.run_id for o in outcomes if o.status == "finished"])

    header = ("noise", "method", "T error (used) | ckpt best", "min warm-up T error | ckpt last", "last test acc", "best-val test acc", "n")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    model, train = setup
    print(f"\n{args.dataset}, {model['arch']}, {train['optimizer']} lr {train['lr']}, {args.epochs} epochs, seeds 0..{args.seeds - 1}")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))


if __name__ == "__main__":
    main()

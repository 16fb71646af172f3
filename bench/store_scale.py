"""Store scale: fill a fresh database with a lab's worth of runs through nlx's own store API,
then time the report commands as a researcher runs them (a whole `python -m nlx ...` process,
imports included).

    python bench/store_scale.py [--runs 10000] [--epochs 100] [--keys 30] [--repeats 3]
                                [--db PATH] [--reuse]

The fill uses Store.create_run, Store.log_epochs (many epochs in one transaction) and
Store.finish_run. Runs span several datasets, models, methods, noise settings and seeds, with
curves shaped like training (accuracies rising, memorisation of flipped labels late, losses
falling). Each command is timed `--repeats` times; the fastest and the median are printed.

Target: every timed command under 1 second at 10,000 runs x 100 epochs x 30 keys.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlx.data.registry import dataset_names, register_dataset  # noqa: E402
from nlx.specs import RunSpec  # noqa: E402
from nlx.store.db import open_db  # noqa: E402
from nlx.store.repo import Store  # noqa: E402

# Dataset names stand in for a lab's datasets: only the run rows name them, nothing loads them.
DATASETS = ("digits", "cifar10", "cifar100", "animal10n")
MODELS = ("mlp", "lenet")
METHODS = ("ce", "coteaching", "dividemix", "dmi", "forward", "trevision")
NOISES = (("none", 0.0), ("sym", 0.2), ("sym", 0.4), ("sym", 0.6), ("sym", 0.8), ("asym", 0.2), ("asym", 0.4), ("inst", 0.4))
# The keys the engine logs every epoch, then method and selection keys, padded to --keys.
ENGINE_KEYS = (
    "train/loss", "train/acc", "train_clean/acc", "train_clean/loss", "train_flipped/loss",
    "train_flipped/acc_noisy", "train_flipped/acc_true", "val/loss", "val/acc", "test/loss", "test/acc",
    "lr", "time/epoch_s", "select/precision", "select/recall", "select/fraction",
)
PLOT_GROUP = ("cifar10", "lenet", "dividemix", "sym0.4")  # (dataset, model, method, noise)


def metric_keys(count: int) -> list[str]:
    extra = (f"method/aux{i}" for i in itertools.count())
    return list(itertools.islice(itertools.chain(ENGINE_KEYS, extra), count))


def register_stand_ins() -> None:
    def unavailable():
        raise RuntimeError("a bench stand-in dataset: never loaded")

    for name in DATASETS:
        if name not in dataset_names():
            register_dataset(name)(unavailable)


def grid(runs: int) -> list[tuple[str, str, str, tuple[str, float], int]]:
    """`runs` cells of datasets x models x methods x noises, then seeds 0, 1, 2, ..."""
    cells = list(itertools.product(DATASETS, MODELS, METHODS, NOISES))
    return [(*cells[i % len(cells)], i // len(cells)) for i in range(runs)]


def curves(rng: np.random.Generator, epochs: int, keys: list[str], rate: float, quality: float) -> np.ndarray:
    """(epochs, keys) values shaped like a noisy-label training run."""
    t = np.arange(epochs, dtype=float) / max(epochs - 1, 1)
    rise = 1 - np.exp(-6 * t)
    memorise = 1 / (1 + np.exp(-10 * (t - 0.6)))  # flipped labels learned late
    clean_acc = quality * rise
    test_acc = np.clip(clean_acc - rate * 0.3 * memorise + rng.normal(0, 0.01, epochs), 0, 1)
    values = {
        "train/loss": 2.3 * np.exp(-3 * t) + rate,
        "train/acc": (1 - rate) * clean_acc + rate * memorise,
        "train_clean/acc": clean_acc,
        "train_clean/loss": 2.3 * np.exp(-4 * t),
        "train_flipped/loss": 2.3 + rate * (1 - memorise),
        "train_flipped/acc_noisy": memorise,
        "train_flipped/acc_true": clean_acc * (1 - memorise),
        "val/loss": 2.3 * np.exp(-3 * t) + rate * 0.5,
        "val/acc": np.clip(test_acc * (1 - rate) + rng.normal(0, 0.01, epochs), 0, 1),
        "test/loss": 2.3 * np.exp(-3 * t) + rate * 0.4,
        "test/acc": test_acc,
        "lr": 0.05 * 0.5 * (1 + np.cos(np.pi * t)),
        "time/epoch_s": rng.gamma(20, 0.05, epochs),
        "select/precision": 1 - rate * (1 - rise) * 0.5,
        "select/recall": 0.5 + 0.5 * rise,
        "select/fraction": (1 - rate) * (0.5 + 0.5 * rise),
    }
    columns = [values.get(key, rng.normal(0, 1, epochs)) for key in keys]
    return np.stack(columns, axis=1)


def fill(db: str, runs: int, epochs: int, keys: int) -> dict[str, float]:
    register_stand_ins()
    names = metric_keys(keys)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    rows = 0
    with Store(open_db(db, create=True)) as store:
        for index, (dataset, model, method, (noise_type, rate), seed) in enumerate(grid(runs)):
            spec = RunSpec.model_validate({
                "experiment": f"scale-{dataset}",
                "data": {"name": dataset},
                "noise": {"type": noise_type, "rate": rate},
                "model": {"arch": model},
                "method": {"name": method},
                "train": {"epochs": epochs},
                "seed": seed,
            })
            run_id = store.create_run(spec)
            quality = {"digits": 0.97, "cifar10": 0.93, "cifar100": 0.72, "animal10n": 0.85}[dataset]
            values = curves(rng, epochs, names, rate, quality)
            history = [(epoch, dict(zip(names, values[epoch].tolist()))) for epoch in range(epochs)]
            val = values[:, names.index("val/acc")] if "val/acc" in names else np.zeros(epochs)
            test = values[:, names.index("test/acc")] if "test/acc" in names else np.zeros(epochs)
            best = int(np.argmax(val))
            rows += store.log_epochs(run_id, history, summary={
                "best_val_epoch": best, "best_val_acc": float(val[best]),
                "best_val_test_acc": float(test[best]), "last_test_acc": float(test[-1]),
                "realised_noise_rate": rate, "num_train": 45_000,
            })
            store.finish_run(run_id, "finished")
            if (index + 1) % max(runs // 20, 1) == 0:
                elapsed = time.perf_counter() - started
                print(f"  filled {index + 1}/{runs} runs, {rows:,} metric rows, {elapsed:.0f} s "
                      f"({rows / elapsed:,.0f} rows/s)", flush=True)
    return {"seconds": time.perf_counter() - started, "rows": rows}


def time_command(args: list[str], db: str, repeats: int, workdir: Path) -> tuple[float, float, float]:
    """Fastest and median wall time of the whole process, and its fastest CPU time (user + sys,
    which other work on a shared machine hardly changes)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), NLX_DB=db)
    times, cpu = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "nlx", *args], cwd=workdir, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if result.returncode != 0:
            raise SystemExit(f"nlx {' '.join(args)} failed: {result.stderr.strip()}")
    return min(times), statistics.median(times), min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--keys", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--db", help="database file (default: a fresh one in a temporary folder)")
    parser.add_argument("--reuse", action="store_true", help="time an existing --db without filling it")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="nlx-scale-"))
    db = str(Path(args.db).absolute()) if args.db else str(folder / "scale.db")
    if not args.reuse:
        if Path(db).exists():
            raise SystemExit(f"{db} exists: pass --reuse to time it, or another --db")
        print(f"filling {args.runs:,} runs x {args.epochs} epochs x {args.keys} keys")
        filled = fill(db, args.runs, args.epochs, args.keys)
        print(f"fill: {filled['rows']:,} metric rows in {filled['seconds']:.0f} s "
              f"({filled['rows'] / filled['seconds']:,.0f} rows/s)")
    size = sum(Path(db + suffix).stat().st_size for suffix in ("", "-wal") if Path(db + suffix).exists())
    print(f"database: {size / 2**30:.2f} GiB")

    dataset, model, method, noise = PLOT_GROUP
    commands = {
        "nlx --help (startup floor)": ["--help"],
        "nlx compare": ["compare"],
        "nlx compare --format markdown": ["compare", "--format", "markdown"],
        "nlx ls": ["ls"],
        "nlx export-csv --table runs": ["export-csv", "--table", "runs", "--out", str(folder / "runs.csv")],
        "nlx plot-curves (one group)": ["plot-curves", "--dataset", dataset, "--method", method, "--noise", noise,
                                        "--out", str(folder / "curves.png")],
    }
    print(f"\n{'command':<34} {'wall fastest s':>14} {'wall median s':>13} {'cpu s':>7}  target < 1 s")
    for name, command in commands.items():
        fastest, median, cpu = time_command(command, db, args.repeats, folder)
        verdict = "" if name.startswith("nlx --help") else ("ok" if fastest < 1 else "OVER")
        print(f"{name:<34} {fastest:>14.3f} {median:>13.3f} {cpu:>7.3f}  {verdict}", flush=True)


if __name__ == "__main__":
    main()

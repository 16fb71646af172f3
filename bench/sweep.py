"""Sweep throughput: the `dividemix_tune` study on CPU with one worker, then with two, each into a
fresh database; prints trials per minute, the speed-up and the share of trials pruned.

    python bench/sweep.py [--trials 12] [--jobs 1,2] [--keep DIR] [KEY=VALUE ...]

Each measurement runs `nlx sweep dividemix_tune --trials N --jobs J` as a command (worker start-up
included, as a user sees it). KEY=VALUE overrides go to the experiment (e.g. `train.epochs=6`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402

from nlx.sweeps import open_storage  # noqa: E402


def measure(folder: Path, trials: int, jobs: int, overrides: list[str]) -> tuple[float, dict[str, int]]:
    db = folder / f"sweep_jobs{jobs}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "nlx", "sweep", "dividemix_tune", "--trials", str(trials), "--jobs", str(jobs),
               "--config", str(ROOT / "experiments.yaml"), "--db", str(db), *overrides]
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    storage = open_storage(f"sqlite:///{db}")
    states: dict[str, int] = {}
    for trial in optuna.load_study(study_name="dividemix_tune", storage=storage).get_trials(deepcopy=False):
        states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
    storage.engine.dispose()
    return elapsed, states


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--jobs", default="1,2", help="comma-separated worker counts to measure")
    parser.add_argument("--keep", type=Path, help="keep the databases in this folder")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="nlx-bench-sweep-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"dividemix_tune, {args.trials} trials, CPU ({os.cpu_count()} cores) {' '.join(args.overrides)}")
    print(f"{'jobs':>4} {'seconds':>8} {'trials/min':>10} {'pruned':>7} {'states'}")
    rates = {}
    for jobs in [int(j) for j in args.jobs.split(",")]:
        elapsed, states = measure(folder, args.trials, jobs, args.overrides)
        rates[jobs] = 60 * args.trials / elapsed
        total = sum(states.values())
        pruned = states.get("pruned", 0) / total if total else 0.0
        print(f"{jobs:>4} {elapsed:8.1f} {rates[jobs]:10.2f} {pruned:7.0%} {states}", flush=True)
    if 1 in rates and len(rates) > 1:
        for jobs, rate in rates.items():
            if jobs != 1:
                print(f"speed-up with {jobs} workers: {rate / rates[1]:.2f}x")


if __name__ == "__main__":
    main()

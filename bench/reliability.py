"""Reliability figures: kill -9 and resume, concurrent writers, and the bad-input corpus.

    python bench/reliability.py [--kills 5] [--processes 8] [--epochs 10]

Prints: kill/resume trials (kills at random epochs, how many resumed runs ended identical to an
uninterrupted run), concurrent writers (processes x epochs, errors, rows lost), and bad inputs
(count, all refused, database unchanged).
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.cli.test_bad_inputs import BAD_EXPERIMENTS, CORPUS  # noqa: E402
from tests.conftest import TINY_EXPERIMENTS, Cli, file_digest  # noqa: E402
from tests.engine import test_resume as crash  # noqa: E402
from tests.store.test_concurrency import EPOCHS, KEYS, RUNS, write_runs  # noqa: E402


def kill_and_resume(trials: int, folder: Path) -> tuple[int, int, list[int]]:
    cli = Cli()
    config = folder / "long.yaml"
    config.write_text(crash.CONFIG)
    identical, killed_at = 0, []
    chooser = random.Random()  # its own RNG: each run reseeds the global one with the run's seed
    for trial in range(trials):
        db = folder / f"kill{trial}.db"
        process = crash.start_run(config, db)
        crash.wait_for_epoch(process, db, chooser.randint(1, crash.EPOCHS - 2))
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed_at.append(crash.epochs_done(db))
        with sqlite3.connect(db) as connection:  # as if the heartbeat had long stopped
            connection.execute("UPDATE runs SET heartbeat_at = datetime('now', '-1 day') WHERE id = 1")
        assert cli("resume", "1", "--db", db, "--quiet").exit_code == 0
        assert cli("run", "long", "--config", config, "--db", db, "--quiet").exit_code == 0
        identical += crash.metric_rows(db, 1) == crash.metric_rows(db, 2)
    return trials, identical, killed_at


def concurrent_writers(processes: int, folder: Path) -> tuple[int, int, int]:
    db = str(folder / "shared.db")
    errors = 0
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = [pool.apply_async(write_runs, (db, worker)) for worker in range(processes)]
        for result in results:
            try:
                result.get()
            except Exception:  # noqa: BLE001  counted, not raised: this is what is measured
                errors += 1
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT COUNT(*) FROM epoch_metrics").fetchone()[0]
    return errors, processes * RUNS * EPOCHS * KEYS, rows


def bad_inputs(folder: Path) -> tuple[int, int, int]:
    cli = Cli()
    config = folder / "tiny.yaml"
    config.write_text(TINY_EXPERIMENTS)
    db = folder / "corpus.db"
    assert cli("run", "tiny", "--config", config, "--db", db, "--quiet").exit_code == 0
    before = file_digest(db)
    refused = unchanged = 0
    cases = [args + (["--config", str(config)] if args[0] == "run" and "--config" not in args else []) for args, _ in CORPUS]
    for name, text in BAD_EXPERIMENTS.items():
        bad = folder / f"{name}.yaml"
        bad.write_text(text)
        cases.append(["run", "tiny", "--config", str(bad)])
    for args in cases:
        result = cli(*args, "--db", db)
        refused += result.exit_code != 0 and len(result.stderr.strip().splitlines()) == 1
        unchanged += file_digest(db) == before
    return len(cases), refused, unchanged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--processes", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        started = time.perf_counter()
        trials, identical, killed_at = kill_and_resume(args.kills, folder)
        print(f"kill -9 / resume: {trials} kills at epochs {killed_at} of {crash.EPOCHS}; "
              f"{identical}/{trials} resumed runs identical to an uninterrupted run "
              f"({time.perf_counter() - started:.0f} s)")
        errors, expected, rows = concurrent_writers(args.processes, folder)
        print(f"concurrent writers: {args.processes} processes x {RUNS} runs x {EPOCHS} epochs x {KEYS} metrics; "
              f"{errors} errors, {expected - rows} rows lost ({rows}/{expected} present)")
        count, refused, unchanged = bad_inputs(folder)
        print(f"bad inputs: {count} tried, {refused} refused with a one-line message, "
              f"database unchanged after {unchanged}/{count}")


if __name__ == "__main__":
    main()

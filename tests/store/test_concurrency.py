"""Concurrent writers: several processes creating and writing runs and epochs into one SQLite
file finish with no lock errors and every row present."""

from __future__ import annotations

import multiprocessing
import sqlite3

import numpy as np

from nlx.specs import RunSpec
from nlx.store.db import open_db
from nlx.store.repo import Store

PROCESSES, RUNS, EPOCHS, KEYS = 8, 3, 10, 12


def write_runs(db: str, worker: int) -> int:
    with Store(open_db(db, create=True)) as store:
        for r in range(RUNS):
            run_id = store.create_run(RunSpec(experiment=f"w{worker}", seed=r))
            store.start_run(run_id, "cpu", np.arange(20), np.arange(20) % 10, np.zeros(20, bool), np.eye(10))
            for epoch in range(EPOCHS):
                metrics = {f"key{k}": worker + r / 10 + epoch / 100 for k in range(KEYS)}
                store.log_epoch(run_id, epoch, metrics, summary={"last_test_acc": 0.5},
                                checkpoints=[("last", epoch, bytes(2048))])
            store.finish_run(run_id, "finished")
    return worker


def test_eight_processes_write_into_one_sqlite_file(tmp_path):
    db = str(tmp_path / "shared.db")
    # Nobody creates the file first: the workers race to create it, as parallel workers on a
    # fresh database do; one migrates, the others wait for its lock and find the schema there.
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        assert sorted(pool.starmap(write_runs, [(db, w) for w in range(PROCESSES)])) == list(range(PROCESSES))
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT COUNT(*), SUM(status = 'finished') FROM runs").fetchone() == (PROCESSES * RUNS,) * 2
        assert connection.execute("SELECT COUNT(*) FROM epoch_metrics").fetchone()[0] == PROCESSES * RUNS * EPOCHS * KEYS
        assert connection.execute("SELECT COUNT(*) FROM metric_keys").fetchone()[0] == KEYS
        assert connection.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] == PROCESSES * RUNS
        per_run = connection.execute("SELECT run_id, COUNT(DISTINCT epoch) FROM epoch_metrics GROUP BY run_id").fetchall()
    assert {count for _, count in per_run} == {EPOCHS}

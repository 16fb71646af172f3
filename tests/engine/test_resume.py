"""Crash safety: a run killed with SIGKILL (or stopped with SIGINT) and resumed ends with exactly
the per-epoch metrics of an uninterrupted run of the same spec and seed."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 10
CONFIG = f"""
long:
  noise: {{type: sym, rate: 0.4}}
  model: {{hidden: [128]}}
  train: {{epochs: {EPOCHS}, batch_size: 32, checkpoint_every_s: 0, device: cpu}}
"""


def start_run(config: Path, db: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "nlx", "run", "long", "--config", str(config), "--db", str(db), "--quiet"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def epochs_done(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as connection:
            row = connection.execute("SELECT epochs_done FROM runs WHERE id = 1").fetchone()
    except sqlite3.OperationalError:  # the file or table is not there yet
        return 0
    return row[0] if row else 0


def wait_for_epoch(process: subprocess.Popen, db: Path, epoch: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while epochs_done(db) < epoch:
        assert process.poll() is None, process.stdout.read().decode()
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.01)


def metric_rows(db: Path, run_id: int) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(
            "SELECT k.name, m.epoch, m.value FROM epoch_metrics m JOIN metric_keys k ON k.id = m.key_id "
            "WHERE m.run_id = ? AND k.name NOT LIKE 'time/%' ORDER BY k.name, m.epoch",
            (run_id,),
        ).fetchall()


@pytest.fixture
def setup(tmp_path):
    config = tmp_path / "experiments.yaml"
    config.write_text(CONFIG)
    return config, tmp_path / "crash.db"


def reference_metrics(cli, config: Path, db: Path) -> list[tuple]:
    """The same spec and seed, uninterrupted, as run 2 of the same database."""
    assert cli("run", "long", "--config", config, "--db", db, "--quiet").exit_code == 0
    return metric_rows(db, 2)


def test_sigkill_at_a_random_epoch_then_resume_matches_an_uninterrupted_run(cli, setup, monkeypatch):
    config, db = setup
    process = start_run(config, db)
    wait_for_epoch(process, db, random.Random().randint(2, EPOCHS - 3))
    process.kill()  # SIGKILL: no handler runs, the run is left "running"
    process.wait()
    killed_at = epochs_done(db)
    assert killed_at < EPOCHS

    monkeypatch.setattr("nlx.store.repo.STALE_AFTER_S", 0.0)  # no need to wait minutes here
    time.sleep(0.05)
    assert "stale" in cli("show", "1", "--db", db).output
    result = cli("resume", "1", "--db", db, "--quiet")
    assert result.exit_code == 0, result.output

    with sqlite3.connect(db) as connection:
        status, done = connection.execute("SELECT status, epochs_done FROM runs WHERE id = 1").fetchone()
    assert (status, done) == ("finished", EPOCHS)
    resumed = metric_rows(db, 1)
    assert len(resumed) == len(set((k, e) for k, e, _ in resumed))  # no duplicated rows
    assert resumed == reference_metrics(cli, config, db)


def test_sigint_checkpoints_marks_interrupted_and_resume_completes(cli, setup):
    config, db = setup
    process = start_run(config, db)
    wait_for_epoch(process, db, 3)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 130, output
    assert "nlx resume 1" in output
    with sqlite3.connect(db) as connection:
        status, done = connection.execute("SELECT status, epochs_done FROM runs WHERE id = 1").fetchone()
        [(checkpoint_epoch,)] = connection.execute("SELECT epoch FROM checkpoints WHERE run_id = 1 AND tag = 'last'").fetchall()
    assert status == "interrupted" and checkpoint_epoch == done - 1

    assert cli("resume", "1", "--db", db, "--quiet").exit_code == 0
    assert metric_rows(db, 1) == reference_metrics(cli, config, db)


def test_finished_runs_are_not_resumed(cli, populated_db):
    result = cli("resume", "1", "--db", populated_db)
    assert result.exit_code == 2 and "only" in result.stderr

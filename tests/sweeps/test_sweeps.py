"""Sweeps: spec validation, pruning to status `pruned`, resuming a study, parallel workers on one
SQLite study, crash recovery through Optuna's heartbeat, show/best/plot."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from nlx import sweeps
from nlx.store.db import open_db, resolve_url
from nlx.store.repo import RunFilter, Store
from nlx.sweeps import Objective, open_storage, plan_sweep, run_sweep

ROOT = Path(__file__).resolve().parents[2]


def trials_of(url: str, name: str = "tinysweep") -> list[optuna.trial.FrozenTrial]:
    storage = open_storage(url)
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials()
    finally:
        storage.engine.dispose()


def test_bad_sweep_sections_are_refused_naming_the_field(cli, sweep_config, db_path):
    text = sweep_config.read_text()
    sweep_config.write_text(text.replace("low: 0.01, high: 0.3", "low: 0.3, high: 0.01"))
    result = cli("validate", "--config", sweep_config)
    assert result.exit_code == 2 and "train.lr" in result.output and "below high" in result.output
    sweep_config.write_text(text.replace("train.lr:", "train.nope:"))
    result = cli("sweep", "tinysweep", "--trials", "1", "--config", sweep_config, "--db", db_path)
    assert result.exit_code == 2 and "train.nope" in result.output
    assert not db_path.exists()
    sweep_config.write_text(text.replace("pruner: {name: median", "pruner: {name: sometimes"))
    assert cli("validate", "--config", sweep_config).exit_code == 2


def test_a_pruned_trial_ends_its_run_as_pruned(sweep_config, db_path):
    plan = plan_sweep("tinysweep", sweep_config, [])
    url = resolve_url(str(db_path))
    sweeps.prepare_study(plan, url)
    storage = open_storage(url)
    study = optuna.load_study(study_name="tinysweep", storage=storage, pruner=optuna.pruners.ThresholdPruner(lower=2.0))
    with Store(open_db(url)) as store:
        study.optimize(Objective(plan, store, log=lambda line: None), n_trials=1)
        [run] = store.runs()
        assert run.status == "pruned" and run.epochs_done == 1 and run.experiment == "sweep:tinysweep"
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED
    assert study.trials[0].user_attrs["nlx_run_id"] == run.id
    storage.engine.dispose()


def test_sweep_continues_its_study_then_show_best_plot_and_compare(cli, sweep_config, db_path, tmp_path):
    args = ("--config", sweep_config, "--db", db_path)
    result = cli("sweep", "tinysweep", "--trials", "3", *args)
    assert result.exit_code == 0, result.output
    result = cli("sweep", "tinysweep", "--trials", "2", *args)
    assert result.exit_code == 0, result.output
    trials = trials_of(resolve_url(str(db_path)))
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    with sqlite3.connect(db_path) as connection:  # both Alembic version tables, side by side
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"nlx_alembic_version", "alembic_version", "runs", "trials"} <= tables

    shown = cli("sweep", "show", "tinysweep", "--db", db_path)
    assert shown.exit_code == 0 and "best: trial" in shown.stdout and "train.lr" in shown.stdout
    out = tmp_path / "sweep.png"
    assert cli("plot-sweep", "tinysweep", "--out", out, "--db", db_path).exit_code == 0 and out.stat().st_size > 0

    result = cli("sweep", "best", "tinysweep", "--seeds", "2", "--quiet", "--db", db_path)
    assert result.exit_code == 0, result.output
    with Store(open_db(str(db_path))) as store:
        tuned = store.runs(RunFilter(experiment="tuned:tinysweep"))
    assert len(tuned) == 2 and {r.seed for r in tuned} == {1, 2} and all(r.status == "finished" for r in tuned)
    table = cli("compare", "--format", "csv", "--db", db_path).stdout
    assert "ce (tuned tinysweep)" in table
    assert table.count("\n") == 2  # header + the tuned row: trial runs are not seeds of one setting
    assert cli("ls", "--status", "pruned", "--db", db_path).exit_code == 0
    assert cli("ls", "--status", "sweep:tinysweep", "--db", db_path).exit_code == 2
    listed = cli("ls", "--experiment", "sweep:tinysweep", "--db", db_path).stdout
    assert listed.count("sweep:tinysweep") == 5


def test_four_workers_share_one_sqlite_study(sweep_config, db_path):
    plan = plan_sweep("tinysweep", sweep_config, ["train.epochs=2"])
    url = resolve_url(str(db_path))
    dead = run_sweep(plan, url, trials=8, jobs=4)
    assert dead == []
    trials = trials_of(url)
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(8))  # no duplicated trial numbers
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    with Store(open_db(url)) as store:
        runs = store.runs()
        assert len(runs) == 8 and {r.status for r in runs} <= {"finished", "pruned"}
        assert sorted(t.user_attrs["nlx_run_id"] for t in trials) == [r.id for r in runs]


def test_a_trial_of_a_killed_worker_is_failed_and_retried_by_the_next_invocation(sweep_config, db_path, monkeypatch):
    env = {**os.environ, "NLX_SWEEP_HEARTBEAT_S": "1", "NLX_SWEEP_GRACE_S": "2", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "nlx", "sweep", "tinysweep", "--trials", "1", "--config", str(sweep_config), "--db", str(db_path)]
    worker = subprocess.Popen([*command, "train.epochs=500"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if db_path.exists():
                with sqlite3.connect(db_path, timeout=30) as connection:
                    try:
                        row = connection.execute("SELECT epochs_done FROM runs WHERE id = 1").fetchone()
                    except sqlite3.OperationalError:
                        row = None
                if row and row[0] >= 1:
                    break
        else:
            pytest.fail("the first worker never started its trial")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    time.sleep(3)  # past the grace period

    # The next invocation (here in-process, with the same heartbeat settings) retries the trial.
    monkeypatch.setattr(sweeps, "HEARTBEAT_S", 1)
    monkeypatch.setattr(sweeps, "GRACE_S", 2)
    url = resolve_url(str(db_path))
    assert run_sweep(plan_sweep("tinysweep", sweep_config, ["train.epochs=2"]), url, trials=1) == []
    first, retry = trials_of(url)
    assert first.state == optuna.trial.TrialState.FAIL
    assert retry.state == optuna.trial.TrialState.COMPLETE
    assert retry.system_attrs["failed_trial"] == 0 and retry.params == first.params
    with Store(open_db(str(db_path))) as store:
        lost, redone = store.runs()
    assert lost.status == "failed" and "heartbeat" in lost.error
    assert redone.status == "finished" and retry.user_attrs["nlx_run_id"] == redone.id


def test_postgresql_study_with_two_workers(postgres_url, sweep_config):
    plan = plan_sweep("tinysweep", sweep_config, ["train.epochs=2"])
    url = resolve_url(postgres_url)
    assert run_sweep(plan, url, trials=4, jobs=2) == []
    trials = trials_of(url)
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    with Store(open_db(url)) as store:
        assert {r.status for r in store.runs()} <= {"finished", "pruned"} and len(store.runs()) == 4


def test_submitit_local_executor_runs_the_workers(sweep_config, db_path, tmp_path):
    plan = plan_sweep("tinysweep", sweep_config, ["train.epochs=2"])
    url = resolve_url(str(db_path))
    options = sweeps.SlurmOptions(folder=tmp_path / "jobs", time_min=5, cluster="local")
    run_sweep(plan, url, trials=2, jobs=2, launcher="submitit", slurm=options)
    trials = trials_of(url)
    assert sorted(t.number for t in trials) == [0, 1]
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)

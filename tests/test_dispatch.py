"""`nlx run --jobs`: worker processes give the same runs and metrics as one process; a worker
that dies has its run marked failed while the others finish; GPUs are assigned round-robin."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import pytest

from nlx.dispatch import Placement, cpu_threads, execute_parallel, parse_gpus, placements
from nlx.errors import SpecError
from nlx.runs import plan_runs
from nlx.store.db import open_db, resolve_url
from nlx.store.repo import Store


def summaries(db) -> list[tuple]:
    with Store(open_db(str(db))) as store:
        runs = store.runs()
        metrics = store.metrics([r.id for r in runs])
    return [(r.id, r.spec_hash, r.status, r.best_val_acc, r.last_test_acc) for r in runs], metrics


def test_jobs_2_gives_the_runs_and_metrics_of_jobs_1(cli, experiments_file, tmp_path):
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    # Default thread counts on both sides: the same runs and metrics without any --threads.
    assert cli("run", "tiny", "--config", experiments_file, "--db", one, "--quiet").exit_code == 0
    result = cli("run", "tiny", "--config", experiments_file, "--db", two, "--jobs", "2", "--quiet")
    assert result.exit_code == 0, result.output
    assert "2 finished, 0 failed" in result.stdout
    runs_one, metrics_one = summaries(one)
    runs_two, metrics_two = summaries(two)
    assert runs_one == runs_two
    assert [m for m in metrics_one if m[1] != "time/epoch_s"] == [m for m in metrics_two if m[1] != "time/epoch_s"]


def test_placements_pin_gpus_round_robin_with_one_thread_count(monkeypatch):
    monkeypatch.delenv("NLX_THREADS", raising=False)
    assert [p.gpu for p in placements(3, ["0", "1"])] == ["0", "1", "0"]
    # Not the cores divided by --jobs: the count must not depend on --jobs or the machine.
    assert [(p.gpu, p.threads) for p in placements(2, [])] == [(None, 1), (None, 1)]
    assert [p.threads for p in placements(2, [], threads=3)] == [3, 3]
    monkeypatch.setenv("NLX_THREADS", "2")
    assert cpu_threads() == 2 and [p.threads for p in placements(4, [])] == [2] * 4
    assert cpu_threads(5) == 5  # --threads wins over the environment
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("NLX_THREADS", bad)
        with pytest.raises(SpecError, match="NLX_THREADS"):
            cpu_threads()
    assert parse_gpus("0, 2") == ["0", "2"] and parse_gpus(None) == []
    with pytest.raises(SpecError):
        parse_gpus("a,b")
    assert Placement("1", None).gpu == "1"


def test_a_dead_worker_fails_its_run_and_the_others_finish(experiments_file, db_path):
    specs = plan_runs("tiny", experiments_file, ["train.epochs=60"], seeds=2)  # 4 runs
    url = resolve_url(str(db_path))
    with Store(open_db(url, create=True)) as store:
        killed: list[int] = []

        def kill_one_worker() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not killed:
                time.sleep(0.2)
                running = [r for r in store.runs() if r.status == "running" and r.epochs_done >= 1]
                children = multiprocessing.active_children()
                if running and children:
                    os.kill(children[0].pid, signal.SIGKILL)
                    killed.append(children[0].pid)

        killer = threading.Thread(target=kill_one_worker)
        killer.start()
        outcomes = execute_parallel(specs, store, url, jobs=2)
        killer.join()
        assert killed
        statuses = sorted(o.status for o in outcomes)
        assert statuses == ["failed", "finished", "finished", "finished"]
        [dead] = [o for o in outcomes if o.status == "failed"]
        assert "worker process died" in dead.error
        assert store.get_run(dead.run_id).status == "failed"

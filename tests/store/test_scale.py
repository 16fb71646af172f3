"""What keeps the store fast as it grows: the bulk epoch writer, report commands that start
without the training stack, and listings that print long tables as plain text."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

import nlx.cli.run
import nlx.config
from nlx.specs import RunSpec
from nlx.store.db import _scanned_head, alembic_config, head_revision, open_db
from nlx.store.repo import Store

ROOT = Path(__file__).resolve().parents[2]


def _spec(seed: int = 0) -> RunSpec:
    return RunSpec.model_validate({"experiment": "scale", "seed": seed})


def test_log_epochs_writes_what_log_epoch_writes(db_path):
    history = [(epoch, {"train/loss": 1.0 / (epoch + 1), "test/acc": 0.5 + epoch / 10, "odd": math.nan}) for epoch in range(4)]
    summary = {"best_val_epoch": 3, "best_val_acc": 0.8, "best_val_test_acc": 0.8, "last_test_acc": 0.8}
    with Store(open_db(str(db_path), create=True)) as store:
        one, bulk = store.create_run(_spec(0)), store.create_run(_spec(1))
        for epoch, metrics in history:
            store.log_epoch(one, epoch, metrics, summary)
        assert store.log_epochs(bulk, history, summary) == 12
        rows = {run_id: [row[1:] for row in store.metrics([run_id])] for run_id in (one, bulk)}
        assert rows[one] == rows[bulk]
        assert ("odd", 0, None) in rows[bulk]  # not finite: NULL, as log_epoch stores it
        run = store.get_run(bulk)
        assert run.epochs_done == 4 and run.best_val_test_acc == 0.8 and run.heartbeat_at is not None
        assert store.log_epochs(bulk, []) == 0
        assert store.get_run(bulk).epochs_done == 4  # no epochs: the count stays


def test_scanned_head_is_alembics_head():
    assert _scanned_head() == ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head_revision() == _scanned_head()


def test_cli_starts_without_the_training_and_plotting_stack():
    code = (
        "import sys, nlx.cli; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'sklearn', 'alembic', 'nlx.specs', "
        "'numpy', 'pydantic', 'optuna', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


def test_cli_default_config_matches_the_config_module():
    assert nlx.cli.run.DEFAULT_CONFIG == nlx.config.DEFAULT_CONFIG


def test_cli_estimators_match_the_estimation_module():
    import nlx.cli.transition
    import nlx.estimation

    assert nlx.cli.transition.ESTIMATORS == nlx.estimation.ESTIMATORS


def test_long_listings_print_plain_columns(cli, db_path, monkeypatch):
    monkeypatch.setattr("nlx.cli.common.RICH_ROWS", 2)
    with Store(open_db(str(db_path), create=True)) as store:
        for seed in range(3):
            store.create_run(_spec(seed))
    result = cli("ls", "--db", db_path)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["id", "experiment", "status"]
    assert set(lines[1]) <= {"-", " "}
    assert [line.split()[0] for line in lines[2:]] == ["1", "2", "3"]
    assert all("pending" in line for line in lines[2:])

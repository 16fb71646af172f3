"""A database written by schema 0001 (frozen in fixtures/, made with the code at 080be90) is
upgraded by `nlx db upgrade` to the newest schema, keeping every row."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from nlx.store.db import head_revision

FROZEN = Path(__file__).parent / "fixtures" / "schema_0001.db"
TABLES = ("runs", "epoch_metrics", "metric_keys", "transition_matrices", "checkpoints", "run_labels")


def counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as connection:
        return {table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}


def test_nlx_db_upgrade_migrates_a_0001_database_keeping_its_rows(cli, tmp_path):
    db = tmp_path / "old.db"
    shutil.copy(FROZEN, db)
    before = counts(db)
    assert before["runs"] == 1 and before["epoch_metrics"] > 0
    assert "0001" in cli("db", "current", "--db", db).stdout

    result = cli("db", "upgrade", "--db", db)
    assert result.exit_code == 0, result.output
    assert "0001 -> " + head_revision() in result.stdout
    assert counts(db) == before
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT count(*) FROM run_links").fetchone()[0] == 0
    result = cli("show", "1", "--db", db)
    assert result.exit_code == 0 and "finished" in result.stdout

"""Databases written by earlier schemas (frozen in fixtures/: 0001 made with the code at 080be90,
0002 before the trusted set) are upgraded by `nlx db upgrade` to the newest schema, keeping
every row."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from nlx.store.db import head_revision

FIXTURES = Path(__file__).parent / "fixtures"
TABLES = ("runs", "epoch_metrics", "metric_keys", "transition_matrices", "checkpoints", "run_labels")


def counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as connection:
        return {table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}


@pytest.mark.parametrize("revision", ["0001", "0002"])
def test_nlx_db_upgrade_migrates_a_frozen_database_keeping_its_rows(cli, tmp_path, revision):
    db = tmp_path / "old.db"
    shutil.copy(FIXTURES / f"schema_{revision}.db", db)
    before = counts(db)
    assert before["runs"] >= 1 and before["epoch_metrics"] > 0
    assert revision in cli("db", "current", "--db", db).stdout

    result = cli("db", "upgrade", "--db", db)
    assert result.exit_code == 0, result.output
    assert f"{revision} -> " + head_revision() in result.stdout
    assert counts(db) == before
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT count(*) FROM run_links").fetchone()[0] == 0
        # runs from before the trusted set have none
        assert connection.execute("SELECT count(*) FROM run_labels WHERE trusted_index IS NOT NULL").fetchone()[0] == 0
    result = cli("show", "1", "--db", db)
    assert result.exit_code == 0 and "finished" in result.stdout


def test_runs_stored_by_the_0002_release_keep_their_spec_hash():
    """Fields added since are left out of the hash while neutral, so an older database's runs
    are still found by `init_from: auto`, reuse and seed grouping."""
    import json

    from nlx.specs import RunSpec

    with sqlite3.connect(FIXTURES / "schema_0002.db") as con:
        stored = con.execute("SELECT spec_hash, spec_json FROM runs").fetchall()
    assert stored
    for spec_hash, spec_json in stored:
        assert RunSpec.model_validate(json.loads(spec_json)).spec_hash() == spec_hash

"""Shared fixtures: a tiny experiments file, a CLI runner, and database snapshots."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nlx.cli import app

TINY_EXPERIMENTS = """
tiny:
  data: {name: digits}
  noise: {type: sym, rate: 0.4}
  model: {arch: mlp, hidden: [32]}
  method: {name: ce}
  train: {epochs: 2, batch_size: 128, lr: 0.05}
  grid:
    noise.type: [sym, asym]
  seeds: 1
"""


@pytest.fixture
def experiments_file(tmp_path: Path) -> Path:
    path = tmp_path / "experiments.yaml"
    path.write_text(TINY_EXPERIMENTS)
    return path


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


class Cli:
    """Invoke nlx in-process; results carry exit_code and separate stdout/stderr."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str | Path):
        return self.runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def cli() -> Cli:
    return Cli()


def file_digest(path: Path) -> str:
    """The database's bytes, main file and WAL together: 'byte-identical' means this is equal.
    An empty WAL holds nothing (a read-only reader leaves one behind), so it counts as absent."""
    digest = hashlib.sha256()
    for part in (path, Path(f"{path}-wal")):
        digest.update(part.read_bytes() if part.exists() and part.stat().st_size else b"<no bytes>")
    return digest.hexdigest()


@pytest.fixture(scope="session")
def populated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with the tiny experiment run once (2 runs), shared by read-only tests."""
    folder = tmp_path_factory.mktemp("populated")
    config = folder / "experiments.yaml"
    config.write_text(TINY_EXPERIMENTS)
    db = folder / "runs.db"
    result = Cli()("run", "tiny", "--config", config, "--db", db, "--quiet")
    assert result.exit_code == 0, result.output
    return db

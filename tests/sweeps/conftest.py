"""A tiny sweep experiment, and a real PostgreSQL server started in a temporary folder."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

TINY_SWEEP = """
tinysweep:
  data: {name: digits}
  noise: {type: sym, rate: 0.4}
  model: {arch: mlp, hidden: [16]}
  method: {name: ce}
  train: {epochs: 3, batch_size: 256, checkpoint_every_s: 600}
  seeds: [0]
  sweep:
    params:
      train.lr: {type: float, low: 0.01, high: 0.3, log: true}
      model.dropout: {type: categorical, choices: [0.0, 0.1]}
    sampler: {seed: 0, n_startup_trials: 2}
    pruner: {name: median, n_startup_trials: 2, n_warmup_steps: 0}
"""


@pytest.fixture
def sweep_config(tmp_path: Path) -> Path:
    path = tmp_path / "experiments.yaml"
    path.write_text(TINY_SWEEP)
    return path


def postgres_bin() -> Path | None:
    """The folder of initdb/pg_ctl: on PATH, else Debian's /usr/lib/postgresql/VERSION/bin."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(candidates[-1]).parent if candidates else None


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: as root, run it as `nobody`.
    if os.geteuid() == 0:
        return ["runuser", "-u", "nobody", "--", *command]
    return command


@pytest.fixture(scope="session")
def postgres_url():
    """A throw-away PostgreSQL server listening only on a unix socket in a temporary folder."""
    binaries = postgres_bin()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    folder = Path(tempfile.mkdtemp(prefix="nlx-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "nobody")
    os.chmod(folder, 0o755)
    run = lambda *args: subprocess.run(_as_server_user([str(a) for a in args]), check=True, capture_output=True, text=True)  # noqa: E731
    try:
        run(binaries / "initdb", "-D", data, "-U", "nlx", "--auth=trust", "-E", "UTF8")
        options = f"-c listen_addresses='' -k {folder} -p 5432"
        run(binaries / "pg_ctl", "-D", data, "-o", options, "-l", folder / "server.log", "-w", "-t", "60", "start")
        url = f"postgresql://nlx@/postgres?host={folder}"
        deadline = time.monotonic() + 30
        while not (folder / ".s.PGSQL.5432").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        yield url
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(_as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)

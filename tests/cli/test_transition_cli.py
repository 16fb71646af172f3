"""Seeing T: `nlx show` prints both matrices and the run link, `nlx plot-t` draws them,
`nlx estimate-t` re-estimates from kept per-epoch checkpoints, `export-csv` exports them."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from typer.testing import CliRunner

from nlx.cli import app

TRANSITION_EXPERIMENTS = """
tiny_t:
  data: {name: digits}
  noise: {type: asym, rate: 0.4}
  model: {arch: mlp, hidden: [16]}
  method: {name: forward, params: {warmup_epochs: 2}}
  train: {epochs: 3, batch_size: 256, keep_checkpoints: 1}
  seeds: 1
"""


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("transition")
    config = folder / "experiments.yaml"
    config.write_text(TRANSITION_EXPERIMENTS)
    db = folder / "runs.db"
    result = invoke("run", "tiny_t", "--config", config, "--db", db, "--quiet")
    assert result.exit_code == 0, result.output
    return db


def test_show_prints_true_and_estimated_T_with_the_error(db):
    out = invoke("show", "1", "--db", db).stdout
    assert "true T" in out and "estimated T (forward/anchor, epoch 2, error" in out
    assert "T error by epoch  0:" in out


def test_plot_t_writes_an_image(db, tmp_path):
    image = tmp_path / "t.png"
    result = invoke("plot-t", "1", "--out", image, "--db", db)
    assert result.exit_code == 0, result.output
    assert image.read_bytes()[:4] == b"\x89PNG"
    assert invoke("plot-t", "1", "--out", tmp_path / "t.txt", "--db", db).exit_code == 2


def test_estimate_t_scores_every_kept_checkpoint(db):
    result = invoke("estimate-t", "1", "--db", db, "--epochs", "0,2", "--estimator", "anchor")
    assert result.exit_code == 0, result.output
    assert "epoch0" in result.stdout and "epoch2" in result.stdout and "epoch1 " not in result.stdout
    assert "lowest" in result.stdout
    missing = invoke("estimate-t", "1", "--db", db, "--epochs", "7")
    assert missing.exit_code != 0 and "kept: 0, 1, 2" in missing.output


def test_estimate_t_defaults_to_every_kept_checkpoint_and_estimator(db):
    result = invoke("estimate-t", "1", "--db", db)
    lines = [line for line in result.stdout.splitlines() if "anchor" in line or "confident" in line]
    assert len(lines) == 3 * 2  # epochs 0, 1, 2 kept (keep_checkpoints: 1), two estimators


def test_export_matrices_as_csv(db):
    result = invoke("export-csv", "--table", "matrices", "--db", db)
    frame = pd.read_csv(io.StringIO(result.stdout))
    assert {"truth", "estimate"} <= set(frame["kind"])

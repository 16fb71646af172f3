"""The command-line contract, driven in-process, asserting on output and on the database."""

from __future__ import annotations

import io
import sqlite3

import pandas as pd
import pytest
import typer

from nlx.cli import app


def all_commands(group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield prefix + (name,), command
        if hasattr(command, "commands"):
            yield from all_commands(command, prefix + (name,))


def test_every_command_has_help_text(cli):
    root = typer.main.get_command(app)
    commands = list(all_commands(root))
    names = {" ".join(path) for path, _ in commands}
    assert {"run", "ls", "show", "compare", "plot-curves", "export-csv", "validate", "db upgrade", "db current",
            "sweep start", "sweep show", "sweep best", "plot-sweep"} <= names
    for path, command in commands:
        assert command.help, f"nlx {' '.join(path)} has no help text"
        result = cli(*path, "--help")
        assert result.exit_code == 0 and "Usage" in result.output


def test_run_writes_one_finished_run_per_cell_and_seed(cli, experiments_file, db_path):
    result = cli("run", "tiny", "noise.rate=0.6", "train.epochs=2", "--seeds", "2", "--config", experiments_file, "--db", db_path, "--quiet")
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db_path) as connection:
        rows = connection.execute("SELECT noise, seed, status, epochs_done FROM runs ORDER BY id").fetchall()
    assert sorted(rows) == [("asym0.6", 0, "finished", 2), ("asym0.6", 1, "finished", 2), ("sym0.6", 0, "finished", 2), ("sym0.6", 1, "finished", 2)]


def test_grid_override_selects_one_cell(cli, experiments_file, db_path):
    result = cli("run", "tiny", "noise.type=asym", "--config", experiments_file, "--db", db_path, "--quiet")
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db_path) as connection:
        assert connection.execute("SELECT noise FROM runs").fetchall() == [("asym0.4",)]


def test_compare_csv_prints_mean_and_std_over_seeds(cli, populated_db):
    result = cli("compare", "--noise", "sym0.4", "--db", populated_db, "--format", "csv")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.stdout))
    with sqlite3.connect(populated_db) as connection:
        values = [v for (v,) in connection.execute("SELECT best_val_test_acc FROM runs WHERE noise = 'sym0.4'")]
    [row] = table.to_dict("records")
    assert row["method"] == "ce" and row["noise"] == "sym0.4" and row["n"] == len(values)
    assert row["mean"] == pytest.approx(100 * sum(values) / len(values), abs=1e-3)


@pytest.mark.parametrize("fmt", ["table", "markdown", "latex"])
def test_compare_formats_name_the_noise_columns(cli, populated_db, fmt):
    result = cli("compare", "--db", populated_db, "--format", fmt)
    assert result.exit_code == 0, result.output
    assert "sym0.4" in result.output and "asym0.4" in result.output and "ce" in result.output


def test_export_metrics_reads_in_pandas_with_every_design_key(cli, populated_db):
    result = cli("export-csv", "--table", "metrics", "--db", populated_db)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(io.StringIO(result.stdout))
    keys = {"train/loss", "train/acc", "train_clean/acc", "train_flipped/acc_noisy", "train_flipped/acc_true",
            "val/loss", "val/acc", "test/loss", "test/acc", "lr", "time/epoch_s"}
    per_epoch = frame.groupby(["run_id", "epoch"])["key"].apply(set)
    assert len(per_epoch) == 2 * 2  # 2 runs x 2 epochs
    for present in per_epoch:
        assert keys <= present


def test_export_runs_and_matrices(cli, populated_db, tmp_path):
    out = tmp_path / "runs.csv"
    assert cli("export-csv", "--db", populated_db, "--out", out).exit_code == 0
    runs = pd.read_csv(out)
    assert len(runs) == 2 and {"spec.noise.rate", "best_val_test_acc", "realised_noise_rate"} <= set(runs.columns)
    matrices = pd.read_csv(io.StringIO(cli("export-csv", "--table", "matrices", "--db", populated_db).stdout))
    true = matrices[matrices.kind == "truth"]
    assert len(true) == 2 * 10 * 10
    assert true.groupby(["run_id", "row"])["value"].sum().round(9).eq(1.0).all()  # rows sum to 1


def test_ls_and_show(cli, populated_db):
    listing = cli("ls", "--db", populated_db)
    assert listing.exit_code == 0 and "finished" in listing.output and "asym0.4" in listing.output
    shown = cli("show", "1", "--db", populated_db)
    assert shown.exit_code == 0
    assert "realised rate" in shown.output and "true T" in shown.output and "best" in shown.output


def test_plot_curves_writes_png(cli, populated_db, tmp_path):
    out = tmp_path / "curves.png"
    result = cli("plot-curves", "--db", populated_db, "--out", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_validate_and_db_commands(cli, experiments_file, db_path):
    assert "ok:" in cli("validate", "--config", experiments_file).output
    assert cli("db", "upgrade", "--db", db_path).exit_code == 0
    current = cli("db", "current", "--db", db_path)
    assert current.exit_code == 0 and "up to date" in current.output


@pytest.mark.parametrize("command", [["ls"], ["show", "1"], ["compare"], ["export-csv"], ["plot-curves"]])
def test_read_commands_on_a_missing_database_exit_2_and_create_nothing(cli, db_path, command):
    result = cli(*command, "--db", db_path)
    assert result.exit_code == 2 and "no database at" in result.stderr
    assert not db_path.exists()


def test_a_failed_run_exits_1_and_the_rest_still_run(cli, tmp_path, db_path):
    config = tmp_path / "diverge.yaml"
    # An absurd learning rate makes CE diverge on the first steps; the second cell is sane.
    config.write_text(
        "d:\n  model: {hidden: [32]}\n  train: {epochs: 2, lr: 1.0e+12, momentum: 0.99}\n"
        "  grid: {train.lr: [1.0e+12, 0.05]}\n"
    )
    result = cli("run", "d", "--config", config, "--db", db_path, "--quiet")
    assert result.exit_code == 1
    with sqlite3.connect(db_path) as connection:
        rows = connection.execute("SELECT status, error FROM runs ORDER BY id").fetchall()
    assert [status for status, _ in rows] == ["failed", "finished"]
    assert "non-finite loss at epoch" in rows[0][1]


def test_rerun_reproduces_metrics_from_the_stored_spec(cli, experiments_file, db_path):
    assert cli("run", "tiny", "noise.type=sym", "--config", experiments_file, "--db", db_path, "-q").exit_code == 0
    # Editing the experiments file afterwards must not change what a rerun does.
    experiments_file.write_text(experiments_file.read_text().replace("epochs: 2", "epochs: 5"))
    assert cli("rerun", "1", "--db", db_path, "-q").exit_code == 0
    with sqlite3.connect(db_path) as connection:
        rows = connection.execute(
            "SELECT run_id, k.name, epoch, value FROM epoch_metrics JOIN metric_keys k ON k.id = key_id "
            "WHERE k.name NOT LIKE 'time/%' ORDER BY k.name, epoch"
        ).fetchall()
        specs = connection.execute("SELECT spec_hash FROM runs ORDER BY id").fetchall()
    first = [(k, e, v) for r, k, e, v in rows if r == 1]
    second = [(k, e, v) for r, k, e, v in rows if r == 2]
    assert first and first == second
    assert specs[0] == specs[1]


def test_diff_prints_only_differing_fields(cli, populated_db):
    result = cli("diff", "1", "2", "--db", populated_db)
    assert result.exit_code == 0
    assert "noise.type" in result.output and "asym" in result.output
    assert "train.lr" not in result.output and "data.name" not in result.output
    assert "identical" in cli("diff", "1", "1", "--db", populated_db).output


def test_a_running_run_without_heartbeat_is_reported_stale(cli, populated_db, tmp_path):
    db = tmp_path / "copy.db"
    db.write_bytes(populated_db.read_bytes())
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE runs SET status = 'running', heartbeat_at = datetime('now', '-1 day') WHERE id = 1")
        connection.execute("UPDATE runs SET status = 'running', heartbeat_at = datetime('now') WHERE id = 2")
    listing = cli("ls", "--db", db).output
    lines = {line.split()[1]: line for line in listing.splitlines() if line.split()[1:2] in (["1"], ["2"])}
    assert "stale" in lines["1"] and "running" in lines["2"]

"""The bad-input corpus: every bad input exits non-zero with a one-line message naming the
problem, and the database file is byte-identical afterwards (or never created)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import file_digest

BAD_EXPERIMENTS = {
    "syntax": "tiny: [\n",
    "not_a_mapping": "- a\n- b\n",
    "unknown_section": "tiny:\n  optimiser: {lr: 0.1}\n",
    "misspelled_key": "tiny:\n  noise: {rate: 0.4, kind: sym}\n",
    "wrong_type": "tiny:\n  train: {epochs: many}\n",
    "bad_seeds": "tiny:\n  seeds: 0\n",
    "empty_grid_axis": "tiny:\n  grid: {noise.type: []}\n",
    "bad_grid_value": "tiny:\n  grid: {noise.rate: [0.2, 1.5]}\n",
    "bad_view": "tiny:\n  data: {views: [3]}\n",
    "bad_view_name": "tiny:\n  data: {views: [audio]}\n",
}

# (arguments, text the one-line message must contain); {config} is a valid tiny experiments file.
CORPUS = [
    # overrides
    (["run", "tiny", "nois.rate=0.5"], "unknown field"),
    (["run", "tiny", "noise.rat=0.5"], "noise.rat: unknown field"),
    (["run", "tiny", "noise.rate=1.2"], "noise.rate"),
    (["run", "tiny", "noise.rate=-0.2"], "noise.rate"),
    (["run", "tiny", "noise.rate=abc"], "noise.rate"),
    (["run", "tiny", "noise.type=gaussian"], "noise.type"),
    (["run", "tiny", "train.epochs=three"], "train.epochs"),
    (["run", "tiny", "train.epochs=0"], "train.epochs"),
    (["run", "tiny", "train.lr=-1"], "train.lr"),
    (["run", "tiny", "train.optimizer=lbfgs"], "train.optimizer"),
    (["run", "tiny", "data.name=imagenet"], "unknown dataset 'imagenet'"),
    (["run", "tiny", "data.val_fraction=1.5"], "data.val_fraction"),
    (["run", "tiny", "data.name=mnist", "data.root=nowhere"], "mnist: missing"),
    (["run", "tiny", "data.name=npz"], "data.path: required"),
    (["run", "tiny", "data.name=npz", "data.path=missing.npz"], "data.path: no such file"),
    (["run", "tiny", "noise.type=file", "noise.rate=0"], "noise.path: required"),
    (["run", "tiny", "noise.type=file", "noise.rate=0", "noise.path=missing.npy"], "noise.path: no such file"),
    (["run", "tiny", "method.name=magic"], "unknown method 'magic'"),
    (["run", "tiny", "model.arch=vit"], "unknown network 'vit'"),
    (["run", "tiny", "model.hidden=[0]"], "model.hidden"),
    (["run", "tiny", "method.params.bogus=1"], "method.params.bogus: unknown field"),
    (["run", "tiny", "method.params.label_smoothing=2"], "method.params.label_smoothing"),
    (["run", "tiny", "method.name=l2r"], "data.trusted: l2r needs a trusted clean set"),
    (["run", "tiny", "data.val=trusted"], "val: trusted needs a trusted set"),
    (["run", "tiny", "data.trusted.per_class=0"], "data.trusted.per_class"),
    (["run", "tiny", "data.trusted.per_class=500"], "data.trusted.per_class: class"),
    (["run", "tiny", "noise.rate"], "KEY=VALUE"),
    (["run", "nosuch"], "no experiment 'nosuch'"),
    (["run", "tiny", "--seeds", "0"], "--seeds"),
    (["run", "tiny", "--device", "cuda"], "cuda"),
    (["run", "tiny", "--config", "missing.yaml"], "no such experiments file"),
    # unknown run ids
    (["show", "999"], "no run 999"),
    (["diff", "1", "999"], "no run 999"),
    (["rerun", "999"], "no run 999"),
    (["resume", "999"], "no run 999"),
    (["resume", "1"], "only"),  # finished runs are not resumed
    # report arguments
    (["compare", "--noise", "gauss0.4"], "--noise"),
    (["compare", "--noise", "sym1.5"], "--noise"),
    (["plot-curves", "--out", "curves.gif"], ".png"),
    (["plot-curves", "--metric", "no/such_metric"], "no/such_metric"),
    (["plot-curves", "--out", "no/such/folder/c.png"], "folder"),
]


@pytest.fixture
def corpus_db(populated_db, tmp_path) -> Path:
    db = tmp_path / "corpus.db"
    db.write_bytes(populated_db.read_bytes())
    return db


def needs_gpu_absent(args: list[str]) -> bool:
    import torch

    return "cuda" in args and torch.cuda.is_available()


@pytest.mark.parametrize(("args", "message"), CORPUS, ids=[" ".join(a) for a, _ in CORPUS])
def test_bad_command_line(cli, corpus_db, experiments_file, tmp_path, monkeypatch, args, message):
    if needs_gpu_absent(args):
        pytest.skip("a CUDA device is present")
    monkeypatch.chdir(tmp_path)
    before = file_digest(corpus_db)
    extra = ["--db", corpus_db]
    if args[0] == "run" and "--config" not in args:
        extra += ["--config", experiments_file]
    if args[0] in ("run", "rerun", "resume"):
        extra.append("--quiet")
    result = cli(*args, *extra)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert file_digest(corpus_db) == before


@pytest.mark.parametrize("name", sorted(BAD_EXPERIMENTS))
def test_bad_experiments_file(cli, corpus_db, tmp_path, name):
    config = tmp_path / "bad.yaml"
    config.write_text(BAD_EXPERIMENTS[name])
    before = file_digest(corpus_db)
    result = cli("run", "tiny", "--config", config, "--db", corpus_db, "--quiet")
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert file_digest(corpus_db) == before
    assert cli("validate", "--config", config).exit_code == 2


def test_non_database_file_as_db(cli, experiments_file, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n" * 50)
    before = notes.read_bytes()
    for args in (["ls"], ["run", "tiny", "--config", experiments_file, "--quiet"]):
        result = cli(*args, "--db", notes)
        assert result.exit_code == 2 and "cannot use as an nlx database" in result.stderr
    assert notes.read_bytes() == before


def test_read_only_database_refuses_writes_and_is_unchanged(cli, corpus_db, experiments_file):
    before = file_digest(corpus_db)
    read_only = f"sqlite:///file:{corpus_db}?mode=ro&uri=true"
    assert cli("ls", "--db", read_only).exit_code == 0  # reading works
    result = cli("run", "tiny", "--config", experiments_file, "--db", read_only, "--quiet")
    assert result.exit_code == 2 and "readonly" in result.stderr
    assert file_digest(corpus_db) == before


def test_corrupted_checkpoint_is_refused_before_anything_is_written(cli, corpus_db):
    with sqlite3.connect(corpus_db) as connection:
        connection.execute("UPDATE runs SET status = 'interrupted' WHERE id = 1")
        # Flip one byte of the stored blob; its sha256 no longer matches.
        connection.execute("UPDATE checkpoints SET data = CAST(zeroblob(1) || substr(data, 2) AS BLOB) WHERE run_id = 1 AND tag = 'last'")
    before = file_digest(corpus_db)
    result = cli("resume", "1", "--db", corpus_db, "--quiet")
    assert result.exit_code == 2 and "sha256" in result.stderr
    assert file_digest(corpus_db) == before


def test_corpus_is_large_enough():
    assert len(CORPUS) + len(BAD_EXPERIMENTS) + 3 >= 30


@pytest.mark.parametrize("value", ["0", "two"])
@pytest.mark.parametrize("command", ["run", "resume", "rerun"])
def test_bad_thread_count_in_the_environment(cli, corpus_db, experiments_file, monkeypatch, command, value):
    monkeypatch.setenv("NLX_THREADS", value)
    before = file_digest(corpus_db)
    args = ["run", "tiny", "--config", experiments_file] if command == "run" else [command, "1"]
    result = cli(*args, "--db", corpus_db, "--quiet")
    assert result.exit_code == 2, result.output
    assert "NLX_THREADS" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert file_digest(corpus_db) == before

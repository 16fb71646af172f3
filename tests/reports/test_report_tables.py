"""nlx.reports.tables: pooling finished runs into the paper table and rendering it."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from nlx.reports.tables import Cell, CompareTable, compare_table, render, rich_table
from nlx.store.models import Run

SYM = [0.712, 0.695, 0.731]  # best_val_test_acc of three finished sym0.4 seeds
CLEAN = [0.95, 0.97]


def expected_text(values: list[float]) -> str:
    mean, std = np.mean(values), np.std(values, ddof=1) if len(values) > 1 else 0.0
    return f"{100 * mean:.2f} ± {100 * std:.2f} ({len(values)})"


@pytest.fixture
def runs(store, add_run) -> list[Run]:
    for seed, value in enumerate(SYM):
        add_run(seed=seed, summary={"best_val_test_acc": value, "last_test_acc": value - 0.01, "best_val_acc": 0.5})
    for seed, value in enumerate(CLEAN):
        add_run(seed=seed, noise={"type": "none"}, summary={"best_val_test_acc": value})
    # None of these may count: a failed run, a running one, and a finished one without a value.
    add_run(seed=7, summary={"best_val_test_acc": 0.10}, status="failed", error="boom")
    add_run(seed=8, summary={"best_val_test_acc": 0.10}, status=None)
    add_run(seed=9, summary={"last_test_acc": 0.10})
    return store.runs()


def test_cells_pool_finished_runs_only(runs):
    table = compare_table(runs)
    row = ("digits", "mlp", "ce")
    assert table.rows == [row] and table.columns == ["none", "sym0.4"]
    sym = table.cells[(row, "sym0.4")]
    assert sorted(sym.values) == sorted(SYM) and sym.n == 3
    assert sym.mean == pytest.approx(np.mean(SYM))
    assert sym.std == pytest.approx(np.std(SYM, ddof=1))
    clean = table.cells[(row, "none")]
    assert clean.n == 2 and clean.std == pytest.approx(np.std(CLEAN, ddof=1))


def test_other_metrics_and_bad_metric(runs):
    last = compare_table(runs, "last_test_acc")
    # The finished seed-9 run has a last_test_acc, so it joins the three sym0.4 runs.
    cell = last.cells[(("digits", "mlp", "ce"), "sym0.4")]
    assert sorted(cell.values) == pytest.approx(sorted([v - 0.01 for v in SYM] + [0.10]))
    assert "none" not in last.columns  # the clean runs logged no last_test_acc
    with pytest.raises(ValueError, match="best_val_test_acc"):
        compare_table(runs, "test_acc")


def test_single_value_has_zero_std():
    cell = Cell([0.8])
    assert (cell.n, cell.mean, cell.std) == (1, 0.8, 0.0)
    assert cell.text() == "80.00 ± 0.00 (1)"


def fake_run(dataset: str, model: str, method: str, noise: str, value: float = 0.5) -> Run:
    return Run(dataset=dataset, model=model, method=method, noise=noise, status="finished", best_val_test_acc=value)


def test_row_and_column_order():
    noises = ["weird", "asym0.2", "sym0.8", "inst0.2", "none", "zzz0.1", "classmap0.3", "usym0.4", "sym0.2"]
    runs = [fake_run("b", "mlp", "gce", noise) for noise in noises]
    runs += [fake_run(d, m, meth, "sym0.2") for d, m, meth in
             [("b", "mlp", "ce"), ("a", "mlp", "apl"), ("a", "lenet", "zz"), ("a", "mlp", "ce"), ("b", "lenet", "ce")]]
    table = compare_table(runs)
    assert table.columns == ["none", "sym0.2", "sym0.8", "usym0.4", "asym0.2", "classmap0.3", "inst0.2", "weird", "zzz0.1"]
    assert table.rows == [("a", "lenet", "zz"), ("a", "mlp", "ce"), ("a", "mlp", "apl"),
                          ("b", "lenet", "ce"), ("b", "mlp", "ce"), ("b", "mlp", "gce")]


@pytest.fixture
def table(runs) -> CompareTable:
    # Add a second row that lacks the "none" column, so every format shows a missing cell.
    return compare_table([*runs, fake_run("digits", "mlp", "my_method", "sym0.4", 0.6)])


def test_markdown(table):
    lines = render(table, "markdown").splitlines()
    assert lines[0] == "| dataset | model | method | none | sym0.4 |"
    assert lines[1] == "| --- | --- | --- | ---: | ---: |"
    assert lines[2] == f"| digits | mlp | ce | {expected_text(CLEAN)} | {expected_text(SYM)} |"
    assert lines[3] == f"| digits | mlp | my_method | — | {expected_text([0.6])} |"
    assert len(lines) == 4


def test_csv_is_long_and_read_by_pandas(table):
    frame = pd.read_csv(io.StringIO(render(table, "csv")))
    assert list(frame.columns) == ["dataset", "model", "method", "noise", "metric", "n", "mean", "std"]
    assert len(frame) == 4  # 2 rows x 2 columns, the missing pair included with n = 0
    sym = frame[(frame.method == "ce") & (frame.noise == "sym0.4")].iloc[0]
    assert sym.n == 3 and sym.metric == "best_val_test_acc"
    assert sym["mean"] == pytest.approx(100 * np.mean(SYM), abs=1e-4)
    assert sym["std"] == pytest.approx(100 * np.std(SYM, ddof=1), abs=1e-4)
    missing = frame[(frame.method == "my_method") & (frame.noise == "none")].iloc[0]
    assert missing.n == 0 and np.isnan(missing["mean"]) and np.isnan(missing["std"])


def test_latex(table):
    text = render(table, "latex")
    for part in (r"\begin{tabular}{lllrr}", r"\toprule", r"\midrule", r"\bottomrule", r"\end{tabular}"):
        assert part in text
    mean, std = 100 * np.mean(SYM), 100 * np.std(SYM, ddof=1)
    assert rf"{mean:.2f} $\pm$ {std:.2f} (3)" in text
    row = next(line for line in text.splitlines() if "my" in line)
    assert row.startswith(r"digits & mlp & my\_method & --- & ")
    body = [line for line in text.splitlines() if line.endswith(r"\\")]
    assert len(body) == 3 and all(line.count("&") == 4 for line in body)


def test_text_is_aligned(table):
    lines = render(table, "text").splitlines()
    assert lines[0] == table.title
    assert lines[1].split() == ["dataset", "model", "method", "none", "sym0.4"]
    assert set(lines[2]) == {"-", " "}
    assert len({len(line) for line in lines[1:]}) == 1  # numbers right-aligned to one edge
    assert expected_text(SYM) in lines[3] and "—" in lines[4]


def test_empty_table_and_bad_format():
    empty = compare_table([fake_run("d", "m", "ce", "none", None)])
    assert empty.rows == [] and empty.columns == []
    assert render(empty, "markdown").splitlines()[0] == "| dataset | model | method |"
    assert render(empty, "csv") == "dataset,model,method,noise,metric,n,mean,std\n"
    with pytest.raises(ValueError, match="markdown"):
        render(empty, "html")


def test_rich_table(table):
    out = rich_table(table)
    assert "best-validation epoch" in out.title and "mean ± std (n)" in out.title
    assert [c.header for c in out.columns] == ["dataset", "model", "method", "none", "sym0.4"]
    assert out.row_count == 2
    console = Console(file=io.StringIO(), width=200)
    console.print(out)
    assert expected_text(SYM) in console.file.getvalue()

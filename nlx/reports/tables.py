"""The paper table: one row per (dataset, model, method), one column per noise setting,
each cell the mean ± std over seeds of a summary accuracy of finished runs."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rich.table import Table
from rich.text import Text

from nlx.reports.common import mean_std, noise_sort_key, row_method, row_sort_key
from nlx.store.models import TRIAL_PREFIX, Run

# Summary fields a table can show, with the title that says what the numbers are.
METRIC_TITLES = {
    "best_val_test_acc": "test accuracy (%) at the best-validation epoch, mean ± std (n)",
    "last_test_acc": "test accuracy (%) at the last epoch, mean ± std (n)",
    "best_val_acc": "best validation accuracy (%), mean ± std (n)",
}
FORMATS = ("markdown", "csv", "latex", "text")
MISSING = "—"
CSV_HEADER = ("dataset", "model", "method", "noise", "metric", "n", "mean", "std")

Row = tuple[str, str, str]  # (dataset, model, method)


@dataclass
class Cell:
    """The values of one (row, column) pair, one per seed, as stored (fractions 0-1)."""

    values: list[float]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return mean_std(self.values)[0]

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1); 0.0 for a single value."""
        return mean_std(self.values)[1]

    def text(self, pm: str = "±") -> str:
        """E.g. "71.23 ± 1.05 (3)": percent with 2 decimals, then the number of runs."""
        return f"{100 * self.mean:.2f} {pm} {100 * self.std:.2f} ({self.n})"


@dataclass
class CompareTable:
    metric: str
    columns: list[str]  # noise labels, in display order
    rows: list[Row]  # in display order
    cells: dict[tuple[Row, str], Cell] = field(default_factory=dict)  # absent: no finished run

    @property
    def title(self) -> str:
        return METRIC_TITLES[self.metric]


def check_metric(metric: str) -> str:
    if metric not in METRIC_TITLES:
        raise ValueError(f"unknown table metric {metric!r}; expected one of {', '.join(METRIC_TITLES)}")
    return metric


def compare_table(runs: Sequence[Run], metric: str = "best_val_test_acc") -> CompareTable:
    """Pool the finished runs with a value for `metric` by (dataset, model, method) x noise.
    Failed, pruned, interrupted or still-running runs are left out: their numbers are not
    results; so are sweep trials (each is another setting, not a seed). Runs of a sweep's best
    parameters form rows of their own, e.g. `dividemix (tuned dividemix_tune)`."""
    check_metric(metric)
    cells: dict[tuple[Row, str], Cell] = {}
    for run in runs:
        value = getattr(run, metric)
        if run.status != "finished" or value is None or not math.isfinite(value):
            continue
        if (run.experiment or "").startswith(TRIAL_PREFIX):
            continue
        key = ((run.dataset, run.model, row_method(run)), run.noise)
        cells.setdefault(key, Cell([])).values.append(float(value))
    rows = sorted({row for row, _ in cells}, key=row_sort_key)
    columns = sorted({column for _, column in cells}, key=noise_sort_key)
    return CompareTable(metric=metric, columns=columns, rows=rows, cells=cells)


def _grid(table: CompareTable, pm: str = "±", missing: str = MISSING,
          escape: Callable[[str], str] = str) -> list[list[str]]:
    """Header and body as strings, the shared start of the wide formats."""
    lines = [[escape(name) for name in ("dataset", "model", "method", *table.columns)]]
    for row in table.rows:
        cells = [table.cells.get((row, column)) for column in table.columns]
        lines.append([escape(part) for part in row] + [c.text(pm) if c else missing for c in cells])
    return lines


def _markdown(table: CompareTable) -> str:
    grid = _grid(table, escape=lambda text: text.replace("|", "\\|"))
    align = ["---"] * 3 + ["---:"] * len(table.columns)  # numbers right-aligned
    lines = [grid[0], align, *grid[1:]]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines) + "\n"


_LATEX_SPECIAL = re.compile(r"[\\&%$#_{}~^]")
_LATEX_WORDS = {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    # One pass, so that the braces of a replacement are not escaped again.
    return _LATEX_SPECIAL.sub(lambda m: _LATEX_WORDS.get(m.group(), "\\" + m.group()), text)


def _latex(table: CompareTable) -> str:
    grid = _grid(table, pm=r"$\pm$", missing="---", escape=_latex_escape)  # --- is LaTeX's em dash
    spec = "lll" + "r" * len(table.columns)
    body = [" & ".join(line) + r" \\" for line in grid[1:]]
    return "\n".join([
        f"% {table.title}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(grid[0]) + r" \\",
        r"\midrule",
        *body,
        r"\bottomrule",
        r"\end{tabular}",
    ]) + "\n"


def _text(table: CompareTable) -> str:
    grid = _grid(table)
    widths = [max(len(line[i]) for line in grid) for i in range(len(grid[0]))]

    def fmt(line: list[str]) -> str:
        # Names left-aligned, numbers right-aligned so that decimal points line up.
        parts = [p.ljust(w) if i < 3 else p.rjust(w) for i, (p, w) in enumerate(zip(line, widths))]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([table.title, fmt(grid[0]), rule, *(fmt(line) for line in grid[1:])]) + "\n"


def _csv(table: CompareTable) -> str:
    """Long (tidy) format, one line per (row, noise) pair, so pandas reads it as it is;
    a combination without runs has n = 0 and empty mean and std."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for row in table.rows:
        for column in table.columns:
            cell = table.cells.get((row, column))
            stats = [cell.n, f"{100 * cell.mean:.4f}", f"{100 * cell.std:.4f}"] if cell else [0, "", ""]
            writer.writerow([*row, column, table.metric, *stats])
    return buffer.getvalue()


_RENDERERS = {"markdown": _markdown, "csv": _csv, "latex": _latex, "text": _text}


def render(table: CompareTable, fmt: str) -> str:
    """The table as text in one of FORMATS; accuracies in percent."""
    if fmt not in _RENDERERS:
        raise ValueError(f"unknown table format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return _RENDERERS[fmt](table)


def rich_table(table: CompareTable) -> Table:
    """The table for the terminal."""
    out = Table(title=table.title)
    for name in ("dataset", "model", "method"):
        out.add_column(name)
    for column in table.columns:
        out.add_column(column, justify="right")
    for line in _grid(table)[1:]:
        out.add_row(*(Text(part) for part in line))  # Text: a "[" in a name is not markup
    return out

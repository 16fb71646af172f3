"""Shared CLI pieces: options, error handling, console."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from nlx.errors import NlxError

# Piped output (files, CI logs) gets a wide fixed width instead of rich's 80-column fallback,
# so tables are not squeezed into ellipses.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="database path or SQLAlchemy URL [default: $NLX_DB, else ./nlx.db]", show_default=False),
]


# Rich lays a table out cell by cell (milliseconds a row): a listing longer than this is
# written as plain aligned columns instead, so `nlx ls` of 10,000 runs prints in well under a second.
RICH_ROWS = 100


def print_rows(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] | None = None) -> None:
    """A table: rich's for a few rows, plain aligned text (same columns) for many."""
    right = list(right) if right is not None else [False] * len(header)
    if len(rows) <= RICH_ROWS:
        table = Table(*(Column(name, justify="right" if r else "left") for name, r in zip(header, right)))
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))
        console.print(table)
        return
    widths = [max(len(name), *(len(row[i]) for row in rows)) for i, name in enumerate(header)]
    # One format string for every line: at 10,000 rows, padding cell by cell was most of the printing.
    line = "  ".join(f"{{:{'>' if r else '<'}{w}}}" for w, r in zip(widths, right)).format
    out = [line(*header).rstrip(), "  ".join("-" * w for w in widths), *(line(*row).rstrip() for row in rows)]
    sys.stdout.write("\n".join(out) + "\n")


def fail(message: str, code: int = 2) -> None:
    """Print one line naming the problem and exit with `code`."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def handle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn nlx's own errors into a one-line message and an exit code instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except NlxError as error:
            fail(str(error), error.exit_code)
        except SQLAlchemyError as error:
            reason = str(getattr(error, "orig", None) or error).splitlines()[0]
            fail(f"database error: {reason}", 2)
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)

    return wrapper

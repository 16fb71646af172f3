"""Shared CLI pieces: options, error handling, console."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
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

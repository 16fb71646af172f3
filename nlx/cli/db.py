"""`nlx db upgrade` and `nlx db current`: the schema is owned by Alembic migrations."""

from __future__ import annotations

import typer

from nlx.cli.common import DbOption, console, handle_errors
from nlx.errors import StoreError
from nlx.store.db import sqlite_path, current_revision, head_revision, make_engine, resolve_url, upgrade as migrate

app = typer.Typer(help="Database schema: show the version, migrate to the newest.", no_args_is_help=True)


@app.command()
@handle_errors
def upgrade(db: DbOption = None) -> None:
    """Migrate a database to this nlx's schema, keeping every row (creates it when missing)."""
    url = resolve_url(db)
    before, after = migrate(url)
    if before == after:
        console.print(f"already at {after} (newest)")
    else:
        console.print(f"upgraded {before or 'empty database'} -> {after}")


@app.command()
@handle_errors
def current(db: DbOption = None) -> None:
    """Print the database's schema revision and the newest this nlx knows."""
    url = resolve_url(db)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise StoreError(f"no database at {path}")
    engine = make_engine(url)
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    state = "up to date" if revision == head else "run `nlx db upgrade`" if revision else "not initialised"
    console.print(f"database: {revision or 'none'}   code: {head}   ({state})")

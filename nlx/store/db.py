"""Opening a database: URL resolution, SQLite pragmas, schema version checks, migrations."""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, OperationalError

from nlx.errors import StoreError
from nlx.store.models import VERSION_TABLE

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic (about 0.3 s to import) is imported only to migrate or to read an unusual revision
# graph: opening a database at the head, what every report command does, reads the revision
# with one query and the head from the migration files' `revision =` lines.

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
DEFAULT_DB = "nlx.db"
BUSY_TIMEOUT_MS = 30_000


def resolve_url(db: str | None) -> str:
    """`--db`, else $NLX_DB, else ./nlx.db. A plain path means an SQLite file."""
    db = db or os.environ.get("NLX_DB") or DEFAULT_DB
    if db.startswith("postgresql://"):  # nlx's PostgreSQL driver is psycopg 3, not psycopg2
        return "postgresql+psycopg://" + db.removeprefix("postgresql://")
    if "://" in db:
        return db
    return f"sqlite:///{Path(db).expanduser().absolute()}"


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.query.get("uri") == "true":  # sqlite:///file:PATH?mode=ro&uri=true
        return Path(parsed.database.removeprefix("file:"))
    return Path(parsed.database)


def _set_sqlite_pragmas(dbapi_connection, _record) -> None:
    # Take transaction control from the sqlite3 module, so that `_begin` decides how to BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # The busy timeout makes writers queue, not fail; set first so the pragmas below wait too.
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # WAL lets readers work while a run writes. Switching a new file to WAL can answer "locked"
    # without waiting when several processes open it at once (workers on a fresh database).
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


WRITE = {"nlx_write": True}  # execution option marking a write transaction


def _begin(connection) -> None:
    # Writers take the write lock up front (BEGIN IMMEDIATE), waiting in the busy timeout: a
    # deferred transaction that reads first and writes later can fail at once with "database is
    # locked" when another writer committed in between. Readers begin deferred, never blocking.
    immediate = connection.get_execution_options().get("nlx_write")
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _begin_immediate(connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def configure_sqlite(engine: Engine, every_transaction_writes: bool = False) -> None:
    """nlx's SQLite settings on an engine (nothing for other databases): the pragmas on every new
    connection, and BEGIN IMMEDIATE for transactions marked WRITE, or for all of them when
    `every_transaction_writes` (Optuna's storage, whose transactions read and then write and
    carry no mark)."""
    if engine.dialect.name != "sqlite":
        return
    event.listen(engine, "connect", _set_sqlite_pragmas)
    event.listen(engine, "begin", _begin_immediate if every_transaction_writes else _begin)


def make_engine(url: str) -> Engine:
    engine = create_engine(url)
    configure_sqlite(engine)
    return engine


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


_REVISION_LINE = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)


@functools.cache
def _scanned_head() -> str | None:
    """The single head of a linear chain read from the migration files' text, or None when the
    files say something this scan does not follow (a merge, a tuple): then Alembic decides."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict((name, value) for name, value in _REVISION_LINE.findall(path.read_text()))
        revision, down = found.get("revision", ""), found.get("down_revision", "None")
        if not re.fullmatch(r"['\"][\w.-]+['\"]", revision) or not re.fullmatch(r"None|['\"][\w.-]+['\"]", down):
            return None
        revisions.add(revision[1:-1])
        if down != "None":
            parents.add(down[1:-1])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def head_revision() -> str:
    head = _scanned_head()
    if head is not None:
        return head
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _stored_revision(engine: Engine) -> str | None:
    """The database's revision by one query (the version table exists)."""
    with engine.connect() as connection:
        rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory.from_config(alembic_config("sqlite://")).walk_revisions()}


def newer_schema_error(url: str, revision: str) -> StoreError:
    return StoreError(f"{url}: database schema {revision} is newer than this nlx (which knows up to {head_revision()}); upgrade nlx")


def upgrade(url: str) -> tuple[str | None, str]:
    """Migrate the database to the newest schema; returns (revision before, revision after)."""
    engine = make_engine(url)
    try:
        before = current_revision(engine)
        if before is not None and before not in known_revisions():
            raise newer_schema_error(url, before)
        # Under the write lock: of several processes creating one database, one migrates and the
        # others, once they hold the lock, find it at the head and do nothing.
        from alembic import command

        with engine.execution_options(**WRITE).begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return before, current_revision(engine)
    finally:
        engine.dispose()


def open_db(db: str | None, create: bool = False) -> Engine:
    """An engine on a database whose schema matches this code.

    create=False (read commands): a missing SQLite file is an error, and nothing is written.
    create=True (writers): a missing or empty database is created at the newest schema.
    """
    url = resolve_url(db)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        if not create:
            raise StoreError(f"no database at {path} (create one with `nlx run`, or pass --db)")
        if not path.parent.is_dir():
            raise StoreError(f"--db: folder {path.parent} does not exist")
    engine = make_engine(url)
    try:
        _check_schema(engine, url, create)
    except (DatabaseError, OperationalError) as error:
        engine.dispose()
        reason = str(error.orig) if getattr(error, "orig", None) else str(error)
        raise StoreError(f"{url}: cannot use as an nlx database: {reason}") from None
    except StoreError:
        engine.dispose()
        raise
    return engine


def _check_schema(engine: Engine, url: str, create: bool) -> None:
    tables = set(inspect(engine).get_table_names())
    if VERSION_TABLE not in tables:
        if tables - {"alembic_version"} and not _only_optuna(tables):
            raise StoreError(f"{url}: not an nlx database (it has tables {sorted(tables)[:5]} but no nlx schema)")
        if not create:
            raise StoreError(f"{url}: empty database (create one with `nlx run`)")
        upgrade(url)
        return
    head = head_revision()
    if _stored_revision(engine) == head:
        return
    current = current_revision(engine)
    if current == head:
        return
    if current not in known_revisions():
        raise newer_schema_error(url, current)
    raise StoreError(f"{url}: database schema {current} is older than this nlx ({head}); run `nlx db upgrade`")


def _only_optuna(tables: set[str]) -> bool:
    # Optuna's storage may have created its tables first in a shared database.
    return all(name.startswith(("studies", "study_", "trials", "trial_", "version_info", "alembic_version")) for name in tables)

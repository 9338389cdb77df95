"""SQLAlchemy engines for the read model, on the same store as the event log."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url, text

# The key of the PostgreSQL advisory lock under which a process creates the store's tables.
SCHEMA_LOCK_KEY = 0xC5A1ED6E

# The page size of a new SQLite store (ADR 0031). SQLite's default is 4096; a store's bulk
# writes (a first load's copies and their checkpoints) cost mostly per page written, through
# the WAL and then into the file. A store keeps the page size it was created with.
SQLITE_PAGE_SIZE = 16384


def make_engine(database_url: str) -> Engine:
    if database_url.startswith("sqlite"):
        database = make_url(database_url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database)
            path.parent.mkdir(parents=True, exist_ok=True)
            new_sqlite_store(path)
        engine = create_engine(database_url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(database_url, pool_pre_ping=True, pool_size=5)


def new_sqlite_store(path: Path, page_size: int = SQLITE_PAGE_SIZE) -> None:
    """Give a store that does not exist yet (or an empty file) its page size and the WAL, before
    anything else opens it: the first write of the header fixes the page size, and a database
    in WAL mode cannot change it. A store that already has a header is left as it is."""
    if path.exists() and (not path.is_file() or path.stat().st_size > 0):
        return
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute(f"PRAGMA page_size={int(page_size)}")
        conn.execute("PRAGMA journal_mode=WAL")  # writes the header, with the page size
    finally:
        conn.close()


@contextmanager
def schema_lock(engine: Engine) -> Iterator[None]:
    """Create tables one process at a time. Several API workers starting together on an empty
    PostgreSQL database each ran `CREATE TABLE IF NOT EXISTS …` at once, and PostgreSQL
    refused one ("tuple concurrently updated"): that worker failed to start and took the
    server down. On PostgreSQL a session advisory lock serialises them; SQLite serialises
    its own writers."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": SCHEMA_LOCK_KEY})
            conn.commit()

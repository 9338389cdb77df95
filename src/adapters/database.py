"""SQLAlchemy engines for the read model, on the same store as the event log."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
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

# How long a connection opening a SQLite store waits for a lock (its busy timeout), and for the
# store to be put back in WAL mode if another process holds it out of WAL (`rollback_journal`).
SQLITE_LOCK_SECONDS = 30.0

log = logging.getLogger("csa.store")


def make_engine(database_url: str) -> Engine:
    if database_url.startswith("sqlite"):
        database = make_url(database_url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database)
            path.parent.mkdir(parents=True, exist_ok=True)
            new_sqlite_store(path)
        engine = create_engine(database_url, connect_args={"timeout": SQLITE_LOCK_SECONDS})
        key = _key(database) if database else None

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout={int(SQLITE_LOCK_SECONDS * 1000)}")
            if not held_out_of_wal(key):
                ensure_wal(dbapi_conn)
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


def ensure_wal(conn: sqlite3.Connection, timeout: float = SQLITE_LOCK_SECONDS) -> str:
    """Put the store `conn` is open on in WAL mode, as every connection to it does when it opens,
    and return the journal mode it is then in. While another process holds the store in
    rollback-journal mode for a first load (`rollback_journal`) and is writing, SQLite refuses
    the switch at once ("database is locked") rather than waiting as for a lock: it is tried
    again until `timeout`, then left as it is. The connection works in whichever mode the file
    is in, and follows the file when the mode changes (the file's header says which)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            if time.monotonic() >= deadline:
                (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
                log.warning("the store stays in %s mode for now: %s", mode, e)
                return str(mode).lower()
            time.sleep(0.05)


# The SQLite stores this process holds out of WAL mode, by real path (`rollback_journal`):
# its own new connections to them leave the journal mode as it is.
_held: set[str] = set()
_held_lock = threading.Lock()


def _key(path: str | Path) -> str:
    return os.path.realpath(path)


def held_out_of_wal(key: str | None) -> bool:
    with _held_lock:
        return key in _held


@contextmanager
def rollback_journal(path: str | Path, timeout: float = SQLITE_LOCK_SECONDS) -> Iterator[bool]:
    """Hold the SQLite store at `path` in rollback-journal mode (`journal_mode=DELETE`) for the
    block, then put it back in WAL mode; yields whether it did (ADR 0040).

    For a first load into an empty store: through the WAL its pages are written twice, once
    into the WAL and again into the file by the checkpoint; in rollback-journal mode pages
    beyond the file's end when a transaction began are written into the file once, and the
    journal keeps only the few pages that existed (still atomic, and durable at COMMIT).

    SQLite switches a store out of WAL mode only when no other connection, of this process or
    another, has it open: otherwise it refuses, and this yields False with the store as it was
    (the caller goes on through the WAL). While the store is held, readers wait for a writer's
    COMMIT (the busy timeout), and another process's connection opening the store cannot put it
    back in WAL mode until the block's writes end (`ensure_wal` waits, then goes on)."""
    key = _key(path)
    conn = sqlite3.connect(path, isolation_level=None, timeout=timeout)
    try:
        try:
            (mode,) = conn.execute("PRAGMA journal_mode=DELETE").fetchone()
        except sqlite3.OperationalError:  # another connection has the store open
            mode = None
        if str(mode).lower() != "delete":
            yield False
            return
        with _held_lock:
            _held.add(key)
        try:
            yield True
        finally:
            with _held_lock:
                _held.discard(key)
            ensure_wal(conn, timeout)
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

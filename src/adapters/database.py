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

# While a first load writes into a store held out of WAL mode, how often its file's dirty pages
# are handed to the disk (`written_back`, ADR 0043); 0: only by the COMMIT's own fsync.
SQLITE_WRITEBACK_SECONDS = 0.25

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
def rollback_journal(path: str | Path, timeout: float = SQLITE_LOCK_SECONDS,
                     writeback: float = SQLITE_WRITEBACK_SECONDS) -> Iterator[bool]:
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
    back in WAL mode until the block's writes end (`ensure_wal` waits, then goes on).

    While it is held, the file's dirty pages are handed to the disk as the block writes them
    (`written_back`, every `writeback` seconds)."""
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
            with written_back(path, writeback):
                yield True
        finally:
            with _held_lock:
                _held.discard(key)
            ensure_wal(conn, timeout)
    finally:
        conn.close()


@contextmanager
def written_back(path: str | Path, every: float = SQLITE_WRITEBACK_SECONDS) -> Iterator[None]:
    """While the block runs, a thread asks the kernel every `every` seconds to write the file at
    `path`'s dirty pages to the disk (`fdatasync`), so that a long transaction's COMMIT, whose
    own fsync waits for every page not yet written, finds most of them there (ADR 0043: a first
    load's ~1.8 GB, written in ~8 s, left 1.3 and 0.8 s of fsync to its two commits; the disk
    writes while the copies go on instead). Nothing else changes: what is durable, and when
    SQLite syncs, are as before; a page written early only reaches the disk sooner.

    The descriptor synced is one this process already has open on the file (a connection's,
    found in /proc/self/fd), never one opened here: closing a descriptor of a database file
    would release every POSIX lock this process holds on it, SQLite's included. Linux only (and
    `every` > 0); elsewhere the block simply runs."""
    proc = Path("/proc/self/fd")
    if every <= 0 or not proc.is_dir():
        yield
        return
    try:
        st = os.stat(path)
    except OSError:
        yield
        return
    file = (st.st_dev, st.st_ino)
    stop = threading.Event()

    def flush() -> None:
        while not stop.wait(every):
            for fd in _descriptors_of(proc, file):
                try:
                    os.fdatasync(fd)
                except OSError:  # closed meanwhile (or now another file: syncing it does no harm)
                    continue
                break

    thread = threading.Thread(target=flush, name="csa-store-writeback", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _descriptors_of(proc: Path, file: tuple[int, int]) -> list[int]:
    """This process's open descriptors of the file (device, inode)."""
    found = []
    for entry in os.scandir(proc):
        try:
            st = os.stat(entry.path)  # follows the link to the open file
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == file:
            found.append(int(entry.name))
    return found


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

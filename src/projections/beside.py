"""Projecting a bulk import beside its staging (ADR 0027, issue 5 target 1).

A file import stages every event in a scratch SQLite table (`adapters.eventstore.Scratch`,
its rowids in staging order) before it writes any to the log (ADR 0020); when the store is
empty, those rowids are exactly the log positions the events will take. So the read model
can be built while the import is still staging, on the machine's other core:

- `project_rows` then `build_indexes` (in a child process) run the projector's own bulk pipeline over the
  scratch's events, as the importer reports them staged, into a private SQLite file of its
  own (no journal, no WAL: it is thrown away if anything goes wrong);
- `adopt` (in the importing process, once the import has written the log) copies those rows
  into the store's read model in one transaction, with the projector's position, only if the
  store is still what the child assumed: the read model empty and the log holding exactly the
  staged events, at the positions the child gave them. Then the secondary indexes are built
  once, as after any bulk run.

Nothing here decides what a row is: the rows are built by the same `Projector` code as a
rebuild from the log, so the read model is the same whichever way it was built (the tests
compare `digest` and every row).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from projections.projector import (
    INDEX_BUILD_CACHE_KB,
    NAME,
    LogRow,
    Projector,
    _Background,
    create_indexes,
    drop_indexes,
    finish_bulk,
    state_column,
)
from projections.tables import (
    BULK_INDEXES,
    READ_MODEL_TABLES,
    event_log,
    metadata,
    projector_position,
)

PRIVATE_PAGE_SIZE = 16384  # the page size of the private read-model file (ADR 0038)
_SQLITE = sqlite_dialect()


class ScratchReader:
    """Pages of a scratch table of staged events as the projector reads the log: (position,
    originator id, version, topic, state), position = the rowid. `staged()` blocks until the
    importer says how far it has staged: it returns that position, and whether the staging
    is over (nothing more will come)."""

    mode = "sqlite"

    def __init__(self, path: str, staged: Callable[[], tuple[int, bool]]):
        # Read only; the importing process writes the scratch meanwhile (SQLite's file locks
        # keep each read consistent, and the importer says a chunk is staged once committed).
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60, check_same_thread=False)
        self.staged = staged
        self.last = 0  # staged up to here, as far as known
        self.ended = False
        self.sql = (f"SELECT rowid, originator_id, originator_version, topic, {state_column()} FROM events "
                    "WHERE rowid BETWEEN ? AND ? ORDER BY rowid")

    def read(self, start: int, limit: int) -> Sequence[LogRow]:
        while self.last < start and not self.ended:
            last, self.ended = self.staged()
            self.last = max(self.last, last)
        if self.last < start:
            return []
        return self.conn.execute(self.sql, (start, min(self.last, start + limit - 1))).fetchall()

    def close(self) -> None:
        self.conn.close()


# The private read model is two files, so that their secondary indexes are built at once on the
# machine's two cores once the rows are in (ADR 0039): the events' history (`rm_event_log`, five
# indexes) in a file of its own beside the main one, which holds the rest (`rm_evidence`, two).
LOG_SUFFIX = "-log"
_SPLIT = (event_log,)  # the tables in the second file
_LOG_SCHEMA = "beside_log"  # its name where it is attached


def log_path(path: str | Path) -> str:
    """The second file of the private read model written at `path`."""
    return str(path) + LOG_SUFFIX


def _private_pragmas(cur: Any, schema: str = "main") -> None:
    for pragma in (f"page_size={PRIVATE_PAGE_SIZE}", "journal_mode=OFF", "synchronous=OFF"):
        cur.execute(f"PRAGMA {schema}.{pragma}")


def private_engine(path: str | Path) -> Engine:
    """A read-model file for one process: no journal and no syncing (it is rebuilt, not
    recovered, after a crash), with the read model's tables and none of its secondary indexes.
    Its pages are as large as a store's (16 KiB, ADR 0031) rather than SQLite's default 4 KiB:
    the national read model (~1 GB) is written, read back by its index builds and read again
    by the adoption's copy in a quarter as many system calls (ADR 0038). The event log's table
    is in a second file (`log_path`), attached to every connection under its own name: the
    projector's statements name the tables without a schema, and SQLite finds each in the one
    file that has it (ADR 0039)."""
    second = log_path(path)
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # noqa: ANN001
        cur = dbapi_conn.cursor()
        _private_pragmas(cur)
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.execute(f"ATTACH DATABASE ? AS {_LOG_SCHEMA}", (second,))
        _private_pragmas(cur, _LOG_SCHEMA)
        cur.close()

    split = {t.name for t in _SPLIT}
    metadata.create_all(engine, tables=[t for t in metadata.sorted_tables if t.name not in split])
    with engine.begin() as conn:
        for t in _SPLIT:
            # CREATE TABLE beside_log.<name> (...): the same definition, in the second file
            ddl = str(CreateTable(t).compile(dialect=engine.dialect)).strip()
            conn.exec_driver_sql(ddl.replace(f"CREATE TABLE {t.name}", f"CREATE TABLE {_LOG_SCHEMA}.{t.name}", 1))
        drop_indexes(conn)
    return engine


def build_indexes(path: str | Path, ready: Callable[[str], None] | None = None) -> None:
    """The secondary indexes of the private read model at `path`, each file's on a thread and a
    connection of its own (SQLite builds an index without holding the GIL). `ready(table)` is
    called from that thread once a table's indexes are all built (the adoption can copy it)."""
    files = {str(path): [t for t in READ_MODEL_TABLES if t not in _SPLIT], log_path(path): list(_SPLIT)}

    def build(file: str, tables: list[Table]) -> None:
        conn = sqlite3.connect(file, isolation_level=None)
        try:
            conn.execute(f"PRAGMA cache_size={-INDEX_BUILD_CACHE_KB}")  # ADR 0034
            # Not synced, as the rows were not (`private_engine`): each CREATE INDEX's commit
            # would otherwise wait for the whole file, ~1 GB of it still in the page cache, to
            # reach the disk (1.4 s, while the import waits for these indexes; ADR 0043).
            conn.execute("PRAGMA synchronous=OFF")
            for t in tables:
                for ix in BULK_INDEXES:
                    if ix.table is t:
                        conn.execute(str(CreateIndex(ix, if_not_exists=True).compile(dialect=_SQLITE)))
                if ready is not None:
                    ready(t.name)
        finally:
            conn.close()

    builders = [_Background(lambda f=file, ts=tables: build(f, ts)) for file, tables in files.items()]
    for b in builders:
        b.join()  # raises what the build raised


def project_rows(mapper: Any, reader: ScratchReader, out: str | Path, batch_size: int = 10000) -> int:
    """Build the rows of the read model of the scratch's events into the file `out` (and its
    second file) with the projector's bulk pipeline (a builder and a writer thread), without
    their secondary indexes. Returns the position it reached."""
    engine = private_engine(out)
    try:
        projector = Projector(SimpleNamespace(mapper=mapper, recorder=None), engine, batch_size)
        projector._reader = reader  # noqa: SLF001
        # Its writer stays a thread: this process is already the import's second core (and the
        # file has no journal, for one process only).
        projector.writer_process = False
        projector._bulk = True  # noqa: SLF001
        projector._run_bulk(None, None)  # noqa: SLF001
        return projector.position()
    finally:
        engine.dispose()


class NotAdopted(Exception):
    """The store is no longer what the rows projected beside the staging were built for."""


def adopt(engine: Engine, events_path: str, events_table: str, path: str | Path, position: int,
          ready: Callable[[str], None] | None = None) -> None:
    """Copy the read model projected into `path` (up to log position `position`) into the
    store's, in one transaction. Raises `NotAdopted`, having written nothing, unless the
    store's read model is empty and its log ends at `position` (every event in it is one the
    rows were built from, at the same position).

    `path` is a private read model (`private_engine`: its event log in a second file) or any
    file with the read model's tables. `ready(table)`, if given, is called before each table
    is copied and returns once that table's rows and indexes are built (ADR 0039: a table is
    copied while the other's indexes are still being built).

    The copy is `INSERT INTO main.t SELECT * FROM beside.t`, which SQLite carries out as a
    transfer of whole records, the tables' indexes included (its "xfer optimization": the
    destination empty, the same columns and the same indexes on both sides), rather than
    decoding and inserting row by row; so the store's secondary indexes are made present
    (on empty tables, at no cost) and none is built afterwards. Where the two differ (a
    store made by an older schema) the rows are inserted by column name, and the indexes
    built after the copy, as after a bulk run."""
    tables = [t.name for t in READ_MODEL_TABLES]
    wait = ready or (lambda _table: None)
    create_indexes(engine)  # on the empty read model: nothing to build
    conn = sqlite3.connect(events_path, isolation_level=None, timeout=30)
    try:
        conn.execute("PRAGMA cache_size=-262144")
        conn.execute("ATTACH DATABASE ? AS beside", (str(path),))
        split = set()
        if Path(log_path(path)).exists():
            # Not read before its tables are built: a read would hold the file's lock, which the
            # index builds in the other process wait for.
            conn.execute(f"ATTACH DATABASE ? AS {_LOG_SCHEMA}", (log_path(path),))
            split = {t.name for t in _SPLIT}
        where = {t: _LOG_SCHEMA if t in split else "beside" for t in tables}
        wait(tables[0])  # the rows are all in (the indexes come after them)
        # The store's write lock first, as BEGIN IMMEDIATE would take it, but not on the attached
        # files: IMMEDIATE takes every attached file's too, and the other file's indexes may still
        # be being built by the projecting process (a statement that writes nothing to main).
        conn.execute("BEGIN")
        try:
            conn.execute(f"DELETE FROM main.{projector_position.name} WHERE 0")
            (head,) = conn.execute(f"SELECT MAX(rowid) FROM main.{events_table}").fetchone()
            row = conn.execute(f"SELECT position FROM main.{projector_position.name} WHERE name = ?",
                               (NAME,)).fetchone()
            (built,) = conn.execute(f"SELECT position FROM beside.{projector_position.name} WHERE name = ?",
                                    (NAME,)).fetchone() or (None,)
            if (head or 0) != position or built != position or (row is not None and row[0] != 0) \
                    or any(conn.execute(f"SELECT 1 FROM main.{t} LIMIT 1").fetchone() for t in tables):
                raise NotAdopted(f"log head {head}, read model at {row and row[0]}, rows built to {built}, "
                                 f"expected {position}")
            for t in tables:
                wait(t)
                src = where[t]
                if _shape(conn, "main", t) == _shape(conn, src, t):
                    conn.execute(f"INSERT INTO main.{t} SELECT * FROM {src}.{t}")
                else:
                    for ix in BULK_INDEXES:  # built once, after the copy (finish_bulk)
                        if ix.table.name == t:
                            conn.execute(f"DROP INDEX IF EXISTS main.{ix.name}")
                    cols = ", ".join(c.name for c in metadata.tables[t].columns)
                    conn.execute(f"INSERT INTO main.{t} ({cols}) SELECT {cols} FROM {src}.{t}")
            conn.execute(f"INSERT INTO main.{projector_position.name} (name, position) VALUES (?, ?) "
                         "ON CONFLICT (name) DO UPDATE SET position = excluded.position", (NAME, position))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    finish_bulk(engine)


def _shape(conn: sqlite3.Connection, schema: str, table: str) -> tuple[list[tuple], list[tuple]]:
    """A table's columns in order, and its indexes' definitions (what a transfer of whole
    records needs to be the same on both sides)."""
    columns = [tuple(r[1:]) for r in conn.execute(f"PRAGMA {schema}.table_info({table})")]
    indexes = sorted((r[1], r[2], tuple(tuple(c[1:]) for c in conn.execute(f"PRAGMA {schema}.index_xinfo({r[1]!r})")))
                     for r in conn.execute(f"PRAGMA {schema}.index_list({table})"))
    return columns, indexes

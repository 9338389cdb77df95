"""Projecting a bulk import beside its staging (ADR 0027, issue 5 target 1).

A file import stages every event in a scratch SQLite table (`adapters.eventstore.Scratch`,
its rowids in staging order) before it writes any to the log (ADR 0020); when the store is
empty, those rowids are exactly the log positions the events will take. So the read model
can be built while the import is still staging, on the machine's other core:

- `project_scratch` (in a child process) runs the projector's own bulk pipeline over the
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

from sqlalchemy import Engine, create_engine, event

from projections.projector import (
    NAME,
    LogRow,
    Projector,
    create_indexes,
    drop_indexes,
    finish_bulk,
    state_column,
)
from projections.tables import BULK_INDEXES, READ_MODEL_TABLES, metadata, projector_position

PRIVATE_PAGE_SIZE = 16384  # the page size of the private read-model file (ADR 0038)


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


def private_engine(path: str | Path) -> Engine:
    """A read-model file for one process: no journal and no syncing (it is rebuilt, not
    recovered, after a crash), with the read model's tables and none of its secondary indexes.
    Its pages are as large as a store's (16 KiB, ADR 0031) rather than SQLite's default 4 KiB:
    the national read model (~1 GB) is written, read back by its index builds and read again
    by the adoption's copy in a quarter as many system calls (ADR 0038)."""
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # noqa: ANN001
        cur = dbapi_conn.cursor()
        for pragma in (f"page_size={PRIVATE_PAGE_SIZE}", "journal_mode=OFF", "synchronous=OFF", "temp_store=MEMORY"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    metadata.create_all(engine)
    with engine.begin() as conn:
        drop_indexes(conn)
    return engine


def project_scratch(mapper: Any, reader: ScratchReader, out: str | Path, batch_size: int = 10000) -> int:
    """Build the read model of the scratch's events into the file `out` with the projector's
    bulk pipeline (a builder and a writer thread), then its secondary indexes (here, on this
    process's core, rather than in the store once the rows are copied). Returns the position
    it reached."""
    engine = private_engine(out)
    try:
        projector = Projector(SimpleNamespace(mapper=mapper, recorder=None), engine, batch_size)
        projector._reader = reader  # noqa: SLF001
        # Its writer stays a thread: this process is already the import's second core (and the
        # file has no journal, for one process only).
        projector.writer_process = False
        projector._bulk = True  # noqa: SLF001
        projector._run_bulk(None, None)  # noqa: SLF001
        create_indexes(engine)
        return projector.position()
    finally:
        engine.dispose()


class NotAdopted(Exception):
    """The store is no longer what the rows projected beside the staging were built for."""


def adopt(engine: Engine, events_path: str, events_table: str, path: str | Path, position: int) -> None:
    """Copy the read model projected into `path` (up to log position `position`) into the
    store's, in one transaction. Raises `NotAdopted`, having written nothing, unless the
    store's read model is empty and its log ends at `position` (every event in it is one the
    rows were built from, at the same position).

    The copy is `INSERT INTO main.t SELECT * FROM beside.t`, which SQLite carries out as a
    transfer of whole records, the tables' indexes included (its "xfer optimization": the
    destination empty, the same columns and the same indexes on both sides), rather than
    decoding and inserting row by row; so the store's secondary indexes are made present
    (on empty tables, at no cost) and none is built afterwards. Where the two differ (a
    store made by an older schema) the rows are inserted by column name, and the indexes
    built after the copy, as after a bulk run."""
    tables = [t.name for t in READ_MODEL_TABLES]
    create_indexes(engine)  # on the empty read model: nothing to build
    conn = sqlite3.connect(events_path, isolation_level=None, timeout=30)
    try:
        conn.execute("PRAGMA cache_size=-262144")
        conn.execute("ATTACH DATABASE ? AS beside", (str(path),))
        conn.execute("BEGIN IMMEDIATE")
        try:
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
                if _shape(conn, "main", t) == _shape(conn, "beside", t):
                    conn.execute(f"INSERT INTO main.{t} SELECT * FROM beside.{t}")
                else:
                    for ix in BULK_INDEXES:  # built once, after the copy (finish_bulk)
                        if ix.table.name == t:
                            conn.execute(f"DROP INDEX IF EXISTS main.{ix.name}")
                    cols = ", ".join(c.name for c in metadata.tables[t].columns)
                    conn.execute(f"INSERT INTO main.{t} ({cols}) SELECT {cols} FROM beside.{t}")
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

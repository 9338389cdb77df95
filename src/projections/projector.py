"""The projector: a catch-up loop that reads the event log in pages, turns the
events into read-model rows and stores its position in the same transaction
(ADR 0002). It works on SQLite and PostgreSQL alike and batches its writes.

It is built for throughput (issue 5): it reads the stored events' rows itself
(no `Notification` or domain event objects, no state of the events it skips), decodes
a page's states in one call of orjson where that gives exactly the library mapper's
values, else with the C JSON decoder (ADR 0023), dispatches on the topic string, builds
row tuples and writes them with the driver's bulk paths (sqlite3 `executemany` or
multi-row VALUES, PostgreSQL `COPY`). The current rows of the items a page follows up
are loaded in one query per page. The domain's own event classes still decide what an
event does: the topic is resolved once, and a follow-up's `apply` is called to change
the state.

A run from an empty read model over many events (a rebuild, `csa verify`) is a bulk
run: its secondary indexes are built once at the end, the cyclic GC is paused, and the
work is shared, the caller reading, decoding and building pages while a writer commits
them (rows and position in one transaction, pages in log order; see `_run_pipeline`): the
builder builds page N+1 while page N is written (on PostgreSQL it also reads page N+2
meanwhile). On SQLite the writer is a child process (`projections.page_writer`, ADR 0035),
elsewhere a thread.
"""

from __future__ import annotations

import gc
import hashlib
import json
import json.scanner
import logging
import operator
import queue
import re
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from eventsourcing.utils import get_topic, resolve_topic
from sqlalchemy import Connection, Engine, Index, inspect, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

try:  # the fast codec of a page of the log (ADR 0023); without it, the standard library's
    import orjson
except ImportError:  # pragma: no cover - a declared dependency
    orjson = None  # type: ignore[assignment]

from domain.model import NAMESPACE, Assessment, ClientKey, Evidence, Item, Provider
from domain.postings import canonical
from projections import page_writer
from projections.tables import (
    BULK_INDEXES,
    READ_MODEL_TABLES,
    facts_kept,
    metadata,
    projector_position,
)

NAME = "evidence"
logger = logging.getLogger(__name__)

# Events that supersede the current version of an item (evidence or provider).
ITEM_FOLLOW_UPS = (Item.PublicationDateSupplied, Item.Corrected, Item.Withdrawn,
                   Provider.Closed, Provider.Restructured, Provider.NoChildrenOnRollMarked)

# A run from an empty read model over at least this many events drops the
# secondary indexes first and builds them once at the end.
BULK_THRESHOLD = 50_000
BULK_CACHE_KB = 131_072  # SQLite page cache of a bulk run
INDEX_BUILD_CACHE_KB = 2_000  # SQLite page cache of an index build: its default (ADR 0034)
# Events in a page (one transaction) of a bulk run, if the projector's batch is smaller. Each
# commit writes every page of rm_evidence's key index (random item ids) that the page touched:
# with pages of 10,000 events the national rebuild wrote most of that index again at each of its
# 165 commits (commits were 11 of its 52 s). 50,000: 33,612 -> 46,073 ev/s; 100,000 and 200,000
# gained little more (46,602, 47,175 ev/s) for 0.7 and 1.1 GB resident (ADR 0032). SQLite only:
# on PostgreSQL it gained nothing measurable (42,050 / 40,433 -> 45,838 / 39,967 ev/s) for
# ~220 MB more resident.
BULK_PAGE_EVENTS = 50_000
BULK_CHECKPOINT_BYTES = 1 << 30  # WAL (1 GiB) between SQLite checkpoints during a bulk run
BULK_THREADED = True  # a bulk run writes in a second thread
BULK_OVERLAP_SQLITE = True  # False: on SQLite the builder waits while the writer writes (see _run_pipeline)
BULK_PREFETCH = True  # on PostgreSQL a bulk run reads the next page of the log while it builds one
BULK_VALUES = True  # on SQLite with multi-row VALUES statements
VALUES_ROWS = 4096  # at most so many rows per INSERT statement of a bulk run on SQLite
SQLITE_LIMIT_VARIABLE_NUMBER = page_writer.SQLITE_LIMIT_VARIABLE_NUMBER
# On SQLite a bulk run's pages are written by a child process (`projections.page_writer`), not a
# thread of the projector's process: the two threads' shares of the GIL made each 1.7-2.9 times
# as slow as alone (ADR 0035). Only for a store in a file (a child cannot open another process's
# in-memory database); False: the writer thread.
BULK_WRITER_PROCESS = True
# The same on PostgreSQL (ADR 0036): the writer thread's COPY formatting held the GIL ~9.5 s of
# a national rebuild. False: the writer thread.
BULK_WRITER_PROCESS_PG = True
INDEX_BUILDERS = 3  # connections building the indexes at the end of a bulk run on PostgreSQL
BULK_QUEUE = 1  # pages built ahead of the one being written during a bulk run
BULK_ASYNC_COMMIT = True  # on PostgreSQL a bulk run's page commits do not wait for the WAL flush


def naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def as_date(v: Any) -> date | None:
    if v is None or isinstance(v, date):
        return v
    return date.fromisoformat(v)


class Projector:
    def __init__(self, app: Any, engine: Engine, batch_size: int = 10000):
        self.app = app
        self.engine = engine
        self.batch_size = batch_size
        self._reader: _LogReader | None = None
        self._bulk = False
        self._wal_pages: int | None = None  # BULK_CHECKPOINT_BYTES in the store's pages (SQLite)
        self.writer_process = True  # False: a bulk run on SQLite writes in a thread (BULK_WRITER_PROCESS)

    def _bulk_checkpoint(self, conn: Connection) -> int:
        """The WAL pages between checkpoints of a bulk run: BULK_CHECKPOINT_BYTES whatever the
        store's page size (4 KiB before ADR 0031, 16 KiB since)."""
        if self._wal_pages is None:
            self._wal_pages = BULK_CHECKPOINT_BYTES // conn.exec_driver_sql("PRAGMA page_size").scalar()
        return self._wal_pages

    # --- running ----------------------------------------------------------

    def position(self) -> int:
        with self.engine.connect() as conn:
            return read_position(conn)

    def log_position(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def run(self, until: int | None = None, on_batch: Callable[[int], None] | None = None) -> int:
        """Catch up with the log (or up to position `until`). Returns events applied."""
        total = 0
        from_empty = self.position() == 0
        if from_empty:
            self._bulk = self._start_bulk(until)
        try:
            if self._bulk:
                total = self._run_bulk(until, on_batch)
            while True:  # the page-by-page loop (after a bulk run: what the log gained meanwhile)
                n = self.run_batch(until)
                if n == 0:
                    return total
                total += n
                if on_batch:
                    on_batch(n)
        finally:
            if from_empty:  # a bulk run, or `reset`, dropped the secondary indexes
                bulk, self._bulk = self._bulk, False
                if bulk:
                    finish_bulk(self.engine)
                else:
                    create_indexes(self.engine)

    def run_batch(self, until: int | None = None) -> int:
        with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                # A bulk run checkpoints the WAL once, at its end: each checkpoint syncs the
                # file and copies pages a later page of the log writes again. Commits keep
                # the durability of synchronous=NORMAL either way. Its inserts into the key
                # index of rm_evidence (random item ids) need a page cache the size of that
                # index, larger than the default 2 MB.
                conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={self._bulk_checkpoint(conn) if self._bulk else 1000}")
                conn.exec_driver_sql(f"PRAGMA cache_size={-BULK_CACHE_KB if self._bulk else -2000}")
            ensure_position(conn)
            start = read_position(conn, for_update=True)
            limit = self.batch_size if until is None else min(self.batch_size, until - start)
            if limit <= 0:
                return 0
            rows = self.reader.read(start + 1, limit)
            if not rows:
                return 0
            page = _Page(conn, self.app)
            page.apply(rows)
            page.write()
            write_position(conn, rows[-1][0])
            return len(rows)

    # --- the bulk run: a builder and a writer ----------------------------------

    def _run_bulk(self, until: int | None, on_batch: Callable[[int], None] | None) -> int:
        with _no_gc():
            return self._run_pipeline(until, on_batch)

    def _run_pipeline(self, until: int | None, on_batch: Callable[[int], None] | None) -> int:
        """Build the read model from empty with a builder and a writer: this thread reads,
        decodes and builds page N+1 while the writer (a child process on SQLite, a thread
        elsewhere) writes page N. The writer takes the pages in log order from a bounded
        queue and commits each page's rows with its position in one transaction, as
        `run_batch` does; a crash leaves the read model at the end of a page.

        The builder cannot read the rows of the pages not yet committed from the database,
        so it keeps the current version of every item those pages created or closed in
        `carry` (item id -> (page, current version or None)), dropping a page's entries
        once the writer has committed it. Returns the events applied; stops early (the
        caller's page-by-page loop goes on from the read model's position) if another
        projector moved the position meanwhile.

        On SQLite (a store in a file) the writer is a child process (`_ProcessWriter`, ADR 0035):
        as a thread of this process it shared the GIL with the builder (the driver holds it while
        it binds each statement's parameters and while it fetches the log's rows), and on the
        national log each of the two took 1.7-2.9 times as long as alone; with the child the
        rebuild was 1.28 times as fast. `BULK_OVERLAP_SQLITE = False` makes the builder wait while
        each page is written (with the writer thread, with both cores free, that was 9-13%
        slower on a medium rebuild). On PostgreSQL the child writes too (ADR 0036): the writer
        thread's formatting of the COPY rows held the GIL (~9.5 s of a national rebuild), and the
        rebuild was 1.25 times as fast; there the builder always overlaps the writes.
        """
        pipe = _Pipeline()
        writer = self._writer(pipe)
        carry: dict[str, tuple[int, _Current | None]] = {}
        carried: deque[tuple[int, list[str]]] = deque()
        with self.engine.connect() as conn:
            start = read_position(conn) + 1
        seq = reported = total = 0

        def report() -> int:
            nonlocal reported
            n = 0
            while reported < len(pipe.done):
                n += pipe.done[reported]
                if on_batch:
                    on_batch(pipe.done[reported])
                reported += 1
            return n

        overlap = BULK_OVERLAP_SQLITE or self.engine.dialect.name != "sqlite"
        # On PostgreSQL the next page of the log is read while this one is built: the read
        # waits on the server (~70% of its time) without the GIL.
        prefetch = BULK_PREFETCH and self.reader.mode == "postgres"
        ahead: _Background | None = None
        if BULK_THREADED:
            writer.start()
        try:
            rows = self._read_ahead(start, until)
            while rows and pipe.error is None:
                if prefetch:
                    ahead = _Background(lambda s=rows[-1][0] + 1: self._read_ahead(s, until))
                committed = pipe.committed
                while carried and carried[0][0] <= committed:  # in the database now
                    s, ids = carried.popleft()
                    for i in ids:
                        if carry[i][0] == s:
                            del carry[i]
                total += report()
                with self.engine.connect() as conn:
                    page = _Page(conn, self.app, carry)
                    page.apply(rows)
                seq += 1
                carried.append((seq, page.carry_into(carry, seq)))
                page.conn = page.current = None  # the writer writes it on its own connection
                item = _Prepared(seq, start, rows[-1][0], len(rows), page)
                start = rows[-1][0] + 1
                # The next page is read before this one is handed over: the writer, idle until
                # then, does not hold the GIL (binding its rows) while the reads need it.
                rows = ahead.result() if ahead is not None else self._read_ahead(start, until)
                ahead = None
                if BULK_THREADED:
                    pipe.put(item)
                    if not overlap:
                        pipe.written.acquire()  # the writer has written it, or failed
                else:
                    with self._writer_connection() as wconn:
                        self._write_page(wconn, item, pipe)
        except BaseException:
            pipe.abort = True
            raise
        finally:
            if ahead is not None:  # the builder failed while the next page was being read
                threading.Thread.join(ahead)
            if BULK_THREADED:
                pipe.put(None)
                writer.join()
            total += report()
        if pipe.error is not None and not isinstance(pipe.error, _Moved):
            raise pipe.error
        return total

    def _writer(self, pipe: _Pipeline) -> threading.Thread | _ProcessWriter:
        """The bulk run's writer, not started: on SQLite (a store in a file) and on PostgreSQL
        (psycopg) a child process (ADR 0035, 0036), already launched, else a thread of this
        process (also if the child cannot be launched)."""
        config = self._writer_process_config()
        if config is None:
            return threading.Thread(target=self._write_pages, args=(pipe,), name="projector-writer", daemon=True)
        writer = _ProcessWriter(pipe, config)
        try:
            writer.launch()
        except OSError as e:  # no interpreter to start (an embedded one): the thread, as before ADR 0035
            logger.warning("the page writer process could not be started (%s): writing in a thread", e)
            return threading.Thread(target=self._write_pages, args=(pipe,), name="projector-writer", daemon=True)
        return writer

    def _writer_process_config(self) -> dict[str, Any] | None:
        """What the child needs to write this bulk run's pages, if a child writes them."""
        common = {"position_table": projector_position.name, "name": NAME,
                  "evidence": ("rm_evidence", EVIDENCE_COLUMNS), "log": ("rm_event_log", LOG_COLUMNS)}
        if self._writer_process_pg():
            return {**common, "conninfo": pg_conninfo(self.engine),
                    "async_commit": BULK_ASYNC_COMMIT, "close_sql": CLOSE_SQL_PG}
        path = self._writer_process_path()
        if path is None:
            return None
        with self.engine.connect() as conn:
            synchronous = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            wal_pages = self._bulk_checkpoint(conn)
        return {**common, "path": path,
                # as the store's own connections have them (adapters.database.make_engine), then a bulk run's
                "pragmas": [f"synchronous={int(synchronous)}", f"wal_autocheckpoint={wal_pages}",
                            f"cache_size={-BULK_CACHE_KB}"],
                "timeout": 30, "close_sql": CLOSE_SQL, "values_rows": VALUES_ROWS}

    def _writer_process_pg(self) -> bool:
        """Whether a child writes this bulk run's pages on PostgreSQL (ADR 0036)."""
        return bool(BULK_WRITER_PROCESS_PG and BULK_THREADED and self.writer_process and sys.executable
                    and self.engine.dialect.name == "postgresql" and self.engine.dialect.driver == "psycopg")

    def _writer_process_path(self) -> str | None:
        """The store's file, if this bulk run's pages are written by a child process."""
        if not (BULK_WRITER_PROCESS and BULK_THREADED and BULK_VALUES and self.writer_process and sys.executable
                and self.engine.dialect.name == "sqlite" and self.engine.dialect.driver == "pysqlite"):
            return None
        database = self.engine.url.database
        if not database or database == ":memory:" or database.startswith("file:") or "mode=memory" in str(self.engine.url):
            return None
        path = Path(database)
        return str(path.resolve()) if path.is_file() else None

    def _read_ahead(self, start: int, until: int | None) -> Sequence[LogRow]:
        size = max(self.batch_size, BULK_PAGE_EVENTS) if self.engine.dialect.name == "sqlite" else self.batch_size
        limit = size if until is None else min(size, until - start + 1)
        return self.reader.read(start, limit) if limit > 0 else []

    def _write_pages(self, pipe: _Pipeline) -> None:
        """The writer thread: each page's rows and its position in one transaction, in order."""
        try:
            with self._writer_connection() as conn:
                while True:
                    item = pipe.queue.get()
                    if item is None:
                        return
                    try:
                        if not pipe.abort:
                            self._write_page(conn, item, pipe)
                    except BaseException as e:
                        pipe.error = e  # before the builder, waiting for this page, goes on
                        raise
                    finally:
                        pipe.written.release()
        except BaseException as e:  # noqa: BLE001 - handed to the builder, which raises it
            pipe.error = e
            while pipe.queue.get() is not None:  # let the builder finish putting
                pipe.written.release()

    @contextmanager
    def _writer_connection(self) -> Iterator[Connection]:
        """One connection for the pages of a bulk run; on SQLite its page cache is given
        back at the end (see run_batch)."""
        with self.engine.connect() as conn:
            try:
                yield conn
            finally:
                if conn.dialect.name == "sqlite":
                    try:
                        conn.rollback()
                        conn.exec_driver_sql("PRAGMA cache_size=-2000")
                        conn.commit()
                    except Exception:  # noqa: BLE001, S110 - the pool discards a broken connection
                        pass

    def _write_page(self, conn: Connection, item: _Prepared, pipe: _Pipeline) -> None:
        with conn.begin():
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={self._bulk_checkpoint(conn)}")
                conn.exec_driver_sql(f"PRAGMA cache_size={-BULK_CACHE_KB}")
            elif BULK_ASYNC_COMMIT:
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            ensure_position(conn)
            position = read_position(conn, for_update=True)
            if position != item.start - 1:  # another projector wrote meanwhile
                raise _Moved(position)
            item.page.conn = conn
            item.page.write(bulk=True)
            write_position(conn, item.last)
        pipe.committed = item.seq
        pipe.done.append(item.count)

    @property
    def reader(self) -> _LogReader:
        if self._reader is None:
            self._reader = _LogReader(self.app)
        return self._reader

    def _start_bulk(self, until: int | None) -> bool:
        """Drop the secondary indexes when this run builds a large read model from empty:
        building them once at the end is cheaper than maintaining them row by row."""
        todo = self.log_position() if until is None else min(until, self.log_position())
        if todo >= BULK_THRESHOLD:
            with self.engine.begin() as conn:
                if read_position(conn) == 0:
                    drop_indexes(conn)
                    return True
        return False

    # --- rebuilding -------------------------------------------------------

    def reset(self) -> None:
        """Empty the read model. Its secondary indexes are dropped too (emptying is then
        cheaper); the next `run`, which starts from empty, creates them again."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={self._bulk_checkpoint(conn)}")  # see run_batch
            drop_indexes(conn)
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("TRUNCATE " + ", ".join(t.name for t in READ_MODEL_TABLES))
            else:
                for t in READ_MODEL_TABLES:
                    conn.execute(t.delete())
            conn.execute(facts_kept.delete())  # worked out from what is emptied (ADR 0028)
            conn.execute(projector_position.delete())


def finish_bulk(engine: Engine) -> None:
    """After a bulk run (or rows adopted from one, `projections.beside`): the secondary
    indexes built once. On SQLite the store is then left as a live catch-up would leave it,
    the WAL checkpointed: the rows' pages are copied while the indexes are built (the
    checkpoint does not block the writer), then what the indexes added."""
    sqlite = engine.dialect.name == "sqlite"
    early = _Background(lambda: _checkpoint(engine)) if sqlite else None
    try:
        create_indexes(engine, parallel=True)
    finally:
        if early is not None:
            early.join()
    if sqlite:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_autocheckpoint=1000")
            conn.exec_driver_sql("PRAGMA cache_size=-2000")
        _checkpoint(engine)


def _checkpoint(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def create_read_model(engine: Engine) -> None:
    metadata.create_all(engine)
    create_indexes(engine)  # an interrupted bulk run may have left them dropped


def drop_indexes(conn: Connection) -> None:
    for ix in BULK_INDEXES:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {ix.name}")


def create_indexes(engine: Engine, parallel: bool = False) -> None:
    """Create the secondary indexes that are missing. `parallel`: on PostgreSQL, build them
    on several connections at once (each build is a server process of its own)."""
    with engine.connect() as conn:
        insp = inspect(conn)
        present = {i["name"] for t in {ix.table.name for ix in BULK_INDEXES} for i in insp.get_indexes(t)}
    missing = [ix for ix in BULK_INDEXES if ix.name not in present]
    if parallel and engine.dialect.name == "postgresql" and len(missing) > 1:
        workers = [_Background(lambda part=missing[i::INDEX_BUILDERS]: [_create_index(engine, ix) for ix in part])
                   for i in range(min(INDEX_BUILDERS, len(missing)))]
        for w in workers:
            w.join()
    else:
        for ix in missing:
            _create_index(engine, ix)


def _create_index(engine: Engine, ix: Index) -> None:
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                # SQLite sorts an index's keys in runs sized by the page cache: with the bulk run's
                # cache (BULK_CACHE_KB, which the catch-up after a bulk run leaves on its pooled
                # connection) the builds took ~25% longer than with SQLite's default (ADR 0034).
                conn.exec_driver_sql(f"PRAGMA cache_size={-INDEX_BUILD_CACHE_KB}")
            ix.create(conn, checkfirst=True)
    except Exception:  # noqa: BLE001 - a concurrent projector created it first
        with engine.connect() as conn:
            names = {i["name"] for i in inspect(conn).get_indexes(ix.table.name)}
        if ix.name not in names:
            raise


class _Background(threading.Thread):
    """`fn()` in a thread of its own; `join` raises what it raised, `result` returns what it returned."""

    def __init__(self, fn: Callable[[], Any]):
        super().__init__(name="projector-background", daemon=True)
        self.fn = fn
        self.value: Any = None
        self.error: BaseException | None = None
        self.start()

    def result(self) -> Any:
        self.join()
        return self.value

    def run(self) -> None:
        try:
            self.value = self.fn()
        except BaseException as e:  # noqa: BLE001 - raised by join
            self.error = e

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        if self.error is not None:
            raise self.error


def ensure_position(conn: Connection) -> None:
    """Create the position row if it is missing, as the first statement of the batch.

    Without the row, `SELECT ... FOR UPDATE` locks nothing, so two projectors starting
    on an empty read model both read 0 and both insert the same rows (a duplicate-key
    error). Inserting first makes them queue: on PostgreSQL the second waits on the
    first's uncommitted row and then on its row lock; on SQLite the write takes the
    database's write lock before anything is read.
    """
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(insert(projector_position).values(name=NAME, position=0).on_conflict_do_nothing())


_POSITION_SQL = f"SELECT position FROM {projector_position.name} WHERE name = '{NAME}'"


def read_position(conn: Connection, for_update: bool = False) -> int:
    """The read model's position; `for_update` locks its row on PostgreSQL. Read as plain text,
    not built and compiled by SQLAlchemy (~55 µs against ~175 µs on SQLite): every view that is
    not pinned reads it, and every HTTP request."""
    if for_update and conn.dialect.name == "postgresql":
        q = select(projector_position.c.position).where(projector_position.c.name == NAME).with_for_update()
        return conn.execute(q).scalar() or 0
    return conn.exec_driver_sql(_POSITION_SQL).scalar() or 0


def write_position(conn: Connection, position: int) -> None:
    updated = conn.execute(update(projector_position).where(projector_position.c.name == NAME)
                           .values(position=position)).rowcount
    if not updated:
        conn.execute(projector_position.insert().values(name=NAME, position=position))


@contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic garbage collector paused during a bulk run (both its threads): the pages'
    rows, states and versions are tens of thousands of young objects, none of them garbage,
    and the versions carried between pages thousands more, which the collector would
    otherwise traverse again and again (a fifth of the building time; ~5% of a rebuild's
    instructions when it ran between pages). A bulk run makes no reference cycles of its own
    (SQLAlchemy makes a few per connection); they are collected once it ends."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def pg_conninfo(engine: Engine) -> str:
    """The store's connection as libpq's keywords, the ones the engine's own connections get
    (SQLAlchemy's psycopg dialect), quoted by psycopg: a password or an option with spaces, or
    several hosts, reach libpq as they are (a URL would carry them otherwise)."""
    from psycopg.conninfo import make_conninfo  # noqa: PLC0415 - only a PostgreSQL store needs it

    _, kw = engine.dialect.create_connect_args(engine.url)
    return make_conninfo("", **{k: v for k, v in kw.items() if isinstance(v, (str, int))})


class _Moved(Exception):
    """The read model's position is not where the bulk run's next page starts."""


class _Prepared:
    __slots__ = ("seq", "start", "last", "count", "page")

    def __init__(self, seq: int, start: int, last: int, count: int, page: _Page):
        self.seq, self.start, self.last, self.count, self.page = seq, start, last, count, page


class _ProcessWriter:
    """A bulk run's writer as a child process (`projections.page_writer`, ADR 0035), started and
    joined as the writer thread is. A sender thread takes the pages from the pipeline's queue and
    sends their rows down the child's input; a receiver thread reads the child's answers and sets
    the pipeline's `committed`, `done`, `written` and `error` as the writer thread would have. Both
    wait on pipes without the GIL; only pickling a page (~0.07 s) holds it."""

    def __init__(self, pipe: _Pipeline, config: dict[str, Any]):
        self.pipe = pipe
        self.config = config
        self.counts: dict[int, int] = {}  # events of each page sent and not yet answered
        self.lock = threading.Lock()
        self.answered_all = False  # the receiver has finished: no answer will come any more
        self.ending = False  # the sender is sending (or has sent) the end: the child may exit
        self.send_error: BaseException | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.threads: list[threading.Thread] = []

    def launch(self) -> None:
        """Start the child. The module runs as a file, isolated (-I: no PYTHON* variables, no
        user site, nothing prepended to its path; libpq's PG* variables and ~/.pgpass still
        apply). It needs only the standard library, and on PostgreSQL psycopg from this
        interpreter's own site-packages. In a session of its own, so that Ctrl-C interrupts the
        projector, which then tells the child the run is over, and not the child in the middle
        of a page."""
        self.proc = subprocess.Popen([sys.executable, "-I", Path(page_writer.__file__).resolve()],  # noqa: S603
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._send, name="projector-sender", daemon=True),
                        threading.Thread(target=self._receive, name="projector-receiver", daemon=True)]
        for t in reversed(self.threads):  # the receiver first: the sender may join it at once
            t.start()

    def join(self) -> None:
        for t in self.threads:
            t.join()
        if self.send_error is not None and self.pipe.error is None:
            self.pipe.error = self.send_error

    def _send(self) -> None:
        pipe, out, ended, item = self.pipe, self.proc.stdin, False, None
        try:
            page_writer.send(out, self.config)
            while True:
                item = pipe.queue.get()
                if item is None:
                    ended = True
                    break
                if pipe.abort or pipe.error is not None:
                    pipe.written.release()  # taken, not written (as the writer thread skips it)
                    continue
                page = item.page
                frame = (item.seq, item.start, item.last, page.closes, page.inserts, page.log)
                item.page = None
                with self.lock:
                    self.counts[item.seq] = item.count
                page_writer.send(out, frame)
            self.ending = True
            page_writer.send(out, None)
        except BaseException as e:  # noqa: BLE001 - the child went away, or a page would not go
            self.send_error = e
            if pipe.error is None:  # the builder stops at its next page; a child gone away
                pipe.error = e  # (BrokenPipeError): the receiver then says how it ended
            # The child finishes the page it has, reads the end of its input and exits; then the
            # receiver accounts for the pages sent and not answered.
            try:
                out.close()
            except OSError:
                pass
            # The receiver has said how the child ended before the queue is drained (and before
            # the builder, waiting for a page to be written, is let go).
            self.threads[1].join()
            with self.lock:  # a page the receiver, already finished, will not account for
                if item is not None and self.answered_all and self.counts.pop(item.seq, None) is not None:
                    pipe.written.release()
            while not ended and pipe.queue.get() is not None:  # let the builder finish putting
                pipe.written.release()
        finally:
            try:
                out.close()
            except OSError:
                pass

    def _stop_child(self) -> None:
        try:
            self.proc.kill()
        except OSError:  # it has exited
            pass

    def _receive(self) -> None:
        pipe = self.pipe
        try:
            while True:
                try:
                    kind, seq, *rest = page_writer.receive(self.proc.stdout)
                except EOFError:
                    return
                except BaseException as e:  # noqa: BLE001 - an answer that does not read
                    if pipe.error is None:
                        pipe.error = e
                    self._stop_child()
                    return
                with self.lock:
                    count = self.counts.pop(seq, 0)
                if kind == "committed":
                    pipe.committed = seq
                    pipe.done.append(count)
                elif kind == "moved":
                    pipe.error = _Moved(rest[0])
                else:
                    error, text = rest
                    error.add_note(f"in the page writer process:\n{text}")
                    pipe.error = error
                # Also for an error in the configuration (seq None): the child answers no page
                # after it, and a builder waiting for its first page (BULK_OVERLAP_SQLITE = False)
                # must go on, find the error, and stop.
                pipe.written.release()
        finally:
            code = self.proc.wait()
            self.proc.stdout.close()
            with self.lock:
                left = len(self.counts)
                self.counts.clear()
                self.answered_all = True
            if (left or code or not self.ending) and (pipe.error is None or isinstance(pipe.error, BrokenPipeError)):
                # it died, or failed to start (the sender may have found its input closed first)
                pipe.error = RuntimeError(f"the page writer process ended (exit code {code}) "
                                          f"with {left} page(s) not committed")
            for _ in range(left):
                pipe.written.release()


class _Pipeline:
    """What the builder and the writer of a bulk run share."""

    def __init__(self) -> None:
        self.queue: queue.Queue[_Prepared | None] = queue.Queue(maxsize=BULK_QUEUE)
        self.committed = 0  # the last page the writer committed
        self.done: list[int] = []  # events of each committed page
        self.error: BaseException | None = None
        self.abort = False
        self.written = threading.Semaphore(0)  # released once per page the writer took

    def put(self, item: _Prepared | None) -> None:
        while True:
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if self.error is not None and item is not None:
                    return


# --- reading the log ------------------------------------------------------------

LogRow = tuple[int, Any, int, str, bytes]  # position, originator id, version, topic, state


class _LogReader:
    """Pages of the log as plain tuples, read with the recorder's own connection.

    SQLite and PostgreSQL recorders are read with one SQL statement (the same the
    recorder's `select_notifications` runs, without building `Notification`s); any
    other recorder through `select_notifications`.
    """

    def __init__(self, app: Any):
        self.recorder = app.recorder
        self.datastore = getattr(self.recorder, "datastore", None)
        table = getattr(self.recorder, "events_table_name", None)
        kind = type(self.datastore).__name__
        self.mode = "generic"
        # The states of the events the projector skips (a third of the log) are not read.
        state = state_column()
        if table and kind.startswith("SQLite"):
            self.mode = "sqlite"
            self.sql = (f"SELECT rowid, originator_id, originator_version, topic, {state} FROM {table} "
                        "WHERE rowid>=? ORDER BY rowid LIMIT ?")
        elif table and kind.startswith("Postgres") and hasattr(self.datastore, "get_connection"):
            self.mode = "postgres"
            schema = getattr(self.datastore, "schema", None) or "public"
            self.sql = (f'SELECT notification_id, originator_id::text, originator_version, topic, {state} '
                        f'FROM "{schema}"."{table}" WHERE notification_id>=%s ORDER BY notification_id LIMIT %s')

    def read(self, start: int, limit: int) -> Sequence[LogRow]:
        if self.mode == "sqlite":
            with self.datastore.transaction(commit=False) as c:
                cur = getattr(c, "sqlite_cursor", None)
                if cur is not None:  # plain tuples, not the recorder's sqlite3.Row
                    cur.row_factory = None
                    cur.execute(self.sql, (start, limit))
                    return cur.fetchall()
                c.execute(self.sql, (start, limit))
                return [tuple(r) for r in c.fetchall()]
        if self.mode == "postgres":
            from psycopg.rows import tuple_row
            with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
                cur.execute(self.sql, (start, limit), prepare=True, binary=True)  # bytea as bytes, not hex
                return cur.fetchall()
        return [(n.id, n.originator_id, n.originator_version, n.topic, n.state)
                for n in self.recorder.select_notifications(start, limit)]


def state_column() -> str:
    """The SQL a page of the log is read with in place of `state`: NULL for the events the
    projector skips (a third of the log), whose states it never reads."""
    return f"CASE WHEN topic IN ({', '.join(_quoted(t) for t in _SKIPPED)}) THEN NULL ELSE state END"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- decoding -------------------------------------------------------------------

_UNWRAP = frozenset(("date_iso", "datetime_iso"))


class _NeedsTranscoder(Exception):
    pass


def _hook(d: dict[str, Any]) -> Any:
    # Dates and datetimes become the ISO strings `canonical` would make of them;
    # anything else the transcoder encoded is decoded by the transcoder (slow path).
    if len(d) == 2 and "_type_" in d and "_data_" in d:
        if d["_type_"] in _UNWRAP:
            return d["_data_"]
        raise _NeedsTranscoder
    return d


# The C scanner and encoder, made once (json.loads/dumps build them on every call).
_scan = json.scanner.make_scanner(json.JSONDecoder(object_hook=_hook))


def _decode(s: str) -> Any:
    obj, end = _scan(s, 0)
    if end != len(s) and s[end:].strip():
        raise ValueError(f"extra data in stored event state at {end}")
    return obj


def _no_default(o: Any) -> Any:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


if json.encoder.c_make_encoder is not None:  # type: ignore[attr-defined]
    _encode = json.encoder.c_make_encoder(None, _no_default, json.encoder.encode_basestring, None,  # type: ignore[attr-defined]
                                          ":", ",", True, False, True)

    def _dumps(o: Any) -> str:
        """JSON with sorted keys, compact: the canonical form of a read-model JSON column."""
        return "".join(_encode(o, 0))
else:  # pragma: no cover - CPython always has the C encoder
    _dumps = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode

CREATED, FOLLOW_UP, STEP = 1, 2, 3

# --- the fast codec of a page (ADR 0023) ------------------------------------------------
#
# orjson decodes the JSON of a whole page at once (one array) and encodes the read model's
# JSON columns. Its values must be exactly the library mapper's (`_hook` and the transcoder),
# and its text exactly the standard library's (`_dumps`):
# - a date `{"_type_":"date_iso","_data_":"YYYY-MM-DD"}` becomes its text before decoding (the
#   mapper's `date.fromisoformat`, then `canonical`, give that same text back; a text that is
#   no date, which the mapper refuses, stays a text, as `_hook` has always left it), and each
#   event's `timestamp` wrapper its `_data_` after; any other `"_type_"` (a UUID, a date in
#   another form, a key of that name) sends the page to the standard decoder;
# - orjson reads an integer of more than 64 bits as a float: a page with a number of 19 or more
#   digits goes to the standard decoder (`_NUMBER_CLASSES` makes that one substring search);
# - NaN, infinities, lone surrogates (which Python's json reads) make orjson raise: the same;
# - orjson writes a float below 1e-4 as `0.00001` or `1e-7` where Python writes `1e-05`,
#   `1e-07`, and NaN as null: `_dumps_fast` gives a text with `e-` or `0.0000` in it to the
#   standard encoder, and is only given what orjson decoded (never NaN; see `_Current.fast`).
# Every other JSON value (texts, integers of up to 18 digits, floats from 1e-4, true, false,
# null, arrays and objects) reads and writes the same in both (tests/unit/test_projector_codec.py).

_DATE_WRAPPER = re.compile(rb'\{"_type_":"date_iso","_data_":("\d\d\d\d-\d\d-\d\d")\}')
_group1 = operator.methodcaller("group", 1)
_DATETIME_WRAPPER = b'{"_type_":"datetime_iso","_data_":"'


def _number_classes() -> bytes:
    """bytes.translate table: a digit -> "0"; what may stand right before a number or inside one
    before its digits (":", ",", "[", "-", white space) -> ":"; anything else -> "x"."""
    table = bytearray(b"x" * 256)
    for c in b"0123456789":
        table[c] = ord("0")
    for c in b":,[- \t\r\n":
        table[c] = ord(":")
    return bytes(table)


_NUMBER_CLASSES = _number_classes()
_LONG_NUMBER = b":" + b"0" * 19  # an integer of 19 digits or more (>= 2**63 may be past orjson's 64 bits)


def has_long_integer(blob: bytes) -> bool:
    """Whether JSON text may hold an integer past orjson's 64 bits (which it reads as a float)."""
    return _LONG_NUMBER in blob.translate(_NUMBER_CLASSES)


def _decode_page(raws: Sequence[Any]) -> list[dict[str, Any]] | None:
    """The decoded states of these stored events, as `_decode` gives them, with the fast codec;
    None if it is not available or may not give exactly the standard decoder's values (the
    caller decodes them one by one with `_decode`)."""
    if orjson is None:
        return None
    if not raws:
        return []
    try:
        blob = b"[" + b",".join(raws) + b"]"  # bytes, memoryviews
    except TypeError:  # texts
        blob = b"[" + b",".join([r.encode() if type(r) is str else bytes(r) for r in raws]) + b"]"
    blob = _DATE_WRAPPER.sub(_group1, blob)
    # One "_type_" per event, each the start of a datetime wrapper whose data is a text: each
    # event's timestamp (checked below), and no other wrapper anywhere.
    n = len(raws)
    if blob.count(b'"_type_"') != n or blob.count(_DATETIME_WRAPPER) != n:
        return None
    if has_long_integer(blob):
        return None
    try:
        evs = orjson.loads(blob)
    except orjson.JSONDecodeError:
        return None
    if len(evs) != n:  # (only if stored states were not each one JSON object)
        return None
    try:
        for ev in evs:
            ts = ev["timestamp"]
            if len(ts) != 2 or "_type_" not in ts:  # a wrapper, the only one its event has
                return None
            ev["timestamp"] = ts["_data_"]
    except (KeyError, TypeError):  # an event that is no object, or without a timestamp wrapper
        return None
    return evs


if orjson is not None:
    _SORT_KEYS = orjson.OPT_SORT_KEYS

    def _dumps_fast(o: Any) -> str:
        """`_dumps` of a value the fast codec decoded (the same text)."""
        try:
            out = orjson.dumps(o, option=_SORT_KEYS)
        except orjson.JSONEncodeError:  # an integer past 64 bits, nested deeper than orjson goes
            return _dumps(o)
        text = out.decode()
        if "e-" in text or "0.0000" in text:  # may be a float below 1e-4 (or a text like it)
            return _dumps(o)
        return text
else:  # pragma: no cover
    _dumps_fast = _dumps


class _Topic:
    """What the projector does with the events of one topic (resolved once)."""

    __slots__ = ("action", "cls", "qualname", "name", "withdrawn", "slow")

    def __init__(self, topic: str):
        cls = resolve_topic(topic)
        self.cls = cls
        self.qualname = cls.__qualname__
        self.name = cls.__name__
        self.withdrawn = issubclass(cls, Item.Withdrawn)
        self.slow = getattr(cls, "class_version", 1) != 1  # upcasting: let the mapper do it
        if issubclass(cls, (Evidence.Recorded, Provider.Registered)):
            self.action = CREATED
        elif issubclass(cls, ITEM_FOLLOW_UPS):
            self.action = FOLLOW_UP
        elif issubclass(cls, Assessment.StepRecorded):
            self.action = STEP
        else:
            self.action = 0


_topics: dict[str, _Topic] = {}


def _skipped() -> tuple[str, ...]:
    """The topics of the domain's events the projector skips (it reads no state of theirs)."""
    return tuple(t for t in map(get_topic, (ClientKey.Reserved, Assessment.Opened)) if not _topic(t).action)


def _topic(topic: str) -> _Topic:
    t = _topics.get(topic)
    if t is None:
        t = _topics[topic] = _Topic(topic)
    return t


_SKIPPED = _skipped()


_PROVIDER_NS = NAMESPACE.bytes


@lru_cache(maxsize=1 << 16)
def _provider_item_id(urn: str) -> str:
    """str(provider_id(urn)), without building UUID objects (uuid5 by hand)."""
    h = bytearray(hashlib.sha1(_PROVIDER_NS + ("provider:" + urn).encode()).digest()[:16])  # noqa: S324
    h[6] = (h[6] & 0x0F) | 0x50
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def _item_id(oid: Any) -> str:
    if isinstance(oid, str):
        if len(oid) == 32:  # SQLite stores UUIDs as hex
            return f"{oid[:8]}-{oid[8:12]}-{oid[12:16]}-{oid[16:20]}-{oid[20:]}"
        return oid
    return str(oid)


@lru_cache(maxsize=4096)
def _timestamp(iso: str) -> str:
    """The event's ISO timestamp as naive UTC, in SQLAlchemy's SQLite storage format
    (which PostgreSQL reads as a timestamp too)."""
    t = naive_utc(datetime.fromisoformat(iso))
    return (f"{t.year:04d}-{t.month:02d}-{t.day:02d} "
            f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond:06d}")


def _day(v: Any) -> str | None:
    """A business date column: the ISO date (as_date's rules), or None."""
    if v is None:
        return None
    if type(v) is str and len(v) == 10 and v[4] == "-" and v[7] == "-":
        return v
    return as_date(v).isoformat()


_UNKNOWN: Any = object()  # not in _Page.current (not looked up yet)
_ENVELOPE = frozenset(("originator_id", "originator_version", "timestamp", "actor", "client_id", "content_hash"))

EVIDENCE_COLUMNS = ("item_id", "version", "kind", "la_code", "urn", "group_code", "occurred_on", "published_on",
                    "data", "client_id", "actor", "recorded_from", "recorded_to", "position", "closed_by", "withdrawn")
LOG_COLUMNS = ("position", "aggregate_id", "version", "event", "kind", "la_code", "urn", "year", "actor",
               "client_id", "recorded_at", "details")
CLOSE_SQL = "UPDATE rm_evidence SET recorded_to=?, closed_by=?, withdrawn=? WHERE item_id=? AND version=?"
CLOSE_SQL_PG = CLOSE_SQL.replace("?", "%s")
# indexes into an evidence row (a list while the page is built)
_LA, _URN, _DATA, _CLIENT, _TO, _CLOSED_BY, _WITHDRAWN = 3, 4, 8, 9, 12, 14, 15


class _Current:
    """The current version of an item: its row, its state (canonical), whether it is stored and
    whether its state holds only values the fast codec decoded from the log (`_decode_page`), which
    the fast encoder writes as the standard library's would; a state read back from the read model
    may hold anything the standard decoder reads (e.g. a float below 1e-4, which the two encoders
    write differently), so it is encoded by the standard library."""

    __slots__ = ("row", "state", "stored", "fast")

    def __init__(self, row: list[Any], state: dict[str, Any], stored: bool, fast: bool = False):
        self.row = row
        self.state = state
        self.stored = stored
        self.fast = fast


class _Page:
    """Rows produced by one page of the log, written in one go."""

    def __init__(self, conn: Connection, app: Any, carry: dict[str, tuple[int, _Current | None]] | None = None):
        self.conn = conn
        self.app = app
        self.pg = conn.dialect.name == "postgresql"
        self.carry = carry  # a bulk run's versions of pages not yet committed (see Projector._run_bulk)
        self.current: dict[str, _Current | None] = {}  # item id -> current version (None: has none)
        self.inserts: list[list[Any]] = []
        self.closes: list[tuple[Any, ...]] = []
        self.log: list[tuple[Any, ...]] = []
        self.fast = False  # the page's events came from the fast codec

    # --- decoding -------------------------------------------------------------

    def _slow(self, row: LogRow) -> dict[str, Any]:
        """The event's state through the application's mapper (upcasting, other transcodings)."""
        from eventsourcing.persistence import StoredEvent
        oid = row[1]
        if isinstance(oid, str):
            from uuid import UUID
            oid = UUID(oid)
        event = self.app.mapper.to_domain_event(StoredEvent(oid, row[2], row[3], bytes(row[4])))
        return canonical({k: v for k, v in event.__dict__.items() if k not in ("originator_id", "originator_version")})

    def _states(self, rows: list[LogRow], kinds: list[_Topic]) -> tuple[list[dict[str, Any]], bool]:
        """The events' states, and whether they came from the fast codec (`_decode_page`),
        whose values the fast encoder writes as the standard library's would."""
        raws = [r[4] for r, t in zip(rows, kinds, strict=True) if not t.slow]
        evs = _decode_page(raws)
        if evs is not None and len(raws) == len(rows):
            return evs, True
        out: list[dict[str, Any]] = []
        fast = iter(evs) if evs is not None else None
        for row, t in zip(rows, kinds, strict=True):
            if t.slow:
                out.append(self._slow(row))
            elif fast is not None:
                out.append(next(fast))
            else:
                raw = row[4]
                try:
                    out.append(_decode(raw if type(raw) is str else bytes(raw).decode()))
                except _NeedsTranscoder:
                    out.append(self._slow(row))
        return out, False  # the slow ones may hold anything: the standard encoder for this page

    def apply(self, rows: Iterable[LogRow]) -> None:
        todo: list[LogRow] = []
        kinds: list[_Topic] = []
        topics = _topics
        for row in rows:
            t = topics.get(row[3]) or _topic(row[3])
            if t.action:
                todo.append(row)
                kinds.append(t)
        states, fast = self._states(todo, kinds)
        self.fast = fast
        wanted: set[str] = set()
        current = self.current
        ids: list[str] = []
        for row, t, state in zip(todo, kinds, states, strict=True):
            oid = row[1]
            item_id = f"{oid[:8]}-{oid[8:12]}-{oid[12:16]}-{oid[16:20]}-{oid[20:]}" if type(oid) is str and len(oid) == 32 else _item_id(oid)
            ids.append(item_id)
            action = t.action
            if action == FOLLOW_UP:
                wanted.add(item_id)
                changes = state.get("changes")
                if changes and changes.get("urn") is not None:
                    wanted.add(_provider_item_id(changes["urn"]))
            elif action == CREATED:
                # An item this page creates has no row before it (its creation is its first event).
                current[item_id] = None
                s = state["state"]
                if s.get("la_code") is None and s.get("urn") is not None:
                    wanted.add(_provider_item_id(s["urn"]))
        # The current rows of the items this page follows up, and of the providers whose
        # authority a new version takes: one query, then one for the providers those name.
        loaded = self._load(wanted)
        more = {_provider_item_id(c.state["urn"]) for c in loaded
                if c.state.get("la_code") is None and c.state.get("urn") is not None}
        self._load(more - wanted)

        log = self.log.append
        new_row = self._new_row
        follow_up = self._follow_up
        dumps = _dumps_fast if fast else _dumps
        for row, item_id, t, ev in zip(todo, ids, kinds, states, strict=True):
            action = t.action
            if action == CREATED:
                client_id = ev["client_id"]
                r = new_row(row[0], item_id, 1, ev["kind"], ev["state"], ev["actor"], _timestamp(ev["timestamp"]),
                            client_id, None, fast)
                log((row[0], item_id, 1, t.qualname, r[2], r[3], r[4], None, r[10], client_id, r[11], r[8]))
            elif action == FOLLOW_UP:
                follow_up(row[0], item_id, row[2], t, ev)
            else:
                log((row[0], item_id, row[2], t.qualname, ev["step"], ev["la_code"], None, ev["year"],
                     ev["actor"], ev["client_id"], _timestamp(ev["timestamp"]), dumps(ev["details"])))

    def _follow_up(self, position: int, item_id: str, version: int, t: _Topic, ev: dict[str, Any]) -> None:
        current = self.current.get(item_id, _UNKNOWN)
        if current is _UNKNOWN:
            current = self._current(item_id)
        if current is None:
            raise LookupError(f"read model has no current row for item {item_id}")
        old = current.row
        ts = _timestamp(ev["timestamp"])
        if current.stored:  # a row of an earlier page: closed by an UPDATE (and never changed here)
            self.closes.append((ts, t.name, t.withdrawn, item_id, old[1]))
        else:  # a row this page inserts
            old[_TO] = ts
            old[_CLOSED_BY] = t.name
            old[_WITHDRAWN] = t.withdrawn
        self.current[item_id] = None
        if not t.withdrawn:
            item = SimpleNamespace(state=dict(current.state), withdrawn=False)
            t.cls.apply(SimpleNamespace(**ev), item)
            self._new_row(position, item_id, version, old[2], item.state, ev["actor"], ts, old[_CLIENT], old[_LA],
                          self.fast and current.fast)
        details = {k: v for k, v in ev.items() if k not in _ENVELOPE}
        self.log.append((position, item_id, version, t.qualname, old[2], old[_LA], old[_URN], None, ev["actor"],
                         ev["client_id"], ts, (_dumps_fast if self.fast else _dumps)(details)))

    def _new_row(self, position: int, item_id: str, version: int, kind: str, state: dict[str, Any],
                 actor: str, ts: str, client_id: str, fallback: str | None, fast: bool) -> list[Any]:
        """`fallback`: the authority of the version this one supersedes, kept when neither the
        state nor a current provider row names one (e.g. the provider was withdrawn). `fast`: the
        state holds only what the fast codec decoded (see `_Current.fast`)."""
        get = state.get
        urn = get("urn")
        la = get("la_code")
        if la is None and urn is not None:
            provider_id = _provider_item_id(urn)
            provider = self.current.get(provider_id, _UNKNOWN)
            if provider is _UNKNOWN:
                provider = self._current(provider_id)
            la = provider.row[_LA] if provider else None
        if la is None:
            la = fallback
        occurred, published = get("occurred_on"), get("published_on")
        if occurred is not None:
            occurred = _day(occurred)
        if published is not None:
            published = _day(published)
        row = [item_id, version, kind, la, urn, get("group"), occurred, published,
               (_dumps_fast if fast else _dumps)(state), client_id, actor, ts, None, position, None, False]
        self.current[item_id] = _Current(row, state, False, fast)
        self.inserts.append(row)
        return row

    # --- current rows ---------------------------------------------------------

    def _current(self, item_id: str) -> _Current | None:
        if item_id not in self.current:
            self._load({item_id})
        return self.current.get(item_id)

    def _load(self, ids: set[str]) -> list[_Current]:
        ids = [i for i in ids if i not in self.current]
        out: list[_Current] = []
        if self.carry:
            carry, rest = self.carry, []
            for i in ids:
                c = carry.get(i)
                if c is None:
                    rest.append(i)
                else:
                    self.current[i] = c[1]
                    if c[1] is not None:
                        out.append(c[1])
            ids = rest
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            if self.pg:
                sql = ("SELECT item_id, version, kind, la_code, urn, data, client_id FROM rm_evidence "
                       "WHERE recorded_to IS NULL AND item_id = ANY(%s)")
                with self.conn.connection.cursor() as cur:
                    cur.execute(sql, (part,))
                    found = cur.fetchall()
            else:
                sql = ("SELECT item_id, version, kind, la_code, urn, data, client_id FROM rm_evidence "
                       f"WHERE recorded_to IS NULL AND item_id IN ({','.join('?' * len(part))})")
                found = self.conn.exec_driver_sql(sql, tuple(part)).fetchall()
            for item_id, version, kind, la, urn, data, client_id in found:
                state = json.loads(data) if isinstance(data, (str, bytes)) else data
                row = [item_id, version, kind, la, urn, None, None, None, None, client_id]
                row += [None] * (len(EVIDENCE_COLUMNS) - len(row))
                c = self.current[item_id] = _Current(row, state, stored=True)
                out.append(c)
        for item_id in ids:
            self.current.setdefault(item_id, None)
        return out

    def carry_into(self, carry: dict[str, tuple[int, _Current | None]], seq: int) -> list[str]:
        """Record in `carry` the current version (or None) of every item this page knows, as
        a later page will find it: stored, so that it is closed by an UPDATE and its row, which
        the writer is inserting, is never changed. Returns their ids."""
        for i, c in self.current.items():
            if c is not None:
                c.stored = True
            carry[i] = (seq, c)
        return list(self.current)

    # --- writing --------------------------------------------------------------

    def write(self, bulk: bool = False) -> None:
        if self.pg:
            self._write_pg()
        elif bulk and BULK_VALUES:
            self._write_sqlite_bulk()
        else:
            self._write_sqlite()

    def _write_sqlite_bulk(self) -> None:
        """The inserts as few multi-row VALUES statements as the store's limit on variables
        allows (`page_writer.write_values`): the driver releases the GIL for the whole of each
        statement and takes it back once, where `executemany` does so for every row, and each
        time it may wait a switch interval (5 ms) for the bulk run's builder thread to let it go."""
        dbapi = self.conn.connection.dbapi_connection
        cur = dbapi.cursor()
        if self.closes:
            cur.executemany(CLOSE_SQL, self.closes)
        limit = dbapi.getlimit(SQLITE_LIMIT_VARIABLE_NUMBER)
        for table, columns, rows in (("rm_evidence", EVIDENCE_COLUMNS, self.inserts),
                                     ("rm_event_log", LOG_COLUMNS, self.log)):
            page_writer.write_values(cur, limit, VALUES_ROWS, table, columns, rows, _VALUES_SQL)
        cur.close()

    def _write_sqlite(self) -> None:
        cur = self.conn.connection.cursor()  # the DBAPI cursor: executemany without re-packing
        ex = cur.executemany
        if self.closes:
            ex(CLOSE_SQL, self.closes)
        if self.inserts:
            ex(f"INSERT INTO rm_evidence ({','.join(EVIDENCE_COLUMNS)}) "
               f"VALUES ({','.join('?' * len(EVIDENCE_COLUMNS))})", self.inserts)
        if self.log:
            ex(f"INSERT INTO rm_event_log ({','.join(LOG_COLUMNS)}) "
               f"VALUES ({','.join('?' * len(LOG_COLUMNS))})", self.log)
        cur.close()

    def _write_pg(self) -> None:
        with self.conn.connection.cursor() as cur:
            if self.closes:
                cur.executemany(CLOSE_SQL_PG, self.closes)
            for table, columns, rows in (("rm_evidence", EVIDENCE_COLUMNS, self.inserts),
                                         ("rm_event_log", LOG_COLUMNS, self.log)):
                if rows:
                    with cur.copy(f"COPY {table} ({','.join(columns)}) FROM STDIN") as copy:
                        for r in rows:
                            copy.write_row(r)


_VALUES_SQL: dict[tuple[str, int], str] = {}  # the text of each multi-row INSERT (page_writer.write_values)


# --- digest -----------------------------------------------------------------


def digest(engine: Engine) -> tuple[str, dict[str, int]]:
    """A digest of the whole read model (order-independent of how it was built)."""
    h = hashlib.sha256()
    counts = {}
    with engine.connect() as conn:
        for table in READ_MODEL_TABLES:
            keys = [c for c in table.primary_key.columns]
            n = 0
            for row in conn.execute(select(table).order_by(*keys)).mappings():
                h.update(json.dumps({k: _norm(v) for k, v in row.items()}, sort_keys=True).encode())
                n += 1
            counts[table.name] = n
    return h.hexdigest(), counts


def _norm(v: Any) -> Any:
    if isinstance(v, datetime):
        return naive_utc(v).isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, str) and v[:1] in "{[":
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v

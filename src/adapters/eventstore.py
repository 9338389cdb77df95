"""Wiring of the eventsourcing application: persistence chosen by CSA_DATABASE_URL.

Also the bulk import's write path (ADR 0020): a `Scratch` store that holds the
events a file import staged before any is written, a `StagingSource` that stages
against the ledger and the scratch together, and `LedgerApplication.append_staged`,
which appends a staged chunk to the log in one transaction only if the log head is
still where the staging read it.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from json.encoder import encode_basestring
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import (
    DatetimeAsISO,
    IntegrityError,
    InterfaceError,
    JSONTranscoder,
    Mapper,
    OperationalError,
    StoredEvent,
    Transcoding,
    UUIDAsHex,
)
from eventsourcing.utils import get_topic, retry
from sqlalchemy.engine import make_url

from domain.handlers import PriorPosting
from domain.model import ClientKey, Evidence, key_id
from projections.page_writer import write_values

EVENTS_TABLE = "stored_events"


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


Row = tuple[str, int, str, bytes]  # originator_id (hex), originator_version, topic, state


class EventEncoder:
    """Stored rows of domain events, byte for byte what the application's mapper would
    store (`mapper.to_stored_event`), for the bulk import (ADR 0020).

    The mapper copies the event's attributes and runs the JSON encoder with a Python
    `default` callback for every date, datetime and UUID (~12-17 us an event). Here the
    envelope's values (texts, the batch's one timestamp, ids, dates) are encoded directly
    in the order of the event's attributes, and anything else (numbers, lists, nested
    objects) by the transcoder's own JSON encoder, so the bytes cannot differ
    (tests/unit/test_import_encoder.py compares them). A mapper with a compressor or a
    cipher, a transcoder other than the JSON one with the standard transcodings, or an
    event class with a `class_version` goes through the mapper itself."""

    def __init__(self, mapper: Mapper):
        self.mapper = mapper
        t = mapper.transcoder
        self.fast = (mapper.compressor is None and mapper.cipher is None and type(t) is JSONTranscoder
                     and type(t.types.get(date)) is DateAsISO and type(t.types.get(datetime)) is DatetimeAsISO
                     and type(t.types.get(UUID)) is UUIDAsHex)
        self.generic = t.encoder.encode if self.fast else None
        self._keys: dict[str, str] = {}
        self._topics: dict[type, str | None] = {}
        self._last_ts: tuple[Any, str] = (None, "")
        self._classes: dict[type, Callable[[dict[str, Any]], str | None] | None] = {}

    def rows(self, events: Iterable[Any]) -> list[Row]:
        return [self.row(e) for e in events]

    def row(self, event: Any) -> Row:
        cls = type(event)
        topic = self._topics.get(cls, "")
        if topic == "":
            topic = self._topics[cls] = (get_topic(cls) if self.fast and getattr(cls, "class_version", 1) == 1
                                         else None)
        if topic is None:
            s = self.mapper.to_stored_event(event)
            oid = s.originator_id
            return (oid.hex if isinstance(oid, UUID) else UUID(oid).hex, s.originator_version, s.topic, s.state)
        d = event.__dict__
        enc = self._classes.get(cls, _UNSEEN)
        if enc is _UNSEEN:
            enc = self._classes[cls] = self._compile(d)
        text = enc(d) if enc is not None else None
        if text is None:
            text = self._object(d, skip=True)
        return d["originator_id"].hex, d["originator_version"], topic, text.encode("utf8")

    def _compile(self, d: dict[str, Any]) -> Callable[[dict[str, Any]], str | None] | None:
        """An encoder of one event class's attributes, made from its first event (issue 5): its
        keys in order are constants, and each value is encoded by the branch `_object` takes for
        the type that first event had there, after a check of that type (any other type takes
        `_value`, so the text is the same either way). It gives None, and `_object` encodes the
        event, if the attributes are not those keys in that order."""
        keys = tuple(k for k in d if k not in ("originator_id", "originator_version"))
        if not keys or any(type(k) is not str for k in keys):
            return None
        branch = {str: "S", datetime: "TS", dict: "O"}  # the rest (dates, ids, numbers...) by `_value`
        check = {str: "str", datetime: "datetime", dict: "dict"}
        env: dict[str, Any] = {"S": encode_basestring, "TS": self._timestamp, "O": self._object, "V": self._value,
                               "str": str, "datetime": datetime, "dict": dict,
                               "tuple": tuple, "KEYS": tuple(d)}
        lines = ["def enc(d):", "    if tuple(d) != KEYS:", "        return None"]
        parts = []
        for i, k in enumerate(keys):
            env[f"K{i}"] = ("{" if i == 0 else ",") + encode_basestring(k) + ":"
            t = type(d[k])
            value = f"d[{k!r}]"
            if t in branch:
                lines.append(f"    v = {value}")
                lines.append(f"    p{i} = {branch[t]}(v) if type(v) is {check[t]} else V(v)")
            else:
                lines.append(f"    p{i} = V({value})")
            parts += [f"K{i}", f"p{i}"]
        lines.append(f"    return ''.join(({', '.join(parts)}, '}}'))")
        exec("\n".join(lines), env)  # noqa: S102 - the source is made here, of escaped constants
        return env["enc"]

    def _timestamp(self, v: datetime) -> str:
        last, text = self._last_ts
        if last is not v:
            text = '{"_type_":"datetime_iso","_data_":"' + v.isoformat() + '"}'
            self._last_ts = (v, text)
        return text

    def _value(self, v: Any) -> str:
        """One value as the transcoder's JSON would store it (the one place that decides)."""
        t = type(v)
        if t is str:
            return encode_basestring(v)
        if t is date:
            return '{"_type_":"date_iso","_data_":"' + v.isoformat() + '"}'
        if t is datetime:
            return self._timestamp(v)
        if t is UUID:
            return '{"_type_":"uuid_hex","_data_":"' + v.hex + '"}'
        if t is dict:
            return self._object(v)
        return self.generic(v)  # type: ignore[misc]

    def _object(self, d: dict[str, Any], skip: bool = False) -> str:
        keys = self._keys
        parts = []
        for k, v in d.items():
            if skip and (k == "originator_id" or k == "originator_version"):
                continue
            key = keys.get(k)
            if key is None:
                if type(k) is not str:
                    return self.generic(d)  # type: ignore[misc]  # the encoder's own key conversions
                key = keys[k] = encode_basestring(k) + ":"
            parts.append(key + (encode_basestring(v) if type(v) is str else self._value(v)))
        return "{" + ",".join(parts) + "}"


_UNSEEN = object()


class LedgerApplication(Application):
    """The evidence ledger's event store. Events are stored only through `store_events()` (a
    batch; it calls `save()` where its encoder does not apply) and the import's `append_staged()`."""

    name = "CSALedger"

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # AggregateSource for domain.handlers.Batch
    def get(self, aggregate_id: UUID) -> Any | None:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def prior_postings(self, client_ids: Iterable[str]) -> dict[str, PriorPosting]:
        by_key = {key_id(c): c for c in client_ids}
        return self.priors(self.first_events(list(by_key)), by_key)

    def priors(self, first_events: Iterable[StoredEvent], by_key: dict[UUID, str]) -> dict[str, PriorPosting]:
        """What these first events (of client-keyed aggregates) say was recorded for each client id."""
        found: dict[str, PriorPosting] = {}
        for stored in first_events:
            event = self.mapper.to_domain_event(stored)
            cid = by_key[stored.originator_id if isinstance(stored.originator_id, UUID) else UUID(stored.originator_id)]
            if isinstance(event, Evidence.Recorded):
                found[cid] = PriorPosting(event.kind, event.content_hash, event.originator_id)
            elif isinstance(event, ClientKey.Reserved):
                found[cid] = PriorPosting(event.type, event.content_hash, event.aggregate_id)
        return found

    def log_head(self) -> int:
        """The position of the last event in the log (0 for an empty log)."""
        return self.recorder.max_notification_id() or 0

    def stored_events_of(self, ids: Sequence[UUID]) -> list[StoredEvent]:
        """Every stored event of these aggregates, by aggregate and version (one query per 500 ids)."""
        datastore = getattr(self.recorder, "datastore", None)
        if datastore is None:
            return [s for oid in ids for s in self.recorder.select_events(oid)]
        sqlite = type(datastore).__name__.startswith("SQLite")
        table = getattr(self.recorder, "events_table_name", EVENTS_TABLE)
        out: list[StoredEvent] = []
        for i in range(0, len(ids), 500):
            part = list(ids[i:i + 500])
            if sqlite:
                with datastore.transaction(commit=False) as c:
                    c.execute(f"SELECT originator_id, originator_version, topic, state FROM {table} "
                              f"WHERE originator_id IN ({','.join('?' * len(part))}) "
                              "ORDER BY originator_id, originator_version", [u.hex for u in part])
                    out += [StoredEvent(UUID(r["originator_id"]), r["originator_version"], r["topic"], bytes(r["state"]))
                            for r in c.fetchall()]
            else:
                with datastore.get_connection() as conn, conn.cursor() as c:
                    c.execute(f"SELECT originator_id, originator_version, topic, state FROM {table} "
                              "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version", (part,))
                    out += [StoredEvent(r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"]))
                            for r in c.fetchall()]
        return out

    def aggregates_from(self, stored: Iterable[StoredEvent]) -> dict[UUID, Any]:
        """Aggregates reconstructed from their stored events (given by aggregate and version)."""
        out: dict[UUID, Any] = {}
        for s in stored:
            oid = s.originator_id if isinstance(s.originator_id, UUID) else UUID(s.originator_id)
            out[oid] = self.mapper.to_domain_event(s).mutate(out.get(oid))
        return out

    def store_events(self, events: Sequence[Any]) -> None:
        """Store the new events of one batch in one transaction, as `save(*events)` would: the
        same bytes (`EventEncoder`, tested against the mapper), the same table lock and so
        positions in commit order, and `IntegrityError` with nothing written if
        another writer has stored one of their (aggregate, version) first. On PostgreSQL the
        rows go by `COPY` rather than the library's array of composite values, whose text
        formatting, in Python, took a quarter of an HTTP ingest batch (ADR 0037). A mapper or
        an event the encoder does not cover goes through `save`."""
        if not events:
            return
        encoder = self._encoder
        if encoder is None:
            encoder = self._encoder = EventEncoder(self.mapper)
        datastore = getattr(self.recorder, "datastore", None)
        if datastore is None or not encoder.fast or self.snapshots is not None:
            self.save(*events)
            return
        rows = encoder.rows(events)
        if self._on_sqlite:
            self.recorder.insert_events([StoredEvent(*row) for row in rows])  # hex ids, as the recorder writes them
        else:
            self._copy_postgres(rows)

    _encoder: EventEncoder | None = None

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library's insert_events
    def _copy_postgres(self, rows: Sequence[Row]) -> None:
        recorder = self.recorder
        table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
        # get_connection turns psycopg's errors into the library's (a unique violation: IntegrityError).
        with recorder.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            recorder._lock_table(curs)  # noqa: SLF001  the library's own: SET LOCAL lock_timeout; LOCK ... EXCLUSIVE
            recorder._notify_channel(curs)  # noqa: SLF001
            with curs.copy(f"COPY {table} (originator_id, originator_version, topic, state) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    @property
    def appends_whole_first_load(self) -> bool:
        """Whether a first load is best appended as one copy of the whole scratch (SQLite:
        ADR 0029) rather than chunk by chunk."""
        return self._on_sqlite

    @property
    def _on_sqlite(self) -> bool:
        return type(getattr(self.recorder, "datastore", None)).__name__.startswith("SQLite")

    def close_idle_connections(self) -> bool:
        """Close the event store's pooled connections that no one is using (they are opened again
        when next needed); whether none is left open. On SQLite a store changes its journal mode
        only when no connection has it open (`adapters.database.rollback_journal`). The library
        has no public call that closes the idle connections and keeps the pool: its own
        `ConnectionPool.close` does both (eventsourcing 9.5, tested in
        tests/integration/test_first_load_journal.py)."""
        pool = getattr(getattr(self.recorder, "datastore", None), "pool", None)
        if pool is None:
            return True
        with pool._put_condition:  # noqa: SLF001  the pool's own lock of its idle and in-use connections
            while pool._pool:  # noqa: SLF001
                pool._pool.popleft().close()  # noqa: SLF001
            return pool.num_in_use == 0

    def append_staged(self, scratch: Scratch, first: int, last: int, head: int, *, checkpoint: bool = True) -> bool:
        """Append the scratch's events `first`..`last` (its positions) to the log in one
        transaction, under the recorder's own write lock, if the log head is still `head`;
        False (nothing written) if another writer appended since, or a uniqueness
        constraint refused a row. The events take positions head+1.. in scratch order.
        `checkpoint=False` (SQLite): the commit leaves its pages in the WAL, for a
        `checkpoint()` the caller runs meanwhile or after (ADR 0031); they are committed
        and read from there all the same."""
        datastore = getattr(self.recorder, "datastore", None)
        if datastore is None:  # in memory: one insert, already serialised by the recorder
            if self.log_head() != head:
                return False
            try:
                self.recorder.insert_events(list(scratch.events(first, last)))
            except IntegrityError:
                return False
            return True
        if self._on_sqlite:
            return self._append_staged_sqlite(scratch, first, last, head, checkpoint)
        return self._append_staged_postgres(scratch, first, last, head)

    def _sqlite_connection(self) -> sqlite3.Connection:
        """A connection of its own to the SQLite store, in autocommit, with the recorder's lock timeout."""
        return sqlite3.connect(self.env.get("SQLITE_DBNAME"), isolation_level=None,
                               timeout=float(self.env.get("SQLITE_LOCK_TIMEOUT") or 30))

    def checkpoint(self) -> tuple[int, int, int]:
        """SQLite: copy what the WAL holds into the store's file now (a passive checkpoint:
        it waits for no reader or writer, and leaves what it cannot copy yet). Returns SQLite's
        (busy, pages in the WAL, pages copied); elsewhere nothing is done: (0, 0, 0)."""
        if not self._on_sqlite:
            return 0, 0, 0
        conn = self._sqlite_connection()
        try:
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return busy, frames, copied
        finally:
            conn.close()

    def _append_staged_sqlite(self, scratch: Scratch, first: int, last: int, head: int,
                              checkpoint: bool = True) -> bool:
        table = self.recorder.events_table_name
        conn = self._sqlite_connection()
        try:
            # A page cache to match: the log's primary key takes random UUIDs.
            conn.execute("PRAGMA cache_size=-262144")
            if not checkpoint:
                conn.execute("PRAGMA wal_autocheckpoint=0")  # this connection's commit only
            conn.execute("ATTACH DATABASE ? AS scratch", (scratch.path,))
            # IMMEDIATE: take the write lock first, so no writer can come between the
            # check of the head and the insert (the recorder's own "BEGIN" takes it on
            # its first write). Positions are rowids: max + 1, in insert order.
            conn.execute("BEGIN IMMEDIATE")
            try:
                (now,) = conn.execute(f"SELECT MAX(rowid) FROM main.{table}").fetchone()
                if (now or 0) != head:
                    conn.execute("ROLLBACK")
                    return False
                if head == 0 and first == 1 and last == scratch.count:
                    # A first load of the whole scratch into the empty log (ADR 0029): the
                    # scratch's table is the log's (same columns, same primary key), so SQLite
                    # transfers whole records and index entries, rowids kept (1..last, the
                    # positions), instead of inserting row by row into the key's index.
                    conn.execute(f"INSERT INTO main.{table} SELECT * FROM scratch.events")
                else:
                    conn.execute(f"INSERT INTO main.{table} (originator_id, originator_version, topic, state) "
                                 "SELECT originator_id, originator_version, topic, state FROM scratch.events "
                                 "WHERE rowid BETWEEN ? AND ? ORDER BY rowid", (first, last))
                (end,) = conn.execute(f"SELECT MAX(rowid) FROM main.{table}").fetchone()
                if end != head + last - first + 1:  # never seen: the rows appended take head+1.., no gap
                    raise RuntimeError(f"the log ends at {end} after appending {first}..{last} at {head}")
                conn.execute("COMMIT")
                return True
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK")
                return False
            except BaseException:  # a lock not had, a full disk, an interrupted copy: nothing is kept
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()

    def _append_staged_postgres(self, scratch: Scratch, first: int, last: int, head: int) -> bool:
        import psycopg

        recorder = self.recorder
        table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
        with recorder.datastore.get_connection() as conn:
            try:
                with conn.transaction(), conn.cursor() as curs:
                    # The library's own lock (SET LOCAL lock_timeout; LOCK TABLE ... IN EXCLUSIVE
                    # MODE): writers are serialised, so the sequence hands this transaction
                    # consecutive notification ids and no reader passes over a gap.
                    recorder._lock_table(curs)  # noqa: SLF001
                    curs.execute(f"SELECT MAX(notification_id) AS head FROM {table}")
                    if (curs.fetchone()["head"] or 0) != head:
                        raise _HeadMoved
                    recorder._notify_channel(curs)  # noqa: SLF001
                    with curs.copy(f"COPY {table} (originator_id, originator_version, topic, state) FROM STDIN") as copy:
                        for e in scratch.events(first, last):
                            copy.write_row((e.originator_id, e.originator_version, e.topic, e.state))
            except (_HeadMoved, psycopg.errors.UniqueViolation):
                return False
        return True

    def first_events(self, ids: list[UUID], chunk: int = 500) -> list[StoredEvent]:
        """The first stored event of each of these aggregates that exist (one query per chunk)."""
        out: list[StoredEvent] = []
        datastore = getattr(self.recorder, "datastore", None)
        if datastore is None:  # the in-memory (POPO) store has no SQL datastore
            for oid in ids:
                out += self.recorder.select_events(oid, lte=1, limit=1)
            return out
        sqlite = type(datastore).__name__.startswith("SQLite")
        # The recorder names its table: "stored_events" on SQLite, "<app name>_events"
        # (csaledger_events) on PostgreSQL.
        table = getattr(self.recorder, "events_table_name", EVENTS_TABLE)
        for i in range(0, len(ids), chunk):
            part = ids[i:i + chunk]
            with datastore.transaction(commit=False) as c:
                if sqlite:
                    c.execute(f"SELECT originator_id, originator_version, topic, state FROM {table} "
                              f"WHERE originator_version=1 AND originator_id IN ({','.join('?' * len(part))})",
                              [u.hex for u in part])
                else:
                    c.execute(f"SELECT originator_id, originator_version, topic, state FROM {table} "
                              "WHERE originator_version=1 AND originator_id = ANY(%s)", (part,))
                for row in c.fetchall():
                    r = dict(row) if not isinstance(row, tuple) else dict(zip(("originator_id", "originator_version", "topic", "state"), row, strict=True))
                    oid = r["originator_id"]
                    out.append(StoredEvent(UUID(oid) if isinstance(oid, str) else oid, r["originator_version"],
                                           r["topic"], bytes(r["state"])))
        return out


class _HeadMoved(Exception):
    """Another writer appended to the log after the staging read it."""


SCRATCH_PAGE_SIZE = 16384  # its inserts into the key index of random ids cost less with larger pages (ADR 0033)
SCRATCH_VALUES_ROWS = 4096  # rows per INSERT statement into the scratch (ADR 0039)
_SCRATCH_COLUMNS = ("originator_id", "originator_version", "topic", "state")

# The scratch's filter of the aggregates it holds (ADR 0033): one bit for each value of an
# aggregate id's low FILTER_BITS bits, 16 MiB however large the file.
FILTER_BITS = 27
_FILTER_MASK = (1 << FILTER_BITS) - 1
_FILTER_HEX = -((FILTER_BITS + 3) // 4)  # the hex digits of an id that hold those bits


class Scratch:
    """A private, temporary SQLite file holding the events of a file import in staging
    order (its rowids), before any is written to the ledger; the staging reads back what
    it staged from here, so memory does not grow with the file (ADR 0020).

    Most of what the staging asks of it is absent (on the national set, all of it: each
    client id is new, and an aggregate's postings sit close together in a file, so the
    staging keeps it from the chunk before). A filter of the aggregates it holds answers
    those look-ups without a query (ADR 0033): a bit set for each id appended, by its low
    bits; an id whose bit is clear is not here, and one whose bit is set is looked up as
    before (another id may have set it)."""

    def __init__(self, directory: str | None = None):
        fd, self.path = tempfile.mkstemp(prefix="csa-import-", suffix=".sqlite", dir=directory)
        os.close(fd)
        # A long busy timeout: a second process may be reading it (adapters.import_beside).
        self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=60)
        for pragma in (f"page_size={SCRATCH_PAGE_SIZE}", "journal_mode=OFF", "synchronous=OFF", "cache_size=-131072",
                       "temp_store=MEMORY"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.execute("CREATE TABLE events (originator_id TEXT, originator_version INTEGER, topic TEXT, "
                          "state BLOB, PRIMARY KEY (originator_id, originator_version))")
        self.count = 0  # the last position (rowid) used
        self._held = bytearray(1 << (FILTER_BITS - 3))
        self._limit = self.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._sql: dict[tuple[str, int], str] = {}

    def append(self, stored: Sequence[StoredEvent]) -> int:
        """Append events; returns the position of the last one."""
        return self.append_rows([(s.originator_id.hex, s.originator_version, s.topic, s.state) for s in stored])

    def append_rows(self, rows: Sequence[Row]) -> int:
        """Append rows (as `EventEncoder` gives them); returns the position of the last one."""
        # The bits first: a bit set for a row that is then not written costs only a query.
        held, mask, digits = self._held, _FILTER_MASK, _FILTER_HEX
        for row in rows:
            k = int(row[0][digits:], 16) & mask
            held[k >> 3] |= 1 << (k & 7)
        # Multi-row VALUES statements, as the projector's bulk writer inserts (ADR 0039): the
        # driver binds many rows, then SQLite steps once for them all, rather than once a row.
        cur = self.conn.cursor()
        try:
            with self.conn:  # commits the chunk, or rolls back what its statements wrote
                cur.execute("BEGIN")
                write_values(cur, self._limit, SCRATCH_VALUES_ROWS, "events", _SCRATCH_COLUMNS, rows, self._sql)
        finally:
            cur.close()
        self.count += len(rows)
        return self.count

    def may_hold(self, ids: Iterable[UUID]) -> list[UUID]:
        """Those of these aggregate ids whose events may be here (the others are not)."""
        held, mask = self._held, _FILTER_MASK
        return [u for u in ids if held[(u.int & mask) >> 3] >> (u.int & 7) & 1]

    def _rows(self, sql: str, ids: Sequence[UUID], params: Sequence[Any] = ()) -> Iterator[StoredEvent]:
        ids = self.may_hold(ids)
        for i in range(0, len(ids), 500):
            part = [u.hex for u in ids[i:i + 500]]
            for oid, version, topic, state in self.conn.execute(sql.format(ids=",".join("?" * len(part))),
                                                                 [*part, *params]):
                yield StoredEvent(UUID(oid), version, topic, state)

    def first_events(self, ids: Sequence[UUID]) -> list[StoredEvent]:
        return list(self._rows("SELECT * FROM events WHERE originator_version=1 AND originator_id IN ({ids})", ids))

    def stored_events_of(self, ids: Sequence[UUID]) -> list[StoredEvent]:
        return list(self._rows("SELECT * FROM events WHERE originator_id IN ({ids}) "
                               "ORDER BY originator_id, originator_version", ids))

    def existing(self, ids: Sequence[UUID]) -> set[UUID]:
        return {s.originator_id for s in self.first_events(ids)}

    def events(self, first: int, last: int, page: int = 10000) -> Iterator[StoredEvent]:
        for lo in range(first, last + 1, page):
            for oid, version, topic, state in self.conn.execute(
                    "SELECT * FROM events WHERE rowid BETWEEN ? AND ? ORDER BY rowid", (lo, min(last, lo + page - 1))):
                yield StoredEvent(UUID(oid), version, topic, state)

    def close(self) -> None:
        self.conn.close()
        for suffix in ("", "-journal", "-wal", "-shm"):
            try:
                os.unlink(self.path + suffix)
            except FileNotFoundError:
                pass


class StagingSource:
    """The AggregateSource of a file import's staging: what the ledger holds (as of the
    head read when the import began) plus what the import has staged so far (in the
    scratch). Aggregates touched by the previous chunk are kept, so a chunk rarely
    reads back (postings about one provider sit close together in a file)."""

    def __init__(self, app: LedgerApplication, scratch: Scratch, head: int):
        self.app = app
        self.scratch = scratch
        self.ledger_empty = head == 0
        self.cache: dict[UUID, Any] = {}
        self.absent: set[UUID] = set()
        # Aggregates read from the ledger (found or not): if another writer appends to one
        # of them before this import is written, the staging is stale. (On a ledger that
        # was empty, everything staged was read from, or written to, the scratch.)
        self.read: set[UUID] = set()

    def prefetch(self, ids: Iterable[UUID]) -> None:
        """Load, in bulk, the aggregates a chunk will read; remember the ones that do not exist."""
        wanted = [i for i in set(ids) if i not in self.cache]
        if not self.ledger_empty:
            self.read.update(wanted)
        stored = [] if self.ledger_empty else self.app.stored_events_of(wanted)
        staged = self.scratch.stored_events_of(wanted)
        found = self.app.aggregates_from(stored + staged) if not stored else self._merged(stored, staged)
        self.cache.update(found)
        self.absent = set(wanted) - found.keys()

    def _merged(self, stored: list[StoredEvent], staged: list[StoredEvent]) -> dict[UUID, Any]:
        by_id: dict[UUID, list[StoredEvent]] = {}
        for s in stored + staged:  # the ledger's events of an aggregate come before the staged ones
            by_id.setdefault(s.originator_id if isinstance(s.originator_id, UUID) else UUID(s.originator_id), []).append(s)
        return self.app.aggregates_from(s for events in by_id.values() for s in events)

    def carry(self, staged: dict[UUID, Any]) -> None:
        """Keep the aggregates the last chunk touched (their events are in the scratch now)."""
        self.cache = staged
        self.absent = set()

    def get(self, aggregate_id: UUID) -> Any | None:
        if aggregate_id in self.cache:
            return self.cache[aggregate_id]
        if aggregate_id in self.absent:
            return None
        if not self.ledger_empty:
            self.read.add(aggregate_id)
        stored = [] if self.ledger_empty else self.app.stored_events_of([aggregate_id])
        return self.app.aggregates_from(stored + self.scratch.stored_events_of([aggregate_id])).get(aggregate_id)

    def prior_postings(self, client_ids: Iterable[str]) -> dict[str, PriorPosting]:
        by_key = {key_id(c): c for c in client_ids}
        ids = list(by_key)
        found = {} if self.ledger_empty else self.app.prior_postings(by_key.values())
        staged = self.app.priors(self.scratch.first_events(ids), by_key)
        return {**staged, **found}

    def unaffected_by(self, head: int, now: int) -> bool:
        """Whether the events others appended after `head` (up to `now`) leave this staging
        valid: none of them is of an aggregate it read from the ledger or staged."""
        start = head + 1
        while start <= now:
            notes = self.app.recorder.select_notifications(start, min(10000, now - start + 1))
            if not notes:
                break
            ids = {n.originator_id if isinstance(n.originator_id, UUID) else UUID(n.originator_id) for n in notes}
            if ids & self.read or self.scratch.existing(list(ids)):
                return False
            start = notes[-1].id + 1
        return True


def persistence_env(database_url: str) -> dict[str, str]:
    """The eventsourcing environment for a SQLAlchemy-style URL."""
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path, "SQLITE_LOCK_TIMEOUT": "30"}
    if database_url == "memory":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    url = make_url(database_url)
    env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": url.database or "postgres",
           "POSTGRES_HOST": url.host or "127.0.0.1", "POSTGRES_PORT": str(url.port or 5432),
           "POSTGRES_USER": url.username or "postgres", "POSTGRES_PASSWORD": url.password or "",
           "POSTGRES_POOL_SIZE": "5", "POSTGRES_LOCK_TIMEOUT": "30"}
    return env


def make_application(database_url: str) -> LedgerApplication:
    return LedgerApplication(env=persistence_env(database_url))

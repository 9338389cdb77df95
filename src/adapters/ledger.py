"""The ledger service: the one entry point the CLI and the HTTP API call.

Load, call a verb, commit: postings are parsed, staged on aggregates by
`domain.handlers.Batch`, and saved in one transaction; the projector then
brings the read model up to date.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent
from sqlalchemy import Engine, select, text

from adapters.database import make_engine, rollback_journal, schema_lock
from adapters.eventstore import LedgerApplication, make_application
from adapters.reference import authorities
from domain.errors import ConflictingPosting, FieldError, InvalidEvidence
from domain.handlers import Batch, Outcome, aggregates_read
from domain.model import provider_id
from domain.postings import Posting, parse_posting
from projections.projector import NAME as PROJECTOR_NAME
from projections.projector import Projector, create_read_model, digest
from projections.tables import event_log, projector_position

Clock = Callable[[], datetime]
EXPORT_HEADER = "csa-ledger-export"
WRITE_ATTEMPTS = 5  # a batch that lost a race with another writer is staged again


def parse_raws(raws: Iterable[tuple[int | None, Mapping[str, Any]]], default_actor: str | None = None,
               known_la_codes: frozenset[str] | None = None) -> tuple[list[Posting], list[FieldError]]:
    """Parse numbered raw postings: the postings, and every error of the others."""
    postings, errors = [], []
    for line, raw in raws:
        posting, errs = parse_posting(raw, line=line, default_actor=default_actor, known_la_codes=known_la_codes)
        if posting is not None:
            postings.append(posting)
        errors += errs
    return postings, errors


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RecordResult:
    outcomes: list[Outcome]
    position: int  # the log position reached after this batch

    @property
    def recorded(self) -> int:
        return sum(o.status == "recorded" for o in self.outcomes)

    @property
    def already_recorded(self) -> int:
        return sum(o.status == "already_recorded" for o in self.outcomes)


@dataclass
class Ledger:
    database_url: str
    clock: Clock = utc_now
    projector_batch: int = 10000
    # How long `kept_positions()` may answer with the positions last read (an API read asks it
    # first): 0 never. Anything written or projected through this ledger forgets them at once.
    positions_kept_seconds: float = 0.0
    app: LedgerApplication = field(init=False)
    engine: Engine = field(init=False)
    projector: Projector = field(init=False)

    def __post_init__(self) -> None:
        self.engine = make_engine(self.database_url)
        if self.engine.dialect.name == "sqlite":
            # The store in WAL mode (the engine's connections see to it, waiting while another
            # process holds it out of WAL for a first load, ADR 0040) before the event store's
            # pool opens it: the library's own switch would fail at once then.
            with self.engine.connect():
                pass
        with schema_lock(self.engine):  # workers starting together create the tables once
            self.app = make_application(self.database_url)
            create_read_model(self.engine)
        self.projector = Projector(self.app, self.engine, self.projector_batch)
        self.authorities = authorities()
        self._positions_lock = threading.Lock()
        self._positions_generation = 0  # moves on every write or projection through this ledger
        self._positions_kept: tuple[float, int, int] | None = None

    def positions_moved(self) -> None:
        """The log or the read model moved through this ledger: forget the positions kept."""
        with self._positions_lock:
            self._positions_generation += 1
            self._positions_kept = None

    def close(self) -> None:
        self.app.close()
        self.engine.dispose()

    @contextmanager
    def rollback_journal(self) -> Iterator[bool]:
        """For a first load into an empty SQLite store: the store held in rollback-journal mode
        for the block, so that its pages are written once rather than through the WAL and again
        by a checkpoint (`adapters.database.rollback_journal`, ADR 0040). Yields whether it is:
        not on another store, nor when any other connection has the store open (this process's
        idle ones are closed first)."""
        path = self.app.env.get("SQLITE_DBNAME") if self.engine.dialect.name == "sqlite" else None
        if not path or path == ":memory:" or "mode=memory" in path:
            yield False
            return
        self.engine.dispose()
        if not self.app.close_idle_connections():
            yield False
            return
        with rollback_journal(path) as held:
            yield held

    # --- writing ----------------------------------------------------------

    def parse(self, raws: Iterable[tuple[int | None, Mapping[str, Any]]], default_actor: str | None = None
              ) -> tuple[list[Posting], list[FieldError]]:
        return parse_raws(raws, default_actor, self.authorities.codes)

    def record(self, raws: Iterable[Mapping[str, Any]] | Iterable[tuple[int | None, Mapping[str, Any]]],
               default_actor: str | None = None, *, project: bool = True) -> RecordResult:
        """Record a batch atomically: every posting, or none (InvalidEvidence / ConflictingPosting)."""
        numbered = [r if isinstance(r, tuple) else (None, r) for r in raws]
        postings, errors = self.parse(numbered, default_actor)
        if errors:
            raise InvalidEvidence(errors)
        return self.record_postings(postings, project=project)

    def record_postings(self, postings: list[Posting], *, project: bool = True) -> RecordResult:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            head = self.app.log_head()
            batch = Batch(_Prefetched(self.app, postings), self.clock(), known_la_codes=self.authorities.codes)
            try:
                outcomes = batch.stage(postings)
            except (InvalidEvidence, ConflictingPosting):
                # Staging reads the store in several steps (prior postings first, then
                # each aggregate): another writer who committed in between can make a
                # posting look refused ("already registered") that is in fact already
                # recorded. If the log moved while staging, stage again on what it holds.
                if attempt < WRITE_ATTEMPTS and self.app.log_head() != head:
                    continue
                raise
            try:
                if batch.events:
                    self.app.store_events(batch.events)
                break
            except IntegrityError:
                # Another writer saved an event of one of these aggregates (the same
                # client id, or the next version of a provider, item or assessment)
                # since we read it. Nothing of this batch was written: stage it again
                # on what the store now holds, so a posting the other writer recorded
                # is reported already_recorded (or conflicting), never duplicated.
                if attempt == WRITE_ATTEMPTS:
                    raise
        self.positions_moved()
        if project:
            self.catch_up()
        return RecordResult(outcomes, self.projector.log_position())

    def registered_urns(self, urns: Iterable[str]) -> set[str]:
        by_id = {provider_id(u): u for u in urns}
        return {by_id[s.originator_id if isinstance(s.originator_id, UUID) else UUID(s.originator_id)]
                for s in self.app.first_events(list(by_id))}

    # --- read model -------------------------------------------------------

    def catch_up(self, on_batch: Callable[[int], None] | None = None) -> int:
        try:
            return self.projector.run(on_batch=on_batch)
        finally:
            self.positions_moved()

    def kept_positions(self) -> tuple[int, int] | None:
        """The positions `positions()` last read, if that was less than `positions_kept_seconds`
        ago and nothing has been written or projected through this ledger since; else None.
        Lets a read that needs no particular position skip the store: it may then miss, for at
        most that long, what another process has just written (docs/deployment.md)."""
        kept = self._positions_kept
        if kept is None or time.monotonic() - kept[0] >= self.positions_kept_seconds:
            return None
        return kept[1], kept[2]

    def positions(self) -> tuple[int, int]:
        """The read model's position and the log's, read in one round trip (every HTTP read asks)."""
        reading = self.positions_reading()
        read, head = self._read_positions()
        return self.keep_positions(reading, read, head)

    def positions_reading(self) -> tuple[int, float]:
        """Taken before reading the positions (here or by api.probe): see keep_positions."""
        return self._positions_generation, time.monotonic()

    def keep_positions(self, reading: tuple[int, float], read: int | None, head: int | None) -> tuple[int, int]:
        """Keep positions read since `reading` was taken, unless something was written or
        projected through this ledger meanwhile (they might then be older than that)."""
        read, head = read or 0, head or 0
        with self._positions_lock:
            if reading[0] == self._positions_generation:
                self._positions_kept = (reading[1], read, head)
        return read, head

    def positions_sql(self) -> str | None:
        """The positions query in psycopg's form (api.probe), None where there is none."""
        sql = self._positions_sql()
        return None if sql is None else sql.replace(":name", "%(name)s")

    def _positions_sql(self) -> str | None:
        table = getattr(self.app.recorder, "events_table_name", None)
        if table is None:
            return None
        if self.engine.dialect.name == "sqlite":
            log = f"SELECT MAX(rowid) FROM {table}"
        else:
            schema = getattr(getattr(self.app.recorder, "datastore", None), "schema", None) or "public"
            log = f'SELECT MAX(notification_id) FROM "{schema}"."{table}"'
        return f"SELECT (SELECT position FROM {projector_position.name} WHERE name = :name), ({log})"

    def _read_positions(self) -> tuple[int, int]:
        sql = self._positions_sql()
        if sql is None:  # another recorder: ask each
            return self.projector.position(), self.projector.log_position()
        with self.engine.connect() as conn:
            read, head = conn.execute(text(sql), {"name": PROJECTOR_NAME}).one()
        return read or 0, head or 0

    def rebuild(self, on_batch: Callable[[int], None] | None = None) -> int:
        self.positions_moved()
        self.projector.reset()
        try:
            return self.projector.run(on_batch=on_batch)
        finally:
            self.positions_moved()

    def verify(self, scratch_url: str) -> tuple[str, str, dict[str, int], dict[str, int]]:
        """Rebuild the read model from the log into a scratch store; return both digests."""
        self.catch_up()
        position = self.projector.position()
        scratch = make_engine(scratch_url)
        create_read_model(scratch)
        Projector(self.app, scratch, self.projector_batch).run(until=position)
        live, live_counts = digest(self.engine)
        fresh, fresh_counts = digest(scratch)
        scratch.dispose()
        return live, fresh, live_counts, fresh_counts

    def history(self, *, la_code: str | None = None, urn: str | None = None, limit: int = 1000,
                newest_first: bool = False) -> list[dict[str, Any]]:
        """The events behind an authority or a provider, in log order, corrections beside what they corrected."""
        self.catch_up()
        q = select(event_log)
        if la_code:
            q = q.where(event_log.c.la_code == la_code)
        if urn:
            q = q.where(event_log.c.urn == urn)
        order = event_log.c.position.desc() if newest_first else event_log.c.position
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q.order_by(order).limit(limit)).mappings()]

    # --- export / restore -------------------------------------------------

    def export(self, path: Path) -> int:
        n = 0
        with path.open("w", encoding="utf-8") as out:
            out.write(json.dumps({"format": EXPORT_HEADER, "version": 1,
                                  "events": self.projector.log_position()}) + "\n")
            for note in self.iter_notifications():
                out.write(json.dumps({"position": note.id, "originator_id": str(note.originator_id),
                                      "originator_version": note.originator_version, "topic": note.topic,
                                      "state": json.loads(note.state)}, ensure_ascii=False) + "\n")
                n += 1
        return n

    def iter_notifications(self, page: int = 10000) -> Iterator[Any]:
        start = 1
        while True:
            notes = self.app.recorder.select_notifications(start, page)
            if not notes:
                return
            yield from notes
            start = notes[-1].id + 1

    def restore(self, lines: Iterable[str], chunk: int = 5000) -> int:
        """Load an export into an empty store: the same events, the same positions."""
        if self.projector.log_position():
            raise InvalidEvidence([FieldError("file", "export", "can only be restored into an empty store")])
        batch: list[StoredEvent] = []
        n = 0
        last = 0  # the position of the last event read
        for line in lines:
            if not line.strip():
                continue
            rec = json.loads(line)
            if "format" in rec:  # the header line written by `export`
                if rec["format"] != EXPORT_HEADER or rec.get("version") != 1:
                    raise InvalidEvidence([FieldError("format", rec.get("format"),
                                                      f"not a {EXPORT_HEADER} file of version 1")])
                continue
            state = json.dumps(rec["state"], separators=(",", ":"), ensure_ascii=False).encode()
            event = StoredEvent(UUID(rec["originator_id"]), rec["originator_version"], rec["topic"], state)
            position = rec.get("position", last + 1)
            if position != last + 1 or len(batch) >= chunk:
                n += self._insert(batch)
                batch = []
            if position != last + 1:
                # A gap in the exported positions (PostgreSQL's sequence skips the ids of a
                # writer's rolled-back insert): insert this event at its own position, so
                # positions (and the read model, which records them) match the original.
                n += self._insert_at(position, event)
            else:
                batch.append(event)
            last = position
        n += self._insert(batch)
        if n and self.projector.log_position() != last:
            raise InvalidEvidence([FieldError("file", "export", "restored events did not keep their positions")])
        self.catch_up()
        return n

    def _insert(self, events: list[StoredEvent]) -> int:
        if events:
            self.app.recorder.insert_events(events)
            self.positions_moved()
        return len(events)

    def _insert_at(self, position: int, event: StoredEvent) -> int:
        """Insert one event (restore only) so that its notification id is `position`."""
        if position <= (self.projector.log_position() or 0):
            raise InvalidEvidence([FieldError("position", position, "positions in the export are not ascending")])
        self.positions_moved()
        table = getattr(self.app.recorder, "events_table_name", None)
        if table is not None and self.database_url.startswith("sqlite"):
            # SQLite numbers events by rowid: give it explicitly, in the recorder's own format.
            with self.engine.begin() as conn:
                conn.execute(text(f"INSERT INTO {table} (rowid, originator_id, originator_version, topic, state) "
                                  "VALUES (:p, :o, :v, :t, :s)"),
                             {"p": position, "o": event.originator_id.hex, "v": event.originator_version,
                              "t": event.topic, "s": event.state})
            return 1
        if table is not None:  # PostgreSQL: the next id the sequence issues
            with self.engine.begin() as conn:
                conn.execute(text("SELECT setval(pg_get_serial_sequence(:t, 'notification_id'), :p)"),
                             {"t": table, "p": position - 1})
        return self._insert([event])


class _Prefetched:
    """The store as a batch's AggregateSource, with the aggregates its postings will read
    (providers, follow-up targets, assessments) loaded, or found absent, in one query per
    500 ids rather than one `Repository.get` each: a batch of 250 registrations asked 250
    times whether a provider existed. Built afresh for each attempt; a writer who commits
    in between is caught by the store's optimistic concurrency, as before."""

    def __init__(self, app: LedgerApplication, postings: Iterable[Posting]):
        self.app = app
        ids = list({i for p in postings for i in aggregates_read(p)})
        self.loaded = app.aggregates_from(app.stored_events_of(ids)) if ids else {}
        self.absent = set(ids) - set(self.loaded)

    def get(self, aggregate_id: UUID) -> Any | None:
        if aggregate_id in self.loaded:
            return self.loaded.pop(aggregate_id)  # the batch keeps what it reads
        if aggregate_id in self.absent:
            return None
        return self.app.get(aggregate_id)

    def prior_postings(self, client_ids: Iterable[str]) -> dict[str, Any]:
        return self.app.prior_postings(client_ids)

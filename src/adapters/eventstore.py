"""Wiring of the eventsourcing application: persistence chosen by CSA_DATABASE_URL."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import JSONTranscoder, StoredEvent, Transcoding
from sqlalchemy.engine import make_url

from domain.handlers import PriorPosting
from domain.model import ClientKey, Evidence, key_id

EVENTS_TABLE = "stored_events"


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class LedgerApplication(Application):
    """The evidence ledger's event store. Aggregates are saved only through `save()`."""

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
        found: dict[str, PriorPosting] = {}
        for stored in self.first_events(list(by_key)):
            event = self.mapper.to_domain_event(stored)
            cid = by_key[stored.originator_id if isinstance(stored.originator_id, UUID) else UUID(stored.originator_id)]
            if isinstance(event, Evidence.Recorded):
                found[cid] = PriorPosting(event.kind, event.content_hash, event.originator_id)
            elif isinstance(event, ClientKey.Reserved):
                found[cid] = PriorPosting(event.type, event.content_hash, event.aggregate_id)
        return found

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

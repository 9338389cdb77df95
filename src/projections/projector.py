"""The projector: a catch-up loop that reads the event log in pages, turns the
events into read-model rows and stores its position in the same transaction
(ADR 0002). It works on SQLite and PostgreSQL alike and batches its writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from domain.model import Assessment, Evidence, Item, Provider, provider_id
from domain.postings import canonical
from projections.tables import READ_MODEL_TABLES, event_log, evidence, metadata, projector_position

NAME = "evidence"

# Events that supersede the current version of an item (evidence or provider).
ITEM_FOLLOW_UPS = (Item.PublicationDateSupplied, Item.Corrected, Item.Withdrawn,
                   Provider.Closed, Provider.Restructured, Provider.NoChildrenOnRollMarked)


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

    # --- running ----------------------------------------------------------

    def position(self) -> int:
        with self.engine.connect() as conn:
            return read_position(conn)

    def log_position(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def run(self, until: int | None = None, on_batch: Callable[[int], None] | None = None) -> int:
        """Catch up with the log (or up to position `until`). Returns events applied."""
        total = 0
        while True:
            n = self.run_batch(until)
            if n == 0:
                return total
            total += n
            if on_batch:
                on_batch(n)

    def run_batch(self, until: int | None = None) -> int:
        with self.engine.begin() as conn:
            ensure_position(conn)
            start = read_position(conn, for_update=True)
            limit = self.batch_size if until is None else min(self.batch_size, until - start)
            if limit <= 0:
                return 0
            notifications = self.app.recorder.select_notifications(start + 1, limit)
            if not notifications:
                return 0
            batch = _Batch(conn)
            for n in notifications:
                batch.apply(n.id, self.app.mapper.to_domain_event(n))
            batch.write()
            write_position(conn, notifications[-1].id)
            return len(notifications)

    # --- rebuilding -------------------------------------------------------

    def reset(self) -> None:
        with self.engine.begin() as conn:
            for t in READ_MODEL_TABLES:
                conn.execute(t.delete())
            conn.execute(projector_position.delete())


def create_read_model(engine: Engine) -> None:
    metadata.create_all(engine)


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


def read_position(conn: Connection, for_update: bool = False) -> int:
    q = select(projector_position.c.position).where(projector_position.c.name == NAME)
    if for_update and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    return conn.execute(q).scalar() or 0


def write_position(conn: Connection, position: int) -> None:
    updated = conn.execute(update(projector_position).where(projector_position.c.name == NAME)
                           .values(position=position)).rowcount
    if not updated:
        conn.execute(projector_position.insert().values(name=NAME, position=position))


class _Batch:
    """Rows produced by one page of the log, written in one go."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.open: dict[str, dict[str, Any]] = {}  # item_id -> current row (new or loaded)
        self.loaded: set[tuple[str, int]] = set()  # rows that exist in the store already
        self.inserts: list[dict[str, Any]] = []
        self.closes: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []

    def apply(self, position: int, event: Any) -> None:
        if isinstance(event, (Evidence.Recorded, Provider.Registered)):
            row = self._new_row(position, event, dict(event.state), version=1, client_id=event.client_id)
            self._log(position, event, row["kind"], row["la_code"], row["urn"], None, event.state)
        elif isinstance(event, ITEM_FOLLOW_UPS):
            current = self._current(str(event.originator_id))
            self._close(current, position, event)
            if not isinstance(event, Item.Withdrawn):
                item = SimpleNamespace(state=dict(current["data"]), withdrawn=False)
                event.apply(item)
                self._new_row(position, event, item.state, version=event.originator_version,
                              client_id=current["client_id"], kind=current["kind"], la=current["la_code"])
            self._log(position, event, current["kind"], current["la_code"], current["urn"], None, _details(event))
        elif isinstance(event, Assessment.StepRecorded):
            self._log(position, event, event.step, event.la_code, None, event.year, event.details)

    # --- rows ---------------------------------------------------------------

    def _new_row(self, position: int, event: Any, state: dict[str, Any], *, version: int,
                 client_id: str, kind: str | None = None, la: str | None = None) -> dict[str, Any]:
        """`la`: the authority of the version this one supersedes, kept when neither the
        state nor a current provider row names one (e.g. the provider was withdrawn)."""
        kind = kind or event.kind
        urn = state.get("urn")
        fallback, la = la, state.get("la_code")
        if la is None and urn is not None:
            provider = self._current(str(provider_id(urn)), missing_ok=True)
            la = provider["la_code"] if provider else None
        la = la if la is not None else fallback
        row = {
            "item_id": str(event.originator_id), "version": version, "kind": kind, "la_code": la, "urn": urn,
            "group_code": state.get("group"), "occurred_on": as_date(state.get("occurred_on")),
            "published_on": as_date(state.get("published_on")), "data": canonical(state),
            "client_id": client_id, "actor": event.actor, "recorded_from": naive_utc(event.timestamp),
            "recorded_to": None, "position": position, "closed_by": None, "withdrawn": False,
        }
        self.open[row["item_id"]] = row
        self.inserts.append(row)
        return row

    def _current(self, item_id: str, missing_ok: bool = False) -> dict[str, Any] | None:
        if item_id in self.open:
            return self.open[item_id]
        found = self.conn.execute(select(evidence).where(evidence.c.item_id == item_id,
                                                          evidence.c.recorded_to.is_(None))).mappings().first()
        if found is None:
            if missing_ok:
                return None
            raise LookupError(f"read model has no current row for item {item_id}")
        row = dict(found)
        self.loaded.add((row["item_id"], row["version"]))
        self.open[item_id] = row
        return row

    def _close(self, row: dict[str, Any], position: int, event: Any) -> None:
        row["recorded_to"] = naive_utc(event.timestamp)
        row["closed_by"] = type(event).__name__
        row["withdrawn"] = isinstance(event, Item.Withdrawn)
        self.open.pop(row["item_id"], None)
        if (row["item_id"], row["version"]) in self.loaded:
            self.closes.append({"k_item": row["item_id"], "k_version": row["version"],
                                "recorded_to": row["recorded_to"], "closed_by": row["closed_by"],
                                "withdrawn": row["withdrawn"]})

    def _log(self, position: int, event: Any, kind: str, la: str | None, urn: str | None,
             year: int | None, details: Any) -> None:
        self.log.append({
            "position": position, "aggregate_id": str(event.originator_id), "version": event.originator_version,
            "event": type(event).__qualname__, "kind": kind, "la_code": la, "urn": urn, "year": year,
            "actor": event.actor, "client_id": event.client_id, "recorded_at": naive_utc(event.timestamp),
            "details": canonical(details),
        })

    def write(self) -> None:
        if self.closes:
            self.conn.execute(
                update(evidence).where(evidence.c.item_id == bindparam("k_item"),
                                       evidence.c.version == bindparam("k_version"))
                .values(recorded_to=bindparam("recorded_to"), closed_by=bindparam("closed_by"),
                        withdrawn=bindparam("withdrawn")), self.closes)
        if self.inserts:
            self.conn.execute(evidence.insert(), self.inserts)
        if self.log:
            self.conn.execute(event_log.insert(), self.log)


def _details(event: Any) -> dict[str, Any]:
    skip = {"originator_id", "originator_version", "timestamp", "actor", "client_id", "content_hash"}
    return {k: v for k, v in event.__dict__.items() if k not in skip}


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

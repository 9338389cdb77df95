"""The bitemporal read model (ADR 0002).

`evidence` holds one row per version of each item (evidence item or provider):
its business dates (`occurred_on`, `published_on`) and the transaction time over
which that version was the ledger's knowledge: `recorded_from` (the event's
recorded_at) up to `recorded_to` (when a correction, a supplied date, a lifecycle
step or a withdrawal superseded it; NULL while current). Times are naive UTC.

`event_log` indexes every posted event for history: who, what, when recorded.
`projector_position` holds how far the projector has read the log; it is written
in the same transaction as the rows it accounts for.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)

metadata = MetaData()

evidence = Table(
    "rm_evidence", metadata,
    Column("item_id", String(36), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("la_code", String(3)),
    Column("urn", String(32)),
    Column("group_code", String(40)),
    Column("occurred_on", Date),
    Column("published_on", Date),
    Column("data", JSON, nullable=False),
    Column("client_id", String(200), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("recorded_from", DateTime, nullable=False),
    Column("recorded_to", DateTime),
    Column("position", BigInteger, nullable=False),
    Column("closed_by", String(40)),
    Column("withdrawn", Boolean, nullable=False, default=False),
)
ix_evidence_la_kind = Index("ix_rm_evidence_la_kind", evidence.c.la_code, evidence.c.kind, evidence.c.recorded_from)
ix_evidence_urn = Index("ix_rm_evidence_urn", evidence.c.urn, evidence.c.kind)

event_log = Table(
    "rm_event_log", metadata,
    # INTEGER on SQLite makes the position the table's rowid (no separate key index).
    Column("position", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("aggregate_id", String(36), nullable=False),
    Column("version", Integer, nullable=False),
    Column("event", String(60), nullable=False),
    Column("kind", String(40)),
    Column("la_code", String(3)),
    Column("urn", String(32)),
    Column("year", Integer),
    Column("actor", String(200)),
    Column("client_id", String(200)),
    Column("recorded_at", DateTime, nullable=False),
    Column("details", JSON, nullable=False),
)
ix_event_log_la = Index("ix_rm_event_log_la", event_log.c.la_code, event_log.c.position)
ix_event_log_urn = Index("ix_rm_event_log_urn", event_log.c.urn, event_log.c.position)
ix_event_log_agg = Index("ix_rm_event_log_agg", event_log.c.aggregate_id, event_log.c.version)
# Assessment steps by kind (which authorities have an appeal lodged, published grades): asked on
# every embargo check, so never a scan of the whole log.
ix_event_log_kind = Index("ix_rm_event_log_kind", event_log.c.kind, event_log.c.la_code)
# An authority's assessment steps of a year (embargo state, inspector notes): an authority
# has thousands of evidence events in the log and a handful of steps a year.
ix_event_log_la_year = Index("ix_rm_event_log_la_year", event_log.c.la_code, event_log.c.year, event_log.c.kind)

projector_position = Table(
    "rm_projector_position", metadata,
    Column("name", String(40), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

# Each authority's facts as known "now" (or at a time asked for: `asked`, a few of them) and the
# rules' timelines built from them, kept across processes and restarts (ADR 0028,
# `projections.facts_kept`): a pickle tagged with the log position of the latest event about the
# authority when they were read, the time they were read at, and a digest of the code that built
# them; `kept_at`: when they were written (the oldest known-at times are let go first). Worked out from the read model, never the record:
# a row that no longer holds is ignored, then replaced.
facts_kept = Table(
    "rm_facts_kept", metadata,
    Column("la_code", String(3), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("asked", String(32), primary_key=True),  # "now", or the known_at asked (naive UTC, ISO)
    Column("version", BigInteger, nullable=False),
    Column("read_at", DateTime, nullable=False),
    Column("kept_at", DateTime, nullable=False),
    Column("code", String(64), nullable=False),
    Column("facts", LargeBinary, nullable=False),
)

READ_MODEL_TABLES = (evidence, event_log)

# The secondary indexes: the projector drops them while it builds a large read
# model from empty and creates them once at the end (the queries only need them
# to be fast, never to be right).
BULK_INDEXES = (ix_evidence_la_kind, ix_evidence_urn, ix_event_log_la, ix_event_log_urn, ix_event_log_agg,
                ix_event_log_kind, ix_event_log_la_year)

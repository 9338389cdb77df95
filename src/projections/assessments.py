"""Read-model queries the API needs beyond `Ledger` and `Views`: a keyset page
of the event history, the embargo state of assessments and the published grades.

These read the `rm_event_log` table only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select

from domain.assessment_state import AssessmentState
from projections.tables import event_log

PUBLISHED = "assessment_published"
APPEAL_LODGED = "appeal_lodged"


@dataclass(frozen=True)
class HistoryPage:
    items: list[dict[str, Any]]
    next_cursor: int | None


def utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def history_page(engine: Engine, *, la_code: str | None = None, urn: str | None = None,
                 year: int | None = None, step_years: set[int] | None = None, cursor: int | None = None,
                 limit: int = 100, newest_first: bool = True) -> HistoryPage:
    """Events in log order (or reversed), after `cursor` (a log position) in that order.

    `step_years`: which years' assessment steps to include (None: every year);
    evidence events (no year) are always included.
    """
    c = event_log.c
    q = select(event_log)
    if la_code is not None:
        q = q.where(c.la_code == la_code)
    if urn is not None:
        q = q.where(c.urn == urn)
    if year is not None:
        q = q.where(c.year == year)
    if step_years is not None:
        q = q.where(or_(c.year.is_(None), c.year.in_(sorted(step_years))))
    if cursor is not None:
        q = q.where(c.position < cursor if newest_first else c.position > cursor)
    q = q.order_by(c.position.desc() if newest_first else c.position).limit(limit + 1)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    for r in rows:
        r["recorded_at"] = utc(r["recorded_at"])
    return HistoryPage(rows, rows[-1]["position"] if more and rows else None)


def assessment_state(engine: Engine, la_code: str, year: int) -> AssessmentState:
    q = select(event_log.c.kind).distinct().where(event_log.c.la_code == la_code, event_log.c.year == year)
    with engine.connect() as conn:
        return AssessmentState.of(la_code, year, conn.execute(q).scalars())


def assessment_states(engine: Engine, la_code: str) -> list[AssessmentState]:
    q = select(event_log.c.year, event_log.c.kind).distinct().where(
        event_log.c.la_code == la_code, event_log.c.year.is_not(None))
    kinds: dict[int, set[str]] = {}
    with engine.connect() as conn:
        for y, k in conn.execute(q):
            kinds.setdefault(y, set()).add(k)
    return [AssessmentState.of(la_code, y, ks) for y, ks in sorted(kinds.items())]


def appealed_authorities(engine: Engine) -> frozenset[str]:
    q = select(event_log.c.la_code).distinct().where(event_log.c.kind == APPEAL_LODGED)
    with engine.connect() as conn:
        return frozenset(conn.execute(q).scalars())


def provider_authorities(engine: Engine, urn: str) -> set[str]:
    """The authorities a provider's events name (empty: the ledger holds nothing about it)."""
    q = select(event_log.c.la_code).distinct().where(event_log.c.urn == urn)
    with engine.connect() as conn:
        return {la for la in conn.execute(q).scalars() if la}


def publications(engine: Engine, year: int, la_code: str | None = None) -> list[dict[str, Any]]:
    """The latest `assessment_published` step of each authority for a year."""
    c = event_log.c
    latest = (select(c.la_code, func.max(c.position).label("position"))
              .where(c.kind == PUBLISHED, c.year == year).group_by(c.la_code))
    if la_code is not None:
        latest = latest.where(c.la_code == la_code)
    sub = latest.subquery()
    q = (select(event_log).join(sub, and_(c.la_code == sub.c.la_code, c.position == sub.c.position))
         .order_by(c.la_code))
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings()]
    for r in rows:
        r["recorded_at"] = utc(r["recorded_at"])
    return rows

"""How a point of view is written (ADR 0009): `known_at` as a timestamp or a date."""

from __future__ import annotations

from datetime import UTC, date, datetime, time


def known_at_from_text(value: str) -> datetime:
    """An ISO timestamp (UTC when it names no zone), or a date meaning the end of
    that day in UTC. Raises ValueError with the reason."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time.max, tzinfo=UTC)
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("not an ISO timestamp (e.g. 2011-09-30T17:00:00Z) or a date (YYYY-MM-DD)") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)

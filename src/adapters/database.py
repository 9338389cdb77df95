"""SQLAlchemy engines for the read model, on the same store as the event log."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text

# The key of the PostgreSQL advisory lock under which a process creates the store's tables.
SCHEMA_LOCK_KEY = 0xC5A1ED6E


def make_engine(database_url: str) -> Engine:
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(database_url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(database_url, pool_pre_ping=True, pool_size=5)


@contextmanager
def schema_lock(engine: Engine) -> Iterator[None]:
    """Create tables one process at a time. Several API workers starting together on an empty
    PostgreSQL database each ran `CREATE TABLE IF NOT EXISTS …` at once, and PostgreSQL
    refused one ("tuple concurrently updated"): that worker failed to start and took the
    server down. On PostgreSQL a session advisory lock serialises them; SQLite serialises
    its own writers."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": SCHEMA_LOCK_KEY})
            conn.commit()

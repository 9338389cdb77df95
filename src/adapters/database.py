"""SQLAlchemy engines for the read model, on the same store as the event log."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event


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

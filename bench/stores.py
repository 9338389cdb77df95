"""Fresh, throw-away stores for one measurement: an SQLite file or a PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get("CSA_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def new_store(kind: str, workdir: Path, label: str) -> str:
    """The URL of an empty store of this kind ("sqlite" or "postgres")."""
    tag = f"{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    if kind == "sqlite":
        path = workdir / f"bench-{tag}.sqlite"
        drop_store(f"sqlite:///{path}")
        return f"sqlite:///{path}"
    if kind == "postgres":
        name = f"csa_bench_{tag}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    raise ValueError(f"unknown store {kind!r}: sqlite or postgres")


def drop_store(url: str) -> None:
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
        return
    name = make_url(url).database
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def postgres_available() -> str | None:
    """None if the PostgreSQL server answers, else why not."""
    try:
        admin = create_engine(PG_ADMIN_URL)
        with admin.connect() as conn:
            conn.execute(text("select 1"))
        admin.dispose()
        return None
    except Exception as e:  # noqa: BLE001
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {str(e).splitlines()[0]}"

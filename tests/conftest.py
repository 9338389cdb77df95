"""Shared fixtures. Integration tests run on both stores: an SQLite file and the
PostgreSQL server at 127.0.0.1:5432 (CSA_TEST_POSTGRES_URL to change it).

With CI=true a missing PostgreSQL server fails the run: the PostgreSQL tests
must run there, never skip. Elsewhere they skip with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from store_helpers import empty_postgres

PG_ADMIN_URL = os.environ.get("CSA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


class FakeClock:
    """The ledger's clock, moved by the test (recorded_at is the ledger's, never the caller's)."""

    def __init__(self, start: datetime = datetime(2011, 9, 1, 9, 0, tzinfo=UTC)):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now

    def set(self, when: datetime) -> datetime:
        self.now = when if when.tzinfo else when.replace(tzinfo=UTC)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throw-away PostgreSQL database for this test session."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as e:  # noqa: BLE001
        admin.dispose()
        message = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {e}"
        if IN_CI:
            pytest.fail(message + " (CI=true: the PostgreSQL tests must run)")
        pytest.skip(message)
    name = f"csa_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()



@pytest.fixture
def pg_url(pg_database: str) -> str:
    empty_postgres(pg_database)
    return pg_database


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/ledger.sqlite"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request) -> str:
    """Each integration test that takes this runs once per store."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def ledger(store_url, clock):
    from adapters.ledger import Ledger

    led = Ledger(store_url, clock=clock)
    yield led
    led.close()

"""Helpers shared by the fixtures and the tests that need a store of their own."""

from __future__ import annotations

from sqlalchemy import create_engine, text


def empty_postgres(url: str) -> None:
    """Drop everything in the database's public schema (a fresh store)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()

"""A new SQLite store is created with the page size ADR 0031 chose; an existing one keeps its own."""

from __future__ import annotations

import sqlite3

from adapters.database import SQLITE_PAGE_SIZE, make_engine, new_sqlite_store
from adapters.ledger import Ledger
from domain.postings import KINDS


def _page_size(path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()


def _journal_mode(path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()


def test_a_new_store_has_the_chosen_page_size_and_the_wal(tmp_path):
    path = tmp_path / "new.sqlite"
    ledger = Ledger(f"sqlite:///{path}")
    try:
        example = KINDS["provider_registered"].example
        ledger.record([{"type": "provider_registered", "client_id": "ps-1", "actor": "t", **example}])
        ledger.catch_up()
    finally:
        ledger.close()
    assert _page_size(path) == SQLITE_PAGE_SIZE == 16384  # not SQLite's default, 4096
    assert _journal_mode(path) == "wal"


def test_an_existing_store_keeps_its_page_size(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA page_size=4096")
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    make_engine(f"sqlite:///{path}").dispose()
    ledger = Ledger(f"sqlite:///{path}")
    ledger.close()
    assert _page_size(path) == 4096


def test_an_empty_file_is_given_the_page_size(tmp_path):
    path = tmp_path / "empty.sqlite"
    path.touch()
    new_sqlite_store(path, 8192)
    assert _page_size(path) == 8192
    assert _journal_mode(path) == "wal"


def test_a_bulk_runs_wal_between_checkpoints_is_the_same_size_whatever_the_page_size(tmp_path):
    from projections.projector import BULK_CHECKPOINT_BYTES

    sizes = {}
    for page in (4096, 16384):
        path = tmp_path / f"p{page}.sqlite"
        new_sqlite_store(path, page)
        ledger = Ledger(f"sqlite:///{path}")
        try:
            with ledger.engine.connect() as conn:
                sizes[page] = ledger.projector._bulk_checkpoint(conn)  # noqa: SLF001
        finally:
            ledger.close()
    assert sizes == {4096: BULK_CHECKPOINT_BYTES // 4096, 16384: BULK_CHECKPOINT_BYTES // 16384}

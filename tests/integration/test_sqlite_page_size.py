"""A new SQLite store is created with the page size ADR 0031 chose; an existing one keeps its own."""

from __future__ import annotations

import sqlite3

from adapters.database import SQLITE_PAGE_SIZE, make_engine, new_sqlite_store
from adapters.ledger import Ledger
from domain.postings import KINDS


def _pragma(path, name: str):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def _page_size(path) -> int:
    return _pragma(path, "page_size")


def _journal_mode(path) -> str:
    return _pragma(path, "journal_mode")


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


def _file_only_count(tmp_path, path) -> int:
    """The log's events in the store's file alone, without its WAL: what checkpoints copied."""
    import shutil

    copy = tmp_path / "file-only.sqlite"
    shutil.copyfile(path, copy)
    conn = sqlite3.connect(copy)
    try:
        return conn.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]
    finally:
        conn.close()
        copy.unlink()


def _scratch_of(n: int):
    from uuid import uuid4

    from adapters.eventstore import Scratch

    scratch = Scratch()
    scratch.append_rows([(uuid4().hex, 1, "domain.model:Provider.Registered", b"{" + b'"x":"' + b"y" * 400 + b'"}')
                         for _ in range(n)])
    return scratch


def test_an_append_without_its_checkpoint_leaves_the_log_in_the_wal_until_a_checkpoint(tmp_path):
    """ADR 0031: append_staged(checkpoint=False) commits (every reader sees the events) but
    leaves the pages in the WAL, past the threshold at which a commit checkpoints; checkpoint()
    copies them into the file. With checkpoint=True the commit copies them itself. 512-byte
    pages: 1,500 events are well past 1,000 WAL pages."""
    results = {}
    for flag in (True, False):
        path = tmp_path / f"store-{flag}.sqlite"
        new_sqlite_store(path, 512)
        ledger = Ledger(f"sqlite:///{path}")
        scratch = _scratch_of(1500)
        try:
            ledger.app.checkpoint()  # the empty tables into the file
            assert _file_only_count(tmp_path, path) == 0
            assert ledger.app.append_staged(scratch, 1, 1500, 0, checkpoint=flag)
            assert ledger.app.log_head() == 1500  # committed, whatever the checkpoint
            results[flag] = _file_only_count(tmp_path, path)
            busy, frames, copied = ledger.app.checkpoint()
            assert (busy, copied) == (0, frames)
            assert _file_only_count(tmp_path, path) == 1500
        finally:
            scratch.close()
            ledger.close()
    assert results == {True: 1500, False: 0}


def test_an_in_memory_url_creates_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_engine("sqlite:///:memory:").dispose()
    assert list(tmp_path.iterdir()) == []

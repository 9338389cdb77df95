"""While a first load writes into a store held out of WAL mode, its dirty pages are handed to the
disk as it goes (`adapters.database.written_back`, ADR 0043), through a descriptor a connection
already has open: never one opened and closed here, which would drop this process's locks."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from adapters import database
from adapters.database import rollback_journal, written_back

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")


def _writebacks() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "csa-store-writeback"]


def _spy(monkeypatch) -> list[int]:
    """The inode of each descriptor synced."""
    synced: list[int] = []
    real = os.fdatasync

    def fdatasync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real(fd)

    monkeypatch.setattr(database.os, "fdatasync", fdatasync)
    return synced


def _store(tmp_path: Path) -> tuple[Path, sqlite3.Connection]:
    path = tmp_path / "store.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (x BLOB)")
    return path, conn


def test_the_files_pages_are_synced_while_the_block_runs_and_not_after(tmp_path, monkeypatch):
    synced = _spy(monkeypatch)
    path, conn = _store(tmp_path)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE u (x)")  # a file written too, but not the one asked for
    try:
        with written_back(path, every=0.01):
            assert len(_writebacks()) == 1
            conn.execute("BEGIN")
            for _ in range(50):
                conn.execute("INSERT INTO t VALUES (randomblob(65536))")
                time.sleep(0.005)
            conn.execute("COMMIT")
        assert _writebacks() == []
        assert len(synced) >= 5
        assert set(synced) == {path.stat().st_ino}
        after = len(synced)
        time.sleep(0.05)
        assert len(synced) == after  # stopped with the block
    finally:
        conn.close()


def test_no_descriptor_is_opened_or_closed_so_the_locks_this_process_holds_stay(tmp_path, monkeypatch):
    """Closing any descriptor of a database file releases every POSIX lock the process holds on
    it (SQLite's too); the writeback only syncs one a connection has open."""
    path, conn = _store(tmp_path)
    conn.execute("PRAGMA journal_mode=DELETE")
    probe = [sys.executable, "-c",
             "import sqlite3, sys\n"
             "try:\n    sqlite3.connect(sys.argv[1], timeout=0).execute('BEGIN IMMEDIATE')\n"
             "except sqlite3.OperationalError as e:\n    print(e)\nelse:\n    print('got the lock')",
             str(path)]
    try:
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("INSERT INTO t VALUES (randomblob(65536))")
        with written_back(path, every=0.005):
            time.sleep(0.1)
        held = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
        assert held == "database is locked"
        # What the writeback must not do: a descriptor of the file opened and closed here drops the lock.
        os.close(os.open(path, os.O_RDONLY))
        lost = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
        assert lost == "got the lock"
    finally:
        conn.close()


def test_nothing_is_synced_without_a_descriptor_open_or_with_the_writeback_off(tmp_path, monkeypatch):
    synced = _spy(monkeypatch)
    path, conn = _store(tmp_path)
    conn.close()
    with written_back(path, every=0.005):
        time.sleep(0.05)
    assert synced == []
    conn = sqlite3.connect(path)
    try:
        with written_back(path, every=0):
            assert _writebacks() == []
            time.sleep(0.02)
    finally:
        conn.close()
    assert synced == []


def test_a_store_held_out_of_wal_mode_is_written_back_while_held(tmp_path, monkeypatch):
    synced = _spy(monkeypatch)
    path, conn = _store(tmp_path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    with rollback_journal(path, writeback=0.005) as held:
        assert held
        assert len(_writebacks()) == 1
        time.sleep(0.05)  # the block's own connection (rollback_journal's) is open on the store
    assert _writebacks() == []
    assert synced and set(synced) == {path.stat().st_ino}
    with rollback_journal(path, writeback=0) as held:
        assert held and _writebacks() == []
    other = sqlite3.connect(path)  # open elsewhere: not held, so nothing written back either
    other.execute("SELECT COUNT(*) FROM t").fetchone()
    try:
        with rollback_journal(path, timeout=0.1, writeback=0.005) as held:
            assert not held and _writebacks() == []
    finally:
        other.close()

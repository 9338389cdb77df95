"""A first load into an empty SQLite store written with the store out of WAL mode (ADR 0040):
each page written once, into the file, rather than into the WAL and again by a checkpoint;
only when no other connection has the store open; the store back in WAL mode afterwards,
whatever happened; and other connections opening the store meanwhile wait rather than fail.

The journal mode is read from the file's header (bytes 18 and 19: 1 for a rollback journal,
2 for WAL), which needs no connection of its own (a connection would stop the switch).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import adapters.import_beside as import_beside
from adapters.database import ensure_wal, make_engine, rollback_journal
from adapters.eventstore import LedgerApplication
from adapters.importers import import_file
from adapters.ledger import Ledger
from projections.projector import digest
from tests.integration.test_bulk_import import _jsonl, events_of, log, postings

ROLLBACK, WAL = (1, 1), (2, 2)


def _header(path: Path) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(20)
    return head[18], head[19]


def _store(tmp_path: Path, name: str, clock) -> tuple[Ledger, Path]:
    path = tmp_path / f"{name}.sqlite"
    return Ledger(f"sqlite:///{path}", clock=clock), path


@pytest.fixture
def beside_always(monkeypatch):
    monkeypatch.setattr(import_beside, "MIN_BYTES", 0)


def _spy_modes(monkeypatch, path: Path) -> dict[str, list]:
    """The store's journal mode (from its header) when the log is appended and when the read
    model built beside is adopted; and every checkpoint asked for."""
    seen: dict[str, list] = {"append": [], "adopt": [], "checkpoint": []}
    real_append, real_checkpoint = LedgerApplication.append_staged, LedgerApplication.checkpoint
    real_adopt = import_beside.BesideProjection.adopt

    def append(self, *args, **kw):
        seen["append"].append(_header(path))
        return real_append(self, *args, **kw)

    def adopt(self):
        seen["adopt"].append(_header(path))
        adopted = real_adopt(self)
        seen["adopt"].append(adopted)
        return adopted

    def checkpoint(self):
        seen["checkpoint"].append(True)
        return real_checkpoint(self)

    monkeypatch.setattr(LedgerApplication, "append_staged", append)
    monkeypatch.setattr(LedgerApplication, "checkpoint", checkpoint)
    monkeypatch.setattr(import_beside.BesideProjection, "adopt", adopt)
    return seen


def test_a_first_load_is_written_out_of_wal_mode_and_the_store_is_left_in_it(tmp_path, clock, beside_always,
                                                                               monkeypatch):
    path = _jsonl(tmp_path / "in.jsonl", postings())
    through_wal, wal_path = _store(tmp_path, "wal", clock)
    other = sqlite3.connect(wal_path)  # another connection: the store cannot leave WAL mode
    other.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    try:
        seen_wal = _spy_modes(monkeypatch, wal_path)
        import_file(through_wal, path, chunk_postings=5)
    finally:
        other.close()
    monkeypatch.undo()
    monkeypatch.setattr(import_beside, "MIN_BYTES", 0)
    ledger, store = _store(tmp_path, "store", clock)
    try:
        seen = _spy_modes(monkeypatch, store)
        report = import_file(ledger, path, chunk_postings=5)
        assert report.recorded == len(postings())
        # Out of WAL mode for the log's copy and the adoption, in one window; nothing to checkpoint.
        assert seen == {"append": [ROLLBACK], "adopt": [ROLLBACK, True], "checkpoint": []}
        assert seen_wal == {"append": [WAL], "adopt": [WAL, True], "checkpoint": [True, True]}
        assert _header(store) == WAL
        with ledger.engine.connect() as conn:
            # A connection opened while the store was held follows the file's header at its next read.
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert ledger.projector.position() == ledger.app.log_head() == events_of()
        assert digest(ledger.engine) == digest(through_wal.engine)
        assert [r[1:] for r in log(ledger)] == [r[1:] for r in log(through_wal)]
        # The store goes on as any other, in WAL mode: a reader does not stop a writer.
        reader = sqlite3.connect(store)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT COUNT(*) FROM stored_events").fetchone()
            ledger.record([{"type": "provider_closed", "client_id": "c-9", "urn": "U9",
                            "occurred_on": "2011-09-01"}], default_actor="t")
            reader.execute("COMMIT")
        finally:
            reader.close()
        assert ledger.projector.position() == ledger.app.log_head() == events_of() + 2
    finally:
        through_wal.close()
        ledger.close()


@pytest.mark.parametrize(("setting", "mode"), [(True, ROLLBACK), (False, WAL)], ids=["on", "off"])
def test_without_a_read_model_beside_the_log_alone_is_written_out_of_wal_mode_unless_the_setting_is_off(
        tmp_path, clock, monkeypatch, setting, mode):
    path = _jsonl(tmp_path / "in.jsonl", postings())
    ledger, store = _store(tmp_path, "store", clock)
    try:
        seen = _spy_modes(monkeypatch, store)
        import_file(ledger, path, chunk_postings=5, beside=False, rollback_journal=setting)
        # Through the WAL, the append checkpoints in its own commit (no checkpoint asked after it).
        assert seen == {"append": [mode], "adopt": [], "checkpoint": []}
        assert _header(store) == WAL
        assert ledger.projector.position() == ledger.app.log_head() == events_of()
    finally:
        ledger.close()


def test_a_failure_inside_the_window_leaves_the_store_in_wal_mode(tmp_path, clock, beside_always, monkeypatch):
    path = _jsonl(tmp_path / "in.jsonl", postings())
    ledger, store = _store(tmp_path, "store", clock)

    def adopt(self):
        assert _header(store) == ROLLBACK
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(import_beside.BesideProjection, "adopt", adopt)
    try:
        with pytest.raises(RuntimeError, match="disk"):
            import_file(ledger, path, chunk_postings=5)
        assert _header(store) == WAL
        assert ledger.app.log_head() == events_of()  # the log's copy was committed before
    finally:
        ledger.close()
    again, _ = _store(tmp_path, "store", clock)
    try:
        again.catch_up()
        assert again.projector.position() == events_of()
    finally:
        again.close()


def test_a_store_open_elsewhere_is_not_taken_out_of_wal_mode(tmp_path):
    store = _new_store(tmp_path)
    engine = make_engine(f"sqlite:///{store}")
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT COUNT(*) FROM t").scalar()
        with rollback_journal(store) as held:
            assert held is False and _header(store) == WAL
    with rollback_journal(store) as held:  # the engine's connection is back in its pool, still open
        assert held is False
    engine.dispose()
    with rollback_journal(store) as held:
        assert held is True and _header(store) == ROLLBACK
        # This process's own new connections leave the store as it is held.
        with engine.connect() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            conn.commit()
        assert _header(store) == ROLLBACK
    assert _header(store) == WAL
    engine.dispose()


def _hold(store: Path, wrote: threading.Event, release: threading.Event) -> None:
    """Hold the store out of WAL mode with a write transaction open until `release`."""
    with rollback_journal(store) as held:
        assert held
        conn = sqlite3.connect(store, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (1)")
            wrote.set()
            release.wait(30)
            conn.execute("COMMIT")
        finally:
            conn.close()


def _new_store(tmp_path: Path) -> Path:
    store = tmp_path / "s.sqlite"
    engine = make_engine(f"sqlite:///{store}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x)")
    engine.dispose()
    return store


def test_a_connection_opening_the_store_while_it_is_held_waits_and_puts_it_back_in_wal_mode(tmp_path):
    store = _new_store(tmp_path)
    wrote, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(store, wrote, release))
    holder.start()
    try:
        assert wrote.wait(10)
        conn = sqlite3.connect(store, isolation_level=None, timeout=5)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):  # what SQLite does alone
                conn.execute("PRAGMA journal_mode=WAL")
            assert ensure_wal(conn, timeout=0.2) == "delete"  # gives up after its timeout
            threading.Timer(0.3, release.set).start()
            t = time.monotonic()
            assert ensure_wal(conn, timeout=10) == "wal"  # waits for the writer's end
            assert time.monotonic() - t >= 0.2
        finally:
            conn.close()
    finally:
        release.set()
        holder.join()
    assert _header(store) == WAL


def test_another_process_opening_a_ledger_while_the_store_is_held_does_not_fail(tmp_path):
    store = _new_store(tmp_path)
    wrote, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(store, wrote, release))
    holder.start()
    marker = tmp_path / "opening"
    script = (
        "import pathlib, sys\n"
        "from adapters.ledger import Ledger\n"
        f"pathlib.Path({str(marker)!r}).touch()\n"
        f"ledger = Ledger('sqlite:///{store}')\n"
        "print(ledger.app.log_head())\n"
        "ledger.close()\n"
    )
    try:
        assert wrote.wait(10)
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, cwd=Path(__file__).parents[2], env=_env())
        deadline = time.monotonic() + 60
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the child is opening the store while it is held, a write open
        assert child.poll() is None  # still waiting
        release.set()
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        assert out.strip() == "0"
    finally:
        release.set()
        holder.join()
    assert _header(store) == WAL


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    src = str(Path(__file__).parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_the_event_stores_idle_connections_are_closed_and_one_in_use_is_reported(tmp_path, clock):
    ledger, _ = _store(tmp_path, "store", clock)
    try:
        pool = ledger.app.recorder.datastore.pool
        ledger.app.log_head()
        assert pool.num_in_pool >= 1
        with ledger.app.recorder.datastore.get_connection(commit=False):
            assert ledger.app.close_idle_connections() is False
        assert pool.num_in_pool == 1  # the one put back
        assert ledger.app.close_idle_connections() is True
        assert pool.num_in_pool == 0
        assert ledger.app.log_head() == 0  # opened again when next needed
    finally:
        ledger.close()


def test_a_process_dying_while_it_holds_the_store_leaves_it_whole_and_back_in_wal_mode_when_next_opened(
        tmp_path, clock):
    """Killed inside a write with the store out of WAL mode: a hot journal is left beside the
    store, in rollback-journal mode. The next ledger opening it rolls the write back (SQLite)
    and puts the store back in WAL mode (the engine's connections)."""
    store = _new_store(tmp_path)
    script = (
        "import os, sqlite3\n"
        "from adapters.database import rollback_journal\n"
        f"with rollback_journal({str(store)!r}) as held:\n"
        "    assert held\n"
        f"    conn = sqlite3.connect({str(store)!r}, isolation_level=None)\n"
        "    conn.execute('PRAGMA cache_size=10')\n"
        "    conn.execute('BEGIN IMMEDIATE')\n"
        "    conn.execute('INSERT INTO t VALUES (0)')\n"
        "    conn.execute('INSERT INTO t SELECT randomblob(4000) FROM (WITH RECURSIVE n(i) AS "
        "(SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) SELECT i FROM n)')\n"
        "    os._exit(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env(), timeout=60)
    assert done.returncode == 3, done.stderr
    assert _header(store) == ROLLBACK
    assert Path(str(store) + "-journal").exists()  # hot: its writer died
    ledger = Ledger(f"sqlite:///{store}", clock=clock)
    try:
        assert _header(store) == WAL
        with ledger.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM t").scalar() == 0
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        assert not Path(str(store) + "-journal").exists()
    finally:
        ledger.close()

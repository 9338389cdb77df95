"""The read model of a first load built beside its staging, in a second process, and
adopted once the log is written (ADR 0027): the same read model, row for row, as projecting
the log after the import; and, whenever the store is not what the second process assumed
(another writer, a read model already there, a failed process), nothing adopted and the
log projected as before.

`MIN_BYTES` is set to 0 so that a few dozen lines take the path a national file takes;
small `chunk_postings` make the staging hand the process many chunks.
"""

from __future__ import annotations

import glob
import os
import sqlite3
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import select

import adapters.import_beside as import_beside
from adapters.importers import InvalidImport, import_file
from adapters.ledger import Ledger
from projections.beside import NotAdopted, adopt
from projections.projector import digest
from projections.tables import BULK_INDEXES, evidence
from tests.integration.test_bulk_import import EARLIER, _jsonl, _meddle, events_of, postings


@pytest.fixture
def beside_always(monkeypatch):
    monkeypatch.setattr(import_beside, "MIN_BYTES", 0)
    adopted: list[bool] = []
    real = import_beside.BesideProjection.adopt

    def spy(self):
        adopted.append(real(self))
        return adopted[-1]

    monkeypatch.setattr(import_beside.BesideProjection, "adopt", spy)
    return adopted


def _sqlite(tmp_path: Path, name: str, clock) -> Ledger:
    return Ledger(f"sqlite:///{tmp_path}/{name}.sqlite", clock=clock)


def _indexes(ledger: Ledger) -> set[str]:
    with ledger.engine.connect() as conn:
        return {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='index'")}


def _leftovers() -> list[str]:
    return glob.glob(os.path.join(tempfile.gettempdir(), "csa-import-*.rm*"))


def test_the_read_model_built_beside_is_the_one_projecting_the_log_builds(tmp_path, clock, beside_always):
    path = _jsonl(tmp_path / "in.jsonl", postings())
    before = set(_leftovers())
    after, beside = _sqlite(tmp_path, "after", clock), _sqlite(tmp_path, "beside", clock)
    try:
        import_file(after, path, chunk_postings=5, beside=False)
        assert beside_always == []  # not started: nothing to adopt
        report = import_file(beside, path, chunk_postings=5)
        assert beside_always == [True]
        assert report.recorded == len(postings())
        assert beside.projector.position() == beside.app.log_head() == events_of()
        assert digest(beside.engine) == digest(after.engine)
        with beside.engine.connect() as b, after.engine.connect() as a:
            order = (evidence.c.item_id, evidence.c.version)
            assert list(b.execute(select(evidence).order_by(*order))) == list(a.execute(select(evidence).order_by(*order)))
        assert {ix.name for ix in BULK_INDEXES} <= _indexes(beside)  # built once, after the copy
        assert set(_leftovers()) == before  # its file is gone
        # The store goes on as any other: the next posting is projected on top.
        beside.record([{"type": "provider_closed", "client_id": "c-9", "urn": "U9", "occurred_on": "2011-09-01"}],
                      default_actor="t")
        assert beside.projector.position() == beside.app.log_head() == events_of() + 2
    finally:
        after.close()
        beside.close()


def test_not_started_on_a_store_that_holds_events(tmp_path, clock, beside_always):
    ledger = _sqlite(tmp_path, "s", clock)
    try:
        ledger.record(EARLIER, default_actor="t")
        import_file(ledger, _jsonl(tmp_path / "in.jsonl", postings()), chunk_postings=5)
        assert beside_always == []
        assert ledger.projector.position() == ledger.app.log_head() == 2 + events_of()
    finally:
        ledger.close()


def test_not_started_for_a_small_file(tmp_path, clock, monkeypatch):
    ledger = _sqlite(tmp_path, "s", clock)
    started = []
    monkeypatch.setattr(import_beside.BesideProjection, "__init__",
                        lambda self, *a: started.append(a) or pytest.fail("started"))
    try:
        import_file(ledger, _jsonl(tmp_path / "in.jsonl", postings()), chunk_postings=5)
        assert started == []
        assert ledger.projector.position() == events_of()
    finally:
        ledger.close()


def test_not_used_on_postgresql(pg_url, clock, tmp_path, beside_always):
    ledger = Ledger(pg_url, clock=clock)
    try:
        assert not import_beside.possible(ledger, _jsonl(tmp_path / "in.jsonl", postings()))
        import_file(ledger, tmp_path / "in.jsonl", chunk_postings=5)
        assert beside_always == []
        assert ledger.projector.position() == events_of()
    finally:
        ledger.close()


def test_another_writer_before_the_write_means_nothing_is_adopted_and_the_log_is_projected(
        tmp_path, clock, monkeypatch, beside_always):
    url = f"sqlite:///{tmp_path}/s.sqlite"
    ledger = Ledger(url, clock=clock)
    reference = _sqlite(tmp_path, "reference", clock)
    try:
        _meddle(monkeypatch, url, clock, EARLIER)  # its events come first: the positions move by 2
        report = import_file(ledger, _jsonl(tmp_path / "in.jsonl", postings()), chunk_postings=5)
        assert report.recorded == len(postings())
        assert beside_always == [False]
        assert ledger.projector.position() == ledger.app.log_head() == 2 + events_of()
        monkeypatch.undo()
        reference.record(EARLIER, default_actor="other", project=False)
        import_file(reference, tmp_path / "in.jsonl", chunk_postings=5, beside=False)
        assert digest(ledger.engine) == digest(reference.engine)
    finally:
        ledger.close()
        reference.close()


@pytest.mark.parametrize(("broken", "error"), [
    ("project_rows", RuntimeError("out of disk")),  # the forked process fails
    ("adopt", sqlite3.OperationalError("database is locked")),  # the store's write lock not had in time
])
def test_a_failure_beside_leaves_the_projection_to_after_the_write(tmp_path, clock, monkeypatch, beside_always,
                                                                  broken, error):
    def fail(*_args, **_kw):
        raise error

    monkeypatch.setattr(import_beside, broken, fail)
    ledger, reference = _sqlite(tmp_path, "s", clock), _sqlite(tmp_path, "reference", clock)
    try:
        report = import_file(ledger, _jsonl(tmp_path / "in.jsonl", postings()), chunk_postings=5)
        assert report.recorded == len(postings())
        assert beside_always == [False]
        import_file(reference, tmp_path / "in.jsonl", chunk_postings=5, beside=False)
        assert ledger.projector.position() == events_of()
        assert digest(ledger.engine) == digest(reference.engine)
    finally:
        ledger.close()
        reference.close()


def test_an_invalid_file_writes_nothing_and_leaves_no_process_or_file(tmp_path, clock, beside_always):
    ledger = _sqlite(tmp_path, "s", clock)
    before = set(_leftovers())
    bad = {"type": "provider_inspection", "client_id": "i-x", "urn": "NOPE", "occurred_on": "2011-03-01",
           "overall_effectiveness": "good"}
    try:
        with pytest.raises(InvalidImport):
            import_file(ledger, _jsonl(tmp_path / "in.jsonl", [*postings(), bad]), chunk_postings=5)
        assert ledger.app.log_head() == 0 and ledger.projector.position() == 0
        assert beside_always == []
        assert set(_leftovers()) == before
        import multiprocessing
        assert not [p for p in multiprocessing.active_children() if p.name == "csa-import-projection"]
    finally:
        ledger.close()


def test_adopt_refuses_a_store_whose_read_model_is_not_empty_and_writes_nothing(tmp_path, clock):
    """The check inside adopt's transaction: rows built for positions 1..n are copied only
    into an empty read model over a log that ends at n."""
    built = _sqlite(tmp_path, "built", clock)
    target = _sqlite(tmp_path, "target", clock)
    try:
        built.record(postings(), default_actor="t")
        target.record(postings(), default_actor="t")  # projected already
        n = target.app.log_head()
        before = digest(target.engine)
        db = str(tmp_path / "built.sqlite")
        with pytest.raises(NotAdopted):
            adopt(target.engine, str(tmp_path / "target.sqlite"), target.app.recorder.events_table_name, db, n)
        with pytest.raises(NotAdopted):  # the log ends elsewhere
            adopt(target.engine, str(tmp_path / "target.sqlite"), target.app.recorder.events_table_name, db, n - 1)
        assert digest(target.engine) == before
    finally:
        built.close()
        target.close()


def test_the_copy_is_a_transfer_of_whole_records_the_store_is_whole_after(tmp_path, clock, beside_always):
    """The store's read model and the one built beside have the same columns and indexes, so
    SQLite copies whole records and index entries (nothing is built after); the store passes
    SQLite's own integrity check, indexes included."""
    from projections.beside import _shape, build_indexes, log_path, private_engine

    ledger = _sqlite(tmp_path, "s", clock)
    built = private_engine(tmp_path / "built.sqlite")
    built.dispose()
    build_indexes(tmp_path / "built.sqlite")
    try:
        with ledger.engine.connect() as conn:
            raw = conn.connection.driver_connection
            raw.execute("ATTACH DATABASE ? AS beside", (str(tmp_path / "built.sqlite"),))
            raw.execute("ATTACH DATABASE ? AS beside_log", (log_path(tmp_path / "built.sqlite"),))
            # ADR 0039: the event log's table is in the second file only, the rest in the first
            for t, schema in (("rm_evidence", "beside"), ("rm_event_log", "beside_log")):
                assert _shape(raw, "main", t) == _shape(raw, schema, t)
                assert _shape(raw, "main", t)[1]  # it has indexes to compare
            assert _shape(raw, "beside", "rm_event_log") == ([], [])
            assert _shape(raw, "beside_log", "rm_evidence") == ([], [])
            raw.execute("DETACH DATABASE beside")
            raw.execute("DETACH DATABASE beside_log")
        import_file(ledger, _jsonl(tmp_path / "in.jsonl", postings()), chunk_postings=5)
        assert beside_always == [True]
        with ledger.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            plan = " ".join(r[-1] for r in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT * FROM rm_evidence WHERE la_code = '886' AND kind = 'provider_registered'"))
            assert "ix_rm_evidence_la_kind" in plan  # the copied index is there and used
    finally:
        built.dispose()
        ledger.close()



def test_the_logs_pages_are_checkpointed_beside_the_adoption_and_the_file_is_whole_after(
        tmp_path, clock, beside_always, monkeypatch):
    """ADR 0031: a first load's log is committed without its checkpoint, which a second thread
    runs while the read model built beside is adopted; once the import returns, the store's file
    itself (without its WAL) holds the log and the read model. (That is the first load through
    the WAL: here another connection has the store open, so it cannot be held out of WAL mode,
    ADR 0040.)"""
    import shutil
    import threading

    from adapters.eventstore import LedgerApplication

    appends, order = [], []
    real_append, real_checkpoint = LedgerApplication.append_staged, LedgerApplication.checkpoint
    real_adopt = import_beside.BesideProjection.adopt

    def append(self, scratch, first, last, head, **kw):
        appends.append(kw.get("checkpoint", True))
        return real_append(self, scratch, first, last, head, **kw)

    def checkpoint(self):
        order.append(("checkpoint", threading.current_thread().name))
        return real_checkpoint(self)

    def adopt(self):
        adopted = real_adopt(self)
        order.append(("adopted", adopted))
        return adopted

    monkeypatch.setattr(LedgerApplication, "append_staged", append)
    monkeypatch.setattr(LedgerApplication, "checkpoint", checkpoint)
    monkeypatch.setattr(import_beside.BesideProjection, "adopt", adopt)
    path = _jsonl(tmp_path / "in.jsonl", postings())
    ledger = _sqlite(tmp_path, "store", clock)
    other = sqlite3.connect(tmp_path / "store.sqlite")
    other.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens the WAL's index
    try:
        import_file(ledger, path, chunk_postings=5)
        assert beside_always == [True]
        assert appends == [False]  # the one copy of the whole scratch, its checkpoint left to the thread
        # The log's checkpoint began in its own thread before the adoption was over; the last
        # one ran after it, in the importing thread.
        assert order == [("checkpoint", "csa-import-checkpoint"), ("adopted", True),
                         ("checkpoint", threading.current_thread().name)]
        shutil.copyfile(tmp_path / "store.sqlite", tmp_path / "file-only.sqlite")  # not the -wal
        with ledger.engine.connect() as conn:
            rows = {t: conn.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar() for t in ("rm_evidence", "rm_event_log")}
    finally:
        other.close()
        ledger.close()
    assert min(rows.values()) > 0
    conn = sqlite3.connect(tmp_path / "file-only.sqlite")
    try:
        assert conn.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0] == events_of()
        assert {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in rows} == rows
        assert conn.execute("SELECT position FROM rm_projector_position").fetchone()[0] == events_of()
    finally:
        conn.close()


def test_without_a_read_model_beside_the_first_loads_append_checkpoints_itself(tmp_path, clock, monkeypatch):
    from adapters.eventstore import LedgerApplication

    appends = []
    real_append = LedgerApplication.append_staged

    def append(self, scratch, first, last, head, **kw):
        appends.append(kw.get("checkpoint", True))
        return real_append(self, scratch, first, last, head, **kw)

    monkeypatch.setattr(LedgerApplication, "append_staged", append)
    ledger = _sqlite(tmp_path, "store", clock)
    try:
        import_file(ledger, _jsonl(tmp_path / "in.jsonl", postings()), chunk_postings=5, beside=False)
        assert appends == [True]
        assert ledger.projector.position() == ledger.app.log_head() == events_of()
    finally:
        ledger.close()


def test_the_private_read_model_file_has_a_stores_page_size(tmp_path):
    """ADR 0038: the file the read model is projected into beside the staging has 16 KiB pages
    (a store's, ADR 0031), not SQLite's default 4 KiB, so its ~1 GB is written and read back in
    a quarter as many system calls."""
    from adapters.database import SQLITE_PAGE_SIZE
    from projections.beside import PRIVATE_PAGE_SIZE, private_engine

    assert PRIVATE_PAGE_SIZE == SQLITE_PAGE_SIZE
    built = private_engine(tmp_path / "built.sqlite")
    built.dispose()
    conn = sqlite3.connect(tmp_path / "built.sqlite")
    try:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == PRIVATE_PAGE_SIZE
    finally:
        conn.close()


def test_the_private_read_models_indexes_are_built_on_two_threads_each_table_reported(tmp_path):
    """ADR 0039: the event log's table is in a second file, so its five indexes are built on one
    thread while the other table's two are built on another; each table is reported once its
    own indexes are all there."""
    import threading

    from projections.beside import build_indexes, log_path, private_engine

    built = private_engine(tmp_path / "built.sqlite")
    built.dispose()
    reported: list[tuple[str, threading.Thread]] = []
    build_indexes(tmp_path / "built.sqlite", lambda t: reported.append((t, threading.current_thread())))
    assert sorted(t for t, _ in reported) == ["rm_event_log", "rm_evidence"]
    threads = [th for _, th in reported]
    assert threads[0] is not threads[1] and threading.main_thread() not in threads  # each on a thread of its own
    for path, table in ((tmp_path / "built.sqlite", "rm_evidence"), (log_path(tmp_path / "built.sqlite"), "rm_event_log")):
        conn = sqlite3.connect(path)
        try:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                                                (table,)) if not r[0].startswith("sqlite_")}
        finally:
            conn.close()
        assert names == {ix.name for ix in BULK_INDEXES if ix.table.name == table}


def test_each_table_is_copied_once_built_and_a_table_never_built_leaves_nothing_adopted(tmp_path, clock):
    """The adoption copies a table as soon as the process reports it built, in one transaction:
    if the next table never comes (the process died), nothing at all is in the store's read
    model, and the import's catch-up projects the log."""
    from projections.beside import build_indexes, private_engine

    built = _sqlite(tmp_path, "built", clock)
    target = _sqlite(tmp_path, "target", clock)
    try:
        built.record(postings(), default_actor="t")
        n = built.app.log_head()
        # A private read model with the rows of `built` (the target's log holds the same events).
        private = private_engine(tmp_path / "private.sqlite")
        private.dispose()
        conn = sqlite3.connect(tmp_path / "private.sqlite")
        try:
            conn.execute("ATTACH DATABASE ? AS b", (str(tmp_path / "built.sqlite"),))
            conn.execute("ATTACH DATABASE ? AS beside_log", (str(tmp_path / "private.sqlite-log"),))
            for t in ("rm_evidence", "rm_projector_position"):
                conn.execute(f"INSERT INTO main.{t} SELECT * FROM b.{t}")
            conn.execute("INSERT INTO beside_log.rm_event_log SELECT * FROM b.rm_event_log")
            conn.commit()
        finally:
            conn.close()
        build_indexes(tmp_path / "private.sqlite")
        target.record(postings(), default_actor="t", project=False)  # the same events, unprojected
        assert target.app.log_head() == n and target.projector.position() == 0

        asked: list[str] = []

        def dies_after_the_first(table: str) -> None:
            asked.append(table)
            if table == "rm_event_log":
                raise NotAdopted("the projecting process ended")

        with pytest.raises(NotAdopted):
            adopt(target.engine, str(tmp_path / "target.sqlite"), target.app.recorder.events_table_name,
                  tmp_path / "private.sqlite", n, ready=dies_after_the_first)
        assert asked == ["rm_evidence", "rm_evidence", "rm_event_log"]  # the rows, then each table in turn
        with target.engine.connect() as c:
            assert c.exec_driver_sql("SELECT COUNT(*) FROM rm_evidence").scalar() == 0  # rolled back
        assert target.projector.position() == 0

        asked.clear()
        adopt(target.engine, str(tmp_path / "target.sqlite"), target.app.recorder.events_table_name,
              tmp_path / "private.sqlite", n, ready=asked.append)
        assert asked == ["rm_evidence", "rm_evidence", "rm_event_log"]
        assert target.projector.position() == n
        assert digest(target.engine) == digest(built.engine)
    finally:
        built.close()
        target.close()


def test_a_process_that_dies_between_the_tables_leaves_the_projection_to_after_the_write(
        tmp_path, clock, monkeypatch, beside_always):
    """The projecting process reports the first table built, then fails building the other's
    indexes: the adoption has copied the first table but commits nothing; the import projects
    the log after the write, and the read model is the one a rebuild makes."""
    from projections.beside import build_indexes

    def half(path, ready=None):
        build_indexes(path, lambda t: ready(t) if t == "rm_evidence" else None)
        raise RuntimeError("out of disk")

    monkeypatch.setattr(import_beside, "build_indexes", half)
    ledger, reference = _sqlite(tmp_path, "s", clock), _sqlite(tmp_path, "reference", clock)
    try:
        report = import_file(ledger, _jsonl(tmp_path / "in.jsonl", postings()), chunk_postings=5)
        assert report.recorded == len(postings())
        assert beside_always == [False]
        import_file(reference, tmp_path / "in.jsonl", chunk_postings=5, beside=False)
        assert ledger.projector.position() == ledger.app.log_head() == events_of()
        assert digest(ledger.engine) == digest(reference.engine)
    finally:
        ledger.close()
        reference.close()


def test_the_rows_are_built_at_a_lower_priority_and_the_indexes_at_the_importers(
        tmp_path, clock, monkeypatch, beside_always):
    """ADR 0039: the projecting process builds the rows on a thread niced by NICE (while the
    staging runs) and the indexes from its first thread, not niced (the import waits for them)."""
    from projections.beside import build_indexes, project_rows

    seen = tmp_path / "niceness"

    def rows(*args, **kw):
        with open(seen, "a") as f:
            f.write(f"rows {os.getpriority(os.PRIO_PROCESS, 0)}\n")
        return project_rows(*args, **kw)

    def indexes(path, ready=None):
        with open(seen, "a") as f:
            f.write(f"indexes {os.getpriority(os.PRIO_PROCESS, 0)}\n")
        build_indexes(path, ready)

    monkeypatch.setattr(import_beside, "project_rows", rows)
    monkeypatch.setattr(import_beside, "build_indexes", indexes)
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    ledger = _sqlite(tmp_path, "s", clock)
    try:
        import_file(ledger, _jsonl(tmp_path / "in.jsonl", postings()), chunk_postings=5)
        assert beside_always == [True]
    finally:
        ledger.close()
    assert seen.read_text().split("\n")[:2] == [f"rows {min(mine + import_beside.NICE, 19)}", f"indexes {mine}"]


def test_the_private_read_models_index_builds_do_not_sync_the_file(tmp_path, monkeypatch):
    """ADR 0043: the rows are written unsynced (the file is rebuilt, never recovered), and so are
    the indexes: each CREATE INDEX's commit would otherwise wait for the whole file, ~1 GB still in
    the page cache on the national set, to reach the disk while the import waits for the indexes."""
    import projections.beside as beside
    from projections.beside import build_indexes, private_engine

    built = private_engine(tmp_path / "built.sqlite")
    built.dispose()
    real = sqlite3.connect
    connections: list[sqlite3.Connection] = []
    statements: dict[int, list[str]] = {}

    def connect(*args, **kw):
        conn = real(*args, **kw)
        connections.append(conn)
        seen = statements.setdefault(id(conn), [])
        conn.set_trace_callback(seen.append)
        return conn

    monkeypatch.setattr(beside.sqlite3, "connect", connect)
    build_indexes(tmp_path / "built.sqlite")
    assert len(connections) == 2  # one a file
    for seen in statements.values():
        creates = [i for i, s in enumerate(seen) if s.startswith("CREATE INDEX")]
        assert creates
        assert any(s.upper().replace(" ", "") == "PRAGMASYNCHRONOUS=OFF" for s in seen[:creates[0]]), seen

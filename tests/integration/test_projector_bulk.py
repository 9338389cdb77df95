"""The bulk rebuild's two threads (issue 5): a builder reads, decodes and builds page N+1
while a writer thread commits page N. They must give the read model a page-by-page run
gives, commit every page's rows with its position in one transaction and in log order,
and leave a consistent read model (that of a page-by-page run up to its position) when
either thread fails or another projector moves the position meanwhile.

These tests pin the writer to a thread (on SQLite a bulk run's writer is a child process
by default, ADR 0035: tests/integration/test_projector_writer_process.py), so that they can
watch each page's transaction from within the process."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import inspect

import projections.projector as projector
from adapters.database import make_engine
from adapters.generate import generate
from adapters.importers import import_file
from projections.projector import Projector, create_read_model, digest
from projections.tables import BULK_INDEXES


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    path = tmp_path_factory.mktemp("bulk") / "small.jsonl"
    generate("small", path, seed=2011)  # ~3,600 events: follow-ups far from what they follow
    return path


@pytest.fixture
def loaded(ledger, small_set):
    import_file(ledger, small_set)
    ledger.catch_up()
    return ledger


@pytest.fixture
def bulk(monkeypatch):
    monkeypatch.setattr(projector, "BULK_WRITER_PROCESS", False)
    monkeypatch.setattr(projector, "BULK_WRITER_PROCESS_PG", False)
    monkeypatch.setattr(projector, "BULK_THRESHOLD", 1)
    monkeypatch.setattr(projector, "BULK_PAGE_EVENTS", 1)  # pages of the batch size the test sets: many pages


def test_a_bulk_runs_pages_are_at_least_bulk_page_events(loaded, monkeypatch):
    """ADR 0032: on SQLite a bulk run reads (and commits) pages of BULK_PAGE_EVENTS events even
    where the projector's own batch is smaller; on PostgreSQL it keeps the batch."""
    monkeypatch.setattr(projector, "BULK_THRESHOLD", 1)
    monkeypatch.setattr(projector, "BULK_PAGE_EVENTS", 40)
    log = loaded.projector.log_position()
    assert log > 80
    loaded.projector.batch_size = 7
    batches: list[int] = []
    assert loaded.rebuild(on_batch=batches.append) == log
    sqlite = loaded.engine.dialect.name == "sqlite"
    assert max(batches) == (40 if sqlite else 7) and sum(batches) == log


def page_by_page(ledger, until: int, tmp_path, name: str = "scratch") -> tuple[str, dict[str, int]]:
    """The digest of a read model built page by page (no bulk run) up to `until`."""
    engine = make_engine(f"sqlite:///{tmp_path}/{name}.sqlite")
    create_read_model(engine)
    p = Projector(ledger.app, engine, 97)
    p._start_bulk = lambda until: False  # noqa: SLF001 - the plain catch-up loop
    p.run(until=until)
    try:
        return digest(engine)
    finally:
        engine.dispose()


def index_names(ledger) -> set[str]:
    with ledger.engine.connect() as conn:
        insp = inspect(conn)
        return {ix["name"] for t in ("rm_evidence", "rm_event_log") for ix in insp.get_indexes(t)}


def spy_positions(monkeypatch) -> list[tuple[int, str]]:
    """Every position written, with the thread that wrote it."""
    seen: list[tuple[int, str]] = []
    real = projector.write_position

    def write_position(conn, position):
        seen.append((position, threading.current_thread().name))
        return real(conn, position)

    monkeypatch.setattr(projector, "write_position", write_position)
    return seen


@pytest.mark.parametrize("batch_size", [7, 250])
def test_the_bulk_rebuild_gives_the_live_read_model(loaded, bulk, monkeypatch, batch_size):
    live = digest(loaded.engine)
    log = loaded.projector.log_position()
    positions = spy_positions(monkeypatch)
    loaded.projector.batch_size = batch_size
    batches: list[int] = []
    assert loaded.rebuild(on_batch=batches.append) == log
    assert digest(loaded.engine) == live
    assert sum(batches) == log and max(batches) == batch_size
    # one transaction per page, written by the writer thread, in log order, page after page
    assert [p for p, _ in positions] == sorted({p for p, _ in positions})
    assert {t for _, t in positions} == {"projector-writer"}
    assert positions[-1][0] == log and len(positions) == len(batches)
    assert {ix.name for ix in BULK_INDEXES} <= index_names(loaded)
    assert not [t for t in threading.enumerate() if t.name.startswith("projector-")]


def test_a_bulk_run_up_to_a_position_stops_there(loaded, bulk, tmp_path):
    """`csa verify` builds its scratch read model with `run(until=…)`."""
    until = loaded.projector.log_position() * 2 // 3
    engine = make_engine(f"sqlite:///{tmp_path}/bulk.sqlite")
    create_read_model(engine)
    Projector(loaded.app, engine, 101).run(until=until)
    try:
        with engine.connect() as conn:
            assert projector.read_position(conn) == until
        assert digest(engine) == page_by_page(loaded, until, tmp_path)
    finally:
        engine.dispose()


def test_a_failing_writer_leaves_the_read_model_at_the_end_of_a_page(loaded, bulk, monkeypatch, tmp_path):
    live = digest(loaded.engine)
    positions = spy_positions(monkeypatch)
    real = projector._Page.write
    calls = []

    def write(page, bulk=False):
        calls.append(1)
        if len(calls) == 4:
            raise OSError("disk full")
        return real(page, bulk)

    monkeypatch.setattr(projector._Page, "write", write)
    loaded.projector.batch_size = 113
    with pytest.raises(OSError, match="disk full"):
        loaded.rebuild()
    position = loaded.projector.position()
    assert position == positions[2][0] == 3 * 113  # three pages committed, the fourth rolled back
    assert digest(loaded.engine) == page_by_page(loaded, position, tmp_path)
    assert {ix.name for ix in BULK_INDEXES} <= index_names(loaded)
    assert not [t for t in threading.enumerate() if t.name.startswith("projector-")]
    monkeypatch.setattr(projector._Page, "write", real)
    loaded.catch_up()
    assert digest(loaded.engine) == live


def test_a_failing_builder_leaves_the_read_model_at_the_end_of_a_page(loaded, bulk, monkeypatch, tmp_path):
    live = digest(loaded.engine)
    real = projector._Page.apply
    calls = []

    def apply(page, rows):
        calls.append(1)
        if len(calls) == 6:
            raise ValueError("undecodable")
        return real(page, rows)

    monkeypatch.setattr(projector._Page, "apply", apply)
    loaded.projector.batch_size = 89
    with pytest.raises(ValueError, match="undecodable"):
        loaded.rebuild()
    position = loaded.projector.position()
    assert position % 89 == 0 and position <= 5 * 89
    assert digest(loaded.engine) == page_by_page(loaded, position, tmp_path)
    assert not [t for t in threading.enumerate() if t.name.startswith("projector-")]
    monkeypatch.setattr(projector._Page, "apply", real)
    loaded.catch_up()
    assert digest(loaded.engine) == live


def test_another_projector_moving_the_position_ends_the_bulk_part(loaded, bulk, monkeypatch):
    """A second projector applies a page while the bulk run is under way: the bulk run's
    writer finds the position moved, writes nothing more, and the run goes on page by page."""
    live = digest(loaded.engine)
    positions = spy_positions(monkeypatch)
    other = Projector(loaded.app, loaded.engine, 50)
    moved: list[int] = []

    def on_batch(n):
        if not moved:
            moved.append(other.run_batch())

    loaded.projector.batch_size = 50
    loaded.rebuild(on_batch=on_batch)
    assert moved == [50]
    assert [p for p, _ in positions] == sorted({p for p, _ in positions})  # no page applied twice
    writers = [t for _, t in positions]
    assert writers[0] == "projector-writer" and writers[-1] == "MainThread"  # the rest page by page
    assert loaded.projector.position() == loaded.projector.log_position()
    assert digest(loaded.engine) == live

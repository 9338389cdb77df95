"""A bulk run's writer as a child process, on SQLite (ADR 0035, `projections.page_writer`) and on
PostgreSQL (ADR 0036): each test that takes `loaded` runs on both stores. On PostgreSQL the builder
always overlaps the writes, so the `overlap=False` cases there run as the `True` ones.

The builder sends each page's rows to the child, which commits them with the read model's
position, one transaction a page, in log order. The read model must be the one a page-by-page
run gives; when the child fails, is killed, or finds the position moved by another projector,
the read model must be left at the end of a page, and the run must say why."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

import projections.projector as projector
from adapters.database import make_engine
from adapters.generate import generate
from adapters.importers import import_file
from projections.projector import Projector, create_read_model, digest


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    path = tmp_path_factory.mktemp("writer-process") / "small.jsonl"
    generate("small", path, seed=2011)
    return path


@pytest.fixture
def loaded(store_url, clock, small_set):
    """The small set on each store: on SQLite and on PostgreSQL a child writes (ADR 0035, 0036)."""
    from adapters.ledger import Ledger

    led = Ledger(store_url, clock=clock)
    import_file(led, small_set)
    led.catch_up()
    yield led
    led.close()


@pytest.fixture
def writers(monkeypatch) -> list[projector._ProcessWriter]:
    """Bulk runs of small pages; the process writers they start; no writer thread allowed."""
    monkeypatch.setattr(projector, "BULK_THRESHOLD", 1)
    monkeypatch.setattr(projector, "BULK_PAGE_EVENTS", 1)
    started: list[projector._ProcessWriter] = []
    real = projector._ProcessWriter.start

    def start(self):
        real(self)
        started.append(self)

    def no_thread(self, pipe):  # the writer thread must not write: fail the run, not hang it
        pipe.error = AssertionError("the writer thread was asked to write the pages")
        while pipe.queue.get() is not None:
            pipe.written.release()

    monkeypatch.setattr(projector._ProcessWriter, "start", start)
    monkeypatch.setattr(Projector, "_write_pages", no_thread)
    return started


def page_by_page(ledger, until: int, tmp_path) -> tuple[str, dict[str, int]]:
    engine = make_engine(f"sqlite:///{tmp_path}/page-by-page.sqlite")
    create_read_model(engine)
    p = Projector(ledger.app, engine, 97)
    p._start_bulk = lambda until: False  # noqa: SLF001
    p.run(until=until)
    try:
        return digest(engine)
    finally:
        engine.dispose()


def position_now(ledger) -> int:
    with ledger.engine.connect() as conn:
        return projector.read_position(conn)


def no_helpers_left(writers) -> bool:
    return (not [t for t in threading.enumerate() if t.name.startswith("projector-")]
            and all(w.proc.poll() is not None for w in writers))


def test_the_child_writes_the_read_model_a_page_by_page_run_gives(loaded, writers, tmp_path):
    live = digest(loaded.engine)
    log = loaded.projector.log_position()
    loaded.projector.batch_size = 101
    seen: list[tuple[int, int]] = []  # (events reported, the position the store holds then)
    assert loaded.rebuild(on_batch=lambda n: seen.append((n, position_now(loaded)))) == log
    assert len(writers) == 1 and writers[0].proc.returncode == 0
    # each page reported once the child committed it, with its position, in log order
    assert [n for n, _ in seen[:-1]] == [101] * (len(seen) - 1) and sum(n for n, _ in seen) == log
    reached = [p for _, p in seen]
    assert reached == sorted(reached) and all(p % 101 == 0 or p == log for p in reached)
    assert position_now(loaded) == log
    assert digest(loaded.engine) == live == page_by_page(loaded, log, tmp_path)
    assert no_helpers_left(writers)


def test_a_failing_write_in_the_child_leaves_the_read_model_at_the_end_of_a_page(loaded, writers, tmp_path):
    live = digest(loaded.engine)
    loaded.projector.batch_size = 113
    sqlite = loaded.engine.dialect.name == "sqlite"
    with loaded.engine.begin() as conn:  # the store refuses the 4th page's rows
        if sqlite:
            conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON rm_event_log WHEN NEW.position > 339 "
                              "BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
        else:  # COPY fires row triggers too
            conn.execute(text("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                              "IF NEW.position > 339 THEN RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END $$"))
            conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON rm_event_log FOR EACH ROW "
                              "EXECUTE FUNCTION refuse()"))
    with pytest.raises(Exception, match="disk full") as failed:
        loaded.rebuild()
    # the child's own error, raised here: the driver's class
    assert type(failed.value).__module__.split(".")[0] == ("sqlite3" if sqlite else "psycopg")
    assert any("page writer process" in note for note in failed.value.__notes__)
    assert position_now(loaded) == 3 * 113  # three pages committed, the fourth rolled back
    assert digest(loaded.engine) == page_by_page(loaded, 3 * 113, tmp_path)
    assert no_helpers_left(writers)
    with loaded.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER refuse" + ("" if sqlite else " ON rm_event_log")))
    loaded.catch_up()  # page by page from where it stopped
    assert digest(loaded.engine) == live


def test_a_failing_builder_stops_the_child_at_the_end_of_a_page(loaded, writers, monkeypatch, tmp_path):
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
    position = position_now(loaded)
    assert position % 89 == 0 and position <= 5 * 89
    assert digest(loaded.engine) == page_by_page(loaded, position, tmp_path)
    assert writers[0].proc.returncode == 0  # told the run was over, not killed
    assert no_helpers_left(writers)
    monkeypatch.setattr(projector._Page, "apply", real)
    loaded.catch_up()
    assert digest(loaded.engine) == live


def count_pages(monkeypatch) -> list[int]:
    """How many pages the builder has built so far (one entry per page)."""
    built: list[int] = []
    real = projector._Page.apply

    def apply(page, rows):
        built.append(1)
        return real(page, rows)

    monkeypatch.setattr(projector._Page, "apply", apply)
    return built


@pytest.mark.parametrize("slow", ["", "receiver", "receiver and builder"])
@pytest.mark.parametrize("overlap", [True, False])
def test_a_killed_child_fails_the_run_at_once_and_leaves_committed_pages(loaded, writers, tmp_path, monkeypatch,
                                                                         overlap, slow):
    """Also with the builder waiting for each page to be written (`BULK_OVERLAP_SQLITE = False`):
    every page it handed over is accounted for, so it never waits for ever, and it stops within
    a page or two, not at the end of the log. Also when the receiver is slow to see the child
    gone (a busy machine: a thread waiting for the GIL): the sender, which finds the child's
    input closed, stops the builder itself. With a slow builder the sender is idle when the
    child is killed, and the queue has room for one more page."""
    monkeypatch.setattr(projector, "BULK_OVERLAP_SQLITE", overlap)
    if "builder" in slow:
        real_read = Projector._read_ahead

        def read_ahead(self, start, until):
            time.sleep(0.05)
            return real_read(self, start, until)

        monkeypatch.setattr(Projector, "_read_ahead", read_ahead)
    if "receiver" in slow:
        real_receive = projector.page_writer.receive

        def receive(stream):
            try:
                return real_receive(stream)
            except EOFError:
                time.sleep(0.5)
                raise

        monkeypatch.setattr(projector.page_writer, "receive", receive)
    live = digest(loaded.engine)
    loaded.projector.batch_size = 97
    built = count_pages(monkeypatch)
    at_kill: list[int] = []

    def kill(n):
        if not at_kill:
            at_kill.append(len(built))
            writers[0].proc.kill()
            writers[0].proc.wait()

    with pytest.raises(RuntimeError, match=r"page writer process ended \(exit code -9\)"):
        loaded.rebuild(on_batch=kill)
    assert len(built) <= at_kill[0] + 2 < loaded.projector.log_position() // 97
    position = position_now(loaded)
    assert position % 97 == 0 and position >= 97
    assert digest(loaded.engine) == page_by_page(loaded, position, tmp_path)
    assert no_helpers_left(writers)
    monkeypatch.undo()
    loaded.catch_up()
    assert digest(loaded.engine) == live


@pytest.mark.parametrize("overlap", [True, False])
def test_a_page_that_cannot_be_sent_fails_the_run_with_its_error(loaded, writers, monkeypatch, tmp_path, overlap):
    monkeypatch.setattr(projector, "BULK_OVERLAP_SQLITE", overlap)
    real = projector.page_writer.send
    sent: list[int] = []

    def send(stream, obj):
        if isinstance(obj, tuple):
            sent.append(1)
            if len(sent) == 3:
                raise MemoryError("no room for the third page")
        return real(stream, obj)

    monkeypatch.setattr(projector.page_writer, "send", send)
    built = count_pages(monkeypatch)
    loaded.projector.batch_size = 101
    with pytest.raises(MemoryError, match="third page"):
        loaded.rebuild()
    assert len(built) <= 6 < loaded.projector.log_position() // 101  # stopped at once
    assert position_now(loaded) == 2 * 101
    assert digest(loaded.engine) == page_by_page(loaded, 2 * 101, tmp_path)
    assert no_helpers_left(writers)


def test_a_child_that_exits_at_once_fails_the_run(loaded, writers, monkeypatch):
    monkeypatch.setattr(projector.sys, "executable", "/bin/false")
    live = digest(loaded.engine)
    with pytest.raises(RuntimeError, match=r"page writer process ended \(exit code 1\)"):
        loaded.rebuild()
    assert no_helpers_left(writers)
    monkeypatch.undo()
    loaded.catch_up()
    assert digest(loaded.engine) == live


def test_a_child_that_cannot_be_started_leaves_the_writing_to_a_thread(loaded, monkeypatch, caplog):
    monkeypatch.setattr(projector, "BULK_THRESHOLD", 1)
    monkeypatch.setattr(projector, "BULK_PAGE_EVENTS", 1)
    monkeypatch.setattr(projector.sys, "executable", "/no/such/python")
    live = digest(loaded.engine)
    loaded.projector.batch_size = 211
    assert loaded.rebuild() == loaded.projector.log_position()
    assert "could not be started" in caplog.text
    assert digest(loaded.engine) == live


def test_another_projector_moving_the_position_ends_the_childs_part(loaded, writers):
    """A second projector applies a page while the bulk run is under way: the child finds the
    position moved, writes nothing more, and the run goes on page by page."""
    live = digest(loaded.engine)
    other = Projector(loaded.app, loaded.engine, 50)
    moved: list[int] = []

    def on_batch(n):
        if not moved:
            moved.append(other.run_batch())

    loaded.projector.batch_size = 50
    loaded.rebuild(on_batch=on_batch)
    assert moved == [50]
    assert writers[0].proc.returncode == 0
    assert loaded.projector.position() == loaded.projector.log_position()
    assert digest(loaded.engine) == live
    assert no_helpers_left(writers)


def test_an_in_memory_store_or_the_switch_keeps_the_writer_thread(loaded, monkeypatch):
    p = loaded.projector
    if loaded.engine.dialect.name == "postgresql":
        config = p._writer_process_config()  # noqa: SLF001 - the child connects as the store's engine does
        assert config["conninfo"] == projector.pg_conninfo(loaded.engine)  # see test_the_childs_connection…
        assert p._writer_process_path() is None  # noqa: SLF001 - no file
        p.writer_process = False
        assert p._writer_process_config() is None  # noqa: SLF001
        p.writer_process = True
        monkeypatch.setattr(projector, "BULK_WRITER_PROCESS_PG", False)
        assert p._writer_process_config() is None  # noqa: SLF001
        return
    assert p._writer_process_path() is not None  # noqa: SLF001 - a store in a file: the child
    memory = Projector(loaded.app, make_engine("sqlite://"), 10)
    assert memory._writer_process_path() is None  # noqa: SLF001
    p.writer_process = False
    assert p._writer_process_path() is None  # noqa: SLF001
    p.writer_process = True
    monkeypatch.setattr(projector, "BULK_WRITER_PROCESS", False)
    assert p._writer_process_path() is None  # noqa: SLF001


@pytest.mark.parametrize("overlap", [True, False])
def test_a_child_that_cannot_open_the_store_fails_the_run_with_its_error(loaded, writers, monkeypatch, overlap):
    """The child answers the configuration with an error (no store at that path, no such
    database) and answers no page after it: the run fails with that error, also when the builder
    waits for its first page to be written."""
    monkeypatch.setattr(projector, "BULK_OVERLAP_SQLITE", overlap)
    real = Projector._writer_process_config

    def config(self):
        c = real(self)
        if "conninfo" in c:
            c["conninfo"] += " dbname=csa_no_such_database"
        else:
            c["path"] = "/no/such/directory/ledger.sqlite"
        return c

    monkeypatch.setattr(Projector, "_writer_process_config", config)
    live = digest(loaded.engine)
    with pytest.raises(Exception, match="csa_no_such_database|unable to open") as failed:
        loaded.rebuild()
    assert any("page writer process" in note for note in failed.value.__notes__)
    assert position_now(loaded) == 0
    assert no_helpers_left(writers)
    monkeypatch.undo()
    loaded.catch_up()
    assert digest(loaded.engine) == live


def test_the_childs_connection_is_the_engines_own(pg_url, clock, small_set, monkeypatch):
    """A password and an option with spaces reach libpq as they are (the server trusts this
    test's connections, so any password is accepted, but a URL would not even parse)."""
    from psycopg.conninfo import conninfo_to_dict

    from adapters.ledger import Ledger

    monkeypatch.setattr(projector, "BULK_THRESHOLD", 1)
    url = make_url(pg_url).set(password="a b'c\\d", query={"application_name": "csa rebuild",
                                                          "options": "-c statement_timeout=600000"})
    led = Ledger(url.render_as_string(hide_password=False), clock=clock)
    try:
        import_file(led, small_set)
        led.catch_up()
        live = digest(led.engine)
        p = led.projector
        expected = {k: str(v) for k, v in led.engine.dialect.create_connect_args(led.engine.url)[1].items()
                    if isinstance(v, (str, int))}
        assert conninfo_to_dict(p._writer_process_config()["conninfo"]) == expected  # noqa: SLF001
        assert expected["password"] == "a b'c\\d" and expected["options"] == "-c statement_timeout=600000"
        started: list[projector._ProcessWriter] = []
        real = projector._ProcessWriter.start
        monkeypatch.setattr(projector._ProcessWriter, "start", lambda self: (started.append(self), real(self)))
        assert led.rebuild() == p.log_position()
        assert len(started) == 1 and started[0].proc.returncode == 0  # the child wrote, and connected
        assert digest(led.engine) == live
    finally:
        led.close()

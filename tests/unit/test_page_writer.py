"""The page writer's protocol (ADR 0035), driven through `main` with in-memory streams."""

from __future__ import annotations

import io
import sqlite3

import pytest

from projections import page_writer


def frames(*objs) -> io.BytesIO:
    out = io.BytesIO()
    for o in objs:
        page_writer.send(out, o)
    out.seek(0)
    return out


def answers(out: io.BytesIO) -> list:
    out.seek(0)
    got = []
    while True:
        try:
            got.append(page_writer.receive(out))
        except EOFError:
            return got


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "rm.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE pos (name TEXT PRIMARY KEY, position INTEGER NOT NULL);
        CREATE TABLE ev (id TEXT PRIMARY KEY, n INTEGER);
        CREATE TABLE lg (position INTEGER PRIMARY KEY, what TEXT);
    """)
    conn.close()
    return path


def config(path, **kw):
    return {"path": str(path), "pragmas": ["synchronous=1", "cache_size=-4000"], "position_table": "pos",
            "name": "evidence", "close_sql": "UPDATE ev SET n = ? WHERE id = ?", "values_rows": 4,
            "evidence": ("ev", ("id", "n")), "log": ("lg", ("position", "what")), **kw}


def rows(path, sql):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_frame_reads_back_what_was_sent_and_a_cut_frame_is_an_error():
    data = [["a" * 300, 1, None, True, 2.5e-7, 10**30], ("x",)]
    assert answers(frames(data, None)) == [data, None]
    cut = frames(data)
    cut.truncate(len(cut.getvalue()) - 1)
    with pytest.raises(EOFError, match="inside a frame"):
        page_writer.receive(cut)


def test_pages_are_committed_with_their_positions_in_as_few_statements_as_allowed(store):
    out = io.BytesIO()
    page1 = (1, 1, 3, [], [[f"i{k}", k] for k in range(11)], [[1, "a"], [2, "b"], [3, "c"]])
    page2 = (2, 4, 5, [(99, "i3")], [["j", 0]], [[4, "d"], [5, "e"]])
    assert page_writer.main(frames(config(store), page1, page2, None), out) == 0
    assert answers(out) == [("committed", 1), ("committed", 2)]
    assert rows(store, "SELECT position FROM pos") == [(5,)]
    assert rows(store, "SELECT COUNT(*), SUM(n) FROM ev") == [(12, sum(range(11)) - 3 + 99)]
    assert rows(store, "SELECT what FROM lg ORDER BY position") == [(w,) for w in "abcde"]


def test_a_moved_position_writes_nothing_more(store):
    conn = sqlite3.connect(store)
    conn.execute("INSERT INTO pos VALUES ('evidence', 7)")
    conn.commit()
    conn.close()
    out = io.BytesIO()
    page = (1, 1, 2, [], [["a", 1]], [[1, "a"], [2, "b"]])
    assert page_writer.main(frames(config(store), page, (2, 3, 3, [], [], [[3, "c"]]), None), out) == 0
    assert answers(out) == [("moved", 1, 7)]
    assert rows(store, "SELECT COUNT(*) FROM lg") == [(0,)]


def test_a_failing_page_is_rolled_back_and_reported_with_its_error(store):
    out = io.BytesIO()
    good = (1, 1, 1, [], [["a", 1]], [[1, "a"]])
    bad = (2, 2, 3, [], [["b", 2], ["a", 3]], [[2, "b"], [3, "c"]])  # "a" again: the key refuses it
    assert page_writer.main(frames(config(store), good, bad, (3, 4, 4, [], [], [[4, "d"]]), None), out) == 0
    (first, (kind, seq, error, trace)) = answers(out)
    assert first == ("committed", 1) and (kind, seq) == ("error", 2)
    assert isinstance(error, sqlite3.IntegrityError) and "UNIQUE" in str(error) and "Traceback" in trace
    assert rows(store, "SELECT position FROM pos") == [(1,)]
    assert rows(store, "SELECT id FROM ev") == [("a",)]


def test_a_bad_configuration_is_reported_and_an_abandoned_stream_is_an_exit_code(tmp_path, store):
    out = io.BytesIO()
    assert page_writer.main(frames(config(tmp_path / "no" / "such.sqlite"), (1, 1, 1, [], [], []), None), out) == 0
    (kind, seq, error, _), = answers(out)
    assert (kind, seq) == ("error", None) and isinstance(error, sqlite3.OperationalError)
    assert page_writer.main(frames(config(store)), io.BytesIO()) == 1  # no None: the projector died

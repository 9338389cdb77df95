"""The bulk import's two passes (ADR 0020), on both stores: a file is staged whole
(events kept in a scratch file) before anything is written; then written one
transaction per chunk of postings, positions gap-free and in file order; a crash
mid-write leaves whole chunks that a re-import completes; other writers in between
are either stepped over (nothing in common) or make the import stage again.

Small `chunk_postings` make a few dozen lines span many chunks, so every
cross-chunk look-up (a provider registered three chunks earlier, a follow-up's
target) goes through the scratch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.eventstore import LedgerApplication
from adapters.importers import InvalidImport, import_file
from adapters.ledger import Ledger
from domain.errors import ConflictingPosting

N = 12  # providers: 12 × (registration, inspection, publication date) + closures and a correction


def postings(n: int = N) -> list[dict]:
    regs = [{"type": "provider_registered", "client_id": f"p-{i}", "urn": f"U{i}", "la_code": "886",
             "group": "childminders", "occurred_on": "2001-01-01"} for i in range(n)]
    insps = [{"type": "provider_inspection", "client_id": f"i-{i}", "urn": f"U{i}", "occurred_on": "2011-03-01",
              "overall_effectiveness": "good"} for i in range(n)]
    pubs = [{"type": "publication_date_supplied", "client_id": f"d-{i}", "target": f"i-{i}",
             "published_on": "2011-04-01"} for i in range(n)]
    tail = [{"type": "provider_closed", "client_id": "c-0", "urn": "U0", "occurred_on": "2011-08-01"},
            {"type": "correction", "client_id": "fix-1", "target": "i-1", "reason": "typo",
             "changes": {"overall_effectiveness": "outstanding"}},
            {"type": "withdrawal", "client_id": "w-2", "urn": "U2", "reason": "wrong provider"},
            {"type": "assessment_proposed", "client_id": "a-1", "la_code": "886", "year": 2011,
             "occurred_on": "2011-09-05", "grade": "well"}]
    return regs + insps + pubs + tail


def events_of(n: int = N) -> int:
    return 5 * n + 2 + 2 + 2 + 3  # closure, correction, withdrawal: 2 each; assessment: opened, step, key


def _jsonl(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return path


def log(ledger: Ledger) -> list[tuple]:
    return [(n.id, str(n.originator_id), n.originator_version, n.topic, n.state) for n in ledger.iter_notifications()]


EARLIER = [{"type": "provider_registered", "client_id": "p-old", "urn": "OLD", "la_code": "886", "group": "childminders"}]


def test_a_chunked_import_writes_the_log_one_batch_would_gap_free(store_url, clock, tmp_path):
    path = _jsonl(tmp_path / "in.jsonl", postings())
    reference = Ledger(f"sqlite:///{tmp_path}/reference.sqlite", clock=clock)
    reference.record(EARLIER, default_actor="t")
    reference.record(postings(), default_actor="import", project=False)
    ledger = Ledger(store_url, clock=clock)
    try:
        ledger.record(EARLIER, default_actor="t")  # not empty: staging reads the ledger too
        report = import_file(ledger, path, chunk_postings=5, project=False)
        assert (report.recorded, report.already_recorded) == (len(postings()), 0)
        got, want = log(ledger), log(reference)
        assert [p for p, *_ in got] == list(range(1, 2 + events_of() + 1))  # ordered, no gaps
        assert [row[1:] for row in got] == [row[1:] for row in want]  # the same events, in the same order
        again = import_file(ledger, path, chunk_postings=5)
        assert (again.recorded, again.already_recorded) == (0, len(postings()))
        assert len(log(ledger)) == len(got)
    finally:
        ledger.close()
        reference.close()


@pytest.mark.parametrize("last", [
    {"type": "provider_inspection", "client_id": "i-x", "urn": "NOPE", "occurred_on": "2011-03-01",
     "overall_effectiveness": "good"},                                       # refused by state
    '{"type": "provider_registered", ',                                     # malformed
    {"type": "publication_date_supplied", "client_id": "d-x", "target": "i-0", "published_on": "2011-05-01"},
])
def test_an_invalid_line_at_the_end_of_a_multi_chunk_file_writes_nothing(ledger, tmp_path, last):
    lines = postings()
    path = _jsonl(tmp_path / "in.jsonl", [*lines, last])
    with pytest.raises(InvalidImport) as caught:
        import_file(ledger, path, chunk_postings=4)
    assert {e.line for e in caught.value.errors} == {len(lines) + 1}
    assert ledger.app.log_head() == 0


def test_a_conflict_at_the_end_of_a_multi_chunk_file_writes_nothing(ledger, tmp_path):
    path = _jsonl(tmp_path / "in.jsonl", [*postings(), {**postings()[0], "group": "primary_schools"}])
    with pytest.raises(ConflictingPosting) as caught:
        import_file(ledger, path, chunk_postings=4)
    assert [e.line for e in caught.value.errors] == [len(postings()) + 1]
    assert ledger.app.log_head() == 0


def _crash_on(monkeypatch, call: int) -> list:
    real = LedgerApplication.append_staged
    calls: list = []

    def crash(self, *args, **kw):
        calls.append(args)
        if len(calls) == call:
            raise RuntimeError("power cut")
        return real(self, *args, **kw)

    monkeypatch.setattr(LedgerApplication, "append_staged", crash)
    return calls


def test_a_crash_mid_write_leaves_whole_chunks_and_a_reimport_completes_them(ledger, tmp_path, monkeypatch):
    ledger.record(EARLIER, default_actor="other", project=False)  # not a first load: written chunk by chunk
    path = _jsonl(tmp_path / "in.jsonl", postings())
    _crash_on(monkeypatch, 3)
    with pytest.raises(RuntimeError):
        import_file(ledger, path, chunk_postings=5)
    monkeypatch.undo()
    assert ledger.app.log_head() == 2 + 2 * 10  # two whole chunks of 5 registrations, 2 events each
    report = import_file(ledger, path, chunk_postings=5)
    assert (report.recorded, report.already_recorded) == (len(postings()) - 10, 10)
    assert ledger.app.log_head() == 2 + events_of()
    ids = [(r[1], r[2]) for r in log(ledger)]
    assert len(ids) == len(set(ids))


def test_a_first_load_on_sqlite_is_written_in_one_transaction(ledger, store_url, tmp_path, monkeypatch):
    """ADR 0029: into an empty SQLite log the whole scratch is one append (a copy SQLite makes
    of whole records); a crash during it leaves nothing, and importing again records all. On
    PostgreSQL a first load is written chunk by chunk, as any import."""
    path = _jsonl(tmp_path / "in.jsonl", postings())
    calls = _crash_on(monkeypatch, 1)
    with pytest.raises(RuntimeError):
        import_file(ledger, path, chunk_postings=5)
    assert ledger.app.log_head() == 0
    first = calls[0]
    monkeypatch.undo()
    calls = _crash_on(monkeypatch, 99)
    report = import_file(ledger, path, chunk_postings=5)
    assert (report.recorded, report.already_recorded) == (len(postings()), 0)
    assert ledger.app.log_head() == events_of()
    if store_url.startswith("sqlite"):
        assert first[1:] == (1, events_of(), 0) and len(calls) == 1  # positions 1..all, at head 0, once
    else:
        assert first[1:] == (1, 10, 0) and len(calls) > 1  # the first chunk: 5 registrations, 2 events each
    assert [p for p, *_ in log(ledger)] == list(range(1, events_of() + 1))


def test_a_first_load_interrupted_inside_its_copy_leaves_the_log_empty(sqlite_url, clock, tmp_path, monkeypatch):
    """ADR 0029 (SQLite only: a first load is copied whole there): SQLite stopped part-way through
    the one copy of the whole scratch (as a crash or a full disk would stop it) keeps none of it."""
    import sqlite3

    from adapters import eventstore

    real_connect = sqlite3.connect
    seen = {"copying": False, "steps": 0}

    def connect(*args, **kw):
        conn = real_connect(*args, **kw)

        def statement(sql):
            if sql.startswith("INSERT INTO main.") and "SELECT * FROM scratch.events" in sql:
                seen["copying"] = True

        def step():
            if seen["copying"]:
                seen["steps"] += 1
                return seen["steps"] > 3  # stop the copy after a few hundred of its instructions
            return 0

        conn.set_trace_callback(statement)
        conn.set_progress_handler(step, 100)
        return conn

    path = _jsonl(tmp_path / "in.jsonl", postings())
    ledger = Ledger(sqlite_url, clock=clock)
    try:
        monkeypatch.setattr(eventstore.sqlite3, "connect", connect)
        with pytest.raises(sqlite3.OperationalError, match="interrupt"):
            import_file(ledger, path, chunk_postings=5)
        monkeypatch.undo()
        assert seen["copying"] and seen["steps"] > 3
        assert ledger.app.log_head() == 0 and log(ledger) == []
        report = import_file(ledger, path, chunk_postings=5)
        assert (report.recorded, report.already_recorded) == (len(postings()), 0)
        assert ledger.app.log_head() == events_of()
    finally:
        ledger.close()


def _meddle(monkeypatch, store_url, clock, raws):
    """Another writer records `raws` just before the import writes its first chunk."""
    real = LedgerApplication.append_staged
    done = []

    def meddling(self, *args, **kw):
        if not done:
            done.append(True)
            other = Ledger(store_url, clock=clock)
            other.record(raws, default_actor="other", project=False)
            other.close()
        return real(self, *args, **kw)

    monkeypatch.setattr(LedgerApplication, "append_staged", meddling)


def test_another_writer_touching_nothing_of_the_file_is_stepped_over(ledger, store_url, clock, tmp_path, monkeypatch):
    path = _jsonl(tmp_path / "in.jsonl", postings())
    _meddle(monkeypatch, store_url, clock, EARLIER)
    report = import_file(ledger, path, chunk_postings=5)
    assert (report.recorded, report.already_recorded) == (len(postings()), 0)
    rows = log(ledger)
    assert [p for p, *_ in rows] == list(range(1, 2 + events_of() + 1))
    assert '"client_id":"p-old"' in rows[0][4].decode()  # the other writer's events come first


def test_another_writer_recording_a_posting_of_the_file_makes_it_stage_again(ledger, store_url, clock, tmp_path,
                                                                              monkeypatch):
    path = _jsonl(tmp_path / "in.jsonl", postings())
    _meddle(monkeypatch, store_url, clock, [postings()[3]])
    report = import_file(ledger, path, chunk_postings=5)
    assert (report.recorded, report.already_recorded) == (len(postings()) - 1, 1)
    assert ledger.app.log_head() == events_of()
    ids = [(r[1], r[2]) for r in log(ledger)]
    assert len(ids) == len(set(ids))


def test_another_writer_recording_other_content_under_a_client_id_of_the_file_is_a_conflict(
        ledger, store_url, clock, tmp_path, monkeypatch):
    path = _jsonl(tmp_path / "in.jsonl", postings())
    _meddle(monkeypatch, store_url, clock, [{**postings()[3], "group": "primary_schools"}])
    with pytest.raises(ConflictingPosting):
        import_file(ledger, path, chunk_postings=5)
    assert ledger.app.log_head() == 2  # only the other writer's posting

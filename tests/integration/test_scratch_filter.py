"""The import scratch (ADR 0033). Its filter of the aggregates it holds: an id it does not hold
is answered without a query; an id it holds, or one sharing its filter bit, is looked up. And
its page size."""

from __future__ import annotations

import sqlite3
from uuid import UUID, uuid4

import pytest

from adapters.eventstore import FILTER_BITS, SCRATCH_PAGE_SIZE, Scratch

TOPIC = "domain.model:Provider.Registered"


@pytest.fixture
def scratch():
    s = Scratch()
    yield s
    s.close()


def _queries(scratch: Scratch) -> list[str]:
    seen: list[str] = []
    scratch.conn.set_trace_callback(lambda sql: seen.append(sql) if sql.lstrip().upper().startswith("SELECT") else None)
    return seen


def _twin(u: UUID) -> UUID:
    """Another id with the same low FILTER_BITS bits (the same bit of the filter)."""
    return UUID(int=u.int ^ (1 << (FILTER_BITS + 10)))


def test_held_ids_are_found_with_every_event_in_order(scratch):
    a, b = uuid4(), uuid4()
    scratch.append_rows([(a.hex, 1, TOPIC, b"{}"), (b.hex, 1, TOPIC, b"{}")])
    scratch.append_rows([(a.hex, 2, TOPIC, b'{"n":2}')])
    events = scratch.stored_events_of([a, b])
    assert [(e.originator_id, e.originator_version) for e in events] == sorted(
        [(a, 1), (a, 2), (b, 1)], key=lambda k: (k[0].hex, k[1]))  # by aggregate, then version
    assert {e.originator_id for e in scratch.first_events([a, b])} == {a, b}
    assert scratch.existing([a, b, uuid4()]) == {a, b}


def test_an_id_not_held_is_answered_without_a_query(scratch):
    a = uuid4()
    scratch.append_rows([(a.hex, 1, TOPIC, b"{}")])
    absent = [u for u in (uuid4() for _ in range(50)) if (u.int ^ a.int) & ((1 << FILTER_BITS) - 1)]
    queries = _queries(scratch)
    assert scratch.stored_events_of(absent) == []
    assert scratch.first_events(absent) == []
    assert scratch.existing(absent) == set()
    assert queries == []
    assert scratch.may_hold(absent) == []
    assert scratch.may_hold([a]) == [a]


def test_an_id_sharing_a_held_ids_bit_is_looked_up_and_not_found(scratch):
    a = uuid4()
    twin = _twin(a)
    scratch.append_rows([(a.hex, 1, TOPIC, b"{}")])
    queries = _queries(scratch)
    assert scratch.may_hold([twin]) == [twin]  # the filter cannot tell them apart
    assert scratch.stored_events_of([twin]) == []  # the query can
    assert len(queries) == 1
    assert [e.originator_id for e in scratch.stored_events_of([twin, a])] == [a]


def test_ids_appended_through_stored_events_are_held(scratch):
    from eventsourcing.persistence import StoredEvent

    ids = [uuid4() for _ in range(1000)]
    scratch.append([StoredEvent(u, 1, TOPIC, b"{}") for u in ids])
    assert scratch.may_hold(ids) == ids
    assert len(scratch.first_events(ids)) == 1000


def test_the_scratch_has_the_chosen_page_size(scratch):
    # Its inserts into the key index of random ids cost less with larger pages (ADR 0033).
    scratch.append_rows([(uuid4().hex, 1, TOPIC, b"{}")])
    assert scratch.conn.execute("PRAGMA page_size").fetchone()[0] == SCRATCH_PAGE_SIZE != 4096


def test_rows_appended_in_statements_of_many_rows_keep_their_order_and_positions(scratch, monkeypatch):
    """ADR 0039: the scratch inserts with multi-row VALUES statements. A chunk larger than a
    statement, of a size that is no power of two, is stored whole, each row at the position
    its order gives, and the next chunk goes on from there."""
    import adapters.eventstore as eventstore

    monkeypatch.setattr(eventstore, "SCRATCH_VALUES_ROWS", 64)
    ids = [uuid4() for _ in range(1000)]
    first = [(u.hex, 1, TOPIC, f'{{"n":{n}}}'.encode()) for n, u in enumerate(ids[:731])]
    second = [(u.hex, 1, TOPIC, f'{{"n":{n}}}'.encode()) for n, u in enumerate(ids[731:], start=731)]
    assert scratch.append_rows(first) == 731
    assert scratch.append_rows(second) == 1000
    assert [(e.originator_id, e.state) for e in scratch.events(1, 1000, page=97)] == \
        [(UUID(r[0]), r[3]) for r in first + second]
    statements = []
    scratch.conn.set_trace_callback(lambda sql: statements.append(sql) if sql.startswith("INSERT") else None)
    scratch.append_rows([(uuid4().hex, 1, TOPIC, b"{}") for _ in range(130)])
    assert len(statements) == 3  # 64 + 64 + 2 rows, not one statement a row


def test_a_chunk_with_a_row_the_scratch_holds_appends_nothing(scratch):
    a, b = uuid4(), uuid4()
    scratch.append_rows([(a.hex, 1, TOPIC, b"{}")])
    with pytest.raises(sqlite3.IntegrityError):
        scratch.append_rows([(b.hex, 1, TOPIC, b"{}"), (a.hex, 1, TOPIC, b"{}")])
    assert scratch.count == 1
    assert [e.originator_id for e in scratch.events(1, 10)] == [a]
    assert scratch.append_rows([(b.hex, 1, TOPIC, b"{}")]) == 2  # the scratch is usable after

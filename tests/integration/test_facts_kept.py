"""Facts kept in the store across processes (ADR 0028), on SQLite and PostgreSQL: a new `Views`
(a new process, as far as the views know) answers from the facts another kept, exactly as from
the read model; a row that no longer holds (a later event about its authority, other code, an
earlier time asked, bytes that cannot be read, a class it may not name) is never used; and
keeping them never stops an answer (a store that refuses the write)."""

from __future__ import annotations

import logging
import pickle
import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import event, select, update
from test_facts_bulk import LA, OTHER, SMALL, assert_same_facts, history

import adapters.views as views_module
from adapters.views import Views
from domain.framework import framework_for
from domain.rules.timelines import timelines_built
from projections import facts_kept
from projections.queries import authority_evidence
from projections.tables import facts_kept as facts_kept_table
from tests.conftest import FakeClock

YEAR = 2011
DATES = (date(2011, 3, 31), date(2011, 8, 31), date(2011, 11, 8), date(2012, 1, 1))


def kept_rows(ledger, asked: str = "now") -> dict[str, int]:
    with ledger.engine.connect() as conn:
        return dict(conn.execute(select(facts_kept_table.c.la_code, facts_kept_table.c.version)
                                 .where(facts_kept_table.c.year == YEAR, facts_kept_table.c.asked == asked)).all())


def points_kept(ledger) -> set[str]:
    with ledger.engine.connect() as conn:
        return set(conn.execute(select(facts_kept_table.c.asked).where(facts_kept_table.c.year == YEAR)).scalars())


def keeping(ledger) -> Views:
    """A national table as known now from the read model, its facts then kept in the store."""
    views = Views(ledger, facts_in_store=True)
    views.national(YEAR, as_at=DATES[0])
    assert views.wait_kept_in_store(timeout=60)
    return views


def answers(views: Views) -> list:
    """The national table at several dates, and the profiles (every layer) and proposals of the
    authorities with evidence."""
    out: list = [views.national(YEAR, as_at=d) for d in DATES]
    for la in (LA, OTHER, SMALL):
        for d in DATES:
            out += [views.profile(la, year=YEAR, as_at=d, layer=layer) for layer in (1, 2, 3, 4)]
            out.append(views.proposal(la, YEAR, as_at=d))
            out.append(views.exceptions(la, YEAR, as_at=d))
    return out


def refuse_reads_together(monkeypatch) -> None:
    """From now on, the views reading many authorities' facts from the read model fails."""
    def refuse(*args, **kwargs):
        raise AssertionError("the facts were read from the read model, not taken from the store")

    monkeypatch.setattr(views_module, "authorities_evidence", refuse)


def test_a_new_views_answers_from_the_facts_kept_exactly_as_from_the_read_model(ledger, clock, monkeypatch):
    history(ledger, clock)
    keeping(ledger)
    rows = kept_rows(ledger)
    assert len(rows) == len(ledger.authorities.all)  # every authority, the ones with nothing recorded too
    expected = answers(Views(ledger))  # nothing kept anywhere: the read model

    reads = []
    real = views_module.authorities_evidence
    monkeypatch.setattr(views_module, "authorities_evidence", lambda *a, **k: reads.append(a) or real(*a, **k))
    singles = []
    real_one = views_module.authority_evidence
    monkeypatch.setattr(views_module, "authority_evidence", lambda *a, **k: singles.append(a) or real_one(*a, **k))
    restored = Views(ledger, facts_in_store=True)
    assert answers(restored) == expected
    assert reads == [] and singles == []  # every fact came from the store
    # the facts themselves are equal to the read model's, field by field, timelines included
    fw = framework_for(YEAR)
    for la in (LA, OTHER, SMALL):
        kept = restored._facts.entry((la, YEAR, "now", True))[3]
        assert_same_facts(kept, authority_evidence(ledger.engine, la, clock(), year=YEAR))
        assert timelines_built(kept, fw) is not None and timelines_built(kept, fw).framework is fw


def test_an_event_about_an_authority_makes_its_kept_facts_stale_and_they_are_kept_again(ledger, clock, monkeypatch):
    history(ledger, clock)
    keeping(ledger)
    before = kept_rows(ledger)
    clock.advance(hours=1)
    ledger.record([{"type": "provider_inspection", "client_id": "new:1", "actor": "t", "urn": "EY900001",
                    "occurred_on": "2011-06-01", "published_on": "2011-07-01", "overall_effectiveness": "good"}])
    singles = []
    real_one = views_module.authority_evidence
    monkeypatch.setattr(views_module, "authority_evidence", lambda e, la, *a, **k: singles.append(la) or real_one(e, la, *a, **k))
    views = Views(ledger, facts_in_store=True)
    table = views.national(YEAR, as_at=DATES[2])
    assert singles == [SMALL]  # only the authority the event is about is read again, the rest are kept
    monkeypatch.setattr(views_module, "authority_evidence", real_one)
    assert table == Views(ledger).national(YEAR, as_at=DATES[2])
    assert views.wait_kept_in_store(timeout=60)
    after = kept_rows(ledger)
    assert after[SMALL] > before[SMALL]  # kept again, at the new event
    assert {la: v for la, v in after.items() if la != SMALL} == {la: v for la, v in before.items() if la != SMALL}
    assert answers(Views(ledger, facts_in_store=True)) == answers(Views(ledger))


def test_facts_as_known_at_an_earlier_time_are_kept_apart_and_answer_a_new_process(ledger, clock, monkeypatch):
    """An auditor's question as known at a cut-off: its facts are kept under that time, apart from
    "now", and a new process answers it from them exactly as from the read model."""
    times = history(ledger, clock)
    keeping(ledger)
    now_rows = kept_rows(ledger)
    expected = {}
    for known_at in times[:-1]:
        views = Views(ledger, facts_in_store=True, facts_in_store_points=4)
        expected[known_at] = Views(ledger).national(YEAR, as_at=DATES[2], known_at=known_at)
        assert views.national(YEAR, as_at=DATES[2], known_at=known_at) == expected[known_at]
        assert views.wait_kept_in_store(timeout=60)
    asked = {k.replace(tzinfo=None).isoformat() for k in times[:-1]}
    assert points_kept(ledger) == {"now"} | asked
    assert kept_rows(ledger) == now_rows  # "now" untouched
    assert expected[times[0]] != expected[times[2]]  # they do differ: nothing was known at first
    refuse_reads_together(monkeypatch)
    for known_at in times[:-1]:
        views = Views(ledger, facts_in_store=True, facts_in_store_points=4)
        assert views.national(YEAR, as_at=DATES[2], known_at=known_at) == expected[known_at]
        la_view = views.profile(LA, year=YEAR, as_at=DATES[1], known_at=known_at, layer=2)
        monkeypatch.undo()
        assert la_view == Views(ledger).profile(LA, year=YEAR, as_at=DATES[1], known_at=known_at, layer=2)
        refuse_reads_together(monkeypatch)


@pytest.mark.parametrize("points", [1, 0])
def test_only_the_latest_known_at_times_are_kept(ledger, clock, monkeypatch, points):
    times = history(ledger, clock)
    keeping(ledger)
    for known_at in times[1:3]:
        views = Views(ledger, facts_in_store=True, facts_in_store_points=points)
        views.national(YEAR, as_at=DATES[2], known_at=known_at)
        assert views.wait_kept_in_store(timeout=60)
    latest = times[2].replace(tzinfo=None).isoformat()
    assert points_kept(ledger) == ({"now", latest} if points else {"now"})
    if points:
        assert len(kept_rows(ledger, latest)) == len(ledger.authorities.all)
    reads = []
    real = views_module.authorities_evidence
    monkeypatch.setattr(views_module, "authorities_evidence", lambda *a, **k: reads.append(a) or real(*a, **k))
    latest_views = Views(ledger, facts_in_store=True, facts_in_store_points=points)
    latest_views.national(YEAR, as_at=DATES[2], known_at=times[2])
    assert len(reads) == (0 if points else 1)  # kept, unless none are
    reads.clear()
    earlier_views = Views(ledger, facts_in_store=True, facts_in_store_points=points)
    earlier_views.national(YEAR, as_at=DATES[2], known_at=times[1])
    assert len(reads) == 1  # let go: read from the read model
    assert latest_views.wait_kept_in_store(timeout=60) and earlier_views.wait_kept_in_store(timeout=60)
    # and now the latest written in its place
    assert points_kept(ledger) == ({"now", times[1].replace(tzinfo=None).isoformat()} if points else {"now"})


def test_kept_facts_read_after_the_time_asked_are_not_used(ledger, clock, monkeypatch):
    """The clock set back before the facts were read (a test's clock): as in-process kept facts,
    they may hold what was not yet known then, so the read model is read."""
    history(ledger, clock)
    keeping(ledger)
    refuse_reads_together(monkeypatch)
    Views(ledger, facts_in_store=True).national(YEAR, as_at=DATES[1])  # at the same time: from the store
    clock.set(clock() - timedelta(days=1))
    with pytest.raises(AssertionError, match="read from the read model"):
        Views(ledger, facts_in_store=True).national(YEAR, as_at=DATES[1])


@pytest.mark.parametrize("spoil", ["code", "bytes", "global"])
def test_rows_that_do_not_hold_are_ignored_and_replaced(ledger, clock, monkeypatch, caplog, spoil):
    history(ledger, clock)
    keeping(ledger)
    expected = Views(ledger).national(YEAR, as_at=DATES[2])
    with ledger.engine.begin() as conn:
        if spoil == "code":  # written by other code
            conn.execute(update(facts_kept_table).values(code="0" * 64))
        elif spoil == "bytes":
            conn.execute(update(facts_kept_table).values(facts=b"not a pickle"))
        else:  # a pickle that would call something other than the facts' own classes
            conn.execute(update(facts_kept_table).values(facts=pickle.dumps(logging.getLogger)))
    caplog.set_level(logging.WARNING, "csa.facts_kept")
    reads = []
    real = views_module.authorities_evidence
    monkeypatch.setattr(views_module, "authorities_evidence", lambda *a, **k: reads.append(a) or real(*a, **k))
    views = Views(ledger, facts_in_store=True)
    assert views.national(YEAR, as_at=DATES[2]) == expected
    assert len(reads) == 1 and len(reads[0][1]) == len(ledger.authorities.all)  # none taken: all read
    if spoil != "code":
        assert f"kept facts of {LA} (2011) not used" in caplog.text
        if spoil == "global":
            assert "may not name logging.getLogger" in caplog.text
    assert views.wait_kept_in_store(timeout=60)
    with ledger.engine.connect() as conn:  # replaced, every row, by this code
        assert set(conn.execute(select(facts_kept_table.c.code)).scalars()) == {views_module._CODE}
    # and the next process takes every authority's facts from the store again
    refuse_reads_together(monkeypatch)
    assert Views(ledger, facts_in_store=True).national(YEAR, as_at=DATES[2]) == expected


def test_a_store_that_refuses_the_write_still_answers(ledger, clock, monkeypatch, caplog):
    history(ledger, clock)
    engine = ledger.engine
    real_begin = engine.begin

    def read_only_begin():
        from sqlalchemy.exc import OperationalError

        raise OperationalError("INSERT INTO rm_facts_kept", {}, Exception("cannot execute INSERT in a read-only transaction"))

    caplog.set_level(logging.WARNING, "csa.facts_kept")
    views = Views(ledger, facts_in_store=True)
    monkeypatch.setattr(engine, "begin", read_only_begin)
    table = views.national(YEAR, as_at=DATES[2])
    assert views.wait_kept_in_store(timeout=60)
    monkeypatch.setattr(engine, "begin", real_begin)
    assert table == Views(ledger).national(YEAR, as_at=DATES[2])
    assert "facts not kept in the store" in caplog.text and "read-only" in caplog.text
    assert kept_rows(ledger) == {}


def test_an_older_version_never_replaces_a_newer_row(ledger, clock):
    history(ledger, clock)
    views = keeping(ledger)
    rows = kept_rows(ledger)
    got = views._facts.entry((LA, YEAR, "now", True))
    facts_kept.store(ledger.engine, YEAR, [facts_kept.Kept(LA, got[1] - 1, got[2], got[3])], code=views_module._CODE)
    assert kept_rows(ledger)[LA] == rows[LA]


def test_warming_keeps_every_authoritys_facts_and_a_rebuild_empties_them(ledger, clock):
    history(ledger, clock)
    views = Views(ledger, facts_in_store=True)
    assert views.warm(YEAR) == len(ledger.authorities.all)
    assert views.wait_kept_in_store(timeout=60)
    assert len(kept_rows(ledger)) == len(ledger.authorities.all)
    ledger.rebuild()
    assert kept_rows(ledger) == {}


def test_facts_missing_an_event_recorded_after_they_were_read_are_never_kept(store_url, ledger, clock):
    """An event recorded after the time a table asked about (a writer whose clock is ahead, or
    one that committed meanwhile) but projected before the facts were read: counted in the tag,
    left out of the facts. Kept, they would hold for every later process; so they are not."""
    from adapters.ledger import Ledger

    history(ledger, clock)
    other = Ledger(store_url, clock=FakeClock(clock() + timedelta(seconds=5)))
    try:
        other.record([{"type": "provider_inspection", "client_id": "ahead:1", "actor": "t", "urn": "EY900001",
                       "occurred_on": "2011-06-01", "published_on": "2011-07-01", "overall_effectiveness": "good"}])
    finally:
        other.close()
    keeping(ledger)  # as known now, which is 5 s before that event was recorded
    rows = kept_rows(ledger)
    assert SMALL not in rows and LA in rows and len(rows) == len(ledger.authorities.all) - 1
    clock.advance(hours=1)
    assert answers(Views(ledger, facts_in_store=True)) == answers(Views(ledger))


def test_a_row_replaced_while_it_is_read_is_not_taken_under_the_old_tag(ledger, clock):
    """The tag is read again with the bytes: a row another process replaced between the two
    reads (here: tagged with a later event) is not taken for the version asked about."""
    history(ledger, clock)
    keeping(ledger)
    expected = Views(ledger).national(YEAR, as_at=DATES[2])
    replaced = []

    def replace_once(conn, cursor, statement, parameters, context, executemany):
        if not replaced and "rm_facts_kept.read_at" in statement and "rm_facts_kept.facts" not in statement:
            replaced.append(1)
            with ledger.engine.begin() as other:
                other.execute(update(facts_kept_table).where(facts_kept_table.c.la_code == LA)
                              .values(version=facts_kept_table.c.version + 1000))

    event.listen(ledger.engine, "after_cursor_execute", replace_once)
    try:
        views = Views(ledger, facts_in_store=True)
        got = facts_kept.load(ledger.engine, YEAR, {la: views._la_version(la) for la in (LA, OTHER)}, clock(),
                              framework_for(YEAR), code=views_module._CODE)
    finally:
        event.remove(ledger.engine, "after_cursor_execute", replace_once)
    assert replaced and set(got) == {OTHER}
    assert Views(ledger, facts_in_store=True).national(YEAR, as_at=DATES[2]) == expected


def test_a_store_that_cannot_be_asked_still_answers(ledger, clock, caplog):
    history(ledger, clock)
    keeping(ledger)
    expected = Views(ledger).national(YEAR, as_at=DATES[2])
    with ledger.engine.begin() as conn:
        conn.execute(facts_kept_table.delete())
        conn.exec_driver_sql("ALTER TABLE rm_facts_kept RENAME TO rm_facts_kept_gone")
    caplog.set_level(logging.WARNING, "csa.facts_kept")
    views = Views(ledger, facts_in_store=True)
    assert views.national(YEAR, as_at=DATES[2]) == expected
    assert views.wait_kept_in_store(timeout=60)
    assert "kept facts not read from the store" in caplog.text
    assert "facts not kept in the store" in caplog.text


def test_after_a_refused_write_nothing_is_offered_for_a_while(ledger, clock, monkeypatch):
    history(ledger, clock)
    offered = []

    def refuse(engine, year, entries, points=2, code=None):
        from sqlalchemy.exc import OperationalError

        offered.append(len(entries))
        raise OperationalError("INSERT", {}, Exception("read-only transaction"))

    monkeypatch.setattr(facts_kept, "store", refuse)
    views = Views(ledger, facts_in_store=True)
    views.national(YEAR, as_at=DATES[2])
    assert views.wait_kept_in_store(timeout=60)
    clock.advance(hours=1)
    ledger.record([{"type": "provider_registered", "client_id": "later:1", "actor": "t", "urn": "EY900009",
                    "la_code": SMALL, "group": "childminders", "occurred_on": "2010-01-01"}])
    views.national(YEAR, as_at=DATES[1])  # a new position: SMALL read again, not offered again
    assert views.wait_kept_in_store(timeout=60)
    assert offered == [len(ledger.authorities.all)]


def test_facts_offered_while_a_write_is_under_way_are_written_next(ledger, clock, monkeypatch):
    history(ledger, clock)
    release = threading.Event()
    real = facts_kept.store
    calls = []

    def slow(engine, year, entries, points=2, code=None):
        calls.append(sorted(e.asked for e in entries)[:1])
        release.wait(30)
        return real(engine, year, entries, points, code)

    monkeypatch.setattr(facts_kept, "store", slow)
    views = Views(ledger, facts_in_store=True, facts_in_store_points=2)
    times = [clock()]
    views.national(YEAR, as_at=DATES[2])  # as known now: its write waits
    views.national(YEAR, as_at=DATES[2], known_at=times[0] - timedelta(hours=1))  # offered meanwhile
    release.set()
    assert views.wait_kept_in_store(timeout=60)
    assert len(calls) == 2
    assert points_kept(ledger) == {"now", (times[0] - timedelta(hours=1)).replace(tzinfo=None).isoformat()}


@pytest.mark.parametrize("in_store", [False, True])
def test_an_event_committed_after_now_was_taken_is_not_counted_in_the_tag(store_url, ledger, clock, monkeypatch,
                                                                           in_store):
    """A writer commits (and the projector applies) an event between the time a view takes "now"
    and its reading of the facts' tags: the facts, as known then, leave the event out, so the tag
    must not count it either; otherwise the next question as known now, in this process or (from
    the store) in another, would be answered without it until another event came."""
    from adapters.ledger import Ledger

    history(ledger, clock)
    other = Ledger(store_url, clock=clock)
    real_point = Views.point
    recorded = []

    def point_then_a_write(self, *args, **kwargs):
        pt = real_point(self, *args, **kwargs)
        if not recorded:
            recorded.append(1)
            clock.advance(seconds=1)
            other.record([{"type": "provider_inspection", "client_id": "meanwhile:1", "actor": "t",
                           "urn": "EY900001", "occurred_on": "2011-06-01", "published_on": "2011-07-01",
                           "overall_effectiveness": "outstanding"}])
        return pt

    monkeypatch.setattr(Views, "point", point_then_a_write)
    try:
        views = Views(ledger, facts_in_store=in_store)
        first = views.national(YEAR, as_at=DATES[2])
        assert views.wait_kept_in_store(timeout=60)
    finally:
        other.close()
    monkeypatch.setattr(Views, "point", real_point)
    assert recorded
    clock.advance(hours=1)
    fresh = Views(ledger)
    assert views.profile(SMALL, year=YEAR, as_at=DATES[2]) == fresh.profile(SMALL, year=YEAR, as_at=DATES[2])
    assert views.national(YEAR, as_at=DATES[2]) == fresh.national(YEAR, as_at=DATES[2])
    assert first != fresh.national(YEAR, as_at=DATES[2])  # the event does change the table
    if in_store:
        assert Views(ledger, facts_in_store=True).national(YEAR, as_at=DATES[3]) == fresh.national(YEAR, as_at=DATES[3])


def test_a_known_at_time_let_go_is_kept_again_by_the_process_that_kept_it_before(ledger, clock, monkeypatch):
    """One process asks T1, T2, then T1 again with room for one known-at time: T2's write lets T1
    go, so the third table's facts (kept in the process) are offered and written again."""
    times = history(ledger, clock)
    views = Views(ledger, facts_in_store=True, facts_in_store_points=1)
    for known_at, as_at in ((times[1], DATES[2]), (times[2], DATES[2]), (times[1], DATES[1])):
        views.national(YEAR, as_at=as_at, known_at=known_at)  # (another date: not an answer kept)
        assert views.wait_kept_in_store(timeout=60)
    assert points_kept(ledger) == {times[1].replace(tzinfo=None).isoformat()}
    refuse_reads_together(monkeypatch)
    assert Views(ledger, facts_in_store=True, facts_in_store_points=1).national(YEAR, as_at=DATES[2],
                                                                                known_at=times[1]) == \
        views.national(YEAR, as_at=DATES[2], known_at=times[1])


def test_every_offer_is_written_however_the_writer_and_the_offers_interleave(ledger, clock, monkeypatch):
    """Offers made just as the writer finds nothing left to write start a new writer: none is left
    waiting while `wait_kept_in_store` says all is written."""
    history(ledger, clock)
    views = Views(ledger, facts_in_store=True, facts_in_store_points=8)
    known = [clock() - timedelta(minutes=m) for m in range(1, 7)]
    for known_at in known:  # each table's offer races the end of the previous write
        views.national(YEAR, as_at=DATES[2], known_at=known_at)
    assert views.wait_kept_in_store(timeout=120)
    assert views._in_store._waiting == {} and views._in_store._writing is None
    assert points_kept(ledger) == {k.replace(tzinfo=None).isoformat() for k in known}

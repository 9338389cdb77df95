"""Many authorities' facts read together (`projections.queries.authorities_evidence`, ADR 0026)
against each authority's own read (`authority_evidence`), on SQLite and PostgreSQL: the same
facts, in the same order, for every authority — with superseded versions (publication dates
supplied later, corrections, withdrawals, a provider moved to another authority, closures and
restructurings), inspector notes, authorities with nothing recorded, transaction times in the
past, rows in any order — and the views built on them: the national table and the facts kept
are the same whichever way the facts were read."""

from __future__ import annotations

import gc
import threading
from dataclasses import fields
from datetime import UTC, date, datetime

import pytest
from test_assessment_scenarios import block_b_good, providers_in_every_group, urn_of

import adapters.views as views_module
from adapters.views import Views
from projections import queries
from projections.queries import authorities_evidence, authority_evidence

LA, OTHER, SMALL = "886", "919", "201"


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def own_evidence(la: str) -> list[dict]:
    """One or more of every kind of the authority's own evidence."""
    def post(kind: str, cid: str, **data) -> dict:
        return {"type": kind, "client_id": f"{cid}:{la}", "actor": "t", "la_code": la, **data}

    return block_b_good(la) + [
        post("full_inspection", "full:reinspect", service="safeguarding", occurred_on="2011-05-02",
             overall_effectiveness="adequate", capacity_to_improve="good", reinspection=True,
             sub_judgements={"partnership_working": "good", "equality_and_diversity": "adequate"}),
        post("joint_area_review", "jar", occurred_on="2008-03-14", published_on="2008-05-01", safeguarding="good",
             looked_after_children="outstanding"),
        post("serious_case_review_evaluation", "scr", occurred_on="2010-06-01", adequate_or_better=False),
        post("private_fostering_inspection", "pf", occurred_on="2009-10-01", overall_effectiveness="satisfactory"),
        post("substantiated_complaint", "complaint", occurred_on="2011-05-20", summary="Delay in strategy meetings"),
        post("indicator_value", "ind:1", indicator="KS2_L4_EM", period="2010", occurred_on="2010-07-31",
             published_on="2010-12-08", value=74.0, similar_areas=72.5, national=73.0, polarity="higher",
             attainment=True),
        post("indicator_value", "ind:2", indicator="NI_062", period="2009/10", occurred_on="2010-03-31",
             published_on="2010-09-30", value=12, polarity="lower"),
        post("published_grade", "pg", year=2010, grade="well", occurred_on="2010-12-09"),
    ]


def history(ledger, clock) -> list[datetime]:
    """Three authorities' evidence recorded over three days, each changing what was known before;
    returns a transaction time before the first and after each."""
    times = [at("2011-02-01")]
    clock.set(at("2011-03-01"))
    ledger.record(providers_in_every_group(LA, "good", per_group=2) + own_evidence(LA)
                  + providers_in_every_group(OTHER, "satisfactory", per_group=1, prefix="o") + own_evidence(OTHER)
                  + [{"type": "provider_registered", "client_id": "reg:small", "actor": "t", "urn": "EY900001",
                      "la_code": SMALL, "group": "childminders", "name": "Small", "occurred_on": "2006-04-03"},
                     {"type": "compliance_check", "client_id": "cc:small", "actor": "t", "urn": "EY900001",
                      "occurred_on": "2011-03-02", "compliant": False},
                     {"type": "provider_no_children_on_roll", "client_id": "ncr:small", "actor": "t", "urn": "EY900001",
                      "occurred_on": "2010-01-01"},
                     {"type": "provider_inspection", "client_id": "late:1", "actor": "t", "urn": urn_of(LA, "childminders"),
                      "occurred_on": "2011-07-12", "overall_effectiveness": "outstanding", "staying_safe": "good",
                      "enjoying_and_achieving": "outstanding"}])
    times.append(clock.advance(hours=1))
    clock.set(at("2011-04-01"))
    moved = urn_of(LA, "primary_schools", 1)
    ledger.record([
        {"type": "publication_date_supplied", "client_id": "pub:late:1", "actor": "t", "target": "late:1",
         "published_on": "2011-09-20"},
        {"type": "correction", "client_id": "fix:1", "actor": "t", "target": f"insp:{urn_of(LA, 'la_childrens_homes')}",
         "changes": {"overall_effectiveness": "inadequate"}, "reason": "keyed wrongly"},
        {"type": "withdrawal", "client_id": "wd:1", "actor": "t", "target": f"insp:{urn_of(OTHER, 'la_fostering', prefix='o')}",
         "reason": "wrong provider"},
        {"type": "correction", "client_id": "fix:ind", "actor": "t", "target": f"ind:1:{LA}", "changes": {"value": 70.5},
         "reason": "revised figure"},
        {"type": "withdrawal", "client_id": "wd:jar", "actor": "t", "target": f"jar:{OTHER}", "reason": "duplicate"},
        # a provider moved to another authority: its inspections go with it
        {"type": "correction", "client_id": "move:1", "actor": "t", "urn": moved, "changes": {"la_code": OTHER},
         "reason": "registered in the wrong authority"},
        {"type": "provider_closed", "client_id": "close:1", "actor": "t", "urn": urn_of(LA, "childminders", 1),
         "occurred_on": "2011-02-28"},
        {"type": "provider_restructured", "client_id": "restr:1", "actor": "t", "urn": urn_of(LA, "la_secondary"),
         "successor_urn": urn_of(LA, "la_secondary", 1), "occurred_on": "2010-09-01"},
    ])
    times.append(clock.advance(hours=1))
    clock.set(at("2011-09-12"))
    ledger.record([
        {"type": "inspector_judgement_applied", "client_id": "ij:1", "actor": "hmi", "la_code": LA, "year": 2011,
         "occurred_on": "2011-09-12", "grade": "well", "reasons": "sustained", "sustained_improvement": True},
        {"type": "cutoff_exclusion", "client_id": "ex:1", "actor": "hmi", "la_code": LA, "year": 2011,
         "occurred_on": "2011-09-12", "target": "late:1", "reasons": "moderation"},
        {"type": "cutoff_exclusion", "client_id": "ex:2", "actor": "hmi", "la_code": OTHER, "year": 2010,
         "occurred_on": "2011-09-12", "target": f"insp:{urn_of(OTHER, 'primary_schools', prefix='o')}",
         "reasons": "an earlier year"},
    ])
    times.append(clock.advance(hours=1))
    return times


def assert_same_facts(read, one) -> None:
    assert read == one
    # equality leaves out a full inspection's sub-judgements: compared here, field by field
    for name in (f.name for f in fields(one)):
        assert [type(x) for x in getattr(read, name)] == [type(x) for x in getattr(one, name)], name
    assert [f.sub_judgements for f in read.full_inspections] == [f.sub_judgements for f in one.full_inspections]


def test_every_authoritys_facts_read_together_are_its_own_at_every_known_at(ledger, clock):
    times = history(ledger, clock)
    every = [a.la_code for a in ledger.authorities.all]
    seen = set()
    for known_at in times:
        for year in (2011, None):
            read = authorities_evidence(ledger.engine, every, known_at, year)
            assert list(read) == every
            for la in every:
                one = authority_evidence(ledger.engine, la, known_at, year)
                assert_same_facts(read[la], one)
                seen.add((la, known_at, len(one.providers), len(one.provider_inspections), len(one.inspector_notes)))
    # what the history gives to compare: the facts do change with the transaction time
    def counts(la, i):
        return {(p, n, s) for a, k, p, n, s in seen if a == la and k == times[i]}
    assert counts(LA, 0) == {(0, 0, 0)} and counts(SMALL, 1) == {(1, 1, 0)}
    assert counts(LA, 1) == {(44, 45, 0)}, "with the inspection whose publication is supplied later"
    assert counts(LA, 2) == {(43, 44, 0)}, "a provider and its inspection moved to another authority"
    assert counts(OTHER, 2) == {(23, 22, 0)}, "the moved provider in, a withdrawn inspection out"
    assert counts(LA, 3) == {(43, 44, 2), (43, 44, 2)} and counts(OTHER, 3) == {(23, 22, 0), (23, 22, 1)}
    assert counts("202", 3) == {(0, 0, 0)}, "an authority with nothing recorded"


def test_some_authorities_together_and_rows_in_any_order(ledger, clock, monkeypatch):
    times = history(ledger, clock)
    some = [SMALL, "202", LA, OTHER, LA]  # a repeat is read once
    want = {la: authority_evidence(ledger.engine, la, times[-1], 2011) for la in some}
    read = authorities_evidence(ledger.engine, some, times[-1], 2011)
    assert list(read) == [SMALL, "202", LA, OTHER]
    for la in read:
        assert_same_facts(read[la], want[la])

    # Small chunks, and the store handing the rows back newest first (as a PostgreSQL scan may
    # give them in any order): the facts are put in log order all the same.
    real_sql = queries._Scan._sql
    monkeypatch.setattr(queries._Scan, "_sql", lambda self: real_sql(self) + " ORDER BY position DESC")
    monkeypatch.setattr(queries, "SCAN_CHUNK", 7)
    scans = []
    real_iter = queries._Scan.__iter__

    def watched(self):
        scans.append(self)
        yield from real_iter(self)

    monkeypatch.setattr(queries._Scan, "__iter__", watched)
    read = authorities_evidence(ledger.engine, some, times[-1], 2011)
    assert scans and not any(s.in_order for s in scans), "the rows did come out of log order"
    for la in read:
        assert_same_facts(read[la], want[la])


def test_a_urn_registered_in_two_authorities_brings_its_inspections_to_both(ledger, clock):
    """Not something the ledger records (a provider is one item, in one authority at a time), but
    each authority's read takes the inspections of every URN registered in it, and so does the
    read together."""
    from sqlalchemy import insert, select

    from projections.tables import evidence

    times = history(ledger, clock)
    urn = urn_of(LA, "primary_schools")
    with ledger.engine.begin() as conn:
        row = conn.execute(select(evidence).where(evidence.c.kind == "provider_registered", evidence.c.urn == urn,
                                                  evidence.c.recorded_to.is_(None))).mappings().one()
        conn.execute(insert(evidence).values({**row, "item_id": "twin", "la_code": SMALL, "client_id": "twin",
                                              "position": row["position"] + 10**6}))
    read = authorities_evidence(ledger.engine, [LA, SMALL, OTHER], times[-1], 2011)
    for la in (LA, SMALL, OTHER):
        assert_same_facts(read[la], authority_evidence(ledger.engine, la, times[-1], 2011))
    assert {i.urn for i in read[SMALL].provider_inspections} >= {urn}
    assert [i for i in read[SMALL].provider_inspections if i.urn == urn] == \
        [i for i in read[LA].provider_inspections if i.urn == urn] != []


def test_a_read_stopped_on_the_way_gives_nothing(ledger, clock):
    times = history(ledger, clock)
    assert authorities_evidence(ledger.engine, [LA, OTHER], times[-1], 2011, stop=lambda: True) is None
    assert authorities_evidence(ledger.engine, [], times[-1], 2011) == {}


# ------------------------------------------------------------------------------ the views


@pytest.fixture
def reads(monkeypatch) -> dict[str, list]:
    """How the views read facts: one authority at a time, or several together."""
    seen: dict[str, list] = {"one": [], "together": []}
    real, real_together = queries.authority_evidence, queries.authorities_evidence

    def one(engine, la_code, known_at, year=None):
        seen["one"].append(la_code)
        return real(engine, la_code, known_at, year=year)

    def together(engine, la_codes, known_at, year=None, stop=None):
        seen["together"].append(list(la_codes))
        return real_together(engine, la_codes, known_at, year=year, stop=stop)

    monkeypatch.setattr(views_module, "authority_evidence", one)
    monkeypatch.setattr(views_module, "authorities_evidence", together)
    return seen


def kept(views: Views) -> dict:
    return {key: (version, read_at, facts) for key, (_, version, read_at, facts) in views._facts._kept.items()}


def test_the_national_table_reads_the_facts_together_and_answers_the_same(ledger, clock, reads, monkeypatch):
    times = history(ledger, clock)
    every = [a.la_code for a in ledger.authorities.all]
    dates = (date(2011, 8, 31), date(2011, 4, 30), date(2011, 11, 8))
    together = Views(ledger, cache_authorities=400)  # room for the facts as known now and before
    tables = [together.national(2011, as_at=d) for d in dates]
    past = together.national(2011, as_at=dates[0], known_at=times[2])
    assert reads["one"] == [] and reads["together"] == [every, every], "read together: once now, once as known before"
    assert any(r["proposal"] for r in tables[0]["authorities"]) and tables[0] != past

    from_ = views_module.BULK_READ_FROM
    monkeypatch.setattr(views_module, "BULK_READ_FROM", 10**6)  # the views as before: one authority at a time
    one_by_one = Views(ledger, cache_authorities=400)
    assert [one_by_one.national(2011, as_at=d) for d in dates] == tables
    assert one_by_one.national(2011, as_at=dates[0], known_at=times[2]) == past
    assert len(reads["one"]) == 2 * len(every) and len(reads["together"]) == 2
    # kept alike: the same keys, each tagged with the latest event about its authority, the same facts
    assert kept(together) == kept(one_by_one)
    assert {version for version, _, _ in kept(together).values()} != {0}

    # a few authorities not kept (after events about them) are read one at a time, as before
    monkeypatch.setattr(views_module, "BULK_READ_FROM", from_)
    clock.set(at("2011-10-01"))
    ledger.record([{"type": "withdrawal", "client_id": "wd:late", "actor": "t", "target": "late:1", "reason": "x"}])
    reads["one"].clear()
    after = together.national(2011, as_at=dates[0])
    assert reads["one"] == [LA] and len(reads["together"]) == 2
    assert after == Views(ledger).national(2011, as_at=dates[0])


def test_no_authority_kept_the_table_still_reads_them_together(ledger, clock, reads):
    history(ledger, clock)
    table = Views(ledger, cache_authorities=0).national(2011, as_at=date(2011, 8, 31))
    assert reads["one"] == [] and len(reads["together"]) == 1
    assert table == Views(ledger).national(2011, as_at=date(2011, 8, 31))


def test_warming_reads_the_facts_together_and_keeps_them_as_a_question_would(ledger, clock, reads):
    history(ledger, clock)
    warm = Views(ledger)
    assert warm.warm(2011) == len(ledger.authorities.all)
    assert reads["one"] == [] and len(reads["together"]) == 1
    asked = Views(ledger)
    for a in ledger.authorities.all:
        asked.profile(a.la_code, as_at=date(2011, 8, 31))
    assert {k: (v, f) for k, (v, _, f) in kept(warm).items()} == {k: (v, f) for k, (v, _, f) in kept(asked).items()}
    assert warm.profile(LA, as_at=date(2011, 8, 31)) == asked.profile(LA, as_at=date(2011, 8, 31))
    assert len(reads["one"]) == len(ledger.authorities.all), "only the views asked one by one read more"

    stopped = threading.Event()
    stopped.set()
    assert Views(ledger).warm(2011, stop=stopped) == 0
    stopping = Views(ledger)
    stop_now = threading.Event()
    real = views_module.authorities_evidence

    def stop_meanwhile(*a, **kw):
        stop_now.set()
        return real(*a, **kw)

    views_module.authorities_evidence = stop_meanwhile
    try:
        assert stopping.warm(2011, stop=stop_now) == 0
    finally:
        views_module.authorities_evidence = real
    assert stopping.authorities_kept() == 0, "nothing half read is kept"


def test_the_facts_read_together_are_moved_to_the_oldest_generation_not_frozen(ledger, clock):
    history(ledger, clock)
    assert gc.get_freeze_count() == 0
    Views(ledger).national(2011, as_at=date(2011, 8, 31))
    assert gc.get_freeze_count() == 0, "nothing left frozen"
    assert gc.isenabled()
    gc.freeze()  # as an API worker after its warm start: its frozen objects stay frozen
    try:
        frozen = gc.get_freeze_count()
        Views(ledger).national(2011, as_at=date(2011, 8, 31))
        assert 0 < gc.get_freeze_count() <= frozen, "neither given back to the collector nor more frozen"
    finally:
        gc.unfreeze()

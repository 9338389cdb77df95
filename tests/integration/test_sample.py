"""The deterministic sample (docs/sample-data.md) on both stores.

PostgreSQL runs keep include_mi=False to stay fast; one SQLite test imports the
real 2018 MI files as well.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import create_engine, select

from adapters.ledger import Ledger
from adapters.sample import AUTHORITIES, load_sample, sample_postings, shared_data_dir
from domain.vocabulary import GROUPS
from projections.tables import event_log, evidence

SAMPLE_LAS = ("919", "873", "886")


@pytest.fixture
def loaded(store_url):
    summary = load_sample(store_url, include_mi=False)
    engine = create_engine(store_url)
    yield store_url, summary, engine
    engine.dispose()


def _current(engine, client_id: str):
    with engine.connect() as conn:
        rows = conn.execute(select(evidence).where(evidence.c.client_id == client_id,
                                                   evidence.c.recorded_to.is_(None))).mappings().all()
    assert len(rows) == 1, f"{client_id}: {len(rows)} current rows"
    return rows[0]


def _versions(engine, client_id: str):
    with engine.connect() as conn:
        return conn.execute(select(evidence).where(evidence.c.client_id == client_id)
                            .order_by(evidence.c.version)).mappings().all()


def _as_known_at(rows, known_at: datetime):
    """The version of an item the ledger held at `known_at` (None if not yet recorded)."""
    held = [r for r in rows if r["recorded_from"] <= known_at and (r["recorded_to"] is None or known_at < r["recorded_to"])]
    assert len(held) <= 1
    return held[0] if held else None


def _insp(la: str, name: str, day: str) -> str:
    """The client id of a designed provider's inspection on `day`."""
    return f"sample:{la}:inspection:{_urn(name)}:{day}"


def _urn(name: str) -> str:
    """A designed provider's URN, found by its name in the sample."""
    urns = [raw["urn"] for _, raws in sample_postings() for raw in raws
            if raw["type"] == "provider_registered" and raw.get("name") == name]
    assert len(urns) == 1, name
    return urns[0]


def test_sample_is_deterministic_with_unique_client_ids():
    first, second = sample_postings(), sample_postings()
    assert first == second
    ids = [raw["client_id"] for _, raws in first for raw in raws]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("sample:") for i in ids)
    times = [when for when, _ in first]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)
    assert {a.la_code for a in AUTHORITIES} == set(SAMPLE_LAS)


def test_every_group_has_providers_in_each_sample_authority(loaded):
    _, summary, engine = loaded
    assert summary["recorded"] == summary["postings"] > 900
    with engine.connect() as conn:
        rows = conn.execute(select(evidence.c.la_code, evidence.c.group_code)
                            .where(evidence.c.recorded_to.is_(None), evidence.c.kind == "provider_registered")).all()
    for la in SAMPLE_LAS:
        groups = [g for code, g in rows if code == la]
        for g in GROUPS:
            assert groups.count(g.code) >= 1, f"{la} has no provider in {g.code}"
        assert len(groups) >= 75


def test_edge_cases_sit_on_the_dates_promised(loaded):
    _, _, engine = loaded
    # 919: June inspection published after the data date; July inspection whose date came later.
    june = _current(engine, _insp("919", "Watford Field Primary School", "2011-06-30"))
    assert (june["occurred_on"], june["published_on"]) == (date(2011, 6, 30), date(2011, 9, 2))
    july = _versions(engine, _insp("919", "St Albans Abbey Primary School", "2011-07-12"))
    assert [(v["occurred_on"], v["published_on"]) for v in july] == [(date(2011, 7, 12), None),
                                                                     (date(2011, 7, 12), date(2011, 9, 13))]
    assert july[0]["recorded_from"] < datetime(2011, 9, 1) <= july[1]["recorded_from"]
    assert july[1]["la_code"] == "919"
    home31 = _current(engine, _insp("919", "Hertford Meadows Lodge", "2011-08-31"))
    assert (home31["occurred_on"], home31["published_on"]) == (date(2011, 8, 31), None)
    late_ua = _current(engine, "sample:919:unannounced:2011-09-01")
    assert late_ua["occurred_on"] == date(2011, 9, 1) and late_ua["data"]["priority_actions"] == []
    jar_after = _current(engine, "sample:919:jar:2007-10-12")
    assert jar_after["occurred_on"] == date(2007, 10, 12)

    # 873: 1 July school, 1 Sept children's home, published on 31 Aug / 1 Sep, JAR before April 2007.
    assert _current(engine, _insp("873", "Huntingdon Hinchingbrooke High School", "2011-07-01"))["published_on"] == date(2011, 9, 5)
    assert _current(engine, _insp("873", "Wisbech Orchard Lodge", "2011-09-01"))["occurred_on"] == date(2011, 9, 1)
    assert _current(engine, _insp("873", "March Riverside Children's Centre", "2011-07-20"))["published_on"] == date(2011, 8, 31)
    assert _current(engine, _insp("873", "Cambridge Foster Care Partnership", "2011-06-20"))["published_on"] == date(2011, 9, 1)
    assert _current(engine, "sample:873:unannounced:2011-06-30")["occurred_on"] == date(2011, 6, 30)
    assert _current(engine, "sample:873:private-fostering:2011-07-19")["published_on"] == date(2011, 8, 31)
    assert _current(engine, "sample:873:jar:2007-02-16")["occurred_on"] < date(2007, 4, 1)

    # 886: August home unpublished; inadequate safeguarding; priority actions; October re-inspection.
    home = _current(engine, _insp("886", "Maidstone Tonbridge Road Children's Home", "2011-08-16"))
    assert (home["occurred_on"], home["published_on"]) == (date(2011, 8, 16), None)
    first = _current(engine, "sample:886:full:safeguarding:2010-10-15")
    assert first["data"]["overall_effectiveness"] == "inadequate" and first["published_on"] <= date(2010, 12, 17)
    ua = _current(engine, "sample:886:unannounced:2011-05-17")
    assert len(ua["data"]["priority_actions"]) == 2
    re_insp = _current(engine, "sample:886:full:safeguarding:2011-10-07")
    assert re_insp["occurred_on"] == date(2011, 10, 7) and re_insp["data"]["reinspection"] is True
    assert re_insp["data"]["overall_effectiveness"] == "inadequate"
    assert re_insp["recorded_from"] > datetime(2011, 9, 23)

    # Providers: closed, restructured (¶20), no children on roll with compliance checks (¶19).
    closed = _current(engine, "sample:886:provider:" + _urn("Canterbury Old Dover Road Children's Home"))
    assert closed["data"]["closed_on"] == "2010-03-31"
    successor = _urn("Hitchin Oughton Primary School")
    for name in ("Hitchin Oughton Infant School", "Hitchin Oughton Junior School"):
        assert _current(engine, f"sample:919:provider:{_urn(name)}")["data"]["successor_urn"] == successor
    hythe = _urn("Childminder, Hythe")
    ncor = _current(engine, f"sample:886:provider:{hythe}")
    assert ncor["data"]["no_children_on_roll_from"] == "2009-09-01"
    check = _current(engine, f"sample:886:compliance:{hythe}:2011-02-22")
    assert check["data"]["compliant"] is False and check["la_code"] == "886"

    # A withdrawal: the mistaken posting has no current version any more.
    versions = _versions(engine, _insp("919", "Stevenage Martins Wood Primary School", "2010-04-20"))
    assert versions and versions[-1]["withdrawn"] and all(v["recorded_to"] is not None for v in versions)

    # Earlier years' grades and Block C with comparators and polarity.
    assert _current(engine, "sample:886:grade:2010")["data"]["grade"] == 1
    ks2 = _current(engine, "sample:919:indicator:KS2_L4_EM:2010/11")
    assert ks2["data"]["polarity"] == "higher" and ks2["data"]["attainment"] is True
    gap = _current(engine, "sample:886:indicator:FSM_GAP_KS2:2010/11")
    assert gap["data"]["polarity"] == "lower" and gap["data"]["gap"] is True

    # The 2011 assessment of 886, step by step.
    with engine.connect() as conn:
        steps = conn.execute(select(event_log.c.kind).where(event_log.c.la_code == "886", event_log.c.year == 2011)
                             .order_by(event_log.c.position)).scalars().all()
    assert steps[0] == "assessment_proposed" and steps[-1] == "assessment_published"
    assert {"cutoff_exclusion", "appeal_lodged", "appeal_decided", "grade_approved"} <= set(steps)


def test_loading_twice_records_nothing_new(loaded):
    url, _, _ = loaded
    led = Ledger(url)
    try:
        before = led.app.recorder.max_notification_id()
    finally:
        led.close()
    again = load_sample(url, include_mi=False)
    led = Ledger(url)
    try:
        assert led.app.recorder.max_notification_id() == before
    finally:
        led.close()
    assert again["recorded"] == 0 and again["already_recorded"] == again["postings"]


def test_correction_is_invisible_before_it_was_recorded(loaded):
    _, _, engine = loaded
    versions = _versions(engine, _insp("873", "Ely St John's Primary School", "2011-03-09"))
    assert len(versions) == 2
    corrected_at = versions[1]["recorded_from"]
    assert corrected_at > datetime(2011, 8, 31)  # recorded after the 2011 cut-off
    before = _as_known_at(versions, datetime(2011, 9, 1))
    after = _as_known_at(versions, corrected_at)
    assert before["data"]["overall_effectiveness"] == "good"
    assert after["data"]["overall_effectiveness"] == "satisfactory"
    assert _as_known_at(versions, datetime(2011, 3, 1)) is None  # not yet recorded at all


def test_sample_with_the_real_mi_files(sqlite_url):
    if not (shared_data_dir() / "ofsted-mi-2018").is_dir():
        pytest.skip(f"no MI files in {shared_data_dir()}")
    summary = load_sample(sqlite_url, include_mi=True)
    files = summary["mi"]["files"]
    assert sum(f["recorded"] for f in files.values()) > 1000
    engine = create_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            las = set(conn.execute(select(evidence.c.la_code).where(evidence.c.kind == "provider_registered",
                                                                    evidence.c.recorded_to.is_(None))).scalars())
            # the MI import leaves the sample's simulated times alone: it is stamped with the wall clock
            mi_from = conn.execute(select(evidence.c.recorded_from).where(evidence.c.actor == "sample",
                                                                          evidence.c.client_id.like("ofsted-mi:%"))
                                   .limit(1)).scalar()
    finally:
        engine.dispose()
    assert set(SAMPLE_LAS) < las and len(las) > 100
    assert mi_from is not None and mi_from > datetime(2013, 1, 1)
    led = Ledger(sqlite_url)
    try:
        position = led.app.recorder.max_notification_id()
    finally:
        led.close()
    again = load_sample(sqlite_url, include_mi=True)
    assert again["recorded"] == 0
    assert all(f["recorded"] == 0 for f in again["mi"]["files"].values())
    assert again["events_after"] == position

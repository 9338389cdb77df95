"""The aggregates: ids derived from client ids, verbs that check before they emit."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.errors import InvalidEvidence
from domain.model import (
    Assessment,
    ClientKey,
    Evidence,
    Provider,
    assessment_id,
    key_id,
    provider_id,
)
from domain.postings import KINDS, parse_posting

AT = datetime(2011, 9, 1, 9, 0, tzinfo=UTC)
LATER = datetime(2011, 9, 2, 9, 0, tzinfo=UTC)


def posting(type_: str, client_id: str = "c-1", actor: str = "ofsted", **fields):
    p, errors = parse_posting({"type": type_, "client_id": client_id, "actor": actor,
                               **{**KINDS[type_].example, **fields}})
    assert errors == [], errors
    return p


def replay(aggregate_class, events):
    agg = None
    for e in events:
        agg = e.mutate(agg)
    assert isinstance(agg, aggregate_class)
    return agg


# --- ids ----------------------------------------------------------------------------


def test_ids_are_derived_and_stable():
    assert key_id("a") == key_id("a") != key_id("b")
    assert provider_id("EY1") == provider_id("EY1") != provider_id("EY2")
    assert assessment_id("886", 2011) != assessment_id("886", 2010) != assessment_id("887", 2010)
    # the three namespaces do not collide even for the same text
    assert len({key_id("886"), provider_id("886")}) == 2


def test_evidence_id_is_the_client_ids_key():
    e = Evidence.record(posting("provider_inspection", client_id="sched-1"), AT)
    assert e.id == key_id("sched-1")


# --- evidence -----------------------------------------------------------------------


def test_recorded_event_carries_envelope_and_recorded_at():
    p = posting("provider_inspection", client_id="sched-1", actor="mi-feed")
    e = Evidence.record(p, AT)
    [event] = e.collect_events()
    assert isinstance(event, Evidence.Recorded)
    assert event.timestamp == AT
    assert (event.actor, event.client_id, event.content_hash) == ("mi-feed", "sched-1", p.content_hash)
    assert event.kind == "provider_inspection"
    assert e.state["overall_effectiveness"] == "good"
    assert e.withdrawn is False


def test_correction_changes_state_and_replays():
    e = Evidence.record(posting("provider_inspection"), AT)
    e.correct({"overall_effectiveness": "satisfactory"}, posting("correction", client_id="fix-1"), LATER)
    assert e.state["overall_effectiveness"] == "satisfactory"
    assert e.state["staying_safe"] == "good"
    events = e.collect_events()
    assert [type(x).__name__ for x in events] == ["Recorded", "Corrected"]
    assert events[1].timestamp == LATER and events[1].reason == "Transcription error"
    assert events[1].client_id == "fix-1"
    assert replay(Evidence, events).state == e.state


def test_correction_that_breaks_the_dates_is_refused_and_emits_nothing():
    e = Evidence.record(posting("provider_inspection"), AT)
    e.collect_events()
    with pytest.raises(InvalidEvidence) as err:
        e.correct({"published_on": date(2011, 1, 1)}, posting("correction"), LATER)
    assert err.value.errors[0].field == "published_on"
    assert e.collect_events() == []
    assert e.state["published_on"] == date(2011, 9, 5)


def test_publication_date_supplied():
    e = Evidence.record(posting("compliance_check"), AT)
    assert "published_on" not in e.state
    e.supply_publication_date(posting("publication_date_supplied", published_on="2011-04-01"), LATER)
    assert e.state["published_on"] == date(2011, 4, 1)


def test_publication_date_before_occurred_is_refused():
    e = Evidence.record(posting("compliance_check"), AT)
    with pytest.raises(InvalidEvidence) as err:
        e.supply_publication_date(posting("publication_date_supplied", published_on="2011-03-01"), LATER)
    [fe] = err.value.errors
    assert (fe.field, fe.value) == ("published_on", "2011-03-01")
    assert "before occurred_on 2011-03-02" in fe.reason


def test_a_kind_without_publication_date_cannot_be_given_one():
    p = Provider.register(posting("provider_registered"), AT)
    with pytest.raises(InvalidEvidence) as err:
        p.supply_publication_date(posting("publication_date_supplied"), LATER)
    assert "has no publication date" in err.value.errors[0].reason


def test_withdrawn_item_cannot_be_changed_or_withdrawn_again():
    e = Evidence.record(posting("provider_inspection"), AT)
    e.withdraw(posting("withdrawal", client_id="w-1"), LATER)
    assert e.withdrawn
    for verb in (lambda: e.withdraw(posting("withdrawal", client_id="w-2"), LATER),
                 lambda: e.correct({"overall_effectiveness": "good"}, posting("correction"), LATER),
                 lambda: e.supply_publication_date(posting("publication_date_supplied"), LATER)):
        with pytest.raises(InvalidEvidence) as err:
            verb()
        assert "withdrawn" in err.value.errors[0].reason
    events = e.collect_events()
    assert [type(x).__name__ for x in events] == ["Recorded", "Withdrawn"]
    assert replay(Evidence, events).withdrawn is True


# --- providers ----------------------------------------------------------------------


def test_provider_lifecycle():
    p = Provider.register(posting("provider_registered"), AT)
    assert p.id == provider_id("EY100001")
    assert p.opened_on == date(2006, 4, 3)
    p.close(posting("provider_closed", occurred_on="2011-08-31"), LATER)
    p.mark_no_children_on_roll(posting("provider_no_children_on_roll", urn="EY100001"), LATER)
    p.restructure(posting("provider_restructured", urn="EY100001", successor_urn="EY200001"), LATER)
    assert p.state["closed_on"] == date(2011, 8, 31)
    assert p.state["no_children_on_roll_from"] == date(2010, 1, 1)
    assert (p.state["successor_urn"], p.state["restructured_on"]) == ("EY200001", date(2010, 9, 1))
    events = p.collect_events()
    assert [type(e).__name__ for e in events] == ["Registered", "Closed", "NoChildrenOnRollMarked", "Restructured"]
    assert replay(Provider, events).state == p.state


def test_provider_cannot_close_before_it_was_registered():
    p = Provider.register(posting("provider_registered"), AT)
    with pytest.raises(InvalidEvidence) as err:
        p.close(posting("provider_closed", occurred_on="2006-04-02"), LATER)
    [fe] = err.value.errors
    assert (fe.field, fe.value) == ("occurred_on", "2006-04-02")
    assert "registered on 2006-04-03" in fe.reason


def test_provider_cannot_be_its_own_successor():
    p = Provider.register(posting("provider_registered"), AT)
    with pytest.raises(InvalidEvidence) as err:
        p.restructure(posting("provider_restructured", urn="EY100001", successor_urn="EY100001"), LATER)
    assert err.value.errors[0].field == "successor_urn"


def test_inspection_before_registration_or_of_a_withdrawn_provider_is_refused():
    p = Provider.register(posting("provider_registered"), AT)
    p.check_inspection(posting("provider_inspection", occurred_on="2006-04-03", published_on="2006-05-01"))
    with pytest.raises(InvalidEvidence) as err:
        p.check_inspection(posting("provider_inspection", occurred_on="2006-04-02", published_on="2006-05-01"))
    assert err.value.errors[0].field == "occurred_on"
    p.withdraw(posting("withdrawal", target=None, urn="EY100001"), LATER)
    with pytest.raises(InvalidEvidence) as err:
        p.check_inspection(posting("provider_inspection"))
    assert (err.value.errors[0].field, err.value.errors[0].value) == ("urn", "EY100001")
    assert "withdrawn" in err.value.errors[0].reason


def test_provider_without_registration_date_accepts_any_inspection_date():
    p = Provider.register(posting("provider_registered", occurred_on=None), AT)
    assert p.opened_on is None
    p.check_inspection(posting("provider_inspection", occurred_on="1999-01-01", published_on="1999-02-01"))


# --- assessment and client keys ----------------------------------------------------------


def test_assessment_steps_are_kept_in_order():
    a = Assessment.open("886", 2011, AT)
    assert a.id == assessment_id("886", 2011)
    a.record_step(posting("assessment_proposed", client_id="s1"), AT)
    a.record_step(posting("inspector_judgement_applied", client_id="s2"), LATER)
    assert [s for s, _ in a.steps] == ["assessment_proposed", "inspector_judgement_applied"]
    assert a.steps[0][1] == {"occurred_on": date(2011, 9, 5), "grade": 3}
    events = a.collect_events()
    assert [e.client_id for e in events[1:]] == ["s1", "s2"]
    assert replay(Assessment, events).steps == a.steps


def test_client_key_reserves_the_client_id():
    p = posting("provider_closed", client_id="close-1")
    k = ClientKey.reserve(p, provider_id("EY100001"), AT)
    assert k.id == key_id("close-1")
    assert (k.client_id, k.content_hash, k.type, k.aggregate_id) == (
        "close-1", p.content_hash, "provider_closed", provider_id("EY100001"))

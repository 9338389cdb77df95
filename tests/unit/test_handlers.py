"""`domain.handlers.Batch` against a hand-written fake store (a dict of event lists)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID

import pytest

from adapters.reference import authorities
from domain.errors import ConflictingPosting, InvalidEvidence
from domain.handlers import ALREADY_RECORDED, RECORDED, Batch, PriorPosting
from domain.model import ClientKey, Evidence, Provider, assessment_id, key_id, provider_id
from domain.postings import KINDS, parse_posting

AT = datetime(2011, 9, 1, 9, 0, tzinfo=UTC)
CODES = authorities().codes


class FakeStore:
    """An AggregateSource: events by aggregate id; `commit` refuses a version that exists,
    as the real store's uniqueness constraint does."""

    def __init__(self) -> None:
        self.events: dict[UUID, list] = {}

    def get(self, aggregate_id: UUID):
        agg = None
        for e in self.events.get(aggregate_id, []):
            agg = e.mutate(agg)
        return agg

    def prior_postings(self, client_ids):
        found = {}
        for cid in client_ids:
            first = self.events.get(key_id(cid), [None])[0]
            if isinstance(first, Evidence.Recorded):
                found[cid] = PriorPosting(first.kind, first.content_hash, first.originator_id)
            elif isinstance(first, ClientKey.Reserved):
                found[cid] = PriorPosting(first.type, first.content_hash, first.aggregate_id)
        return found

    def commit(self, events) -> None:
        versions = {k: len(v) for k, v in self.events.items()}
        for e in events:
            assert e.originator_version == versions.get(e.originator_id, 0) + 1, "version conflict"
            versions[e.originator_id] = e.originator_version
        for e in events:
            self.events.setdefault(e.originator_id, []).append(e)

    def count(self) -> int:
        return sum(len(v) for v in self.events.values())


def p(type_: str, client_id: str, **fields):
    body = {**KINDS[type_].example, **fields}
    posting, errors = parse_posting({"type": type_, "client_id": client_id, "actor": "ofsted",
                                     **{k: v for k, v in body.items() if v is not None}},
                                    known_la_codes=CODES)
    assert errors == [], errors
    return posting


REG = p("provider_registered", "reg-1")
INSP = p("provider_inspection", "sched-2011-0042")


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


def record(store: FakeStore, *postings, at: datetime = AT, known_la_codes=None):
    batch = Batch(store, at) if known_la_codes is None else Batch(store, at, known_la_codes=known_la_codes)
    outcomes = batch.stage(list(postings))
    store.commit(batch.events)
    return outcomes


def refused(store: FakeStore, *postings, error=InvalidEvidence):
    before = store.count()
    batch = Batch(store, AT)
    with pytest.raises(error) as err:
        batch.stage(list(postings))
    assert store.count() == before
    return err.value.errors


# --- recording and idempotency -----------------------------------------------------------


def test_a_batch_records_each_posting(store):
    outcomes = record(store, REG, INSP)
    assert [(o.client_id, o.status) for o in outcomes] == [("reg-1", RECORDED), ("sched-2011-0042", RECORDED)]
    assert outcomes[0].aggregate_id == provider_id("EY100001")
    assert outcomes[1].aggregate_id == key_id("sched-2011-0042")
    # the registration reserves its client id; the inspection's own id is its key
    assert set(store.events) == {provider_id("EY100001"), key_id("reg-1"), key_id("sched-2011-0042")}
    assert store.get(key_id("sched-2011-0042")).state["overall_effectiveness"] == "good"
    assert {e.timestamp for v in store.events.values() for e in v} == {AT}


def test_the_same_batch_twice_records_nothing_new(store):
    record(store, REG, INSP)
    n = store.count()
    batch = Batch(store, AT)
    outcomes = batch.stage([REG, INSP])
    assert [o.status for o in outcomes] == [ALREADY_RECORDED, ALREADY_RECORDED]
    assert [o.aggregate_id for o in outcomes] == [provider_id("EY100001"), key_id("sched-2011-0042")]
    assert batch.events == []
    assert store.count() == n


def test_the_same_posting_by_another_actor_is_already_recorded(store):
    record(store, REG)
    other = parse_posting({**KINDS["provider_registered"].example, "type": "provider_registered",
                           "client_id": "reg-1", "actor": "someone else"})[0]
    [o] = record(store, other)
    assert o.status == ALREADY_RECORDED


def test_the_same_client_id_twice_in_one_batch(store):
    outcomes = record(store, REG, INSP, INSP)
    assert [o.status for o in outcomes] == [RECORDED, RECORDED, ALREADY_RECORDED]
    assert len(store.events[key_id("sched-2011-0042")]) == 1


def test_the_same_client_id_with_other_content_in_one_batch_conflicts(store):
    errors = refused(store, REG, INSP, p("provider_inspection", "sched-2011-0042", overall_effectiveness="inadequate"),
                     error=ConflictingPosting)
    [e] = errors
    assert (e.field, e.value) == ("client_id", "sched-2011-0042")
    assert "different content" in e.reason


def test_a_client_id_recorded_before_with_other_content_conflicts(store):
    record(store, REG, INSP)
    [e] = refused(store, p("provider_inspection", "sched-2011-0042", staying_safe="inadequate"), error=ConflictingPosting)
    assert (e.field, e.value) == ("client_id", "sched-2011-0042")
    assert "different content" in e.reason


def test_a_client_id_reused_for_another_kind_conflicts(store):
    record(store, REG)
    [e] = refused(store, p("provider_closed", "reg-1"), error=ConflictingPosting)
    assert e.value == "reg-1"


def test_errors_and_conflicts_together_are_reported_as_invalid(store):
    record(store, REG, INSP)
    errors = refused(store, p("provider_inspection", "sched-2011-0042", staying_safe="inadequate"),
                     p("provider_inspection", "other", urn="NOPE"))
    assert {e.field for e in errors} == {"urn", "client_id"}


# --- a rejected batch writes nothing ----------------------------------------------------


def test_one_bad_posting_among_good_ones_writes_nothing(store):
    record(store, REG)
    n = store.count()
    errors = refused(store, p("provider_inspection", "good-1"),
                     p("provider_inspection", "bad", occurred_on="2005-01-01", published_on="2005-02-01"),
                     p("provider_inspection", "good-2"))
    [e] = errors
    assert (e.field, e.value) == ("occurred_on", "2005-01-01")
    assert "registered on 2006-04-03" in e.reason
    assert store.count() == n
    assert store.prior_postings(["good-1", "good-2"]) == {}


def test_inspection_of_an_unregistered_provider(store):
    [e] = refused(store, INSP)
    assert (e.field, e.value) == ("urn", "EY100001")
    assert "not a registered provider" in e.reason


def test_provider_registered_twice(store):
    record(store, REG)
    [e] = refused(store, p("provider_registered", "reg-2"))
    assert (e.field, e.value) == ("urn", "EY100001") and "already registered" in e.reason
    # also inside one batch
    [e] = refused(FakeStore(), REG, p("provider_registered", "reg-2"))
    assert e.field == "urn"


# --- follow-ups ------------------------------------------------------------------------


def test_correction_in_a_later_batch(store):
    record(store, REG, INSP)
    later = datetime(2011, 9, 20, tzinfo=UTC)
    [o] = record(store, p("correction", "fix-1"), at=later)
    assert (o.status, o.aggregate_id) == (RECORDED, key_id("sched-2011-0042"))
    item = store.get(key_id("sched-2011-0042"))
    assert item.state["overall_effectiveness"] == "satisfactory"
    corrected = store.events[key_id("sched-2011-0042")][-1]
    assert (corrected.client_id, corrected.timestamp, corrected.reason) == ("fix-1", later, "Transcription error")
    # the correction's client id is reserved: posting it again records nothing
    n = store.count()
    [o] = record(store, p("correction", "fix-1"))
    assert o.status == ALREADY_RECORDED and store.count() == n


def test_correction_in_the_same_batch_as_its_target(store):
    record(store, REG, INSP, p("correction", "fix-1"))
    assert [type(e).__name__ for e in store.events[key_id("sched-2011-0042")]] == ["Recorded", "Corrected"]


def test_correction_changes_are_typed_and_checked(store):
    record(store, REG, INSP)
    [e] = refused(store, p("correction", "fix-1", changes={"overall_effectiveness": "superb"}))
    assert (e.field, e.value) == ("changes.overall_effectiveness", "superb")
    [e] = refused(store, p("correction", "fix-1", changes={"grade": "good"}))
    assert e.field == "changes.grade" and "not a field of provider_inspection" in e.reason
    [e] = refused(store, p("correction", "fix-1", changes={"published_on": "2011-07-01"}))
    assert (e.field, e.value) == ("published_on", "2011-07-01")
    [e] = refused(store, p("correction", "fix-1", changes={"urn": "EY100002"}))
    assert e.field == "changes.urn" and "cannot be corrected" in e.reason
    [e] = refused(store, p("correction", "fix-1", changes={}))
    assert e.field == "changes" and "names no field" in e.reason
    [e] = refused(store, p("correction", "fix-1", changes={"staying_safe": ""}))
    assert e.field == "changes.staying_safe"
    record(store, p("correction", "fix-2", changes={"published_on": "2011-09-30"}))
    assert store.get(key_id("sched-2011-0042")).state["published_on"] == date(2011, 9, 30)


def test_correction_of_a_provider_by_urn_and_by_its_registration_client_id(store):
    record(store, REG)
    record(store, p("correction", "fix-1", target=None, urn="EY100001", changes={"group": "childcare_domestic"}))
    record(store, p("correction", "fix-2", changes={"name": "Renamed"}, target="reg-1"))
    state = store.get(provider_id("EY100001")).state
    assert (state["group"], state["name"]) == ("childcare_domestic", "Renamed")
    [e] = refused(store, p("correction", "fix-3", target=None, urn="EY100001", changes={"group": "nursery"}))
    assert e.field == "changes.group"


def test_correction_of_a_provider_to_an_unknown_authority_is_refused(store):
    record(store, REG)
    before = store.count()
    batch = Batch(store, AT, known_la_codes=CODES)
    with pytest.raises(InvalidEvidence) as err:
        batch.stage([p("correction", "fix-1", target=None, urn="EY100001", changes={"la_code": "999"})])
    [e] = err.value.errors
    assert (e.field, e.value) == ("changes.la_code", "999") and "152" in e.reason
    assert store.count() == before
    record(store, p("correction", "fix-2", target=None, urn="EY100001", changes={"la_code": "887"}),
           known_la_codes=CODES)
    assert store.get(provider_id("EY100001")).state["la_code"] == "887"


def test_follow_up_of_an_unknown_posting_or_of_a_follow_up(store):
    [e] = refused(store, p("correction", "fix-1", target="nothing"))
    assert (e.field, e.value) == ("target", "nothing") and "not a posting the ledger holds" in e.reason
    record(store, REG, INSP, p("correction", "fix-1"))
    [e] = refused(store, p("withdrawal", "w-1", target="fix-1"))
    assert (e.field, e.value) == ("target", "fix-1") and "follow-up" in e.reason
    [e] = refused(store, p("withdrawal", "w-1", target=None, urn="NOPE"))
    assert (e.field, e.value) == ("urn", "NOPE")


def test_publication_date_supplied(store):
    record(store, REG, p("compliance_check", "cc-1", urn="EY100001", occurred_on="2011-03-02"))
    [e] = refused(store, p("publication_date_supplied", "pub-1", target="cc-1", published_on="2011-03-01"))
    assert (e.field, e.value) == ("published_on", "2011-03-01")
    assert "before occurred_on" in e.reason
    record(store, p("publication_date_supplied", "pub-1", target="cc-1", published_on="2011-04-01"))
    assert store.get(key_id("cc-1")).state["published_on"] == date(2011, 4, 1)


def test_withdrawal(store):
    record(store, REG, INSP)
    record(store, p("withdrawal", "w-1"))
    assert store.get(key_id("sched-2011-0042")).withdrawn
    [e] = refused(store, p("withdrawal", "w-2"))
    assert (e.field, e.value) == ("target", "sched-2011-0042") and "withdrawn" in e.reason
    [e] = refused(store, p("correction", "fix-1"))
    assert "withdrawn" in e.reason
    # the same withdrawal again is idempotent, not a second withdrawal
    [o] = record(store, p("withdrawal", "w-1"))
    assert o.status == ALREADY_RECORDED


# --- provider lifecycle and assessment ----------------------------------------------------


def test_provider_lifecycle(store):
    record(store, REG, p("provider_registered", "reg-2", urn="EY100002", group="childcare_domestic"))
    record(store, p("provider_closed", "close-1", occurred_on="2011-08-31"),
           p("provider_no_children_on_roll", "ncr-1"),
           p("provider_restructured", "rs-1", urn="EY100001", successor_urn="EY100003"))
    one, two = store.get(provider_id("EY100001")), store.get(provider_id("EY100002"))
    assert one.state["closed_on"] == date(2011, 8, 31)
    assert one.state["successor_urn"] == "EY100003"
    assert two.state["no_children_on_roll_from"] == date(2010, 1, 1)
    assert store.prior_postings(["close-1"])["close-1"].aggregate_id == provider_id("EY100001")
    [e] = refused(store, p("provider_closed", "close-2", urn="EY100002", occurred_on="2001-01-01"))
    assert (e.field, e.value) == ("occurred_on", "2001-01-01")  # before its registration
    [e] = refused(store, p("provider_closed", "close-3", urn="UNKNOWN"))
    assert (e.field, e.value) == ("urn", "UNKNOWN")


def test_withdrawn_provider_registration_blocks_new_inspections(store):
    record(store, REG)
    record(store, p("withdrawal", "w-1", target=None, urn="EY100001"))
    [e] = refused(store, INSP)
    assert (e.field, e.value) == ("urn", "EY100001") and "withdrawn" in e.reason
    [e] = refused(store, p("provider_closed", "close-1"))
    assert "withdrawn" in e.reason


def test_assessment_steps_go_to_one_aggregate_per_authority_and_year(store):
    record(store, p("assessment_proposed", "a-1"), p("inspector_judgement_applied", "a-2"))
    record(store, p("draft_letter_sent", "a-3"), p("assessment_proposed", "b-1", la_code="887"))
    a = store.get(assessment_id("886", 2011))
    assert [s for s, _ in a.steps] == ["assessment_proposed", "inspector_judgement_applied", "draft_letter_sent"]
    assert [s for s, _ in store.get(assessment_id("887", 2011)).steps] == ["assessment_proposed"]
    # a step's client id is reserved; an assessment step cannot be corrected
    assert store.prior_postings(["a-2"])["a-2"].type == "inspector_judgement_applied"
    [e] = refused(store, p("correction", "fix-1", target="a-2"))
    assert "assessment step" in e.reason


def test_a_batch_never_touches_the_store_it_reads():
    store = FakeStore()
    record(store, REG, INSP)
    snapshot = {k: list(v) for k, v in store.events.items()}
    batch = Batch(store, AT)
    batch.stage([p("correction", "fix-1"), p("provider_closed", "close-1")])
    assert len(batch.events) == 4  # Corrected, its ClientKey, Closed, its ClientKey
    assert store.events == snapshot
    assert isinstance(store.get(provider_id("EY100001")), Provider)


def test_the_in_memory_event_store_is_an_aggregate_source():
    """The eventsourcing POPO store (make_application("memory")) answers prior postings too."""
    from adapters.eventstore import make_application

    app = make_application("memory")
    batch = Batch(app, AT)
    batch.stage([REG, INSP, p("provider_closed", "close-1")])
    app.save(*batch.events)
    assert set(app.prior_postings(["reg-1", "sched-2011-0042", "close-1", "nothing"])) == {
        "reg-1", "sched-2011-0042", "close-1"}
    again = Batch(app, AT)
    assert [o.status for o in again.stage([REG, INSP])] == [ALREADY_RECORDED, ALREADY_RECORDED]
    assert again.events == []
    assert app.get(provider_id("EY100001")).state["closed_on"] == date(2010, 7, 31)


def errors_staging(raws: list[dict]) -> list:
    """The errors a batch of raw postings is refused with, on an empty in-memory store."""
    from datetime import UTC, datetime

    from adapters.eventstore import make_application
    from domain.errors import InvalidEvidence
    from domain.handlers import Batch
    from domain.postings import parse_posting

    try:
        Batch(make_application("memory"), datetime(2011, 9, 6, tzinfo=UTC)).stage([parse_posting(r)[0] for r in raws])
    except InvalidEvidence as e:
        return e.errors
    raise AssertionError("the batch was accepted")


def test_a_known_publication_date_is_not_overwritten_by_a_supplied_one():
    [e] = errors_staging([
        {"type": "provider_registered", "client_id": "r", "actor": "a", "urn": "U1", "la_code": "886", "group": "primary_schools"},
        {"type": "provider_inspection", "client_id": "i", "actor": "a", "urn": "U1", "occurred_on": "2011-07-01",
         "published_on": "2011-09-01", "overall_effectiveness": "good"},
        {"type": "publication_date_supplied", "client_id": "p", "actor": "a", "target": "i", "published_on": "2011-09-05"},
    ])
    assert (e.field, e.value) == ("published_on", "2011-09-05") and "already known (2011-09-01)" in e.reason


def test_a_provider_cannot_be_closed_twice():
    [e] = errors_staging([
        {"type": "provider_registered", "client_id": "r", "actor": "a", "urn": "U1", "la_code": "886", "group": "primary_schools"},
        {"type": "provider_closed", "client_id": "c1", "actor": "a", "urn": "U1", "occurred_on": "2010-07-31"},
        {"type": "provider_closed", "client_id": "c2", "actor": "a", "urn": "U1", "occurred_on": "2010-08-31"},
    ])
    assert (e.field, e.value) == ("urn", "U1") and "already closed (2010-07-31)" in e.reason

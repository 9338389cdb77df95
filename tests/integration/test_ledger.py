"""The Ledger facade on both stores (SQLite file and PostgreSQL): recording, the
bitemporal read model, rebuild / verify, history, export / restore."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, or_, select, text, update

from adapters.ledger import Ledger
from domain.errors import ConflictingPosting, InvalidEvidence
from domain.model import key_id, provider_id
from domain.postings import KINDS
from projections.projector import digest
from projections.tables import event_log, evidence

T0 = datetime(2011, 9, 1, 9, 0, tzinfo=UTC)


def post(type_: str, client_id: str, actor: str = "ofsted-mi", **fields):
    body = {**KINDS[type_].example, **fields}
    return {"type": type_, "client_id": client_id, "actor": actor,
            **{k: v for k, v in body.items() if v is not None}}


REG = post("provider_registered", "reg-EY100001")
REG2 = post("provider_registered", "reg-EY100002", urn="EY100002", group="childcare_domestic", name=None,
            occurred_on="2009-01-05")
INSP = post("provider_inspection", "sched-2011-0042")


def naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


def rows(ledger: Ledger, client_id: str | None = None, item_id=None) -> list[dict]:
    item = str(item_id or key_id(client_id))
    with ledger.engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            select(evidence).where(evidence.c.item_id == item).order_by(evidence.c.version)).mappings()]


def known_at(ledger: Ledger, t: datetime, **where) -> list[dict]:
    """The rows the ledger knew at `t`: recorded_from <= t < coalesce(recorded_to, inf)."""
    t = naive(t)
    q = select(evidence).where(evidence.c.recorded_from <= t,
                               or_(evidence.c.recorded_to.is_(None), evidence.c.recorded_to > t))
    for col, value in where.items():
        q = q.where(evidence.c[col] == value)
    with ledger.engine.connect() as conn:
        return [dict(r) for r in conn.execute(q.order_by(evidence.c.item_id)).mappings()]


def state(ledger: Ledger) -> tuple[int, str]:
    """What a refused batch must leave unchanged: the log position and the read model."""
    return ledger.projector.log_position(), digest(ledger.engine)[0]


def refused(ledger: Ledger, postings, error=InvalidEvidence):
    before = state(ledger)
    with pytest.raises(error) as err:
        ledger.record(postings)
    assert state(ledger) == before
    return err.value.errors


def populate(ledger: Ledger, clock) -> None:
    """A small history touching every event the projector handles, over several days."""
    clock.set(T0)
    ledger.record([REG, REG2, INSP,
                   post("provider_registered", "reg-118000", urn="118000", group="primary_schools",
                        occurred_on="1990-09-01"),
                   post("compliance_check", "cc-1", urn="EY100002", occurred_on="2011-03-02"),
                   post("unannounced_inspection", "ua-1"), post("full_inspection", "fi-1"),
                   post("indicator_value", "ind-1"), post("assessment_proposed", "step-1")])
    clock.advance(days=1)
    ledger.record([post("correction", "fix-1"), post("provider_no_children_on_roll", "ncr-1"),
                   post("publication_date_supplied", "pub-1", target="cc-1", published_on="2011-04-01")])
    clock.advance(days=1)
    ledger.record([post("provider_restructured", "rs-1"), post("withdrawal", "w-1", target="ua-1"),
                   post("correction", "fix-2", target=None, urn="EY100002", changes={"name": "Little Ones"}),
                   post("inspector_judgement_applied", "step-2", actor="hmi-jones")])
    clock.advance(days=1)
    ledger.record([post("provider_closed", "close-1", occurred_on="2011-08-31"),
                   post("correction", "fix-3", target="sched-2011-0042", changes={"staying_safe": "outstanding"},
                        reason="Second transcription error")])


# --- every kind, end to end -----------------------------------------------------------------


def test_every_example_records(ledger, clock):
    """Each kind's documented example is recorded as it stands (with its prerequisites)."""
    order = ["provider_registered", "provider_inspection", "compliance_check", "publication_date_supplied",
             "correction", "provider_closed", "provider_restructured", "provider_no_children_on_roll"]
    pending = order + sorted(set(KINDS) - set(order) - {"withdrawal"}) + ["withdrawal"]
    assert set(pending) == set(KINDS)
    ledger.record([post("provider_registered", "reg-EY100002", urn="EY100002", occurred_on="2009-01-01"),
                   post("provider_registered", "reg-118000", urn="118000", occurred_on="1990-01-01")])
    for i, type_ in enumerate(pending):
        client_id = "sched-2011-0042" if type_ == "provider_inspection" else f"ex-{i}"
        posting = post(type_, client_id)
        if type_ == "provider_inspection":  # publication_date_supplied's example supplies its date later
            posting.pop("published_on")
        result = ledger.record([posting])
        assert result.recorded == 1, type_
    with ledger.engine.connect() as conn:
        logged = set(conn.execute(select(event_log.c.kind).distinct()).scalars())
    assert {"provider_registered", "provider_inspection", "assessment_published", "indicator_value"} <= logged


# --- writing nothing on any error -------------------------------------------------------------


BAD = [
    (post("provider_inspection", "b", overall_effectiveness="excellent"), "overall_effectiveness", "excellent"),
    (post("provider_registered", "b", urn="EY9", group="playgroups"), "group", "playgroups"),
    (post("unannounced_inspection", "b", la_code="999"), "la_code", "999"),
    ({"type": "inspection", "client_id": "b", "actor": "x"}, "type", "inspection"),
    (post("provider_inspection", "b", published_on="2011-07-01"), "published_on", "2011-07-01"),
    (post("provider_inspection", "b", occurred_on="2006-04-02", published_on="2006-05-01"), "occurred_on", "2006-04-02"),
    (post("provider_inspection", "b", occurred_on="2011-02-30", published_on=None), "occurred_on", "2011-02-30"),
    (post("provider_inspection", "b", occurred_on="01/02/2011", published_on=None), "occurred_on", "01/02/2011"),
    (post("indicator_value", "b", polarity=None), "polarity", None),
    (post("provider_inspection", "b", urn="EY404"), "urn", "EY404"),
    (post("correction", "b", target="nothing"), "target", "nothing"),
]


@pytest.mark.parametrize("bad, field, value", BAD, ids=[f"{b[1]}={b[2]}" for b in BAD])
def test_a_bad_posting_among_good_ones_writes_nothing(ledger, bad, field, value):
    ledger.record([REG, INSP])
    good = [post("provider_inspection", "good-1", occurred_on="2011-01-10", published_on="2011-02-01"),
            post("unannounced_inspection", "good-2")]
    errors = refused(ledger, [good[0], bad, good[1]])
    assert [(e.field, e.value) for e in errors] == [(field, value)]
    assert errors[0].reason
    assert ledger.app.prior_postings(["good-1", "good-2"]) == {}


def test_errors_carry_the_line_they_came_from(ledger):
    ledger.record([REG])
    errors = refused(ledger, [(7, post("provider_inspection", "b", overall_effectiveness="great"))])
    assert errors[0].line == 7 and str(errors[0]).startswith("line 7: overall_effectiveness='great'")


def test_duplicate_client_id_with_other_content_is_a_conflict(ledger):
    ledger.record([REG, INSP])
    [e] = refused(ledger, [post("provider_inspection", "sched-2011-0042", overall_effectiveness="inadequate")],
                  error=ConflictingPosting)
    assert (e.field, e.value) == ("client_id", "sched-2011-0042")
    assert "different content" in e.reason
    [row] = rows(ledger, "sched-2011-0042")
    assert row["data"]["overall_effectiveness"] == "good"


# --- idempotency --------------------------------------------------------------------------


def test_the_same_batch_twice(ledger, clock):
    first = ledger.record([REG, INSP, post("assessment_proposed", "step-1"), post("correction", "fix-1")])
    assert first.recorded == 4
    before = state(ledger)
    clock.advance(hours=1)
    second = ledger.record([REG, INSP, post("assessment_proposed", "step-1"), post("correction", "fix-1")])
    assert (second.recorded, second.already_recorded) == (0, 4)
    assert [o.aggregate_id for o in second.outcomes] == [o.aggregate_id for o in first.outcomes]
    assert state(ledger) == before
    assert second.position == first.position


def test_the_same_client_id_twice_in_one_batch(ledger):
    result = ledger.record([REG, INSP, INSP])
    assert [o.status for o in result.outcomes] == ["recorded", "recorded", "already_recorded"]
    assert len(rows(ledger, "sched-2011-0042")) == 1
    refused(ledger, [post("unannounced_inspection", "u"), post("unannounced_inspection", "u", priority_actions=["x"])],
            error=ConflictingPosting)


# --- corrections and the known_at view --------------------------------------------------------


def test_correction_closes_the_old_version_and_opens_the_new(ledger, clock):
    ledger.record([REG, INSP])
    t_recorded = clock.now
    t_fix = clock.advance(days=10)
    ledger.record([post("correction", "fix-1", actor="data-team")])
    old, new = rows(ledger, "sched-2011-0042")
    assert (old["version"], new["version"]) == (1, 2)
    assert old["recorded_from"] == naive(t_recorded)
    assert old["recorded_to"] == naive(t_fix) == new["recorded_from"]
    assert old["closed_by"] == "Corrected" and not old["withdrawn"]
    assert new["recorded_to"] is None
    assert old["data"]["overall_effectiveness"] == "good"
    assert new["data"]["overall_effectiveness"] == "satisfactory"
    assert new["data"]["staying_safe"] == "good"  # untouched fields carried over
    assert (new["actor"], new["client_id"]) == ("data-team", "sched-2011-0042")
    assert (new["la_code"], new["urn"]) == ("886", "EY100001")


def test_known_at_before_a_correction_gives_the_old_values(ledger, clock):
    ledger.record([REG, INSP])
    t1 = clock.advance(days=1)
    clock.advance(days=10)
    ledger.record([post("correction", "fix-1", changes={"overall_effectiveness": "inadequate",
                                                        "published_on": "2011-09-06"})])
    t2 = clock.advance(days=1)
    [then] = known_at(ledger, t1, kind="provider_inspection")
    [now] = known_at(ledger, t2, kind="provider_inspection")
    assert (then["data"]["overall_effectiveness"], then["published_on"]) == ("good", date(2011, 9, 5))
    assert (now["data"]["overall_effectiveness"], now["published_on"]) == ("inadequate", date(2011, 9, 6))
    assert known_at(ledger, T0.replace(year=2010), kind="provider_inspection") == []


def test_publication_date_supplied(ledger, clock):
    ledger.record([post("serious_case_review_evaluation", "scr-1")])
    t1 = clock.now
    assert rows(ledger, "scr-1")[0]["published_on"] is None
    errors = refused(ledger, [post("publication_date_supplied", "pub-1", target="scr-1", published_on="2010-05-31")])
    assert [(e.field, e.value) for e in errors] == [("published_on", "2010-05-31")]
    clock.advance(days=3)
    ledger.record([post("publication_date_supplied", "pub-1", target="scr-1", published_on="2010-07-01")])
    old, new = rows(ledger, "scr-1")
    assert (old["published_on"], old["closed_by"]) == (None, "PublicationDateSupplied")
    assert new["published_on"] == date(2010, 7, 1) and new["recorded_to"] is None
    assert known_at(ledger, t1, kind="serious_case_review_evaluation")[0]["published_on"] is None


def test_withdrawal(ledger, clock):
    ledger.record([REG, INSP])
    t1 = clock.now
    t_w = clock.advance(days=2)
    ledger.record([post("withdrawal", "w-1")])
    [row] = rows(ledger, "sched-2011-0042")
    assert row["withdrawn"] and row["recorded_to"] == naive(t_w) and row["closed_by"] == "Withdrawn"
    assert known_at(ledger, clock.advance(days=1), kind="provider_inspection") == []
    assert len(known_at(ledger, t1, kind="provider_inspection")) == 1
    [e] = refused(ledger, [post("correction", "fix-1")])
    assert (e.field, e.value) == ("target", "sched-2011-0042") and "withdrawn" in e.reason
    [e] = refused(ledger, [post("withdrawal", "w-2")])
    assert "withdrawn" in e.reason
    assert ledger.record([post("withdrawal", "w-1")]).already_recorded == 1


# --- providers --------------------------------------------------------------------------


def test_provider_lifecycle(ledger, clock):
    ledger.record([REG, REG2])
    clock.advance(days=1)
    ledger.record([post("provider_closed", "close-1", occurred_on="2011-08-31"),
                   post("provider_restructured", "rs-1", urn="EY100001", successor_urn="EY200001"),
                   post("provider_no_children_on_roll", "ncr-1")])
    versions = rows(ledger, item_id=provider_id("EY100001"))
    assert [r["closed_by"] for r in versions] == ["Closed", "Restructured", None]
    assert versions[-1]["data"]["closed_on"] == "2011-08-31"
    assert versions[-1]["data"]["successor_urn"] == "EY200001"
    assert rows(ledger, item_id=provider_id("EY100002"))[-1]["data"]["no_children_on_roll_from"] == "2010-01-01"
    [e] = refused(ledger, [post("provider_closed", "close-2", urn="EY100002", occurred_on="2008-12-31")])
    assert (e.field, e.value) == ("occurred_on", "2008-12-31") and "registered on 2009-01-05" in e.reason


def test_correction_of_a_provider_by_urn(ledger, clock):
    ledger.record([REG])
    clock.advance(days=1)
    ledger.record([post("correction", "fix-1", target=None, urn="EY100001",
                        changes={"group": "childcare_non_domestic", "occurred_on": "2007-01-01"})])
    old, new = rows(ledger, item_id=provider_id("EY100001"))
    assert (old["group_code"], new["group_code"]) == ("childminders", "childcare_non_domestic")
    assert new["occurred_on"] == date(2007, 1, 1)
    # the corrected registration date now bounds inspections
    [e] = refused(ledger, [post("provider_inspection", "i", occurred_on="2006-06-01", published_on="2006-07-01")])
    assert "registered on 2007-01-01" in e.reason
    [e] = refused(ledger, [post("correction", "fix-2", target=None, urn="EY100001", changes={"la_code": "999"})])
    assert (e.field, e.value) == ("changes.la_code", "999")


def test_withdrawn_provider_registration_blocks_new_inspections(ledger):
    ledger.record([REG, INSP])
    ledger.record([post("withdrawal", "w-1", target=None, urn="EY100001")])
    [e] = refused(ledger, [post("provider_inspection", "sched-2")])
    assert (e.field, e.value) == ("urn", "EY100001") and "withdrawn" in e.reason
    assert rows(ledger, item_id=provider_id("EY100001"))[0]["withdrawn"]


def test_inspection_rows_take_their_authority_from_the_provider(ledger):
    ledger.record([REG, INSP, post("compliance_check", "cc-1", urn="EY100001")])
    assert {r["la_code"] for r in known_at(ledger, datetime.now(UTC), urn="EY100001")} == {"886"}


def test_a_corrected_inspection_keeps_its_authority_after_its_provider_was_withdrawn(ledger):
    ledger.record([REG, INSP])
    ledger.record([post("withdrawal", "w-1", target=None, urn="EY100001")])
    ledger.record([post("correction", "fix-1")])
    assert [(r["version"], r["la_code"]) for r in rows(ledger, "sched-2011-0042")] == [(1, "886"), (2, "886")]
    assert [h["client_id"] for h in ledger.history(la_code="886")][-1] == "fix-1"


# --- assessments and history ------------------------------------------------------------------


def test_assessment_steps_are_recorded_and_in_history(ledger, clock):
    ledger.record([post("assessment_proposed", "s-1", actor="engine")])
    clock.advance(days=7)
    ledger.record([post("inspector_judgement_applied", "s-2", actor="hmi-jones")])
    clock.advance(days=11)
    ledger.record([post("draft_letter_sent", "s-3", actor="hmi-jones"),
                   post("assessment_proposed", "s-9", la_code="887")])
    steps = [h for h in ledger.history(la_code="886") if h["year"] == 2011]
    assert [(h["kind"], h["actor"], h["recorded_at"]) for h in steps] == [
        ("assessment_proposed", "engine", naive(T0)),
        ("inspector_judgement_applied", "hmi-jones", naive(T0.replace(day=8))),
        ("draft_letter_sent", "hmi-jones", naive(T0.replace(day=19))),
    ]
    assert steps[1]["details"]["reasons"] == "Block A and B agree"
    assert [h["client_id"] for h in ledger.history(la_code="887")] == ["s-9"]


def test_history_by_authority_and_by_provider(ledger, clock):
    populate(ledger, clock)
    by_la = ledger.history(la_code="886")
    positions = [h["position"] for h in by_la]
    assert positions == sorted(positions)
    assert all(h["la_code"] == "886" for h in by_la)
    assert [h["recorded_at"] for h in by_la] == sorted(h["recorded_at"] for h in by_la)
    by_urn = ledger.history(urn="EY100001")
    assert [(h["event"].split(".")[-1], h["client_id"]) for h in by_urn] == [
        ("Registered", "reg-EY100001"), ("Recorded", "sched-2011-0042"), ("Corrected", "fix-1"),
        ("Closed", "close-1"), ("Corrected", "fix-3")]
    assert [h["client_id"] for h in ledger.history(urn="118000")] == ["reg-118000", "rs-1"]
    assert {h["actor"] for h in by_urn} == {"ofsted-mi"}
    assert by_urn[2]["details"]["changes"] == {"overall_effectiveness": "satisfactory"}
    assert by_urn[2]["recorded_at"] == naive(T0.replace(day=2))
    newest = ledger.history(urn="EY100001", newest_first=True, limit=2)
    assert [h["client_id"] for h in newest] == ["fix-3", "close-1"]


# --- rebuild, verify, projector batches ----------------------------------------------------


def test_rebuild_equals_live(ledger, clock):
    populate(ledger, clock)
    live, counts = digest(ledger.engine)
    assert counts["rm_evidence"] > counts["rm_event_log"] / 2 > 5
    ledger.rebuild()
    assert digest(ledger.engine) == (live, counts)


def test_projector_in_small_batches_equals_one_big_batch(ledger, clock):
    clock.set(T0)
    ledger.record([REG, REG2], project=False)
    ledger.record([{k: v for k, v in INSP.items() if k != "published_on"}], project=False)  # date not yet known
    clock.advance(days=1)
    # the correction lands in the batch after its target's (batch_size=2: positions 1-2, 3-4, 5-6 ...)
    ledger.record([post("correction", "fix-1")], project=False)
    clock.advance(days=1)
    ledger.record([post("publication_date_supplied", "pub-1", target="sched-2011-0042",
                        published_on="2011-09-07")], project=False)
    ledger.record([post("compliance_check", "cc-1", urn="EY100002")], project=False)
    ledger.record([post("withdrawal", "w-1", target="cc-1"), post("provider_closed", "cl-1")], project=False)
    ledger.projector.batch_size = 2
    batches: list[int] = []
    ledger.catch_up(on_batch=batches.append)
    assert len(batches) > 3 and max(batches) == 2
    small = digest(ledger.engine)
    ledger.projector.batch_size = 10000
    ledger.rebuild()
    assert digest(ledger.engine) == small
    old, mid, new = rows(ledger, "sched-2011-0042")
    assert (old["closed_by"], mid["closed_by"], new["recorded_to"]) == ("Corrected", "PublicationDateSupplied", None)


def test_verify_returns_equal_digests(ledger, clock, tmp_path):
    populate(ledger, clock)
    live, fresh, live_counts, fresh_counts = ledger.verify(f"sqlite:///{tmp_path}/scratch.sqlite")
    assert live == fresh and live_counts == fresh_counts
    assert live == digest(ledger.engine)[0]


def test_verify_detects_a_tampered_read_model(ledger, clock, tmp_path):
    populate(ledger, clock)
    with ledger.engine.begin() as conn:
        conn.execute(update(evidence).where(evidence.c.item_id == str(key_id("fi-1")))
                     .values(published_on=date(2010, 12, 1)))
    live, fresh, live_counts, fresh_counts = ledger.verify(f"sqlite:///{tmp_path}/scratch.sqlite")
    assert live != fresh
    assert live_counts == fresh_counts


def test_verify_detects_a_deleted_log_row(ledger, clock, tmp_path):
    populate(ledger, clock)
    with ledger.engine.begin() as conn:
        conn.execute(event_log.delete().where(event_log.c.client_id == "fix-1"))
    live, fresh, live_counts, fresh_counts = ledger.verify(f"sqlite:///{tmp_path}/scratch.sqlite")
    assert live != fresh
    assert live_counts["rm_event_log"] == fresh_counts["rm_event_log"] - 1


# --- export and restore ---------------------------------------------------------------------


def _wipe(url: str) -> None:
    if url.startswith("sqlite"):
        Path(url.removeprefix("sqlite:///")).unlink()
        return
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _notes(ledger: Ledger) -> list[tuple]:
    return [(n.id, str(n.originator_id), n.originator_version, n.topic, json.loads(n.state))
            for n in ledger.iter_notifications()]


def test_export_then_restore_into_an_empty_store(ledger, clock, store_url, tmp_path):
    populate(ledger, clock)
    path = tmp_path / "export.jsonl"
    n = ledger.export(path)
    notes, live = _notes(ledger), digest(ledger.engine)
    assert n == len(notes) > 20
    header = json.loads(path.read_text().splitlines()[0])
    assert header == {"format": "csa-ledger-export", "version": 1, "events": notes[-1][0]}
    ledger.close()
    _wipe(store_url)

    restored = Ledger(store_url, clock=clock)
    try:
        with path.open(encoding="utf-8") as lines:
            assert restored.restore(lines, chunk=7) == n
        assert _notes(restored) == notes
        assert [bytes(a.state) for a in restored.iter_notifications()] == [
            json.dumps(s, separators=(",", ":"), ensure_ascii=False).encode() for *_, s in notes]
        assert digest(restored.engine) == live
        # the restored store works: its postings are already recorded
        assert restored.record([REG, INSP]).already_recorded == 2
    finally:
        restored.close()


def test_restore_keeps_positions_across_a_gap(ledger, clock, store_url, tmp_path):
    """PostgreSQL skips the ids of a rolled-back insert; an export carries those holes and
    a restore must reproduce them, or every position in the read model shifts."""
    populate(ledger, clock)
    path = tmp_path / "export.jsonl"
    ledger.export(path)
    header, *records = [json.loads(x) for x in path.read_text().splitlines()]
    for i, rec in enumerate(records):  # holes after the 1st and the 10th event, as a PostgreSQL export has
        rec["position"] += (3 if i >= 1 else 0) + (1 if i >= 10 else 0)
    path.write_text("\n".join(json.dumps(r) for r in [header, *records]) + "\n")
    ledger.close()
    _wipe(store_url)

    restored = Ledger(store_url, clock=clock)
    try:
        restored.restore(path.read_text().splitlines(), chunk=4)
        assert [(n.id, str(n.originator_id), n.originator_version) for n in restored.iter_notifications()] == [
            (r["position"], r["originator_id"], r["originator_version"]) for r in records]
        with restored.engine.connect() as conn:
            logged = set(conn.execute(select(event_log.c.position)).scalars())
        assert logged <= {r["position"] for r in records} and {2, 3, 4} & logged == set()
        # the restored store goes on numbering after the last position
        result = restored.record([post("unannounced_inspection", "after-restore")])
        assert result.position == records[-1]["position"] + 1
        live, fresh, *_ = restored.verify(f"sqlite:///{tmp_path}/scratch.sqlite")
        assert live == fresh
    finally:
        restored.close()


def test_restore_into_a_non_empty_store_is_refused(ledger, clock, tmp_path):
    ledger.record([REG])
    path = tmp_path / "export.jsonl"
    ledger.export(path)
    before = state(ledger)
    with pytest.raises(InvalidEvidence) as err:
        ledger.restore(path.read_text().splitlines())
    assert "empty store" in err.value.errors[0].reason
    assert state(ledger) == before


def test_restore_refuses_a_file_of_another_format(sqlite_url, tmp_path):
    led = Ledger(sqlite_url)
    try:
        with pytest.raises(InvalidEvidence):
            led.restore([json.dumps({"format": "something-else", "version": 1})])
        assert led.projector.log_position() == 0
    finally:
        led.close()

"""The projector's fast paths (issue 5) produce what the event objects would:
raw decoding against the application's mapper, follow-ups whose target is in an
earlier page, the bulk rebuild that drops and recreates the secondary indexes."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from test_ledger import populate, post

import projections.projector as projector
from domain.model import provider_id
from domain.postings import canonical
from projections.projector import _decode, _Page, _provider_item_id, _topic, digest
from projections.tables import BULK_INDEXES


def index_names(ledger) -> set[str]:
    with ledger.engine.connect() as conn:
        insp = inspect(conn)
        return {ix["name"] for t in ("rm_evidence", "rm_event_log") for ix in insp.get_indexes(t)}


def test_raw_decoding_matches_the_mapper(ledger, clock):
    populate(ledger, clock)
    notes = list(ledger.iter_notifications())
    assert notes
    with ledger.engine.connect() as conn:
        page = _Page(conn, ledger.app)
        for n in notes:
            event = ledger.app.mapper.to_domain_event(n)
            expected = canonical({k: v for k, v in event.__dict__.items()
                                  if k not in ("originator_id", "originator_version")})
            if _topic(n.topic).action:
                assert _decode(n.state.decode()) == expected, n.topic
            assert page._slow((n.id, n.originator_id, n.originator_version, n.topic, n.state)) == expected


def test_provider_item_id_is_provider_id():
    for urn in ("EY100001", "118000", "SC0042", "é-1"):
        assert _provider_item_id(urn) == str(provider_id(urn))


@pytest.mark.parametrize("batch_size", [1, 3, 7])
def test_every_page_size_gives_the_live_read_model(ledger, clock, batch_size):
    """Follow-ups (and provider look-ups) whose target is in an earlier page."""
    populate(ledger, clock)
    clock.advance(days=1)
    ledger.record([post("compliance_check", "cc-late", urn="EY100002", occurred_on="2011-06-02"),
                   post("withdrawal", "w-late", target="fi-1")])
    live = digest(ledger.engine)
    ledger.projector.batch_size = batch_size
    batches: list[int] = []
    ledger.rebuild(on_batch=batches.append)
    assert max(batches) == batch_size
    assert digest(ledger.engine) == live


def test_bulk_rebuild_drops_and_recreates_the_indexes(ledger, clock, monkeypatch):
    populate(ledger, clock)
    live = digest(ledger.engine)
    names = {ix.name for ix in BULK_INDEXES}
    assert names <= index_names(ledger)
    monkeypatch.setattr(projector, "BULK_THRESHOLD", 1)
    monkeypatch.setattr(projector, "BULK_PAGE_EVENTS", 1)
    seen: list[set[str]] = []
    ledger.projector.batch_size = 4
    ledger.rebuild(on_batch=lambda n: seen.append(index_names(ledger)))
    assert seen and not (names & seen[0])  # built without them
    assert names <= index_names(ledger)  # and they are back
    assert digest(ledger.engine) == live


def test_reset_then_a_small_run_recreates_the_indexes(ledger, clock):
    populate(ledger, clock)
    live = digest(ledger.engine)
    ledger.projector.reset()
    names = {ix.name for ix in BULK_INDEXES}
    assert not (names & index_names(ledger))
    ledger.catch_up()
    assert names <= index_names(ledger)
    assert digest(ledger.engine) == live

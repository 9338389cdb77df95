"""Our aggregates build their events without the library's generic machinery
(`domain.model._Lean`, ADR 0021). The events must be the very objects the library's
`Aggregate._create` / `trigger_event` build (same class, same attributes in the same
order, so the mapper stores the same bytes), and the aggregates the same state,
version and timestamps, on every kind the sample records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid5

import pytest
from eventsourcing.domain import Aggregate

from adapters.eventstore import make_application
from adapters.reference import authorities
from adapters.sample import sample_postings
from domain import model
from domain.handlers import Batch
from domain.postings import parse_posting

CODES = authorities().codes


def _library(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route _Lean back to the library's own `_create` and `trigger_event`."""
    monkeypatch.setattr(model._Lean, "_create", classmethod(lambda cls, ec, **kw: Aggregate._create.__func__(cls, ec, **kw)))
    monkeypatch.setattr(model._Lean, "trigger_event", lambda self, ec, **kw: Aggregate.trigger_event(self, ec, **kw))


def _state(agg: Any) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in agg.__dict__.items() if k != "_pending_events"]


def _record_sample() -> tuple[list[Any], dict[Any, list[tuple[str, Any]]], Any]:
    app = make_application("memory")
    events: list[Any] = []
    aggregates: dict[Any, list[tuple[str, Any]]] = {}
    for when, raws in sample_postings():
        postings = []
        for raw in raws:
            p, errors = parse_posting(raw, default_actor="sample", known_la_codes=CODES)
            assert not errors, errors
            postings.append(p)
        batch = Batch(app, when, known_la_codes=CODES)
        batch.stage(postings)
        events += batch.events
        aggregates.update({i: (type(a), _state(a)) for i, a in batch.staged.items()})
        app.save(*batch.events)
    return events, aggregates, app


def test_lean_events_and_aggregates_are_the_librarys(monkeypatch):
    lean_events, lean_aggs, lean_app = _record_sample()
    with monkeypatch.context() as m:
        _library(m)
        m.setattr(model, "_new_event", None)  # proves the lean path is not taken
        lib_events, lib_aggs, _ = _record_sample()
    assert len(lean_events) == len(lib_events) > 1000
    kinds = set()
    for a, b in zip(lean_events, lib_events, strict=True):
        assert type(a) is type(b)
        assert list(vars(a).items()) == list(vars(b).items())  # same attributes, same order
        kinds.add(type(a).__qualname__)
    assert {"Evidence.Recorded", "Provider.Registered", "ClientKey.Reserved", "Evidence.Corrected",
            "Evidence.Withdrawn", "Evidence.PublicationDateSupplied", "Assessment.Opened",
            "Assessment.StepRecorded", "Provider.Closed"} <= kinds
    assert lean_aggs == lib_aggs
    # And what the library reconstructs from the stored events is what staging held.
    for agg_id, (cls, state) in list(lean_aggs.items())[:3000]:
        got = lean_app.repository.get(agg_id)
        assert type(got) is cls and _state(got) == state


def test_lean_path_refuses_what_the_library_refuses():
    at = datetime(2011, 1, 1, tzinfo=UTC)
    with pytest.raises(TypeError):
        model.ClientKey._create(model.ClientKey.Reserved, id=model.key_id("x"), timestamp=at, client_id="x")
    with pytest.raises(TypeError):
        model.ClientKey._create(model.ClientKey.Reserved, id="not-a-uuid", timestamp=at, client_id="x",
                                content_hash="h", type="t", aggregate_id=model.key_id("y"))


@pytest.mark.parametrize("name", ["", "x", "client:gen-212-reg-0001012", "provider:EY21200064", "assessment:886:2011",
                                  "é 日本 \u2028", "a" * 1000])
def test_ids_are_the_uuid5_of_their_names(name):
    expected = uuid5(model.NAMESPACE, name)
    got = model._uuid5(name)
    assert got == expected and hash(got) == hash(expected) and str(got) == str(expected)
    assert got.version == 5 and got.variant == expected.variant and got.is_safe is expected.is_safe
    assert model.key_id(name) == uuid5(model.NAMESPACE, "client:" + name)
    assert model.provider_id(name) == uuid5(model.NAMESPACE, "provider:" + name)
    assert model.assessment_id("886", 2011) == uuid5(model.NAMESPACE, "assessment:886:2011")


def test_collect_events_hands_over_the_pending_events_in_order_and_leaves_none():
    from domain.postings import Posting

    provider = model.Provider.register(Posting("provider_registered", "c-1", "a", {"urn": "U1", "occurred_on": datetime(2010, 1, 1, tzinfo=UTC).date()}),
                                       datetime(2011, 1, 1, tzinfo=UTC))
    provider.close(Posting("provider_closed", "c-2", "a", {"urn": "U1", "occurred_on": datetime(2011, 1, 1, tzinfo=UTC).date()}),
                   datetime(2011, 1, 2, tzinfo=UTC))
    events = provider.collect_events()
    assert [type(e).__name__ for e in events] == ["Registered", "Closed"]
    assert [e.originator_version for e in events] == [1, 2]
    assert provider.pending_events == [] and provider.collect_events() == []
    provider.mark_no_children_on_roll(Posting("provider_no_children_on_roll", "c-3", "a",
                                              {"urn": "U1", "occurred_on": datetime(2011, 2, 1, tzinfo=UTC).date()}),
                                      datetime(2011, 2, 2, tzinfo=UTC))
    assert [e.originator_version for e in provider.collect_events()] == [3]
    assert [e.originator_version for e in events] == [1, 2]  # the list handed over is the caller's

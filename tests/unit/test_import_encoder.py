"""The bulk import encodes its events with `adapters.eventstore.EventEncoder`, not the
library's mapper (ADR 0021). The stored bytes must be exactly the mapper's, or a
ledger written by an import would differ from one written by `Application.save`
(and its export, digest and content would change)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from uuid import UUID

import pytest
from eventsourcing.persistence import Mapper

from adapters.eventstore import EventEncoder, make_application
from adapters.reference import authorities
from adapters.sample import sample_postings
from domain.handlers import Batch
from domain.model import ClientKey, Evidence, Provider, key_id
from domain.postings import Posting, parse_posting

CODES = authorities().codes


def _posting(type_: str, client_id: str, actor: str, data: dict) -> Posting:
    posting = Posting(type_, client_id, actor, data)
    posting.__dict__["content_hash"] = "0123abcd"  # (a hash of data of any shape: not this test's subject)
    return posting


def _expected(mapper: Mapper, event) -> tuple[str, int, str, bytes]:
    s = mapper.to_stored_event(event)
    return s.originator_id.hex, s.originator_version, s.topic, s.state


def test_every_event_of_the_sample_is_stored_byte_for_byte_as_the_mapper_would():
    app = make_application("memory")
    encoder = EventEncoder(app.mapper)
    assert encoder.fast
    n = 0
    for when, raws in sample_postings():
        postings = [parse_posting(r, default_actor="sample", known_la_codes=CODES)[0] for r in raws]
        batch = Batch(app, when, known_la_codes=CODES)
        batch.stage(postings)
        assert encoder.rows(batch.events) == [_expected(app.mapper, e) for e in batch.events]
        n += len(batch.events)
        app.save(*batch.events)
    assert n > 1000


AT = datetime(2011, 11, 8, 16, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize("data", [
    {"urn": "A1", "name": 'quote " backslash \\ slash / tab \t newline \n nul \x00 bell \x07', "é": "日本 ü \u2028"},
    {"urn": "A1", "value": 1.5e16, "other": -0.0, "n": 12, "t": True, "f": False, "none": None,
     "small": 1e-7, "big": 10**30, "ratio": 0.1 + 0.2},
    {"urn": "A1", "judgements": {"overall": "good", "nested": {"deeper": date(2011, 3, 1), "list": [1, "x", None]}},
     "list": ["a", date(2010, 1, 2), {"k": datetime(2011, 1, 1, tzinfo=timezone(timedelta(hours=1)))}],
     "tuple": ("x", 2), "id": UUID("12345678-1234-5678-1234-567812345678")},
    {"urn": "A1", "int_keys": {1: "a", 2.5: "b", False: "c", None: "d"}},
    {"urn": "A1", "when": datetime(2011, 1, 2, 3, 4, 5), "on": date(1, 1, 1), "empty": {}, "empties": []},
])
def test_values_of_every_shape(data):
    app = make_application("memory")
    encoder = EventEncoder(app.mapper)
    posting = _posting("provider_registered", "c-1", "actor \"x\"", data)
    events = [*Evidence.record(posting, AT).collect_events(),
              *Provider.register(posting, AT + timedelta(seconds=1)).collect_events(),
              *ClientKey.reserve(posting, key_id("other"), AT).collect_events()]
    assert encoder.rows(events) == [_expected(app.mapper, e) for e in events]


def test_an_unregistered_type_is_refused_as_the_mapper_refuses_it():
    app = make_application("memory")
    posting = _posting("provider_registered", "c-1", "a", {"s": {1, 2}})
    event = Evidence.record(posting, AT).collect_events()[0]
    with pytest.raises(Exception) as mapper_error:
        app.mapper.to_stored_event(event)
    with pytest.raises(type(mapper_error.value)):
        EventEncoder(app.mapper).row(event)


def test_a_mapper_with_a_compressor_is_used_as_it_is():
    import zlib

    class Zlib:
        def compress(self, data: bytes) -> bytes:
            return zlib.compress(data)

        def decompress(self, data: bytes) -> bytes:
            return zlib.decompress(data)

    app = make_application("memory")
    mapper = Mapper(app.mapper.transcoder, compressor=Zlib())
    encoder = EventEncoder(mapper)
    assert not encoder.fast
    event = Evidence.record(_posting("indicator_value", "c-2", "a", {"value": 1.0}), AT).collect_events()[0]
    assert encoder.row(event) == _expected(mapper, event)


# --- one encoder made per event class (issue 5) --------------------------------------------


_SHAPES = test_values_of_every_shape.pytestmark[0].args[1]


def test_one_encoder_over_events_of_one_class_in_every_shape():
    """The class's encoder is made from its first event; later events of the class whose
    values have other types, or whose attributes come in another order, give the same bytes."""
    app = make_application("memory")
    encoder = EventEncoder(app.mapper)
    events = []
    for n, data in enumerate(_SHAPES):
        posting = _posting("provider_registered", f"c-{n}", "a", data)
        events += [*Evidence.record(posting, AT).collect_events(), *ClientKey.reserve(posting, key_id("x"), AT).collect_events()]
    odd = ClientKey.reserve(_posting("provider_closed", "c-odd", "a", {}), key_id("y"), AT).collect_events()[0]
    odd.__dict__["aggregate_id"] = "not a UUID but text"  # another type in a slot made for a UUID
    odd.__dict__["timestamp"] = AT + timedelta(microseconds=1)
    events.append(odd)
    moved = Evidence.record(_posting("provider_inspection", "c-moved", "a", {"urn": "A1"}), AT).collect_events()[0]
    attrs = dict(moved.__dict__)
    moved.__dict__.clear()
    moved.__dict__.update(reversed(list(attrs.items())))  # the same attributes in another order
    events.append(moved)
    closed = Provider.register(_posting("provider_registered", "c-p", "a", {"urn": "P1"}), AT)
    closed.close(Posting("provider_closed", "c-close", "a", {"urn": "P1", "occurred_on": date(2011, 2, 1)}), AT)
    events += closed.collect_events()
    assert encoder.rows(events) == [_expected(app.mapper, e) for e in events]
    assert encoder._classes[type(odd)] is not None and encoder._classes[type(moved)] is not None


def test_the_class_encoder_is_what_encodes_the_envelope(monkeypatch):
    """Would fail if every event still went through the general `_object` loop."""
    app = make_application("memory")
    encoder = EventEncoder(app.mapper)
    posting = _posting("provider_registered", "c-1", "a", {"urn": "A1", "on": date(2011, 1, 1)})
    first = ClientKey.reserve(posting, key_id("x"), AT).collect_events()[0]
    encoder.row(first)
    second = ClientKey.reserve(_posting("provider_registered", "c-2", "b", {}), key_id("y"), AT).collect_events()[0]
    whole = []
    real = encoder._object
    monkeypatch.setattr(encoder, "_object", lambda d, skip=False: whole.append(skip) or real(d, skip))
    encoder.row(second)
    assert whole == []
    assert encoder.row(second) == _expected(app.mapper, second)

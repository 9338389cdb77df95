"""The projector's fast codec (ADR 0023): a page of stored events decoded with orjson gives
exactly the values the library's mapper gives (as the projector's `_decode` turns them:
dates and datetimes as their ISO text), or declines (None) and the page goes to the
standard decoder; what it decoded, the fast encoder writes exactly as `_dumps` (the
standard library's encoder) would."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest

from adapters.eventstore import make_application
from adapters.reference import authorities
from adapters.sample import sample_postings
from domain.handlers import Batch
from domain.postings import canonical, parse_posting
from projections import projector as P

pytestmark = pytest.mark.skipif(P.orjson is None, reason="orjson is not installed")

APP = make_application("memory")
TS = datetime(2011, 11, 8, 16, 0, 0, 123456, tzinfo=UTC)


def typed(v: Any) -> Any:
    """A value with the type of every part spelled out (1, 1.0 and True are == in Python); the
    order of a dict's keys is not a value (the projector writes them sorted)."""
    if isinstance(v, dict):
        return ("dict", sorted((typed(k), typed(x)) for k, x in v.items()))
    if isinstance(v, list):
        return ("list", [typed(x) for x in v])
    if isinstance(v, float) and math.isnan(v):
        return ("float", "nan")
    return (type(v).__name__, v)


def mapper_values(topic: str, state: bytes) -> dict[str, Any]:
    """What the library's mapper decodes, as the projector reads it (see test_projector_paths)."""
    return canonical(APP.mapper.transcoder.decode(state))


def assert_same(decoded: list[dict[str, Any]], states: list[bytes], topics: list[str]) -> None:
    assert len(decoded) == len(states)
    for d, s, t in zip(decoded, states, topics, strict=True):
        want = mapper_values(t, s)
        assert typed(d) == typed(want), (t, s)
        assert typed(d) == typed(P._decode(s.decode())), (t, s)  # the standard path of the projector
        assert P._dumps_fast(d) == P._dumps(d), (t, s)  # and the same text written back


def stored_sample() -> list[tuple[str, bytes]]:
    app = make_application("memory")
    codes = authorities().codes
    for when, raws in sample_postings():
        postings = [parse_posting(r, default_actor="sample", known_la_codes=codes)[0] for r in raws]
        batch = Batch(app, when, known_la_codes=codes)
        batch.stage(postings)
        app.save(*batch.events)
    return [(n.topic, n.state) for n in app.recorder.select_notifications(1, 100_000)]


def test_every_event_of_the_sample_decodes_as_the_mapper():
    events = stored_sample()
    projected = [(t, s) for t, s in events if P._topic(t).action]
    topics = {t for t, _ in projected}
    assert len(topics) >= 10  # every kind of event the projector reads
    for size in (1, 7, 97, len(projected)):
        for i in range(0, len(projected), size):
            page = projected[i:i + size]
            decoded = P._decode_page([s for _, s in page])
            assert decoded is not None, page[0]  # ordinary events take the fast path
            assert_same(decoded, [s for _, s in page], [t for t, _ in page])
    # The events the projector skips (client keys) hold a UUID: the fast codec declines them.
    keys = [s for t, s in events if not P._topic(t).action]
    assert keys and P._decode_page(keys) is None


def event(**fields: Any) -> bytes:
    return APP.mapper.transcoder.encode({"timestamp": TS, "actor": "a", **fields})


# Values the fast codec reads and writes exactly as the standard library does.
ORDINARY = [
    "", "plain", "é ü ß 中文 😀 \U0010ffff", "quote \" backslash \\ slash /", "\x00\x01\x1f\x7f\x80\x9f",
    "\b\f\n\r\t", "\u2028\u2029\ufeff", "{\"_type_\" inside a text}", '"_type_"',
    0, 1, -1, 2**31, 2**53 + 1, 10**17, -(10**17), 999_999_999_999_999_999, -999_999_999_999_999_999,
    0.0, -0.0, 0.5, 1.5, 65.6, 0.1, 1 / 3, 2 / 3 * 1e5, 1e-4, 0.00011, 123456789.125, 1e15, 1e16, 1.5e16,
    9007199254740993.0, 1e22, 1e300, 1.7976931348623157e308, -1e300,
    True, False, None, [], {}, [1, "a", None, [2, [3]]], {"b": 1, "a": {"d": [], "c": "x"}},
    {"z": 1, "A": 2, "é": 3, "😀": 4, "": 5, "_": 6}, date(2011, 9, 1), [date(2011, 1, 2), {"on": date(1, 1, 1)}],
    "2011-09-01", "0.00001", "12345678901234567890", 1.2345, 0.12345, 7.00001, 10.00001,
    # floats below 1e-4: read the same; orjson writes them otherwise (0.00001, 1e-7), so the
    # fast encoder hands them (and texts that look like them) to the standard one
    1e-5, 1e-7, -2.5e-8, 9.999e-5, 5e-324, 0.0000123, "1e-05", "x:0.00001", "Pre-school",
]

# Values it declines (None): the page is decoded and encoded by the standard library.
DECLINED = [
    2**63, 2**64, -(2**63) - 1, 10**30, 1_000_000_000_000_000_000,  # > 64 bits: orjson reads a float
    float("nan"), float("inf"), float("-inf"),  # orjson refuses them
    UUID("12345678-1234-5678-1234-567812345678"),  # another transcoding
    datetime(2011, 9, 1, 9, 0, tzinfo=UTC),  # a datetime other than the event's timestamp
]


@pytest.mark.parametrize("value", ORDINARY, ids=repr)
def test_ordinary_values_take_the_fast_path_and_read_and_write_the_same(value):
    states = [event(state={"value": value, "urn": "EY1"}), event(changes={"value": value}, reason="r"),
              event(details={"k": [value, {"v": value}]})]
    decoded = P._decode_page(states)
    assert decoded is not None
    assert_same(decoded, states, ["t"] * len(states))


@pytest.mark.parametrize("value", DECLINED, ids=repr)
def test_values_it_cannot_match_send_the_page_to_the_standard_decoder(value):
    ordinary = event(state={"value": 1.5})
    assert P._decode_page([ordinary]) is not None
    for states in ([event(state={"value": value})], [ordinary, event(details={"k": [1, value]})]):
        assert P._decode_page(states) is None


@pytest.mark.parametrize("raw", [
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2011-01-01T00:00:00+00:00"},"d":{"_type_":"date_iso","_data_":"2011-1-1"}}',
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2011-01-01T00:00:00+00:00"},"d":{"_data_":"2011-01-01","_type_":"date_iso"}}',
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2011-01-01T00:00:00+00:00"},"d":{"_type_":"date_iso","_data_":"2011-01-01","x":1}}',
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2011-01-01T00:00:00+00:00"},"_type_":1}',
    b'{"timestamp":{"_type_":"date_iso","_data_":"2011-01-01"},"t":{"_type_":"datetime_iso","_data_":"x"}}',
    b'{"timestamp":"2011-01-01T00:00:00+00:00","a":1}',
    b'{"a":1}',
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2011-01-01T00:00:00+00:00"},"a":1',
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2011-01-01T00:00:00+00:00"},"a":NaN}',
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2011-01-01T00:00:00+00:00"},"a":"\\ud800"}',
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2011-01-01T00:00:00+00:00"},"a":1E400}',
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2011-01-01T00:00:00+00:00"},"a":[1, -12345678901234567890]}',
    b'[1]',
])
def test_anything_unusual_is_declined(raw):
    """Other forms of the wrappers, a key named _type_, malformed or non-standard JSON: the
    standard decoder decides (it may decode them, raise, or ask the transcoder)."""
    assert P._decode_page([raw]) is None


def test_dates_and_the_timestamp_are_their_iso_texts():
    ts = datetime(2011, 9, 1, 9, 0, tzinfo=timezone(timedelta(hours=-5)))
    raw = APP.mapper.transcoder.encode({"timestamp": ts, "state": {"on": date(2011, 2, 3), "l": [date(9999, 12, 31)]}})
    (d,) = P._decode_page([raw])
    assert d == {"timestamp": "2011-09-01T09:00:00-05:00", "state": {"on": "2011-02-03", "l": ["9999-12-31"]}}
    assert P._timestamp(d["timestamp"]) == "2011-09-01 14:00:00.000000"


@pytest.mark.parametrize("raw", [
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2011-01-01T00:00:00+00:00"},"a":1.0e-5,"b":1E2}',
    b'{ "timestamp" : {"_type_":"datetime_iso","_data_":"2011-01-01T00:00:00+00:00"} , "a" : [ 1 , -0 , 0.5 ] } ',
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2011-01-01T00:00:00+00:00"},"a":1,"a":"\\u00e9\\n"}',
])
def test_json_the_library_never_writes_still_reads_the_same(raw):
    (d,) = P._decode_page([raw])
    assert typed(d) == typed(P._decode(raw.decode()))
    assert P._dumps_fast(d) == P._dumps(d)


def test_the_fast_encoder_writes_small_floats_as_python_does():
    assert P._dumps_fast({"v": 1e-5, "w": [2.5e-07]}) == '{"v":1e-05,"w":[2.5e-07]}'
    assert P._dumps_fast({"v": 0.0001}) == '{"v":0.0001}'


def test_the_fast_encoder_falls_back_where_orjson_cannot_write():
    deep: Any = "x"
    for _ in range(300):  # deeper than orjson writes
        deep = [deep]
    assert P._dumps_fast(deep) == P._dumps(deep)
    assert P._dumps_fast({"n": 2**64}) == '{"n":18446744073709551616}'  # past 64 bits

"""`content_hash` is computed in one C-encoder pass (ADR 0020); it must give the very
text the former `canonical` + `json.dumps` gave, or hashes already stored in a ledger
would stop matching (a re-sent posting would become a conflict)."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from types import MappingProxyType

import pytest

from domain.postings import KINDS, canonical, content_hash, parse_posting


def reference(type_: str, data) -> str:
    body = json.dumps([type_, canonical(data)], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


@pytest.mark.parametrize("data", [
    {},
    {"b": 1, "a": "é ü 日本", "c": [1, (2, 3), {"z": date(2011, 1, 2), "y": None}]},
    {"changes": {"overall_effectiveness": "good", "occurred_on": "2011-03-01"}, "reason": "x", "f": 1.5e16},
    {"when": datetime(2011, 1, 2, 3, 4, 5), "n": -0.0, "t": True, "nested": MappingProxyType({"b": 2, "a": 1})},
    {1: "int key", 2: "another"},
])
def test_the_same_text_as_canonical_json(data):
    assert content_hash("t", data) == reference("t", data)


def test_every_kind_example_hashes_as_before():
    for kind in KINDS.values():
        posting, errors = parse_posting({"type": kind.name, "client_id": "c", "actor": "a", **kind.example})
        assert not errors, errors
        assert posting.content_hash == reference(kind.name, posting.data)


@pytest.mark.parametrize("data", [{"s": {1, 2}}, {1: "int key", "a": 2}])
def test_what_canonical_json_refused_is_still_refused(data):
    with pytest.raises(TypeError):
        reference("t", data)
    with pytest.raises(TypeError):
        content_hash("t", data)


# --- the orjson path (issue 5): the same text for every value it takes -------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import domain.postings as postings_module  # noqa: E402

_texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
_leaves = (_texts | st.integers(min_value=-(1 << 70), max_value=1 << 70) | st.booleans() | st.none()
           | st.dates())
_values = st.recursive(_leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_texts, inner, max_size=4),
                       max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_texts, _values, max_size=6), _texts)
def test_generated_values_hash_as_canonical_json(data, type_):
    assert content_hash(type_, data) == reference(type_, data)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_texts, _values | st.floats() | st.tuples(_leaves), max_size=6))
def test_floats_and_tuples_take_the_standard_encoder(data):
    assert content_hash("t", data) == reference("t", data)


@pytest.mark.parametrize("data", [
    {"s": "".join(chr(i) for i in range(0x80)) + "\u2028\u2029\u00a0\ufeff\U0001f600"},
    {"n": (1 << 63) - 1, "m": -(1 << 63), "u": (1 << 64) - 1},
    {"big": 1 << 64, "neg": -(1 << 63) - 1},  # past orjson's range: the standard encoder
    {"d": date(1, 1, 1), "e": date(9999, 12, 31), "f": date(5, 6, 7)},
    {"é": 1, "e": 2, "Z": 3, "\U0001f600": 4, "\uffff": 5, "": {"b": [], "a": {}}},
])
def test_edge_values_hash_as_canonical_json(data):
    assert content_hash("t", data) == reference("t", data)


def test_text_dates_and_whole_numbers_take_the_orjson_path(monkeypatch):
    """Would fail if every posting still went through the standard encoder."""
    data = {"urn": "SC123", "occurred_on": date(2011, 3, 1), "grade": 2, "closed": False, "panel": ["A"],
            "judgements": {"safety": "good"}}
    expected = reference("provider_inspection", data)

    def refused(_obj):
        raise AssertionError("the standard encoder was used")

    monkeypatch.setattr(postings_module, "_canonical_json", refused)
    assert content_hash("provider_inspection", data) == expected
    with pytest.raises(AssertionError):
        content_hash("indicator_value", {"value": 1.5})

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

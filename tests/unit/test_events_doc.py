"""docs/events.md is rendered from the catalogue and cannot drift from it."""

from __future__ import annotations

import json
import re

from adapters.events_doc import DOC_PATH, example_posting, render
from adapters.reference import authorities
from domain.postings import ENVELOPE, KINDS, parse_posting
from domain.vocabulary import GRADE_WORDS, GROUPS

REGENERATE = "docs/events.md is out of date: run `PYTHONPATH=src python -m adapters.events_doc`"


def test_committed_doc_equals_render():
    assert DOC_PATH.read_text(encoding="utf-8") == render(), REGENERATE


def test_every_kind_is_documented_with_every_field():
    text = render()
    for kind in KINDS.values():
        section = text.split(f"#### `{kind.name}`\n", 1)
        assert len(section) == 2, f"{kind.name} has no section"
        body = section[1].split("\n#### ", 1)[0]
        assert kind.doc in body
        if kind.paragraph:
            assert kind.paragraph in body
        for f in kind.fields:
            row = f"| `{f.name}` | {f.type_doc.replace('|', chr(92) + '|')} | {'yes' if f.required else 'no'} |"
            assert row in body, f"{kind.name}.{f.name}"


def test_allowed_values_are_listed():
    text = render()
    for g in GROUPS:
        assert f"| `{g.code}` | {g.label} |" in text
    for word in GRADE_WORDS:
        assert f"| `{word}` |" in text
    assert "`requires improvement`" in text and "`adequate`" in text
    for word in ("excellently", "well", "adequately", "poorly"):
        assert f"`{word}`" in text


def test_envelope_and_clocks_are_explained():
    text = render()
    for name in ENVELOPE:
        assert f"| `{name}` |" in text
    assert "`recorded_at` is **not** a field" in text
    for heading in ("## Idempotency and conflicts", "## The three clocks"):
        assert heading in text


def _example_lines(text: str) -> list[dict]:
    return [json.loads(m) for m in re.findall(r"```json\n(.*?)\n```", text)]


def test_each_example_in_the_doc_parses_without_errors():
    examples = _example_lines(DOC_PATH.read_text(encoding="utf-8"))
    assert [e["type"] for e in examples] == list(KINDS)
    codes = authorities().codes
    for raw in examples:
        posting, errors = parse_posting(raw, known_la_codes=codes)
        assert errors == [], (raw["type"], errors)
        assert posting is not None and posting.type == raw["type"]
        assert raw == example_posting(KINDS[raw["type"]])


def test_recorded_at_in_a_posting_is_refused():
    raw = {**example_posting(KINDS["provider_inspection"]), "recorded_at": "2011-09-01T09:00:00Z"}
    posting, errors = parse_posting(raw)
    assert posting is None and [e.field for e in errors] == ["recorded_at"]

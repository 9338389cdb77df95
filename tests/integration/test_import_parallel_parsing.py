"""A large JSON Lines file is read and parsed in a second process while the importer
stages (ADR 0021). Forced here on small files: the report, every error (same order,
same lines and reasons), the written log and a refused encoding must be exactly what
parsing in the importing process gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import adapters.importers as importers
from adapters.importers import ImportFormatError, InvalidImport, import_file
from adapters.ledger import Ledger
from tests.integration.test_bulk_import import events_of, log, postings


def _jsonl(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return path


@pytest.fixture(params=["serial", "parallel"])
def mode(request, monkeypatch) -> str:
    monkeypatch.setattr(importers, "PARALLEL_MIN_BYTES", 0 if request.param == "parallel" else 1 << 60)
    monkeypatch.setattr(importers, "PARTS_PER_MESSAGE", 2)
    monkeypatch.setattr(importers, "CHUNK", 7)  # rows per part: many parts, several messages
    return request.param


def test_the_same_log_either_way(mode, store_url, clock, tmp_path):
    path = _jsonl(tmp_path / "in.jsonl", postings())
    ledger = Ledger(store_url, clock=clock)
    seen: list[dict] = []
    try:
        report = import_file(ledger, path, chunk_postings=5, project=False, progress=seen.append)
        assert (report.rows, report.recorded, report.already_recorded) == (len(postings()), len(postings()), 0)
        assert [p for p, *_ in log(ledger)] == list(range(1, events_of() + 1))
        assert seen[-1]["bytes"] == path.stat().st_size
        again = import_file(ledger, path, chunk_postings=5)
        assert (again.recorded, again.already_recorded) == (0, len(postings()))
    finally:
        ledger.close()


def _invalid(tmp_path: Path) -> Path:
    lines = postings()
    lines.insert(3, "{not json")
    lines.insert(9, {"type": "provider_inspection", "client_id": "bad-1", "urn": "U1", "occurred_on": "2011-13-01"})
    lines.insert(20, {"type": "nonsense", "client_id": "bad-2"})
    lines.insert(30, [1, 2])
    lines.append({"type": "provider_inspection", "client_id": "bad-3", "urn": "NOPE", "occurred_on": "2011-03-01",
                  "overall_effectiveness": "good"})
    return _jsonl(tmp_path / "bad.jsonl", lines)


def test_every_error_in_the_same_order_and_nothing_written(sqlite_url, clock, tmp_path, monkeypatch):
    path = _invalid(tmp_path)
    found = {}
    for mode in ("serial", "parallel"):
        monkeypatch.setattr(importers, "PARALLEL_MIN_BYTES", 0 if mode == "parallel" else 1 << 60)
        monkeypatch.setattr(importers, "CHUNK", 7)
        ledger = Ledger(sqlite_url.replace(".sqlite", f"-{mode}.sqlite"), clock=clock)
        try:
            with pytest.raises(InvalidImport) as e:
                import_file(ledger, path, chunk_postings=5)
            assert ledger.app.log_head() == 0
            found[mode] = [(x.line, x.field, repr(x.value), x.reason) for x in e.value.errors]
            skipped = import_file(ledger, path, chunk_postings=5, skip_invalid=True,
                                  rejects_path=tmp_path / f"{mode}.rejects.jsonl")
            found[mode + " skip"] = (skipped.counts(), (tmp_path / f"{mode}.rejects.jsonl").read_text(), log(ledger))
        finally:
            ledger.close()
    assert len(found["serial"]) >= 5
    assert found["parallel"] == found["serial"]
    assert found["parallel skip"] == found["serial skip"]


def test_a_line_that_is_not_utf8_is_refused_the_same_way(mode, sqlite_url, clock, tmp_path):
    path = _jsonl(tmp_path / "in.jsonl", postings())
    path.write_bytes(path.read_bytes() + b'{"type": "caf\xe9"}\n')
    ledger = Ledger(sqlite_url, clock=clock)
    try:
        with pytest.raises(ImportFormatError, match=rf"line {len(postings()) + 1} is not UTF-8 text"):
            import_file(ledger, path, chunk_postings=5)
        assert ledger.app.log_head() == 0
    finally:
        ledger.close()


def test_the_postings_come_with_their_content_hash_as_their_property_computes_it(tmp_path, sqlite_url, clock):
    from domain.postings import Posting

    path = _jsonl(tmp_path / "in.jsonl", postings())
    ledger = Ledger(sqlite_url, clock=clock)
    try:
        parts = list(importers._parsed_in_second_process(path, "import", set(), ledger.authorities.codes, 50))
    finally:
        ledger.close()
    sent = [p for part in parts for p in part.postings]
    assert len(sent) == len(postings())
    for p in sent:
        assert "content_hash" in vars(p)  # computed by the parsing process, not again here
        fresh = Posting(p.type, p.client_id, p.actor, p.data, p.line)
        assert p.content_hash == fresh.content_hash


def test_the_parts_sent_are_the_parts_parsed_here(tmp_path, sqlite_url, clock, monkeypatch):
    # What the parsing process sends (postings as plain values, pickled without the memo, ADR
    # 0042) arrives as the parts parsing in this process gives: rows, postings (all their
    # attributes), errors and skipped rows, part by part.
    monkeypatch.setattr(importers, "CHUNK", 7)
    monkeypatch.setattr(importers, "PARTS_PER_MESSAGE", 2)
    path = _invalid(tmp_path)
    ledger = Ledger(sqlite_url, clock=clock)
    try:
        codes = ledger.authorities.codes
        sent = list(importers._parsed_in_second_process(path, "import", {5}, codes, 50))
        here = [importers._parse_part(chunk, {5}, "import", codes)
                for chunk in importers._chunks(importers._jsonl_items(importers._Lines(path)), importers.CHUNK)]
    finally:
        ledger.close()
    assert len(sent) == len(here) > 3
    for a, b in zip(sent, here, strict=True):
        assert (a.rows, a.errors, dict(a.skipped)) == (b.rows, b.errors, dict(b.skipped))
        assert [vars(p) for p in a.postings] == [{**vars(p), "content_hash": p.content_hash} for p in b.postings]
    assert sum(len(a.errors) for a in sent) >= 4 and 5 not in {p.line for a in sent for p in a.postings}

"""The synthetic dataset (adapters.generate): deterministic, parseable, importable, complete."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from adapters.generate import END, authority_postings, chosen_authorities, generate
from adapters.importers import import_file
from adapters.ledger import Ledger
from adapters.reference import authorities
from domain.postings import parse_posting
from domain.vocabulary import GROUPS


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("gen") / "small.jsonl"
    return path, generate("small", path, seed=2011)


def test_same_seed_gives_identical_bytes(small, tmp_path):
    path, summary = small
    again = tmp_path / "again.jsonl"
    assert generate("small", again, seed=2011) == {**summary, "path": str(again)}
    assert again.read_bytes() == path.read_bytes()
    other = tmp_path / "other.jsonl"
    generate("small", other, seed=7)
    assert other.read_bytes() != path.read_bytes()


def test_every_line_parses(small):
    path, summary = small
    codes = authorities().codes
    kinds: Counter[str] = Counter()
    with path.open(encoding="utf-8") as fh:
        for n, text in enumerate(fh, start=1):
            posting, errors = parse_posting(json.loads(text), line=n, known_la_codes=codes)
            assert not errors, errors
            kinds[posting.type] += 1
    assert sum(kinds.values()) == summary["lines"]
    assert 1500 <= summary["lines"] <= 10_000  # "a few thousand"
    for kind in ("provider_registered", "provider_inspection", "publication_date_supplied", "provider_closed",
                 "unannounced_inspection", "full_inspection", "joint_area_review", "indicator_value",
                 "published_grade", "correction", "withdrawal"):
        assert kinds[kind] > 0, kind


def test_has_providers_in_all_22_groups(small):
    path, summary = small
    groups = {json.loads(t)["group"] for t in path.open(encoding="utf-8") if '"provider_registered"' in t}
    assert groups == {g.code for g in GROUPS}
    assert set(summary["providers_by_group"]) == groups


def test_dates_keep_the_order_of_things(small):
    path, _ = small
    registered: dict[str, str] = {}
    for text in path.open(encoding="utf-8"):
        raw = json.loads(text)
        if raw["type"] == "provider_registered":
            registered[raw["urn"]] = raw["occurred_on"]
        elif raw["type"] == "provider_inspection":
            assert raw["urn"] in registered, "inspected before registered"
            assert raw["occurred_on"] >= registered[raw["urn"]]
            assert raw["occurred_on"] <= END.isoformat()
            assert raw.get("published_on", raw["occurred_on"]) >= raw["occurred_on"]


def test_authority_postings_are_the_files_lines(small):
    """`authority_postings` (used to check the calibration in memory) gives exactly what the
    file holds, authority by authority."""
    path, _ = small
    lines = path.read_text(encoding="utf-8").splitlines()
    again = [json.dumps(raw, ensure_ascii=False, separators=(",", ":"))
             for a in chosen_authorities("small", 2011) for raw in authority_postings(a.la_code, "small", 2011)]
    assert again == lines


def test_imports_into_a_fresh_sqlite_ledger(small, sqlite_url, clock):
    path, summary = small
    ledger = Ledger(sqlite_url, clock=clock)
    try:
        report = import_file(ledger, path, fmt="jsonl", actor="test")
        assert report.ok and report.rejected == 0
        assert report.recorded == summary["lines"]
        assert ledger.projector.log_position() == summary["ledger_events"]
        assert ledger.projector.position() == ledger.projector.log_position()
    finally:
        ledger.close()


def test_unknown_scale_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown scale"):
        generate("planet", tmp_path / "x.jsonl")

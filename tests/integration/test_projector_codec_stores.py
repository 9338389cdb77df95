"""The projector's fast codec (ADR 0023) on both stores: every stored event decodes as the
library's mapper would, and the read model is the same, column by column and byte for
byte (JSON columns as stored text, not only as values: the digest reads those back as
JSON), whichever codec built it, in a bulk run or page by page."""

from __future__ import annotations

from typing import Any

import pytest
from test_ledger import populate, post

import projections.projector as projector
from domain.postings import canonical
from projections.projector import _decode_page, _dumps, _dumps_fast, _topic, digest
from projections.tables import READ_MODEL_TABLES

pytestmark = pytest.mark.skipif(projector.orjson is None, reason="orjson is not installed")


def text_rows(engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the read model as the store holds it: on PostgreSQL each column as text,
    on SQLite each column's storage class and value."""
    out = {}
    with engine.connect() as conn:
        pg = conn.dialect.name == "postgresql"
        for t in READ_MODEL_TABLES:
            cols = ", ".join(f"{c.name}::text" if pg else f"typeof({c.name}), {c.name}" for c in t.columns)
            keys = ", ".join(c.name for c in t.primary_key.columns)
            out[t.name] = [tuple(r) for r in conn.exec_driver_sql(f"SELECT {cols} FROM {t.name} ORDER BY {keys}")]
    return out


def history(ledger, clock) -> None:
    """Every event the projector reads (populate), every kind's example, and numbers the two
    codecs read or write differently (a float below 1e-4, an integer past 64 bits), also in a
    follow-up of a version an earlier page stored."""
    populate(ledger, clock)
    clock.advance(days=1)
    ledger.record([post("provider_registered", "reg-EY200001", urn="EY200001", occurred_on="2009-01-01"),
                   post("indicator_value", "ind-tiny", value=1e-07, similar_areas=2.5e-05, national=1e16),
                   post("indicator_value", "ind-plain", indicator="NI_62", value=65.6, national=0.1),
                   post("appeal_lodged", "appeal-big", statement_words=10**20, cited_refs=["a", "é"]),
                   post("substantiated_complaint", "sc-1", summary="Quote \" and \\ and ☃ and \u2028")])
    clock.advance(days=1)
    ledger.record([post("correction", "fix-tiny", target="ind-plain", changes={"value": 3e-06},
                        reason="tiny"),
                   post("correction", "fix-plain", target="ind-tiny", changes={"national": 72.5}, reason="plain"),
                   post("withdrawal", "w-reg", target=None, urn="EY200001", reason="wrong")])


def test_every_stored_event_decodes_as_the_mapper(ledger, clock):
    history(ledger, clock)
    notes = [n for n in ledger.iter_notifications() if _topic(n.topic).action]
    assert {n.topic.rsplit(":", 1)[1] for n in notes} >= {
        "Evidence.Recorded", "Provider.Registered", "Evidence.PublicationDateSupplied", "Evidence.Corrected",
        "Provider.Corrected", "Evidence.Withdrawn", "Provider.Withdrawn", "Provider.Closed",
        "Provider.Restructured", "Provider.NoChildrenOnRollMarked", "Assessment.StepRecorded"}
    fast = 0
    for n in notes:
        event = ledger.app.mapper.to_domain_event(n)
        expected = canonical({k: v for k, v in event.__dict__.items() if k not in ("originator_id", "originator_version")})
        decoded = _decode_page([n.state])
        if decoded is not None:  # (the tiny float and the long integer are declined)
            fast += 1
            assert decoded == [expected], n.topic
            assert _dumps_fast(decoded[0]) == _dumps(expected)
    assert fast >= len(notes) - 3


@pytest.mark.parametrize("bulk", [False, True])
def test_the_read_model_is_the_same_text_with_either_codec(ledger, clock, monkeypatch, bulk):
    history(ledger, clock)
    live_text, live = text_rows(ledger.engine), digest(ledger.engine)
    assert any("1e-07" in str(r) for r in live_text["rm_evidence"])  # Python's form, not orjson's 1e-7
    assert any("100000000000000000000" in str(r) for r in live_text["rm_event_log"])
    if bulk:
        monkeypatch.setattr(projector, "BULK_THRESHOLD", 1)
        monkeypatch.setattr(projector, "BULK_PAGE_EVENTS", 1)  # the batch sizes below, in bulk too
    for batch_size in (3, 10_000):  # follow-ups of versions an earlier page stored, and one page
        ledger.projector.batch_size = batch_size
        for codec in ("fast", "standard"):
            with monkeypatch.context() as m:
                if codec == "standard":
                    m.setattr(projector, "orjson", None)
                ledger.rebuild()
            assert text_rows(ledger.engine) == live_text, (codec, batch_size)
            assert digest(ledger.engine) == live


def test_a_page_the_fast_codec_declines_is_decoded_by_the_standard_one(ledger, clock, monkeypatch):
    history(ledger, clock)
    live_text = text_rows(ledger.engine)
    pages: list[bool] = []
    real = projector._Page.apply

    def apply(self, rows):
        real(self, rows)
        pages.append(self.fast)

    monkeypatch.setattr(projector._Page, "apply", apply)
    ledger.projector.batch_size = 5
    ledger.rebuild()
    assert True in pages and False in pages
    assert text_rows(ledger.engine) == live_text

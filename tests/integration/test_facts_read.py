"""An authority's facts as read from the read model (projections.queries): in log order
whatever plan the store chose, and the JSON columns decoded exactly as the standard
library decodes them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime

import pytest

import projections.queries as queries
from projections.queries import _decoded, authority_evidence


def reg(i: int, la: str = "886") -> dict:
    return {"type": "provider_registered", "client_id": f"r{i}", "actor": "t", "urn": f"P{i:04d}", "la_code": la,
            "group": "childminders"}


def insp(i: int, day: int) -> dict:
    return {"type": "provider_inspection", "client_id": f"i{i}-{day}", "actor": "t", "urn": f"P{i:04d}",
            "occurred_on": f"2010-03-{day:02d}", "published_on": "2010-05-01", "overall_effectiveness": "good"}


def test_facts_come_in_log_order(ledger):
    rng = random.Random(7)
    ids = list(range(40))
    rng.shuffle(ids)
    ledger.record([reg(i) for i in ids])
    ledger.record([insp(i, d) for d in (3, 1, 2) for i in rng.sample(ids, 15)])
    known = datetime.now(UTC)
    facts = authority_evidence(ledger.engine, "886", known)
    for seq in (facts.providers, facts.provider_inspections):
        positions = [int((f.refs[0] if hasattr(f, "refs") else f.ref).lstrip("#")) for f in seq]
        assert positions == sorted(positions) and len(positions) > 10



class _Store:
    """A connection whose cursor hands rows back in the order given (as a parallel scan may)."""

    def __init__(self, rows):
        self.dialect = type("D", (), {"name": "sqlite"})()
        self.connection = self
        self.rows = rows

    def cursor(self):
        return self

    def execute(self, sql, params):
        pass

    def fetchall(self):
        return list(self.rows)

    def close(self):
        pass


def test_rows_are_put_in_log_order_whatever_order_the_store_returns():
    rows = [("provider_registered", "886", f"P{p}", "childminders", "2009-01-01", None, f'{{"n": {p}}}', p)
            for p in (5, 1, 9, 3)]
    for order in (rows, rows[::-1]):
        got = queries._rows(_Store(order), "1 = 1", "886", "2011-01-01")
        assert [r[7] for r, _ in got] == [1, 3, 5, 9]
        assert [d["n"] for _, d in got] == [1, 3, 5, 9], "each row keeps its own data"


TEXTS = ['{"a": 1, "b": [1, 2.5, null, true], "c": "\\u00e9t\\u00e9"}', '{"x": 1e-7, "y": 0.1, "z": -0.0}',
         '{"n": 123456789012345678}', '{}', '[]', '{"s": "caf\\u00e9 \\ud83d\\ude00"}', '{"d": 1.7976931348623157e308}']


@pytest.mark.parametrize("extra", [None, '{"big": 123456789012345678901234567890}', '{"nan": NaN}',
                                   '{"lone": "\\ud800"}'])
def test_decoding_gives_exactly_the_standard_librarys_values(extra):
    texts = TEXTS + ([extra] if extra else [])
    got = _decoded(texts)
    want = [json.loads(t) for t in texts]
    assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)
    assert [type(v) for v in got] == [type(v) for v in want]
    if extra and "nan" in extra:
        assert math.isnan(got[-1]["nan"])


def test_values_already_decoded_by_the_driver_pass_through():
    values = [{"a": 1}, {"b": [2]}]
    assert _decoded(values) is values
    assert _decoded(['{"a": 1}', {"b": 2}]) == [{"a": 1}, {"b": 2}]

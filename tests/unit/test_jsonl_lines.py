"""A JSON Lines file's lines read as `json.loads` reads their text (issue 5: orjson reads the
lines it gives exactly the same value for, `json.loads` the others)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters import importers
from adapters.importers import ImportFormatError


def items(tmp_path: Path, content: bytes) -> list[importers._Item]:
    path = tmp_path / "f.jsonl"
    path.write_bytes(content)
    return list(importers._jsonl_items(importers._Lines(path)))


def same(a: object, b: object) -> bool:
    """Equal, and of the same types all the way down (1 == 1.0, but an int is not a float)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and a != a:  # NaN
        return b != b
    return a == b and repr(a) == repr(b)


LINES = [
    '{"type": "x", "urn": "106428", "n": 3, "f": 1.5, "ok": true, "none": null, "l": [1, "a", {"b": []}]}',
    '{"big": 18446744073709551616}',  # past 64 bits: orjson would read a float
    '{"big": -9223372036854775809}',
    '{"edge": 18446744073709551615, "neg": -9223372036854775808}',
    '{"nineteen": 1234567890123456789}',
    '[12345678901234567890123]',
    '{"nan": NaN, "inf": Infinity, "minus": -Infinity}',  # orjson refuses; json reads them
    '{"huge": 1e400, "tiny": 1e-400, "neg": -1e400}',
    '{"lone": "\\ud800", "pair": "\\ud83d\\ude00", "nul": "\\u0000"}',
    '{"dup": 1, "other": 2, "dup": 3}',
    '{"floats": [0.1, 1e5, 1E-7, -0.0, 2.4703282292062328e-324, 0.1000000000000000055511151231257827]}',
    '{"text": "caf\u00e9 \u2014 \u00a3"}',
    '  {"spaced": 1}  ',
    '12345678901234567890',
    '"just text"',
]


def test_each_line_is_the_value_json_loads_gives_its_text(tmp_path: Path) -> None:
    got = items(tmp_path, ("\n".join(LINES) + "\n").encode())
    assert [i.line for i in got] == list(range(1, len(LINES) + 1))
    for item, text in zip(got, LINES, strict=True):
        expected = json.loads(text)
        assert same(item.row, expected), (text, item.row)
        assert item.errors == []
        assert len(item.raws) == 1 and item.raws[0] is item.row


def test_integers_past_64_bits_stay_integers(tmp_path: Path) -> None:
    (big_line, neg_line) = items(tmp_path, b'{"big": 18446744073709551616}\n{"big": -9223372036854775809}\n')
    big, neg = big_line.row["big"], neg_line.row["big"]
    assert type(big) is int and big == 2**64
    assert type(neg) is int and neg == -(2**63) - 1


def test_malformed_lines_get_the_standard_librarys_error(tmp_path: Path) -> None:
    bad = ['{"a": 1,}', '{"a": }', "{'a': 1}", '{"a": 1} x', '{"a": "\x01"}']
    got = items(tmp_path, ("\n".join(bad) + "\n").encode())
    for item, text in zip(got, bad, strict=True):
        with pytest.raises(json.JSONDecodeError) as e:
            json.loads(text)
        assert item.row == text
        assert item.raws == []
        assert [(x.field, x.reason, x.line) for x in item.errors] == \
            [("(line)", f"malformed JSON: {e.value.msg} at column {e.value.colno}", item.line)]


def test_blank_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    got = items(tmp_path, '\n  \t\n{"a": 1}\n\u00a0\u2028\n\r\n{"b": 2}'.encode())
    assert [(i.line, i.row) for i in got] == [(3, {"a": 1}), (6, {"b": 2})]


def test_the_first_lines_byte_order_mark_is_removed(tmp_path: Path) -> None:
    got = items(tmp_path, b'\xef\xbb\xbf{"a": 1}\n\xef\xbb\xbf{"b": 2}\n')
    assert got[0].row == {"a": 1} and got[0].errors == []
    # on a later line it is text json cannot read, as before
    assert got[1].raws == [] and got[1].errors[0].reason.startswith("malformed JSON")


def test_a_line_not_utf8_is_refused_with_its_number(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match=r"line 2 is not UTF-8 text"):
        items(tmp_path, b'{"a": 1}\n{"b": "\xff"}\n')


def test_the_bytes_read_are_counted(tmp_path: Path) -> None:
    content = b'\xef\xbb\xbf{"a": 1}\n\n{"b": NaN}\n'
    path = tmp_path / "f.jsonl"
    path.write_bytes(content)
    lines = importers._Lines(path)
    list(importers._jsonl_items(lines))
    assert lines.bytes == len(content)

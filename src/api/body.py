"""Reading a request body within the limits: media type (415), size (413) and
JSON syntax (422), before any domain code sees it. These are async dependencies
(reading the body is), so the endpoints themselves stay plain `def`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from api.errors import Problem

JSON, NDJSON = "application/json", "application/x-ndjson"


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def require_media_type(request: Request, *allowed: str) -> str:
    mt = media_type(request)
    if mt not in allowed:
        raise Problem(415, f"Content-Type {mt or '(none)'}: send {' or '.join(allowed)}",
                      accepted=list(allowed))
    return mt


async def read_limited(request: Request, max_bytes: int) -> bytes:
    """The body, refusing (413) one larger than max_bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(int(declared), max_bytes)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(size, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, max_bytes: int) -> Problem:
    return Problem(413, f"the body is {size} bytes or more: at most {max_bytes} bytes a request", limit=max_bytes,
                   unit="bytes")


def _syntax(field: str, value: Any, reason: str, **where: int) -> Problem:
    return Problem(422, f"{field}: {reason}", title="Malformed body",
                   errors=[{"field": field, "value": value, "reason": reason, **where}])


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise _syntax("body", None, f"not UTF-8 ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise _syntax("body", body[:200].decode("utf-8", "replace"), f"not valid JSON: {e.msg} at line {e.lineno} "
                      f"column {e.colno}") from None


@dataclass(frozen=True)
class RawBatch:
    """Postings as sent, numbered: (number, raw) where number is the index (JSON) or line (NDJSON)."""

    items: list[tuple[int, Any]]
    position_key: str  # "index" or "line"


def parse_batch(body: bytes, mt: str) -> RawBatch:
    if mt == NDJSON:
        items, errors = [], []
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _syntax("body", None, f"not UTF-8 ({e.reason} at byte {e.start})") from None
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append((n, json.loads(line)))
            except json.JSONDecodeError as e:
                errors.append({"line": n, "field": "(line)", "value": line[:200], "reason": f"not valid JSON: {e.msg}"})
        if errors:
            raise Problem(422, f"line {errors[0]['line']}: not valid JSON; nothing was written", title="Malformed body",
                          errors=errors)
        return RawBatch(items, "line")
    doc = parse_json(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise _syntax("events", None, 'the body must be an object {"events": [ … ]}')
    extra = sorted(set(doc) - {"events"})
    if extra:
        raise _syntax(extra[0], doc[extra[0]], 'not a field of the batch (send {"events": [ … ]})')
    return RawBatch(list(enumerate(doc["events"])), "index")

"""Authorities' facts kept in the store, across processes and restarts (ADR 0028).

Reading an authority's facts from the read model costs ~6 µs a current row in the
interpreter (ADR 0026): the national table with nothing kept spends most of its time there,
and so does every new process (the one-shot CLI, a restarted or added API worker). The views
keep facts per process (`adapters.views._FactsKept`); this module keeps them in the store as
well, as the facts and the rules' timelines (ADR 0024) pickled together, one row per
authority and framework year in `rm_facts_kept`.

A row holds exactly while the in-process rule holds: the latest event about the authority is
still the one it is tagged with, and the time asked for is not before the time the facts were
read at. It must also have been written by the same code (`code_digest`: the sources of the
domain and the projections, the Python version, the pickle protocol); anything else is
ignored and replaced by the next reader that reads the rows. Rows are kept per time asked, as
the in-process facts are: "now", and each known_at a caller gave (an auditor's cut-off);
of the latter only the `points` most recently written are kept (`store`).

Unpickling runs only the classes of the facts, the timelines, their vocabulary, `date`,
`datetime` and `Fraction` (`_Unpickler.find_class`): a row naming anything else is refused
and ignored, so the store's bytes can build facts but never call anything else.
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, datetime
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, delete, func, select
from sqlalchemy.exc import DBAPIError

import domain
import domain.rules.facts as facts_module
import domain.rules.timelines as timelines_module
import domain.vocabulary as vocabulary_module
import projections
from domain.framework import FrameworkSettings
from domain.rules.facts import AuthorityEvidence
from domain.rules.timelines import Timelines, keep_timelines
from projections.projector import naive_utc
from projections.tables import facts_kept

log = logging.getLogger("csa.facts_kept")

PROTOCOL = 5
NOW = "now"  # the `asked` of facts as known now
_FIELDS = tuple(f.name for f in fields(AuthorityEvidence))


@cache
def code_digest() -> str:
    """A digest of what decides the kept facts' bytes and meaning: the sources of `domain` (the
    facts, the timelines, the frameworks) and `projections` (the read model and its queries),
    the Python version and the pickle protocol. A row written by other code is ignored."""
    h = hashlib.sha256(f"{sys.version_info[:2]} pickle {PROTOCOL}\n".encode())
    for package in (domain, projections):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root.parent)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class Kept:
    """One authority's facts to keep: read as known at `read_at`, after the latest event about
    the authority was found at `version`; `timelines`, if the rules built them; `asked`: "now",
    or the known_at the caller gave (naive UTC, ISO)."""

    la_code: str
    version: int
    read_at: datetime
    facts: AuthorityEvidence
    timelines: Timelines | None = None
    asked: str = NOW


def dumps(facts: AuthorityEvidence, timelines: Timelines | None) -> bytes:
    """The facts and their timelines in one pickle, so the timelines share the facts' objects."""
    return pickle.dumps((tuple(getattr(facts, name) for name in _FIELDS), timelines), protocol=PROTOCOL)


def loads(blob: bytes, framework: FrameworkSettings) -> AuthorityEvidence:
    """Facts from `dumps`, with their timelines kept with them under `framework`."""
    values, timelines = _Unpickler(io.BytesIO(blob)).load()
    facts = AuthorityEvidence(*values)
    if timelines is not None:
        keep_timelines(facts, timelines.restored(framework))
    return facts


def store(engine: Engine, year: int, kept: Iterable[Kept], points: int = 2) -> int:
    """Write these authorities' facts (one transaction). A row already tagged with a later
    event is left as it is. Of the known-at times other than "now", only the `points` most
    recently written are kept for the year (each is ~75 MB on the national set): the rest are
    deleted in the same transaction. Returns how many were written; 0 when the store refuses
    the write (a read-only replica, say), which is logged: keeping is an optimisation, never
    required."""
    kept_at = datetime.now(UTC).replace(tzinfo=None)
    rows = [{"la_code": k.la_code, "year": year, "asked": k.asked, "version": k.version,
             "read_at": naive_utc(k.read_at), "kept_at": kept_at, "code": code_digest(),
             "facts": dumps(k.facts, k.timelines)} for k in kept]
    if not rows:
        return 0
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(facts_kept)
    stmt = stmt.on_conflict_do_update(
        index_elements=[facts_kept.c.la_code, facts_kept.c.year, facts_kept.c.asked],
        set_={c: stmt.excluded[c] for c in ("version", "read_at", "kept_at", "code", "facts")},
        where=facts_kept.c.version <= stmt.excluded.version,
    )
    latest_points = (select(facts_kept.c.asked)
                     .where(facts_kept.c.year == year, facts_kept.c.asked != NOW)
                     .group_by(facts_kept.c.asked)
                     .order_by(func.max(facts_kept.c.kept_at).desc(), facts_kept.c.asked.desc())
                     .limit(bindparam("points")))
    let_go = delete(facts_kept).where(facts_kept.c.year == year, facts_kept.c.asked != NOW,
                                      facts_kept.c.asked.not_in(latest_points))
    try:
        with engine.begin() as conn:
            conn.execute(stmt, rows)
            conn.execute(let_go, {"points": max(points, 0)})
    except DBAPIError as e:
        log.warning("facts not kept in the store: %s", e.orig if e.orig is not None else e)
        return 0
    return len(rows)


def load(engine: Engine, year: int, versions: Mapping[str, int], known_at: datetime,
         framework: FrameworkSettings, asked: str = NOW) -> dict[str, tuple[AuthorityEvidence, datetime]]:
    """The kept facts, with the time each was read at, of those authorities in `versions`
    (la_code: the position of the latest event about it, read before this) kept for the time
    `asked` ("now" or the known_at given) whose row still holds as known at `known_at`: the
    same version, read at or before `known_at`, by this code. A row that cannot be read is
    ignored (and logged)."""
    if not versions:
        return {}
    k = naive_utc(known_at)
    mine = (facts_kept.c.year == year, facts_kept.c.asked == asked, facts_kept.c.code == code_digest())
    q = select(facts_kept.c.la_code, facts_kept.c.version, facts_kept.c.read_at).where(*mine)
    with engine.connect() as conn:
        holding = [la for la, version, read_at in conn.execute(q)
                   if versions.get(la) == version and naive_utc(read_at) <= k]
        if not holding:
            return {}
        blobs = conn.execute(select(facts_kept.c.la_code, facts_kept.c.read_at, facts_kept.c.facts).where(
            *mine, facts_kept.c.la_code.in_(holding))).all()
    out: dict[str, tuple[AuthorityEvidence, datetime]] = {}
    for la, read_at, blob in blobs:
        if versions.get(la) is None:
            continue
        try:
            out[la] = (loads(bytes(blob), framework), naive_utc(read_at))
        except Exception as e:  # noqa: BLE001 - a row that cannot be read is read again from the read model
            log.warning("kept facts of %s (%s) not used: %s: %s", la, year, type(e).__name__, e)
    return out


# --- what a kept row may build ------------------------------------------------------------


def _allowed() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("datetime", "date"): __import__("datetime").date,
        ("datetime", "datetime"): datetime,
        ("fractions", "Fraction"): __import__("fractions").Fraction,
        (timelines_module.__name__, "Timelines"): Timelines,
        (timelines_module.__name__, "Changes"): timelines_module.Changes,
    }
    for module in (facts_module, vocabulary_module):
        for name, value in vars(module).items():
            if isinstance(value, type) and value.__module__ == module.__name__ and (
                    is_dataclass(value) or issubclass(value, Enum)):
                allowed[(module.__name__, name)] = value
    return allowed


_ALLOWED = _allowed()


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"kept facts may not name {module}.{name}") from None

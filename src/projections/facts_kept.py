"""Authorities' facts kept in the store, across processes and restarts (ADR 0028).

Reading an authority's facts from the read model costs ~6 µs a current row in the
interpreter (ADR 0026): the national table with nothing kept spends most of its time there,
and so does every new process (the one-shot CLI, a restarted or added API worker). The views
keep facts per process (`adapters.views._FactsKept`); this module keeps them in the store as
well, as the facts and the rules' timelines (ADR 0024) pickled together, one row per
authority, framework year and time asked in `rm_facts_kept`.

A row holds exactly while the in-process rule holds: the latest event about the authority is
still the one it is tagged with, and the time asked for is not before the time the facts were
read at. It must also have been written by the same code (`code_digest`: the sources of the
domain and the projections, and whatever else the caller names, the Python version, the pickle
protocol); anything else is ignored and replaced by the next reader that reads the rows. Rows
are kept per time asked, as the in-process facts are: "now", and each known_at a caller gave
(an auditor's cut-off); of the latter only the `points` most recently written are kept.

Facts as known "now" are kept only if no event about the authority was recorded after the time
they were read at (`store`): an event recorded after it but projected before the facts were
read (a writer whose clock is ahead, or one that committed meanwhile) is counted in the tag but
left out of the facts, and a row so tagged would hold for every later process.

Unpickling builds only the facts' classes, the timelines, their vocabulary's enums, `date`,
`datetime` and `Fraction` from a bounded text (`_Unpickler.find_class`): a row naming anything
else is refused and ignored, so the store's bytes can build facts but never call anything else.
"""

from __future__ import annotations

import copyreg
import hashlib
import io
import logging
import pickle
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, date, datetime
from enum import Enum
from fractions import Fraction
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, String, bindparam, column, delete, func, select, text
from sqlalchemy.exc import SQLAlchemyError

import domain
import domain.rules.facts as facts_module
import domain.rules.timelines as timelines_module
import domain.vocabulary as vocabulary_module
import projections
from domain.framework import FrameworkSettings
from domain.rules.facts import AuthorityEvidence
from domain.rules.timelines import Timelines, keep_timelines
from projections.projector import naive_utc
from projections.tables import event_log, facts_kept

log = logging.getLogger("csa.facts_kept")

PROTOCOL = 5
NOW = "now"  # the `asked` of facts as known now
_FIELDS = tuple(f.name for f in fields(AuthorityEvidence))


def code_digest(*extra: Path) -> str | None:
    """A digest of what decides the kept facts' bytes and meaning: the sources of `domain` (the
    facts, the timelines, the frameworks), of `projections` (the read model and its queries) and
    the `extra` files (the caller's keys), the Python version and the pickle protocol. Worked out
    from the files when the process starts (`CODE`), not when first used: a process still running
    old code after new files were installed keeps its old digest. None when the sources are not
    there (a deployment of compiled files only): nothing is then kept or taken."""
    h = hashlib.sha256(f"{sys.version_info[:2]} pickle {PROTOCOL}\n".encode())
    sources = 0
    try:
        for package in (domain, projections):
            root = Path(package.__file__).parent
            for path in sorted(root.rglob("*.py")):
                h.update(str(path.relative_to(root.parent)).encode() + b"\0" + path.read_bytes() + b"\0")
                sources += 1
        if not sources:
            return None
        for path in extra:
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    except OSError:  # sources not readable as files (a zip, a frozen application)
        return None
    return h.hexdigest()


CODE = code_digest()


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


@dataclass(frozen=True)
class Stored:
    """What `store` did: the entries it offered (a row already tagged with a later event was
    left as it was), and the known-at times the store keeps for the year afterwards."""

    offered: tuple[Kept, ...] = ()
    points: frozenset[str] = frozenset()


# Writers of kept facts take turns on PostgreSQL (a transaction-scoped advisory lock): two writing
# rows of different known-at times, each then deleting the other's as the oldest, would deadlock.
_PG_WRITERS_LOCK = 0x6373615F666B  # "csa_fk"


def store(engine: Engine, year: int, kept: Iterable[Kept], points: int = 2, code: str | None = CODE) -> Stored:
    """Offer these authorities' facts to the store (one transaction). A row already tagged with
    a later event is left as it is. Facts as known now are left out if an event about their
    authority was recorded after they were read (module docstring). Of the known-at times other
    than "now", only the `points` most recently written are kept for the year (each is ~75 MB on
    the national set): the rest are deleted in the same transaction. Raises SQLAlchemyError when
    the store refuses the write (a read-only replica, say): the caller logs it, keeping being
    an optimisation, never required."""
    kept = list(kept)
    if code is None or not kept:
        return Stored()
    with engine.connect() as conn:
        kept = _known_when_read(conn, kept)
    kept_at = datetime.now(UTC).replace(tzinfo=None)
    rows = [{"la_code": k.la_code, "year": year, "asked": k.asked, "version": k.version,
             "read_at": naive_utc(k.read_at), "kept_at": kept_at, "code": code,
             "facts": dumps(k.facts, k.timelines)} for k in kept]
    if not rows:
        return Stored()
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
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_WRITERS_LOCK})")
        conn.execute(stmt, rows)
        conn.execute(let_go, {"points": max(points, 0)})
        left = conn.execute(select(facts_kept.c.asked).where(facts_kept.c.year == year).distinct()).scalars()
        return Stored(tuple(kept), frozenset(left))


def _known_when_read(conn: Any, kept: list[Kept]) -> list[Kept]:
    """Those of `kept` that hold every event about their authority up to their tag: for facts as
    known now, none about the authority recorded after they were read (one sequential scan of
    the log's index for the events recorded since the earliest of them was read, in the store)."""
    now = [k for k in kept if k.asked == NOW]
    if not now:
        return kept
    since = min(naive_utc(k.read_at) for k in now)
    # SQLite: NOT INDEXED, the table in rowid order (~0.2 s on the national store), not by random
    # access through the authority index (~0.9 s); PostgreSQL chooses a sequential scan itself.
    hint = " NOT INDEXED" if conn.dialect.name == "sqlite" else ""
    q = text(f"SELECT la_code, max(recorded_at) AS latest FROM {event_log.name}{hint} "
             "WHERE recorded_at > :since GROUP BY la_code").bindparams(bindparam("since", type_=DateTime))
    q = q.columns(column("la_code", String), column("latest", DateTime))
    later = {la: naive_utc(at) for la, at in conn.execute(q, {"since": since})}
    return [k for k in kept if k.asked != NOW or k.la_code not in later or later[k.la_code] <= naive_utc(k.read_at)]


def load(engine: Engine, year: int, versions: Mapping[str, int], known_at: datetime,
         framework: FrameworkSettings, asked: str = NOW,
         code: str | None = CODE) -> dict[str, tuple[AuthorityEvidence, datetime]]:
    """The kept facts, with the time each was read at, of those authorities in `versions`
    (la_code: the position of the latest event about it, read before this) kept for the time
    `asked` ("now" or the known_at given) whose row still holds as known at `known_at`: the
    same version, read at or before `known_at`, by this code. A row that cannot be read, or a
    store that cannot be asked, is ignored (and logged): the facts are then read as before."""
    if not versions or code is None:
        return {}
    k = naive_utc(known_at)
    mine = (facts_kept.c.year == year, facts_kept.c.asked == asked, facts_kept.c.code == code)

    def holds(la: str, version: int, read_at: datetime) -> bool:
        return versions.get(la) == version and naive_utc(read_at) <= k

    try:
        with engine.connect() as conn:
            holding = [la for la, version, read_at in conn.execute(
                select(facts_kept.c.la_code, facts_kept.c.version, facts_kept.c.read_at).where(*mine))
                       if holds(la, version, read_at)]
            if not holding:
                return {}
            # the tag read again with the bytes: another process may have replaced the row meanwhile
            rows = conn.execute(select(facts_kept.c.la_code, facts_kept.c.version, facts_kept.c.read_at,
                                       facts_kept.c.facts).where(*mine, facts_kept.c.la_code.in_(holding))).all()
    except SQLAlchemyError as e:
        log.warning("kept facts not read from the store: %s", getattr(e, "orig", None) or e)
        return {}
    out: dict[str, tuple[AuthorityEvidence, datetime]] = {}
    for la, version, read_at, blob in rows:
        if not holds(la, version, read_at):
            continue
        try:
            facts = loads(bytes(blob), framework)
            if facts.la_code != la:
                raise ValueError(f"the row of {la} holds the facts of {facts.la_code}")
            out[la] = (facts, naive_utc(read_at))
        except Exception as e:  # noqa: BLE001 - a row that cannot be read is read again from the read model
            log.warning("kept facts of %s (%s) not used: %s: %s", la, year, type(e).__name__, e)
    return out


# --- what a kept row may build ------------------------------------------------------------

_FRACTION_TEXT = re.compile(r"-?[0-9]{1,60}(/[0-9]{1,60})?")
_FRACTION_BITS = 256


def _fraction(*args: Any) -> Fraction:
    """`Fraction` as pickled (`Fraction(numerator, denominator)`, or a text "n" or "n/d"), from
    integers of at most 256 bits or a text of at most 60 digits each: never from a text such as
    "1e1000000000", which would compute a power of ten for hours, nor from huge integers."""
    if len(args) == 2 and all(type(a) is int and a.bit_length() <= _FRACTION_BITS for a in args) and args[1]:
        return Fraction(*args)
    if len(args) == 1 and isinstance(args[0], str) and _FRACTION_TEXT.fullmatch(args[0]):
        return Fraction(args[0])
    raise pickle.UnpicklingError(f"kept facts may not build Fraction{args!r:.80}")


def _enum_member(cls: Any, name: Any) -> Enum:
    """`getattr(cls, name)` as some releases of Python 3.11 pickle an enum member (3.11.2 does;
    3.11.7 pickles `cls(value)`): only a member, by its name, of an enum the facts may build."""
    if isinstance(cls, type) and issubclass(cls, Enum) and _ALLOWED.get((cls.__module__, cls.__name__)) is cls \
            and type(name) is str and name in cls.__members__:
        return cls[name]
    raise pickle.UnpicklingError(f"kept facts may not build getattr{(cls, name)!r:.80}")


def _allowed() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("builtins", "getattr"): _enum_member,
        ("datetime", "date"): date,
        ("datetime", "datetime"): datetime,
        ("fractions", "Fraction"): _fraction,
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


# What a row could otherwise change for the whole process: pickle's BUILD sets the state of the
# object it follows, and a row may make that object a shared one: an enum member (`cls(value)`,
# `getattr(cls, name)`) or a class or function the allow-list names. A real row never does.
def _no_state(*_: Any) -> None:
    raise pickle.UnpicklingError("kept facts may not give state to a shared value (an enum member or class)")


# Enum members and classes refuse state at once: an enum's `__setstate__` is never called by a
# real pickle of a member, which is a call (`cls(value)` or `getattr`), with no state after it.
for _cls in _ALLOWED.values():
    if isinstance(_cls, type) and issubclass(_cls, Enum):
        _cls.__setstate__ = _no_state  # type: ignore[method-assign,assignment]


def _attributes(obj: Any) -> dict[str, Any]:
    got = dict(vars(obj))
    if not isinstance(obj, type):  # a function: the attributes a row could set besides its __dict__
        got.update(__defaults__=obj.__defaults__, __kwdefaults__=obj.__kwdefaults__)
    return got


# The other classes and the functions are checked after each load, and put back if a row
# changed them (the row is then refused): a dataclass's instances are built by BUILD, so their
# classes cannot refuse state the way the enums do without slowing every real row.
_SHARED_VALUES = [v for v in _ALLOWED.values() if not (isinstance(v, type) and issubclass(v, Enum))
                  and v not in (date, datetime)]
for _cls in _SHARED_VALUES:
    if isinstance(_cls, type):
        copyreg._slotnames(_cls)  # noqa: SLF001  # what pickling the first instance adds to the class, added now
_SHARED = {id(v): (v, _attributes(v)) for v in _SHARED_VALUES}


def _shared_intact() -> bool:
    intact = True
    for obj, attributes in _SHARED.values():
        now = _attributes(obj)
        if now.keys() == attributes.keys() and all(now[k] is v for k, v in attributes.items()):
            continue
        intact = False
        for name in now.keys() - attributes.keys():
            delattr(obj, name)
        for name, value in attributes.items():
            if now.get(name) is not value:
                setattr(obj, name, value)
    return intact


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"kept facts may not name {module}.{name}") from None

    def load(self) -> Any:
        try:
            return super().load()
        finally:
            if not _shared_intact():
                raise pickle.UnpicklingError("kept facts may not change a class or function they name")

"""The read side the CLI and the HTTP API share: the profile, the proposal, the
exceptions list, the diff and the national table, each as at a business date
and as known at a transaction time.

Each view is: one query of the read model for what was known (projections),
then pure rule code for what counts on the business date (domain.rules).
"""

from __future__ import annotations

import copy
import functools
import gc
import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from adapters.ledger import Ledger
from domain.assessment_state import AssessmentState
from domain.framework import LATEST_YEAR, FrameworkSettings, framework_for
from domain.rules.assessment import propose_grade_from
from domain.rules.cutoff import decide_cutoff
from domain.rules.facts import AuthorityEvidence
from domain.rules.profile import build_profile_from
from domain.rules.timelines import timelines_built, timelines_for
from domain.vocabulary import AssessmentGrade
from projections import facts_kept
from projections.assessments import appealed_authorities, assessment_state
from projections.projector import naive_utc
from projections.queries import authorities_evidence, authority_evidence, known_at_clause
from projections.tables import event_log, evidence

LAYERS = (1, 2, 3, 4)
ASSESSMENTS_KEPT = 8  # the last few (cut-off, profile, proposal) of a process, shared by its views
NO_EVIDENCE = "no evidence recorded"
# From this many authorities whose facts are not kept, the views read them together, in two
# sequential scans of the read model, rather than with three queries each (ADR 0026). The scans
# cost the same however few are read: on the national store one by one is cheaper below ~90.
BULK_READ_FROM = 100


def _has_evidence(cutoff: Any, profile: Any) -> bool:
    return any(r.number_inspected for r in profile.super_groups) or bool(
        cutoff.unannounced_inspections or cutoff.full_inspections or cutoff.joint_area_reviews)


@dataclass(frozen=True)
class Point:
    """A point of view: a business date and a transaction time."""

    as_at: date
    known_at: datetime

    def to_dict(self) -> dict[str, str]:
        return {"as_at": self.as_at.isoformat(), "known_at": self.known_at.isoformat()}


def _at_one_position(view: Callable[..., Any]) -> Callable[..., Any]:
    """A view worked out at one read-model position, read once when the views are not pinned
    (the CLI, a benchmark): not once for each answer it keeps (the profile, the assessment and
    the proposal's judgement would each read it), ~0.7 ms a read on the national store. An HTTP
    request's views are pinned already (`Views.at`). The position is read before the view takes
    the time "now", which the facts' tags rely on (`_la_version`)."""
    @functools.wraps(view)
    def pinned(self: Views, *args: Any, **kwargs: Any) -> Any:
        return view(self if self._position is not None else self.at(self.position()), *args, **kwargs)

    return pinned


class NotKept(LookupError):
    """A view pinned with `kept_only()` was asked for something it does not keep."""


class Views:
    """`cache_entries`: answers kept per process, keyed by everything they depend on
    (authority, year, as_at, the known_at asked for — or "now" — and the read
    model's log position), so a repeated question is answered without recomputing
    and a new event simply makes new keys (ADR 0009)."""

    def __init__(self, ledger: Ledger, cache_entries: int = 512, cache_authorities: int = 160,
                 facts_in_store: bool = False, facts_in_store_points: int = 2):
        """`facts_in_store`: also keep the facts of the authorities a national table or a warm
        start used in the store, for other processes and later ones, and take them from there
        when many are not kept here (ADR 0028): as known now, and as known at the last
        `facts_in_store_points` earlier times asked for."""
        self.ledger = ledger
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._cache_entries = cache_entries
        self._lock = threading.Lock()
        self._position: int | None = None
        self._kept_only = False
        self._facts = _FactsKept(cache_authorities)
        self._in_store = _KeptInStore(facts_in_store_points) if facts_in_store else None
        self._assessed: OrderedDict[tuple, Any] = OrderedDict()

    def at(self, position: int) -> Views:
        """These views pinned at a read-model position the caller has just read (an HTTP
        request's): the answers kept are shared, and no further query asks where the
        read model is."""
        pinned = copy.copy(self)
        pinned._position = position
        return pinned

    def kept_only(self) -> Views:
        """These views answering only from what they keep: anything to compute or to read from
        the store raises NotKept instead. Costs a dictionary look-up or two, never a wait, so an
        HTTP worker's event loop can answer a repeated question itself (api.routers.views)."""
        if self._position is None:
            raise NotKept("pin the views at a position first (Views.at)")
        pinned = copy.copy(self)
        pinned._kept_only = True
        return pinned

    def position(self) -> int:
        return self.ledger.projector.position() if self._position is None else self._position

    def _memo(self, key: tuple, known_at: datetime | None, compute: Callable[[], Any]) -> Any:
        return self._kept((*key, _asked(known_at), self.position()), compute)

    def _kept(self, key: tuple, compute: Callable[[], Any], cache: OrderedDict | None = None,
              entries: int | None = None) -> Any:
        """`compute()`, kept under `key` in `cache` (the answers by default), least recently used out."""
        cache = self._cache if cache is None else cache
        with self._lock:
            if key in cache:
                cache.move_to_end(key)
                return cache[key]
        if self._kept_only:
            raise NotKept(key[0])
        value = compute()
        with self._lock:
            cache[key] = value
            while len(cache) > (self._cache_entries if entries is None else entries):
                cache.popitem(last=False)
        return value

    # --- points -------------------------------------------------------------

    def point(self, year: int, as_at: date | None = None, known_at: datetime | None = None) -> Point:
        """Defaults: as at the framework year's publication date, as known now."""
        fw = framework_for(year)
        return Point(as_at or fw.publication_on or date(year, 12, 31), known_at or self.ledger.clock())

    def _evidence(self, la_code: str, year: int, known_at: datetime, asked: datetime | None = None,
                  inspector_notes: bool = True) -> AuthorityEvidence:
        """What the ledger knew about the authority at `known_at` (`asked`: the known_at the
        caller gave, None for "now"). Kept per authority until an event about it is projected:
        the facts do not depend on the as-at date, so a new as-at question, or the national
        table, reuses them and only the rules run again."""
        key = (la_code, year, _asked(asked), inspector_notes)

        def load() -> AuthorityEvidence:
            ev = authority_evidence(self.ledger.engine, la_code, known_at, year=year)
            return ev if inspector_notes else replace(ev, inspector_notes=())

        return self._facts.get(key, self.position(), naive_utc(known_at), lambda: self._la_version(la_code), load)

    def _evidence_together(self, la_codes: list[str], year: int, known_at: datetime, asked: datetime | None = None,
                           stop: Callable[[], bool] | None = None) -> dict[str, AuthorityEvidence]:
        """The facts (inspector notes shown) of those of these authorities whose facts are not
        kept, when they are at least `BULK_READ_FROM`: read together (`authorities_evidence`,
        ADR 0026), and kept as `_evidence` keeps them, under the same keys and each tagged with
        the latest event about its authority. Otherwise {} (each is then read when asked)."""
        position, read_at = self.position(), naive_utc(known_at)
        keys = {la: (la, year, _asked(asked), True) for la in la_codes}
        missing = [la for la in la_codes
                   if self._facts.kept(keys[la], position, read_at, lambda la=la: self._la_version(la)) is None]
        if len(missing) < BULK_READ_FROM:
            return {}
        with self.ledger.engine.connect() as conn:  # read first: the facts read next are at least this new
            versions = {la: self._la_version(la, conn) for la in missing}
        kept: dict[str, AuthorityEvidence] = {}
        if self._in_store is not None:  # kept in the store by this or another process
            got = self._in_store.load(self.ledger.engine, year, _asked(asked), versions, known_at)
            for la, (facts, kept_read_at) in got.items():
                self._facts.put(keys[la], position, versions[la], kept_read_at, facts)
                kept[la] = facts
            missing = [la for la in missing if la not in kept]
            if len(missing) < BULK_READ_FROM:  # the rest are read one by one when asked
                if kept:
                    into_oldest_generation()
                return kept
        read = authorities_evidence(self.ledger.engine, missing, known_at, year=year, stop=stop)
        if read is None:
            return kept
        for la in missing:
            self._facts.put(keys[la], position, versions[la], read_at, read[la])
        into_oldest_generation()
        return {**kept, **read}

    def _keep_in_store(self, la_codes: list[str], fw: FrameworkSettings, asked: datetime | None = None) -> None:
        """With `facts_in_store`: keep in the store, in the background, the facts as known at
        `asked` (None: now), and the timelines the rules built from them under `fw`, of these
        authorities that this process keeps and the store does not hold yet at the same version
        (ADR 0028)."""
        if self._in_store is None:
            return
        entries = []
        point = _asked(asked)
        for la in la_codes:
            got = self._facts.entry((la, fw.year, point, True))
            if got is not None and not self._in_store.holds(la, fw.year, point, got[1]):
                _, version, read_at, facts = got
                entries.append(facts_kept.Kept(la, version, read_at, facts, timelines_built(facts, fw), point))
        self._in_store.keep(self.ledger.engine, fw.year, entries)

    def wait_kept_in_store(self, timeout: float | None = None) -> bool:
        """Wait for the facts being written to the store (`facts_in_store`); False if still writing."""
        return True if self._in_store is None else self._in_store.wait(timeout)

    def _la_version(self, la_code: str, conn: Any = None) -> int:
        """The log position of the latest event about the authority (its providers' included), up
        to the read model's position the views work at. A view reads that position before it
        takes the time "now" (`_at_one_position`, an HTTP request's `Views.at`), so every event
        the tag counts was committed, and so recorded, before the facts' known_at: facts tagged
        with an event they leave out (one committed after "now" was taken) are never kept."""
        if conn is None:
            with self.ledger.engine.connect() as conn:
                return self._la_version(la_code, conn)
        return conn.execute(select(func.max(event_log.c.position)).where(
            event_log.c.la_code == la_code, event_log.c.position <= self.position())).scalar() or 0

    def _assess(self, la_code: str, fw: FrameworkSettings, pt: Point, inspector_notes: bool = True,
                asked: datetime | None = None, facts: AuthorityEvidence | None = None):
        """The cut-off, the profile and the proposal at a point of view. The last few are kept,
        so a profile and a proposal asked together run the rules once. `facts`: the authority's
        facts at the point's known_at, when the caller has them (read with others)."""
        key = ("assess", la_code, fw.year, pt.as_at, _asked(asked), inspector_notes, self.position())

        def compute():
            with cyclic_gc_paused():
                ev = facts if facts is not None else self._evidence(la_code, fw.year, pt.known_at, asked,
                                                                    inspector_notes)
                cutoff = decide_cutoff(ev, fw, pt.as_at)
                profile = build_profile_from(cutoff, fw, la_code)
                return cutoff, profile, propose_grade_from(cutoff, profile, fw)

        return self._kept(key, compute, self._assessed, ASSESSMENTS_KEPT)

    @_at_one_position
    def warm(self, year: int = LATEST_YEAR, stop: threading.Event | None = None) -> int:
        """Read every authority's facts as known now, to be kept (as many as the cache holds),
        with the timelines the rules work out once from them (ADR 0024): the first question
        about any of them is then answered from kept facts. The facts are read together (ADR
        0026). Returns how many were read; stops early when `stop` is set."""
        n = 0
        fw = framework_for(year)
        la_codes = [a.la_code for a in self.ledger.authorities.all[: self._facts.entries]]
        if stop is not None and stop.is_set():
            return n
        known_at = self.ledger.clock()
        with cyclic_gc_paused():
            read = self._evidence_together(la_codes, year, known_at, stop=None if stop is None else stop.is_set)
        for la in la_codes:
            if stop is not None and stop.is_set():
                break
            with cyclic_gc_paused():
                ev = read.get(la)
                timelines_for(self._evidence(la, year, known_at) if ev is None else ev, fw)
            n += 1
        if stop is None or not stop.is_set():
            self._keep_in_store(la_codes, fw)
        return n

    def authorities_kept(self) -> int:
        return len(self._facts)

    def la(self, authority: str) -> str:
        return self.ledger.authorities.resolve(authority).la_code

    def _header(self, la_code: str, pt: Point, **extra: Any) -> dict[str, Any]:
        a = self.ledger.authorities.resolve(la_code)
        return {"la_code": a.la_code, "authority": a.name, **pt.to_dict(), **extra}

    # --- views --------------------------------------------------------------

    @_at_one_position
    def profile(self, authority: str, *, year: int = LATEST_YEAR, as_at: date | None = None,
                known_at: datetime | None = None, layer: int = 1, inspector_notes: bool = True) -> dict[str, Any]:
        """`inspector_notes=False` leaves out the year's recorded inspector notes (cut-off
        exclusions): the profile as it stands before the assessment's own judgements."""
        if layer not in LAYERS:
            raise ValueError(f"layer={layer}: must be 1, 2, 3 or 4")
        la_code, fw = self.la(authority), framework_for(year)
        pt = self.point(year, as_at, known_at)

        def compute() -> dict[str, Any]:
            _, profile, _ = self._assess(la_code, fw, pt, inspector_notes=inspector_notes, asked=known_at)
            full = profile.to_dict(layers=(layer,))
            return {k: full[k] for k in ("layer1", "block_b", "block_c", f"layer{layer}") if k in full}

        body = self._memo(("profile", la_code, year, pt.as_at, layer, inspector_notes), known_at, compute)
        return {**self._header(la_code, pt, year=year, layer=layer), **body}

    @_at_one_position
    def proposal(self, authority: str, year: int, *, as_at: date | None = None,
                 known_at: datetime | None = None) -> dict[str, Any]:
        la_code, fw = self.la(authority), framework_for(year)
        pt = self.point(year, as_at, known_at)
        body = self._memo(("proposal", la_code, year, pt.as_at), known_at,
                          lambda: self._assess(la_code, fw, pt, asked=known_at)[2].to_dict())
        judgement = self._memo(("judgement", la_code, year), known_at,
                               lambda: self.inspector_judgement(la_code, year, pt.known_at))
        return {**self._header(la_code, pt, year=year), **body, "inspector_judgement": judgement}

    @_at_one_position
    def exceptions(self, authority: str, year: int, *, as_at: date | None = None,
                   known_at: datetime | None = None) -> dict[str, Any]:
        la_code, fw = self.la(authority), framework_for(year)
        pt = self.point(year, as_at, known_at)
        listed = self._memo(("exceptions", la_code, year, pt.as_at), known_at,
                            lambda: [e.to_dict() for e in self._assess(la_code, fw, pt, asked=known_at)[0].exceptions_list])
        return {**self._header(la_code, pt, year=year), "exceptions": listed}

    @_at_one_position
    def national(self, year: int, *, as_at: date | None = None, known_at: datetime | None = None) -> dict[str, Any]:
        fw = framework_for(year)
        pt = self.point(year, as_at, known_at)
        rows = self._memo(("national", year, pt.as_at), known_at, lambda: self._national_rows(fw, pt, known_at))
        counts = Counter(r["proposal_label"] for r in rows)
        labels = [g.label for g in sorted(AssessmentGrade, reverse=True)] + [NO_EVIDENCE]
        return {"year": year, **pt.to_dict(), "authorities": rows,
                "counts": {label: counts.get(label, 0) for label in labels}, "total": len(rows)}

    def _national_rows(self, fw: FrameworkSettings, pt: Point, asked: datetime | None) -> list[dict[str, Any]]:
        with cyclic_gc_paused():
            return self._national_rows_of(fw, pt, asked)

    def _national_rows_of(self, fw: FrameworkSettings, pt: Point, asked: datetime | None) -> list[dict[str, Any]]:
        if self._position is None:  # the whole table at one read-model position, read once
            return self.at(self.position())._national_rows_of(fw, pt, asked)
        rows = []
        authorities = self.ledger.authorities.all
        read = self._evidence_together([a.la_code for a in authorities], fw.year, pt.known_at, asked)
        for a in authorities:
            cutoff, profile, p = self._assess(a.la_code, fw, pt, asked=asked, facts=read.get(a.la_code))
            if not _has_evidence(cutoff, profile):
                # An authority with nothing recorded gets no proposal rather than "performs poorly".
                rows.append({"la_code": a.la_code, "authority": a.name, "region": a.region, "block_a": None,
                             "block_b": None, "block_c": None, "proposal": None,
                             "proposal_label": NO_EVIDENCE, "considerations": 0})
                continue
            rows.append({"la_code": a.la_code, "authority": a.name, "region": a.region,
                         "block_a": p.block_a.value, "block_b": p.block_b.value,
                         "block_c": None if p.block_c is None else p.block_c.value,
                         "proposal": p.grade.value, "proposal_label": p.grade.label,
                         "considerations": len(p.considerations)})
        if read:  # and the timelines worked out from them, kept with them
            into_oldest_generation()
        self._keep_in_store([a.la_code for a in authorities], fw, asked)
        return rows

    @_at_one_position
    def diff(self, authority: str, year: int, start: Point, end: Point) -> dict[str, Any]:
        """What changed between two points: evidence, figures and bands, and the proposal."""
        la_code, fw = self.la(authority), framework_for(year)
        c1, p1, g1 = self._assess(la_code, fw, start, asked=start.known_at)
        c2, p2, g2 = self._assess(la_code, fw, end, asked=end.known_at)
        return {
            "la_code": la_code, "year": year, "from": start.to_dict(), "to": end.to_dict(),
            "evidence": self._evidence_diff(la_code, start.known_at, end.known_at),
            "counted": _counted_diff(c1, c2),
            "figures": _figures_diff(p1, p2),
            "proposal": _proposal_diff(g1, g2),
        }

    # --- assessment state ---------------------------------------------------

    def assessment_state(self, la_code: str, year: int) -> AssessmentState:
        """The assessment's embargo state at the read model's position (kept per position)."""
        return self._kept(("state", la_code, year, self.position()),
                          lambda: assessment_state(self.ledger.engine, la_code, year))

    def appealed_authorities(self) -> frozenset[str]:
        """Authorities with an appeal lodged, at the read model's position (kept per position)."""
        return self._kept(("appealed", self.position()), lambda: appealed_authorities(self.ledger.engine))

    def assessment_steps(self, la_code: str, year: int, known_at: datetime | None = None) -> list[dict[str, Any]]:
        q = select(event_log).where(event_log.c.la_code == la_code, event_log.c.year == year)
        if known_at is not None:
            q = q.where(event_log.c.recorded_at <= naive_utc(known_at))
        with self.ledger.engine.connect() as conn:
            # Sorted here, not by the query: ORDER BY position leads SQLite to walk every event of
            # the authority in position order rather than the few steps of the year by index.
            return sorted((dict(r) for r in conn.execute(q).mappings()), key=lambda r: r["position"])

    def inspector_judgement(self, la_code: str, year: int, known_at: datetime) -> dict[str, Any] | None:
        steps = [s for s in self.assessment_steps(la_code, year, known_at) if s["kind"] == "inspector_judgement_applied"]
        if not steps:
            return None
        d = steps[-1]["details"]
        g = AssessmentGrade(d["grade"])
        return {"grade": {"value": g.value, "label": g.label}, "reasons": d.get("reasons"),
                "sustained_improvement": bool(d.get("sustained_improvement")), "recorded_by": steps[-1]["actor"],
                "recorded_at": steps[-1]["recorded_at"].replace(tzinfo=UTC).isoformat(), "ref": f"#{steps[-1]['position']}"}

    # --- helpers ------------------------------------------------------------

    def _evidence_diff(self, la_code: str, k1: datetime, k2: datetime) -> dict[str, list[dict[str, Any]]]:
        def rows_at(k: datetime) -> dict[str, dict[str, Any]]:
            urns = select(evidence.c.urn).where(evidence.c.kind == "provider_registered", evidence.c.la_code == la_code,
                                                known_at_clause(k))
            q = select(evidence).where(known_at_clause(k),
                                       (evidence.c.la_code == la_code) | evidence.c.urn.in_(urns))
            with self.ledger.engine.connect() as conn:
                return {r["item_id"]: dict(r) for r in conn.execute(q).mappings()}

        a, b = rows_at(k1), rows_at(k2)

        def brief(r: dict[str, Any]) -> dict[str, Any]:
            return {"ref": f"#{r['position']}", "kind": r["kind"], "client_id": r["client_id"], "urn": r["urn"],
                    "occurred_on": r["occurred_on"], "published_on": r["published_on"], "data": r["data"]}

        gone = [brief(a[i]) for i in a.keys() - b.keys()]
        return {
            "appeared": sorted((brief(b[i]) for i in b.keys() - a.keys()), key=lambda r: r["ref"]),
            "changed": sorted(({"before": brief(a[i]), "after": brief(b[i]),
                                "fields": sorted(k for k in set(a[i]["data"]) | set(b[i]["data"])
                                                 if a[i]["data"].get(k) != b[i]["data"].get(k))}
                               for i in a.keys() & b.keys() if a[i]["version"] != b[i]["version"]),
                              key=lambda r: r["after"]["ref"]),
            "withdrawn_or_gone": sorted(gone, key=lambda r: r["ref"]),
        }


def _counted_diff(c1: Any, c2: Any) -> dict[str, list[dict[str, Any]]]:
    d1 = {d.ref: d for d in c1.decisions}
    d2 = {d.ref: d for d in c2.decisions}
    now_counted = [d.to_dict() for r, d in d2.items() if d.counts and not (r in d1 and d1[r].counts)]
    no_longer = [d.to_dict() for r, d in d1.items() if d.counts and not (r in d2 and d2[r].counts)]
    return {"now_counted": now_counted, "no_longer_counted": no_longer}


def _figures_diff(p1: Any, p2: Any) -> list[dict[str, Any]]:
    out = []
    for level, rows1, rows2 in (("super_group", p1.super_groups, p2.super_groups), ("group", p1.groups, p2.groups)):
        for r1, r2 in zip(rows1, rows2, strict=True):
            a, b = r1.to_dict(), r2.to_dict()
            if (a["number_inspected"], a["pct_good_or_better_exact"], a["band"]) != \
                    (b["number_inspected"], b["pct_good_or_better_exact"], b["band"]):
                out.append({"level": level, "code": r1.code, "label": r1.label,
                            "from": {k: a[k] for k in ("number_inspected", "pct_good_or_better", "band")},
                            "to": {k: b[k] for k in ("number_inspected", "pct_good_or_better", "band")}})
    return out


def _proposal_diff(g1: Any, g2: Any) -> dict[str, Any]:
    t1 = {r.rule_id: r for r in g1.trace}
    t2 = {r.rule_id: r for r in g2.trace}
    flipped = [{"rule_id": k, "paragraph": t2[k].paragraph, "description": t2[k].description,
                "from": t1[k].passed, "to": t2[k].passed}
               for k in t2 if k in t1 and t1[k].passed != t2[k].passed]
    added = [{"rule_id": k, "passed": t2[k].passed} for k in t2 if k not in t1]
    g = {"block_a": (g1.block_a, g2.block_a), "block_b": (g1.block_b, g2.block_b), "proposal": (g1.grade, g2.grade)}
    return {
        "changed": g1.grade != g2.grade,
        "grades": {k: {"from": a.label, "to": b.label} for k, (a, b) in g.items()},
        "caps": {"from": [c.to_dict() for c in g1.caps], "to": [c.to_dict() for c in g2.caps]},
        "rules_changed": flipped + added,
    }


def _asked(known_at: datetime | None) -> str:
    """The known_at a caller asked for, as a cache key: "now" when none was."""
    return "now" if known_at is None else naive_utc(known_at).isoformat()


_gc_lock = threading.Lock()
_gc_pausers = 0


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while the rules run. The facts kept for the
    national set are ~1 M tracked objects; each full collection scans them all (~0.75 s),
    and the rules' many short-lived results set off several per national table (4.5-8.5 s
    instead of ~3 s). Nothing is leaked: reference counting frees as usual, and the
    collector runs again when the last thread pausing it is done."""
    global _gc_pausers
    with _gc_lock:
        _gc_pausers += 1
        if _gc_pausers == 1:
            gc.disable()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0:
                gc.enable()


def into_oldest_generation() -> None:
    """Move every object the cyclic collector tracks into its oldest generation at once
    (`gc.freeze()` then `gc.unfreeze()`, which puts the frozen objects back in the oldest
    generation): called after facts are read together, ~1 M long-lived objects (ADR 0026). Left
    in the youngest generation, the first collection after the collector resumes would scan them
    all (~0.7 s), then the next generation's. Nothing is frozen for good and nothing is lost:
    garbage among them is found by the next full collection. Not done while objects are frozen
    (an API worker after its warm start, `api.app`): unfreezing would give those back to the
    collector's full scans."""
    with _gc_lock:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()


class _FactsKept:
    """Authorities' facts, least recently used first out, each tagged with the log position
    of the latest event about its authority: valid while that is still the latest (and, for
    "now", while the clock has not gone back before the time they were read at, which only
    a test's clock does). Checking costs nothing while the read model has not moved, one
    indexed query when it has."""

    def __init__(self, entries: int):
        self.entries = entries
        self._kept: OrderedDict[tuple, tuple[int, int, datetime, AuthorityEvidence]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._kept)

    def kept(self, key: tuple, position: int, known_at: datetime,
             la_version: Callable[[], int]) -> AuthorityEvidence | None:
        """The facts kept under `key` if they still hold, else None."""
        if self.entries <= 0:
            return None
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None:
            seen_at, version, read_at, facts = kept
            if read_at <= known_at and (seen_at == position or la_version() == version):
                with self._lock:
                    self._kept[key] = (position, version, read_at, facts)
                    self._kept.move_to_end(key)
                return facts
        return None

    def entry(self, key: tuple) -> tuple[int, int, datetime, AuthorityEvidence] | None:
        """What is kept under `key` (position seen at, version, read at, facts), unchecked."""
        with self._lock:
            return self._kept.get(key)

    def put(self, key: tuple, position: int, version: int, known_at: datetime, facts: AuthorityEvidence) -> None:
        """Keep `facts`, read as known at `known_at` after the latest event about the authority
        was found to be at `version`."""
        if self.entries <= 0:
            return
        with self._lock:
            self._kept[key] = (position, version, known_at, facts)
            self._kept.move_to_end(key)
            while len(self._kept) > self.entries:
                self._kept.popitem(last=False)

    def get(self, key: tuple, position: int, known_at: datetime, la_version: Callable[[], int],
            load: Callable[[], AuthorityEvidence]) -> AuthorityEvidence:
        if self.entries <= 0:
            return load()
        facts = self.kept(key, position, known_at, la_version)
        if facts is not None:
            return facts
        version = la_version()  # read first: the facts loaded next are at least this new
        facts = load()
        self.put(key, position, version, known_at, facts)
        return facts


class _KeptInStore:
    """The facts kept in the store (ADR 0028), as seen from one process: what it knows the store
    holds ((la_code, year, asked): version), the entries waiting to be written, and the one
    background thread that writes them. Shared by the pinned copies of a `Views`. After the store
    refuses a write (a read-only replica), nothing is offered for `REFUSED_PAUSE` seconds, so
    that ~2 s of pickling is not spent again at every new position."""

    REFUSED_PAUSE = 300.0

    def __init__(self, points: int) -> None:
        self._points = points
        self._lock = threading.Lock()
        self._held: dict[tuple[str, int, str], int] = {}
        self._waiting: dict[tuple[str, int, str], facts_kept.Kept] = {}
        self._writing: threading.Thread | None = None
        self._refused_until = 0.0

    def holds(self, la_code: str, year: int, asked: str, version: int) -> bool:
        with self._lock:
            return self._held.get((la_code, year, asked)) == version

    def load(self, engine: Any, year: int, asked: str, versions: dict[str, int],
             known_at: datetime) -> dict[str, tuple[AuthorityEvidence, datetime]]:
        if asked != facts_kept.NOW and self._points <= 0:
            return {}
        got = facts_kept.load(engine, year, versions, known_at, framework_for(year), asked, code=_CODE)
        with self._lock:
            self._held.update(((la, year, asked), versions[la]) for la in got)
        return got

    def keep(self, engine: Any, year: int, entries: list[facts_kept.Kept]) -> None:
        """Write `entries` in a background thread (pickling the national set's facts takes a
        couple of seconds); while one is writing they wait, and it writes them next. Not a
        daemon: a one-shot CLI process waits for it before it exits."""
        entries = [e for e in entries if e.asked == facts_kept.NOW or self._points > 0]
        with self._lock:
            if not entries or time.monotonic() < self._refused_until:
                return
            for e in entries:
                self._waiting[(e.la_code, year, e.asked)] = e
            if self._writing is None:  # the writer clears it, under this lock, when it finds nothing waiting
                self._writing = threading.Thread(target=self._write, args=(engine,), name="facts-kept", daemon=False)
                self._writing.start()

    def _write(self, engine: Any) -> None:
        try:
            while True:
                with self._lock:
                    if not self._waiting:
                        self._writing = None
                        return
                    waiting, self._waiting = self._waiting, {}
                by_year: dict[int, list[facts_kept.Kept]] = {}
                for (_, year, _), e in waiting.items():
                    by_year.setdefault(year, []).append(e)
                for year, entries in by_year.items():
                    try:
                        stored = facts_kept.store(engine, year, entries, self._points, code=_CODE)
                    except Exception as e:  # noqa: BLE001 - keeping is an optimisation: log it, answer as before
                        logging.getLogger("csa.facts_kept").warning(
                            "facts not kept in the store (not offered again for %.0f s): %s", self.REFUSED_PAUSE,
                            getattr(e, "orig", None) or e)
                        with self._lock:
                            self._refused_until = time.monotonic() + self.REFUSED_PAUSE
                            self._waiting.clear()
                            self._writing = None
                        return
                    with self._lock:  # what it holds now: the offered rows, and no times it let go
                        for key in [k for k in self._held if k[1] == year and k[2] not in stored.points]:
                            del self._held[key]
                        self._held.update(((e.la_code, year, e.asked), e.version) for e in stored.offered)
        finally:
            with self._lock:
                if self._writing is threading.current_thread():
                    self._writing = None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until nothing is being written or waits to be; False if `timeout` ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                writing = self._writing
            if writing is None:
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            writing.join(remaining)


# The digest the kept facts are written and taken under: the domain's and the projections'
# sources and this module's, which decides the keys (ADR 0028).
_CODE = facts_kept.code_digest(Path(__file__))

"""As-at queries over the bitemporal read model.

`authority_evidence` keeps what the ledger knew at `known_at` (rows with
recorded_from <= known_at < recorded_to) and turns it into the domain's facts;
the framework's business-date rules (as_at, cut-off, exceptions) are then
applied by pure code in `domain.rules`.

A fact's `ref` is `#<log position>` of the event that produced the version
used: the same number `csa history` prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Container, Iterable, Iterator
from datetime import date, datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import Engine, and_, or_, select

try:  # decodes an authority's JSON columns in one call (ADR 0023)
    import orjson
except ImportError:  # pragma: no cover - a declared dependency
    orjson = None  # type: ignore[assignment]

from domain.rules.facts import (
    AuthorityEvidence,
    ComplaintFact,
    FullInspectionFact,
    IndicatorFact,
    InspectorNoteFact,
    JointAreaReviewFact,
    PrivateFosteringFact,
    ProviderFact,
    ProviderInspectionFact,
    PublishedGradeFact,
    SeriousCaseReviewFact,
    UnannouncedInspectionFact,
)
from domain.vocabulary import AssessmentGrade, Grade
from projections.projector import as_date, has_long_integer, naive_utc
from projections.tables import event_log, evidence

LA_KINDS = ("unannounced_inspection", "full_inspection", "joint_area_review", "serious_case_review_evaluation",
            "private_fostering_inspection", "substantiated_complaint", "indicator_value", "published_grade")


def ref(row: Any) -> str:
    return f"#{row['position']}"


def known_at_clause(known_at: datetime):
    k = naive_utc(known_at)
    return and_(evidence.c.recorded_from <= k, or_(evidence.c.recorded_to.is_(None), evidence.c.recorded_to > k))


# Rows known at :k (the same condition as known_at_clause, for hand-written SQL).
_KNOWN = "recorded_from <= :k AND (recorded_to IS NULL OR recorded_to > :k)"
_COLUMNS = ("kind", "la_code", "urn", "group_code", "occurred_on", "published_on", "data", "position")


def _select(conn: Any) -> str:
    """`_COLUMNS` for a SELECT. PostgreSQL gives the JSON column as its text, decoded by
    `_decoded` in one call a chunk rather than by the driver row by row (the same values)."""
    return ", ".join(c if c != "data" or conn.dialect.name == "sqlite" else "data::text" for c in _COLUMNS)


def _ts_param(conn: Any, ts: datetime) -> Any:
    """A transaction time as the store compares it: SQLite keeps SQLAlchemy's text form."""
    k = naive_utc(ts)
    return k.strftime("%Y-%m-%d %H:%M:%S.%f") if conn.dialect.name == "sqlite" else k


def _rows(conn: Any, where: str, la_code: str, k: Any) -> list[tuple[tuple[Any, ...], Any]]:
    """Evidence rows known at `k` (`_COLUMNS`, as the driver gives them) in log order, each with
    its JSON column decoded: read through the driver's own cursor, without SQLAlchemy's rows or
    per-column type processing (the hot path of every view: thousands of rows per authority)."""
    sql = f"SELECT {_select(conn)} FROM {evidence.name} WHERE {where} AND {_KNOWN}"
    if conn.dialect.name != "sqlite":  # sqlite3 takes :name; psycopg %(name)s
        sql = sql.replace(":la", "%(la)s").replace(":k", "%(k)s")
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, {"la": la_code, "k": k})
        fetched = cursor.fetchall()
    finally:
        cursor.close()
    # In log order, whatever plan the store chose: PostgreSQL's parallel scans return rows in
    # any order, and the facts (and the order of refs in the answers) must not depend on it.
    fetched.sort(key=_position)
    return list(zip(fetched, _decoded([row[6] for row in fetched]), strict=True))


def _position(row: Any) -> int:
    return row[7]


def _decoded(values: list[Any]) -> list[Any]:
    """The JSON columns' values: SQLite gives text, PostgreSQL's driver values already
    decoded. Texts are decoded together in one orjson call, which reads JSON to exactly the
    standard library's values but for an integer past 64 bits (a float to orjson: any run of
    19 digits sends the lot to the standard library) and what it refuses (NaN, a lone
    surrogate): then the standard library decodes them all, as before."""
    texts = [v for v in values if isinstance(v, str)]
    if not texts:
        return values
    if orjson is not None and len(texts) == len(values):
        joined = ("[" + ",".join(texts) + "]").encode()
        if not has_long_integer(joined):
            try:
                return orjson.loads(joined)
            except orjson.JSONDecodeError:
                pass
    return [json.loads(v) if isinstance(v, str) else v for v in values]


_GRADES = {g.value: g for g in Grade}


def _grade(v: str | None) -> Grade | None:
    return _GRADES[v] if v else None


def _num(v: Any) -> Fraction | None:
    return None if v is None else Fraction(str(v))


class _Facts:
    """Turns evidence rows (`_COLUMNS`, each with its decoded JSON column) into the domain's
    facts, the same whichever way they were read. The values rows repeat — dates, groups,
    frameworks, authorities, URNs — are parsed once and shared by every fact of one read (a
    few thousand distinct dates in the national set against ~1.2 M date fields)."""

    def __init__(self) -> None:
        self.days: dict[Any, date | None] = {}
        self.texts: dict[Any, Any] = {}
        self.numbers: dict[tuple[type, Any], Fraction] = {}

    def day(self, v: Any) -> date | None:
        """A business date: a date column (text on SQLite, a date from PostgreSQL's driver) or a
        date in the JSON column, as `as_date` reads it."""
        if v is None:
            return None
        parsed = self.days.get(v)
        if parsed is None:
            parsed = self.days[v] = as_date(v)
        return parsed

    def num(self, v: Any) -> Fraction | None:
        """`_num(v)`; a JSON number's Fraction parsed once per distinct value."""
        if type(v) is not float and type(v) is not int:
            return _num(v)
        key = (type(v), v)
        parsed = self.numbers.get(key)
        if parsed is None:
            parsed = self.numbers[key] = _num(v)
        return parsed

    def text(self, v: Any) -> Any:
        """One shared object for each repeated text."""
        return self.texts.setdefault(v, v) if type(v) is str else v

    def providers(self, rows: list[tuple[tuple[Any, ...], Any]]) -> list[ProviderFact]:
        days, texts, as_day = self.days, self.texts, as_date
        out: list[ProviderFact] = []
        append = out.append
        for r, d in rows:
            get = d.get
            # ¶20: provision restructured into a successor has closed as itself.
            opened, closed, empty = get("occurred_on"), get("closed_on") or get("restructured_on"), get("no_children_on_roll_from")
            if opened is not None:
                opened = days.get(opened) or days.setdefault(opened, as_day(opened))
            if closed is not None:
                closed = days.get(closed) or days.setdefault(closed, as_day(closed))
            if empty is not None:
                empty = days.get(empty) or days.setdefault(empty, as_day(empty))
            append(ProviderFact(texts.setdefault(r[2], r[2]), texts.setdefault(r[1], r[1]), texts.setdefault(r[3], r[3]),
                                get("name", ""), opened, closed, get("successor_urn"), empty, (f"#{r[7]}",)))
        return out

    def inspections(self, rows: list[tuple[tuple[Any, ...], Any]]) -> list[ProviderInspectionFact]:
        """The hot loop of a read (~370,000 current inspections in the national set)."""
        days, texts, grades, as_day = self.days, self.texts, _GRADES, as_date
        out: list[ProviderInspectionFact] = []
        append = out.append
        for r, d in rows:
            kind, _, urn, _, occurred, published, _, position = r
            urn = texts.setdefault(urn, urn)
            if occurred is not None:
                occurred = days.get(occurred) or days.setdefault(occurred, as_day(occurred))
            if published is not None:
                published = days.get(published) or days.setdefault(published, as_day(published))
            if kind == "compliance_check":  # ¶19: compliant → satisfactory, not compliant → inadequate
                grade = Grade.SATISFACTORY if d["compliant"] else Grade.INADEQUATE
                append(ProviderInspectionFact(f"#{position}", urn, occurred, published, grade, compliance_check=True))
                continue
            get = d.get
            safe, achieving, framework = get("staying_safe"), get("enjoying_and_achieving"), get("framework")
            append(ProviderInspectionFact(f"#{position}", urn, occurred, published, grades[d["overall_effectiveness"]],
                                          grades[safe] if safe else None, grades[achieving] if achieving else None,
                                          texts.setdefault(framework, framework) if type(framework) is str else framework))
        return out

    def unannounced(self, r: tuple[Any, ...], d: dict[str, Any]) -> UnannouncedInspectionFact:
        return UnannouncedInspectionFact(f"#{r[7]}", self.day(r[4]), self.day(r[5]), tuple(d.get("priority_actions", ())))

    def full(self, r: tuple[Any, ...], d: dict[str, Any]) -> FullInspectionFact:
        return FullInspectionFact(f"#{r[7]}", d["service"], self.day(r[4]), self.day(r[5]), Grade(d["overall_effectiveness"]),
                                  _grade(d.get("capacity_to_improve")),
                                  {k: Grade(v) for k, v in d.get("sub_judgements", {}).items()}, bool(d.get("reinspection")))

    def joint_area_review(self, r: tuple[Any, ...], d: dict[str, Any]) -> JointAreaReviewFact:
        return JointAreaReviewFact(f"#{r[7]}", self.day(r[4]), self.day(r[5]), Grade(d["safeguarding"]),
                                   _grade(d.get("looked_after_children")))

    def serious_case_review(self, r: tuple[Any, ...], d: dict[str, Any]) -> SeriousCaseReviewFact:
        return SeriousCaseReviewFact(f"#{r[7]}", self.day(r[4]), self.day(r[5]), d["adequate_or_better"])

    def private_fostering(self, r: tuple[Any, ...], d: dict[str, Any]) -> PrivateFosteringFact:
        return PrivateFosteringFact(f"#{r[7]}", self.day(r[4]), self.day(r[5]), Grade(d["overall_effectiveness"]))

    def complaint(self, r: tuple[Any, ...], d: dict[str, Any]) -> ComplaintFact:
        occurred = self.day(r[4])
        return ComplaintFact(f"#{r[7]}", occurred, self.day(r[5]) or occurred, d["summary"], bool(d.get("safeguarding_concern")))

    def indicator(self, r: tuple[Any, ...], d: dict[str, Any]) -> IndicatorFact:
        return IndicatorFact(f"#{r[7]}", self.text(d["indicator"]), self.text(d["period"]), self.day(r[4]), self.day(r[5]),
                             self.num(d["value"]), self.num(d.get("similar_areas")), self.num(d.get("national")), d["polarity"],
                             bool(d.get("attainment")), bool(d.get("gap")))

    def published_grade(self, r: tuple[Any, ...], d: dict[str, Any]) -> PublishedGradeFact:
        return PublishedGradeFact(f"#{r[7]}", d["year"], AssessmentGrade(d["grade"]))


# The authority's own evidence (`LA_KINDS`), by kind: the field of AuthorityEvidence and the
# builder of its facts.
_LA_FACTS = {"unannounced_inspection": ("unannounced_inspections", _Facts.unannounced),
             "full_inspection": ("full_inspections", _Facts.full),
             "joint_area_review": ("joint_area_reviews", _Facts.joint_area_review),
             "serious_case_review_evaluation": ("serious_case_reviews", _Facts.serious_case_review),
             "private_fostering_inspection": ("private_fostering", _Facts.private_fostering),
             "substantiated_complaint": ("complaints", _Facts.complaint),
             "indicator_value": ("indicators", _Facts.indicator),
             "published_grade": ("published_grades", _Facts.published_grade)}
assert set(_LA_FACTS) == set(LA_KINDS)


def _evidence_of(la_code: str, providers: list[ProviderFact], inspections: Any,
                 own: dict[str, list[Any]], notes: list[InspectorNoteFact]) -> AuthorityEvidence:
    """`own`: the authority's own facts by field of AuthorityEvidence, each in log order."""
    return AuthorityEvidence(la_code=la_code, providers=tuple(providers), provider_inspections=tuple(inspections),
                             **{name: tuple(facts) for name, facts in own.items()}, inspector_notes=tuple(notes))


def authority_evidence(engine: Engine, la_code: str, known_at: datetime, year: int | None = None) -> AuthorityEvidence:
    """Everything recorded about one authority as known at `known_at`; assessment
    steps (inspector notes) only of `year` when given."""
    with engine.connect() as conn:
        k = _ts_param(conn, known_at)
        provider_rows = _rows(conn, "kind = 'provider_registered' AND la_code = :la", la_code, k)
        inspection_rows = _rows(conn, "kind IN ('provider_inspection', 'compliance_check') AND urn IN ("
                                f"SELECT urn FROM {evidence.name} WHERE kind = 'provider_registered' AND la_code = :la"
                                f" AND {_KNOWN})", la_code, k)
        la_rows = _rows(conn, "kind IN (" + ", ".join(f"'{x}'" for x in LA_KINDS) + ") AND la_code = :la", la_code, k)
        notes = _inspector_notes(conn, [la_code], known_at, year)[la_code]
    facts = _Facts()
    own: dict[str, list[Any]] = {name: [] for name, _ in _LA_FACTS.values()}
    for r, d in la_rows:
        name, build = _LA_FACTS[r[0]]
        own[name].append(build(facts, r, d))
    return _evidence_of(la_code, facts.providers(provider_rows), facts.inspections(inspection_rows), own, notes)


_INSPECTION_KINDS = ("provider_inspection", "compliance_check")
SCAN_CHUNK = 5_000  # rows fetched and decoded at a time by a scan


def authorities_evidence(engine: Engine, la_codes: Iterable[str], known_at: datetime, year: int | None = None,
                         stop: Callable[[], bool] | None = None) -> dict[str, AuthorityEvidence] | None:
    """For each of these authorities, the facts `authority_evidence(engine, la_code, known_at, year)`
    gives — equal, in the same order — read together for many authorities (ADR 0026): two
    sequential scans of the evidence known at `known_at` (the providers and the authorities' own
    evidence, then the provider inspections, kept by the URN of a provider of one of them), each
    fetched and decoded a chunk at a time, in place of three index-driven queries per authority
    (the inspections' by random access into the largest table). None if `stop()` turns true
    meanwhile."""
    la_codes = list(dict.fromkeys(la_codes))
    if not la_codes:
        return {}
    facts = _Facts()
    providers: dict[str, list[ProviderFact]] = {la: [] for la in la_codes}
    own = {la: {name: [] for name, _ in _LA_FACTS.values()} for la in la_codes}
    with engine.connect() as conn:
        k = _ts_param(conn, known_at)
        # The providers and the authorities' own evidence.
        scan = _Scan(conn, ("provider_registered", *LA_KINDS), k, 1, frozenset(la_codes), stop)
        for chunk in scan:
            registered = [row for row in chunk if row[0][0] == "provider_registered"]
            for (r, _), p in zip(registered, facts.providers(registered), strict=True):
                providers[r[1]].append(p)
            if len(registered) < len(chunk):
                for r, d in chunk:
                    if r[0] != "provider_registered":
                        name, build = _LA_FACTS[r[0]]
                        own[r[1]][name].append(build(facts, r, d))
        if scan.stopped:
            return None
        if not scan.in_order:  # each list in log order, as authority_evidence reads it
            for la in la_codes:
                providers[la].sort(key=_provider_position)
                for items in own[la].values():
                    items.sort(key=_fact_position)
        # The inspections of those providers: each goes to the authorities with a provider of its URN.
        authorities_of: dict[str, tuple[str, ...]] = {}
        for la in la_codes:
            for urn in {p.urn for p in providers[la] if p.urn is not None}:
                authorities_of[urn] = (*authorities_of.get(urn, ()), la)
        inspections: dict[str, list[ProviderInspectionFact]] = {la: [] for la in la_codes}
        scan = _Scan(conn, _INSPECTION_KINDS, k, 2, authorities_of, stop)
        for chunk in scan:
            for (r, _), inspection in zip(chunk, facts.inspections(chunk), strict=True):
                for la in authorities_of[r[2]]:
                    inspections[la].append(inspection)
        if scan.stopped:
            return None
        if not scan.in_order:
            for items in inspections.values():
                items.sort(key=_fact_position)
        notes = _inspector_notes(conn, la_codes, known_at, year)
    return {la: _evidence_of(la, providers[la], inspections[la], own[la], notes[la]) for la in la_codes}


def _provider_position(p: ProviderFact) -> int:
    return int(p.refs[0][1:])


def _fact_position(f: Any) -> int:
    return int(f.ref[1:])


class _Scan:
    """The evidence rows of these kinds known at `k` whose column `column` is one of `values`,
    each with its JSON column decoded, in chunks, in the store's order: a sequential scan,
    fetched and decoded a chunk at a time (on PostgreSQL through a server-side cursor, so neither
    the driver nor the server's client buffer holds the whole result). `in_order`: whether the
    rows came in log order; `stopped`: whether `stop()` ended the scan early."""

    def __init__(self, conn: Any, kinds: tuple[str, ...], k: Any, column: int, values: Container[str],
                 stop: Callable[[], bool] | None):
        self.conn, self.kinds, self.k, self.column, self.values, self.stop = conn, kinds, k, column, values, stop
        self.in_order = True
        self.stopped = False

    def _sql(self) -> str:
        # SQLite: NOT INDEXED, the table in rowid order (an index chosen after ANALYZE would read it
        # by random access); PostgreSQL chooses a sequential scan itself.
        sqlite = self.conn.dialect.name == "sqlite"
        sql = (f"SELECT {_select(self.conn)} FROM {evidence.name}{' NOT INDEXED' if sqlite else ''}"
               f" WHERE kind IN ({', '.join(repr(x) for x in self.kinds)}) AND {_KNOWN}")
        return sql if sqlite else sql.replace(":k", "%(k)s")

    def __iter__(self) -> Iterator[list[tuple[tuple[Any, ...], Any]]]:
        if self.conn.dialect.name == "sqlite":
            cursor = self.conn.connection.cursor()
        else:
            cursor = self.conn.connection.cursor(name="csa_evidence_scan")
        column, values, last = self.column, self.values, -1
        try:
            cursor.execute(self._sql(), {"k": self.k})
            while True:
                if self.stop is not None and self.stop():
                    self.stopped = True
                    return
                fetched = cursor.fetchmany(SCAN_CHUNK)
                if not fetched:
                    return
                kept = [r for r in fetched if r[column] in values]
                if not kept:
                    continue
                if self.in_order:
                    positions = [r[7] for r in kept]
                    if positions[0] < last or positions != sorted(positions):
                        self.in_order = False
                    last = positions[-1]
                yield list(zip(kept, _decoded([r[6] for r in kept]), strict=True))
        finally:
            cursor.close()


def _inspector_notes(conn: Any, la_codes: list[str], known_at: datetime,
                     year: int | None) -> dict[str, list[InspectorNoteFact]]:
    """Each authority's inspector notes as known at `known_at` (of `year` when given), in log order."""
    steps_q = select(event_log).where(event_log.c.la_code.in_(la_codes) if len(la_codes) > 1
                                      else event_log.c.la_code == la_codes[0],
                                      event_log.c.year.is_not(None), event_log.c.recorded_at <= naive_utc(known_at))
    if year is not None:
        steps_q = steps_q.where(event_log.c.year == year)
    steps: dict[str, list[Any]] = {la: [] for la in la_codes}
    for s in conn.execute(steps_q).mappings():
        steps[s["la_code"]].append(s)
    targets = [s["details"].get("target") for ss in steps.values() for s in ss if s["kind"] == "cutoff_exclusion"]
    client_refs = _refs_by_client_id(conn, targets, known_at_clause(known_at))
    # Sorted here: ORDER BY position would walk all the authority's events (see Views.assessment_steps).
    return {la: _notes(sorted(ss, key=lambda r: r["position"]), client_refs) for la, ss in steps.items()}


def _refs_by_client_id(conn: Any, client_ids: list[str | None], known: Any) -> dict[str, str]:
    ids = [c for c in client_ids if c]
    if not ids:
        return {}
    rows = conn.execute(select(evidence.c.client_id, evidence.c.position).where(evidence.c.client_id.in_(ids), known))
    return {c: f"#{p}" for c, p in rows}


def _notes(steps: list[Any], client_refs: dict[str, str]) -> list[InspectorNoteFact]:
    notes = []
    for s in steps:
        d = s["details"]
        if s["kind"] == "inspector_judgement_applied" and d.get("sustained_improvement"):
            notes.append(InspectorNoteFact(f"#{s['position']}", "sustained_improvement", as_date(d["occurred_on"]), d.get("reasons", "")))
        elif s["kind"] == "cutoff_exclusion":
            notes.append(InspectorNoteFact(f"#{s['position']}", "cutoff_exclusion", as_date(d["occurred_on"]), d.get("reasons", ""),
                                           client_refs.get(d.get("target"), d.get("target"))))
    return notes

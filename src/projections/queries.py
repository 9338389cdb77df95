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


def _ts_param(conn: Any, ts: datetime) -> Any:
    """A transaction time as the store compares it: SQLite keeps SQLAlchemy's text form."""
    k = naive_utc(ts)
    return k.strftime("%Y-%m-%d %H:%M:%S.%f") if conn.dialect.name == "sqlite" else k


def _day(v: Any) -> date | None:
    return v if v is None or isinstance(v, date) else date.fromisoformat(v)


def _rows(conn: Any, where: str, la_code: str, k: Any) -> list[dict[str, Any]]:
    """Evidence rows known at `k`, read through the driver's own cursor, without
    SQLAlchemy's rows or per-column type processing (the hot path of every view:
    thousands of rows per authority)."""
    sql = f"SELECT {', '.join(_COLUMNS)} FROM {evidence.name} WHERE {where} AND {_KNOWN}"
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
    datas = _decoded([row[6] for row in fetched])
    return [{"kind": kind, "la_code": la, "urn": urn, "group_code": group, "occurred_on": _day(occ),
             "published_on": _day(pub), "data": data, "position": position}
            for (kind, la, urn, group, occ, pub, _, position), data in zip(fetched, datas, strict=True)]


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


def authority_evidence(engine: Engine, la_code: str, known_at: datetime, year: int | None = None) -> AuthorityEvidence:
    """Everything recorded about one authority as known at `known_at`; assessment
    steps (inspector notes) only of `year` when given."""
    known = known_at_clause(known_at)
    with engine.connect() as conn:
        k = _ts_param(conn, known_at)
        provider_rows = _rows(conn, "kind = 'provider_registered' AND la_code = :la", la_code, k)
        inspection_rows = _rows(conn, "kind IN ('provider_inspection', 'compliance_check') AND urn IN ("
                                f"SELECT urn FROM {evidence.name} WHERE kind = 'provider_registered' AND la_code = :la"
                                f" AND {_KNOWN})", la_code, k)
        la_rows = _rows(conn, "kind IN (" + ", ".join(f"'{x}'" for x in LA_KINDS) + ") AND la_code = :la", la_code, k)
        steps_q = select(event_log).where(event_log.c.la_code == la_code, event_log.c.year.is_not(None),
                                          event_log.c.recorded_at <= naive_utc(known_at))
        if year is not None:
            steps_q = steps_q.where(event_log.c.year == year)
        # Sorted here: ORDER BY position would walk all the authority's events (see Views.assessment_steps).
        steps = sorted(conn.execute(steps_q).mappings(), key=lambda r: r["position"])
        client_refs = _refs_by_client_id(conn, [s["details"].get("target") for s in steps if s["kind"] == "cutoff_exclusion"], known)
    by_kind: dict[str, list[Any]] = {}
    for r in la_rows:
        by_kind.setdefault(r["kind"], []).append(r)
    return AuthorityEvidence(
        la_code=la_code,
        providers=tuple(_provider(r) for r in provider_rows),
        provider_inspections=tuple(_inspection(r) for r in inspection_rows),
        unannounced_inspections=tuple(UnannouncedInspectionFact(ref(r), r["occurred_on"], r["published_on"],
                                                                tuple(r["data"].get("priority_actions", ())))
                                      for r in by_kind.get("unannounced_inspection", ())),
        full_inspections=tuple(_full(r) for r in by_kind.get("full_inspection", ())),
        joint_area_reviews=tuple(JointAreaReviewFact(ref(r), r["occurred_on"], r["published_on"],
                                                     Grade(r["data"]["safeguarding"]), _grade(r["data"].get("looked_after_children")))
                                 for r in by_kind.get("joint_area_review", ())),
        serious_case_reviews=tuple(SeriousCaseReviewFact(ref(r), r["occurred_on"], r["published_on"], r["data"]["adequate_or_better"])
                                   for r in by_kind.get("serious_case_review_evaluation", ())),
        private_fostering=tuple(PrivateFosteringFact(ref(r), r["occurred_on"], r["published_on"], Grade(r["data"]["overall_effectiveness"]))
                                for r in by_kind.get("private_fostering_inspection", ())),
        complaints=tuple(ComplaintFact(ref(r), r["occurred_on"], r["published_on"] or r["occurred_on"], r["data"]["summary"],
                                       bool(r["data"].get("safeguarding_concern")))
                         for r in by_kind.get("substantiated_complaint", ())),
        indicators=tuple(_indicator(r) for r in by_kind.get("indicator_value", ())),
        published_grades=tuple(PublishedGradeFact(ref(r), r["data"]["year"], AssessmentGrade(r["data"]["grade"]))
                               for r in by_kind.get("published_grade", ())),
        inspector_notes=tuple(_notes(steps, client_refs)),
    )


def _provider(r: Any) -> ProviderFact:
    d = r["data"]
    return ProviderFact(urn=r["urn"], la_code=r["la_code"], group=r["group_code"], name=d.get("name", ""),
                        opened_on=as_date(d.get("occurred_on")),
                        # ¶20: provision restructured into a successor has closed as itself.
                        closed_on=as_date(d.get("closed_on") or d.get("restructured_on")),
                        successor_urn=d.get("successor_urn"),
                        no_children_on_roll_from=as_date(d.get("no_children_on_roll_from")), refs=(ref(r),))


def _inspection(r: Any) -> ProviderInspectionFact:
    d = r["data"]
    if r["kind"] == "compliance_check":  # ¶19: compliant → satisfactory, not compliant → inadequate
        grade = Grade.SATISFACTORY if d["compliant"] else Grade.INADEQUATE
        return ProviderInspectionFact(ref(r), r["urn"], r["occurred_on"], r["published_on"], grade, compliance_check=True)
    return ProviderInspectionFact(ref(r), r["urn"], r["occurred_on"], r["published_on"], _GRADES[d["overall_effectiveness"]],
                                  _grade(d.get("staying_safe")), _grade(d.get("enjoying_and_achieving")), d.get("framework"))


def _full(r: Any) -> FullInspectionFact:
    d = r["data"]
    return FullInspectionFact(ref(r), d["service"], r["occurred_on"], r["published_on"], Grade(d["overall_effectiveness"]),
                              _grade(d.get("capacity_to_improve")),
                              {k: Grade(v) for k, v in d.get("sub_judgements", {}).items()}, bool(d.get("reinspection")))


def _num(v: Any) -> Fraction | None:
    return None if v is None else Fraction(str(v))


def _indicator(r: Any) -> IndicatorFact:
    d = r["data"]
    return IndicatorFact(ref(r), d["indicator"], d["period"], r["occurred_on"], r["published_on"], _num(d["value"]),
                         _num(d.get("similar_areas")), _num(d.get("national")), d["polarity"],
                         bool(d.get("attainment")), bool(d.get("gap")))


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

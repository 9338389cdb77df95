"""What anyone may read without a token: published grades and published layer-1 profiles."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter

from api.deps import AuthorityPath, LedgerDep, PrincipalDep, ViewsDep, YearPath, YearQuery
from api.errors import not_found
from api.schemas import ProfileView, PublishedGrade, PublishedGrades, problems
from domain.framework import LATEST_YEAR
from domain.vocabulary import AssessmentGrade
from projections.assessments import publications

router = APIRouter(prefix="/v1/published", tags=["published"])


def _grade(row: dict[str, Any]) -> dict[str, Any]:
    g = AssessmentGrade(int(row["details"]["grade"]))
    return {"value": g.value, "label": g.label}


@router.get("/{year}", response_model=PublishedGrades, responses=problems(401, 404, 422, 503),
            summary="The published grades of a year")
def published_grades(year: YearPath, _: PrincipalDep, ledger: LedgerDep, views: ViewsDep) -> PublishedGrades:
    """Each authority's grade from its latest `assessment_published` step. No token needed."""
    rows = publications(ledger.engine, year)
    names = {a.la_code: a.name for a in ledger.authorities.all}
    return PublishedGrades(year=year, authorities=[
        PublishedGrade(la_code=r["la_code"], authority=names.get(r["la_code"], r["la_code"]), grade=_grade(r),
                       published_on=date.fromisoformat(r["details"]["occurred_on"]), recorded_at=r["recorded_at"],
                       ref=f"#{r['position']}") for r in rows])


@router.get("/authorities/{authority}/profile", response_model=ProfileView, responses=problems(401, 404, 422, 503),
            summary="A published layer-1 profile, as at its publication")
def published_profile(authority: AuthorityPath, _: PrincipalDep, ledger: LedgerDep, views: ViewsDep,
                      year: YearQuery = LATEST_YEAR) -> Any:
    """The layer-1 profile as it stood when the assessment was published: as at the publication date,
    as known when the publication was recorded. 404 until the assessment is published. No token needed."""
    la = ledger.authorities.resolve(authority).la_code
    rows = publications(ledger.engine, year, la)
    if not rows:
        raise not_found(f"the {year} assessment of authority {la} is not published")
    r = rows[0]
    return views.profile(la, year=year, as_at=date.fromisoformat(r["details"]["occurred_on"]),
                         known_at=r["recorded_at"], layer=1)

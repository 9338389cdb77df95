"""An authority's assessment for a year: the embargoed views and the steps."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from adapters.ledger import Ledger
from adapters.tokens import Principal
from adapters.views import Views
from api import policy
from api.body import JSON, parse_json, read_limited, require_media_type
from api.deps import (
    AsAt,
    AuthorityPath,
    Cursor,
    FreshDep,
    KnownAt,
    LedgerDep,
    Limit,
    Order,
    PrincipalDep,
    SettingsDep,
    ViewsDep,
    YearPath,
    parse_known_at,
)
from api.errors import Problem
from api.kept import kept_or_in_thread
from api.routers.history import page_of
from api.schemas import (
    DiffView,
    EventOutcome,
    ExceptionsView,
    HistoryPage,
    ProposalView,
    StepResult,
    problems,
    step_kinds,
)
from domain.errors import FieldError, InvalidEvidence
from projections.assessments import assessment_state, history_page

router = APIRouter(prefix="/v1/authorities/{authority}/assessments/{year}", tags=["assessments"])
READ_PROBLEMS = problems(401, 403, 404, 422, 503)
STEP_TYPES = frozenset(k.name for k in step_kinds())


async def readable_assessment(authority: AuthorityPath, year: YearPath, principal: PrincipalDep,
                              ledger: LedgerDep, views: ViewsDep) -> str:
    """The authority's code, once the caller may see this assessment (ADR 0007)."""
    return await kept_or_in_thread(views, _readable, authority, year, principal, ledger)


def _readable(views: Views, authority: str, year: int, principal: Principal, ledger: Ledger) -> str:
    policy.require_role(principal, policy.INSPECTOR, policy.AUDITOR, policy.APPEALS_PANEL, policy.LOCAL_AUTHORITY)
    la = ledger.authorities.resolve(authority).la_code
    policy.read_assessment(principal, views.assessment_state(la, year))
    return la


Assessment = Annotated[str, Depends(readable_assessment)]


@router.get("/proposal", response_model=ProposalView, responses=READ_PROBLEMS,
            summary="The proposed grade (Annex E) with its trace and considerations")
async def proposal(la: Assessment, year: YearPath, views: ViewsDep, as_at: AsAt = None,
                   known_at: KnownAt = None) -> Any:
    """The proposal as at `as_at`, as known at `known_at`, with the inspector's judgement if recorded.
    Embargoed until publication: inspector, auditor, appeals panel (under appeal), the authority
    itself once the draft letter is sent."""
    return await kept_or_in_thread(views, _proposal, la, year, as_at, known_at)


def _proposal(views: Views, la: str, year: int, as_at: Any, known_at: Any) -> Any:
    return views.proposal(la, year, as_at=as_at, known_at=known_at)


@router.get("/exceptions", response_model=ExceptionsView, responses=READ_PROBLEMS,
            summary="The exceptions list: what the cut-off admitted or excluded (¶28-29)")
async def exceptions(la: Assessment, year: YearPath, views: ViewsDep, as_at: AsAt = None,
                     known_at: KnownAt = None) -> Any:
    """Every item admitted under an exception and every item excluded by the cut-off. Embargoed as the proposal."""
    return await kept_or_in_thread(views, _exceptions, la, year, as_at, known_at)


def _exceptions(views: Views, la: str, year: int, as_at: Any, known_at: Any) -> Any:
    return views.exceptions(la, year, as_at=as_at, known_at=known_at)


@router.get("/diff", response_model=DiffView, responses=READ_PROBLEMS, response_model_by_alias=True,
            summary="What changed between two points of view")
def diff(la: Assessment, year: YearPath, views: ViewsDep,
         from_as_at: AsAt = None,
         from_known_at: Annotated[str | None, Query(max_length=40, description="start: known at (as known_at)",
                                                    examples=["2011-06-01"])] = None,
         to_as_at: AsAt = None,
         to_known_at: Annotated[str | None, Query(max_length=40, description="end: known at (as known_at)",
                                                  examples=["2011-11-08T12:00:00Z"])] = None) -> Any:
    """Evidence appeared, changed or withdrawn; items now (no longer) counted; figures and bands; the
    proposal's grades and rules, between (from_as_at, from_known_at) and (to_as_at, to_known_at).
    Defaults: the year's publication date, now. Embargoed as the proposal."""
    start = views.point(year, from_as_at, parse_known_at(from_known_at, "from_known_at"))
    end = views.point(year, to_as_at, parse_known_at(to_known_at, "to_known_at"))
    return views.diff(la, year, start, end)


@router.get("/history", response_model=HistoryPage, responses=READ_PROBLEMS,
            summary="The steps of the assessment: who did what and when")
def assessment_history(la: Assessment, year: YearPath, ledger: LedgerDep, limit: Limit = 100,
                       cursor: Cursor = None, order: Order = "newest") -> HistoryPage:
    """Paginated (keyset: pass next_cursor back as cursor), newest or oldest first. Embargoed as the proposal."""
    page = history_page(ledger.engine, la_code=la, year=year, cursor=cursor, limit=limit,
                        newest_first=order == "newest")
    return page_of(page, order, limit)


# --- recording a step ----------------------------------------------------------------


async def step_body(request: Request, settings: SettingsDep, principal: PrincipalDep) -> dict[str, Any]:
    policy.require_role(principal, policy.INSPECTOR, policy.LOCAL_AUTHORITY, policy.APPEALS_PANEL)
    require_media_type(request, JSON)
    raw = parse_json(await read_limited(request, settings.max_batch_bytes))
    if not isinstance(raw, dict):
        raise Problem(422, "the body must be one JSON object: an assessment step", title="Malformed body",
                      errors=[{"field": "body", "value": None, "reason": "must be a JSON object"}])
    return raw


def _check_envelope(raw: dict[str, Any], la: str, year: int, actor: str) -> None:
    errors = []
    if raw.get("type") not in STEP_TYPES:
        errors.append(FieldError("type", raw.get("type"), "not an assessment step: one of " + ", ".join(sorted(STEP_TYPES))))
    for name, value in (("la_code", la), ("year", year)):
        if name in raw and str(raw[name]) != str(value):
            errors.append(FieldError(name, raw[name], f"differs from the path ({value}): leave it out"))
    if "actor" in raw and raw["actor"] != actor:
        errors.append(FieldError("actor", raw["actor"], f"the actor is the token's name ({actor!r})"))
    if errors:
        raise InvalidEvidence(errors)


@router.post("/steps", response_model=StepResult, response_model_exclude_none=True,
             responses=problems(401, 403, 404, 409, 413, 415, 422),
             openapi_extra={"requestBody": {"$ref": "#/components/requestBodies/AssessmentStep"}},
             summary="Record an assessment step")
def record_step(authority: AuthorityPath, year: YearPath, raw: Annotated[dict[str, Any], Depends(step_body)],
                principal: PrincipalDep, ledger: LedgerDep, _fresh: FreshDep) -> StepResult:
    """Inspector: assessment_proposed, inspector_judgement_applied, cutoff_exclusion, draft_letter_sent,
    factual_accuracy_query_resolved, grade_approved, assessment_published. Local authority, for its own
    assessment once the draft is sent: factual_accuracy_query_raised, appeal_lodged. Appeals panel, for an
    assessment under appeal: evaluator_assigned, appeal_decided. la_code and year come from the path."""
    la = ledger.authorities.resolve(authority).la_code
    _check_envelope(raw, la, year, principal.name)
    policy.record_step(principal, raw["type"], assessment_state(ledger.engine, la, year))
    postings, errors = ledger.parse([(0, {**raw, "la_code": la, "year": year})], default_actor=principal.name)
    if errors:
        raise InvalidEvidence(errors)
    result = ledger.record_postings(postings)
    o = result.outcomes[0]
    return StepResult(position=result.position, la_code=la, year=year,
                      outcome=EventOutcome(index=0, client_id=o.client_id, type=o.type, status=o.status))


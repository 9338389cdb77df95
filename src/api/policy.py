"""Who may do what (ADR 0007). Pure rules over a principal and an assessment's
state: no FastAPI, no database. Each rule returns None to allow, or raises the
problem to answer with.

Two statuses for a refusal:
- 403 when the caller's role may never do this, or when the thing asked for is
  public knowledge anyway (an authority, a provider, a published assessment);
- 404 when even the existence of what was asked for must not leak: another
  authority's unpublished assessment, an assessment not under appeal to the
  appeals panel. The 404 reads exactly like the one for an assessment with
  nothing recorded, so a refusal reveals nothing about the embargoed state.
"""

from __future__ import annotations

from collections.abc import Iterable

from adapters.tokens import Principal
from api.errors import Problem, forbidden, not_found, unauthorised
from domain.assessment_state import AssessmentState

INTEGRATION, INSPECTOR, LOCAL_AUTHORITY = "integration", "inspector", "local_authority"
APPEALS_PANEL, AUDITOR, ADMIN, ANONYMOUS = "appeals_panel", "auditor", "admin", "anonymous"

READ_ALL = frozenset({INSPECTOR, AUDITOR})

INSPECTOR_STEPS = frozenset({"assessment_proposed", "inspector_judgement_applied", "cutoff_exclusion",
                             "draft_letter_sent", "factual_accuracy_query_resolved", "grade_approved",
                             "assessment_published"})
AUTHORITY_STEPS = frozenset({"factual_accuracy_query_raised", "appeal_lodged"})
PANEL_STEPS = frozenset({"evaluator_assigned", "appeal_decided"})
STEPS_BY_ROLE = {INSPECTOR: INSPECTOR_STEPS, LOCAL_AUTHORITY: AUTHORITY_STEPS, APPEALS_PANEL: PANEL_STEPS}


def _embargoed(a: AssessmentState) -> Problem:
    return not_found(f"no assessment of authority {a.la_code} for {a.year} is visible to you")


def require_authenticated(p: Principal) -> None:
    if p.role == ANONYMOUS:
        raise unauthorised("this resource needs a bearer token (Authorization: Bearer csa_…)")


def require_role(p: Principal, *roles: str) -> None:
    require_authenticated(p)
    if p.role not in roles:
        raise forbidden(f"role {p.role} may not do this (needs {' or '.join(roles)})")


def read_assessment(p: Principal, a: AssessmentState) -> None:
    """Proposal, exceptions, diff and assessment history: the embargoed views."""
    require_role(p, INSPECTOR, AUDITOR, APPEALS_PANEL, LOCAL_AUTHORITY)
    if p.role in READ_ALL:
        return
    if p.role == APPEALS_PANEL:
        if a.under_appeal:
            return
        if a.published:
            raise forbidden(f"the assessment of {a.la_code} for {a.year} is not under appeal")
        raise _embargoed(a)
    if p.la_code != a.la_code:  # another authority's assessment
        if a.published:
            raise forbidden("a local authority sees only its own assessment (published grades: /v1/published)")
        raise _embargoed(a)
    if not a.draft_sent:
        raise forbidden(f"your assessment for {a.year} is visible once the draft letter has been sent to you")


def read_authority(p: Principal, la_code: str, appealed_las: frozenset[str] = frozenset()) -> None:
    """An authority's profile and event history (evidence is not embargoed; the grade is)."""
    require_role(p, INSPECTOR, AUDITOR, APPEALS_PANEL, LOCAL_AUTHORITY)
    if p.role == LOCAL_AUTHORITY and p.la_code != la_code:
        raise forbidden("a local authority sees only its own profile and history")
    if p.role == APPEALS_PANEL and la_code not in appealed_las:
        raise forbidden(f"authority {la_code} has no assessment under appeal")


def read_provider(p: Principal, provider_las: set[str], appealed_las: frozenset[str] = frozenset()) -> None:
    require_role(p, INSPECTOR, AUDITOR, APPEALS_PANEL, LOCAL_AUTHORITY)
    if p.role == LOCAL_AUTHORITY and p.la_code not in provider_las:
        raise forbidden("a local authority sees only the providers in its own area")
    if p.role == APPEALS_PANEL and not (provider_las & appealed_las):
        raise forbidden("this provider's authority has no assessment under appeal")


def read_national(p: Principal) -> None:
    """Every authority's proposal at once: embargoed for everyone but inspectors and auditors."""
    require_role(p, INSPECTOR, AUDITOR)


def record_step(p: Principal, step: str, a: AssessmentState) -> None:
    require_role(p, INSPECTOR, LOCAL_AUTHORITY, APPEALS_PANEL)
    allowed = STEPS_BY_ROLE[p.role]
    if step not in allowed:
        raise forbidden(f"role {p.role} may not record {step} (may record: {', '.join(sorted(allowed))})")
    if p.role == LOCAL_AUTHORITY:
        if p.la_code != a.la_code:
            raise forbidden("a local authority acts only on its own assessment")
        if not a.draft_sent:
            raise forbidden(f"{step} can be recorded once the draft letter has been sent to you")
    if p.role == APPEALS_PANEL and not a.under_appeal:
        raise _embargoed(a)


def visible_step_years(p: Principal, la_code: str, states: Iterable[AssessmentState]) -> set[int] | None:
    """Which years' assessment steps may appear in an authority's history (None: all)."""
    if p.role in READ_ALL:
        return None
    years = set()
    for a in states:
        try:
            read_assessment(p, a)
        except Problem:
            continue
        years.add(a.year)
    return years


def sees_inspector_notes(p: Principal, a: AssessmentState) -> bool:
    """Whether a profile may reflect the inspectors' recorded notes (cut-off exclusions) of that year:
    everyone who may read the profile, except an authority before its draft letter is sent."""
    return p.role != LOCAL_AUTHORITY or a.draft_sent or a.published

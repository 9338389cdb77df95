"""Event histories of an authority and of a provider (an assessment's is with the assessment)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api import policy
from api.deps import AuthorityPath, Cursor, FreshDep, LedgerDep, Limit, Order, PrincipalDep
from api.errors import not_found
from api.schemas import HistoryEvent, HistoryPage, problems
from projections.assessments import HistoryPage as Page
from projections.assessments import (
    appealed_authorities,
    assessment_states,
    history_page,
    provider_authorities,
)

router = APIRouter(prefix="/v1", tags=["history"])
READERS = (policy.INSPECTOR, policy.AUDITOR, policy.APPEALS_PANEL, policy.LOCAL_AUTHORITY)


def page_of(page: Page, order: str, limit: int) -> HistoryPage:
    return HistoryPage(order=order, limit=limit, next_cursor=page.next_cursor,  # type: ignore[arg-type]
                       items=[HistoryEvent(**r) for r in page.items])


@router.get("/authorities/{authority}/history", response_model=HistoryPage,
            responses=problems(401, 403, 404, 422, 503), summary="The events behind an authority")
def authority_history(authority: AuthorityPath, principal: PrincipalDep, ledger: LedgerDep, _fresh: FreshDep,
                      limit: Limit = 100, cursor: Cursor = None, order: Order = "newest") -> HistoryPage:
    """Evidence about the authority and its providers' registrations, with actor and recorded time,
    corrections beside what they corrected; assessment steps only of the assessments the caller may
    see. Inspector, auditor; a local authority its own; the appeals panel an authority under appeal."""
    policy.require_role(principal, *READERS)
    la = ledger.authorities.resolve(authority).la_code
    policy.read_authority(principal, la, appealed_authorities(ledger.engine))
    years = policy.visible_step_years(principal, la, assessment_states(ledger.engine, la))
    page = history_page(ledger.engine, la_code=la, step_years=years, cursor=cursor, limit=limit,
                        newest_first=order == "newest")
    return page_of(page, order, limit)


UrnPath = Annotated[str, Path(description="The provider's unique reference number", max_length=32,
                              examples=["EY100001"])]


@router.get("/providers/{urn}/history", response_model=HistoryPage,
            responses=problems(401, 403, 404, 422, 503), summary="The events behind a provider")
def provider_history(urn: UrnPath, principal: PrincipalDep, ledger: LedgerDep, _fresh: FreshDep,
                     limit: Limit = 100, cursor: Cursor = None, order: Order = "newest") -> HistoryPage:
    """Registration, lifecycle, inspections and their corrections. Inspector, auditor; a local
    authority for providers in its area; the appeals panel for an authority under appeal."""
    policy.require_role(principal, *READERS)
    las = provider_authorities(ledger.engine, urn)
    if not las:
        raise not_found(f"the ledger holds nothing about provider {urn}")
    policy.read_provider(principal, las, appealed_authorities(ledger.engine))
    page = history_page(ledger.engine, urn=urn, cursor=cursor, limit=limit, newest_first=order == "newest")
    return page_of(page, order, limit)

"""The performance profile of an authority and the national table."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from adapters.ledger import Ledger
from adapters.tokens import Principal
from adapters.views import Views
from api import policy
from api.deps import (
    AsAt,
    AuthorityPath,
    KnownAt,
    LedgerDep,
    PrincipalDep,
    ViewsDep,
    YearPath,
    YearQuery,
)
from api.kept import kept_or_in_thread
from api.schemas import NationalView, ProfileView, problems
from domain.framework import LATEST_YEAR

router = APIRouter(prefix="/v1", tags=["views"])


@router.get("/authorities/{authority}/profile", response_model=ProfileView,
            responses=problems(401, 403, 404, 422, 503), summary="An authority's performance profile")
async def profile(authority: AuthorityPath, principal: PrincipalDep, ledger: LedgerDep, views: ViewsDep,
                  year: YearQuery = LATEST_YEAR,
                  layer: Annotated[int, Query(ge=1, le=4, description="1 summary; 2 outcome judgements; 3 history "
                                              "by year; 4 providers")] = 1,
                  as_at: AsAt = None, known_at: KnownAt = None) -> Any:
    """Layers 1-4 of the profile (¶13-16, Annex A-B) as at `as_at`, as known at `known_at`. Inspector,
    auditor; a local authority its own; the appeals panel an authority under appeal. Published layer-1
    profiles are public: /v1/published/authorities/{authority}/profile."""
    # A question this worker has answered at this read-model position is answered on the event
    # loop; anything else (rules to run, the store to read) in the thread pool.
    return await kept_or_in_thread(views, _profile, authority, principal, ledger, year, layer, as_at, known_at)


def _profile(views: Views, authority: str, principal: Principal, ledger: Ledger, year: int, layer: int,
             as_at: Any, known_at: Any) -> Any:
    policy.require_role(principal, policy.INSPECTOR, policy.AUDITOR, policy.APPEALS_PANEL, policy.LOCAL_AUTHORITY)
    la = ledger.authorities.resolve(authority).la_code
    policy.read_authority(principal, la, views.appealed_authorities())
    # An inspector's cut-off exclusions are part of the embargoed assessment: an authority's own
    # profile leaves them out until its draft letter has been sent (ADR 0007).
    notes = policy.sees_inspector_notes(principal, views.assessment_state(la, year))
    return views.profile(la, year=year, as_at=as_at, known_at=known_at, layer=layer, inspector_notes=notes)


@router.get("/national/{year}", response_model=NationalView, responses=problems(401, 403, 404, 422, 503),
            summary="Every authority's proposal and the national counts")
async def national(year: YearPath, principal: PrincipalDep, views: ViewsDep, as_at: AsAt = None,
                   known_at: KnownAt = None) -> Any:
    """All 152 proposals as at `as_at`, as known at `known_at` (cf. Table 9). Embargoed: inspector and
    auditor only."""
    policy.read_national(principal)
    return await kept_or_in_thread(views, _national, year, as_at, known_at)


def _national(views: Views, year: int, as_at: Any, known_at: Any) -> Any:
    return views.national(year, as_at=as_at, known_at=known_at)

"""POST /v1/events: integrations post evidence in the integration format."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from adapters.tokens import Principal
from api import policy
from api.body import JSON, NDJSON, RawBatch, parse_batch, read_limited, require_media_type
from api.deps import LedgerDep, PrincipalDep, SettingsDep
from api.errors import Problem
from api.schemas import EVIDENCE_FAMILIES, EventOutcome, IngestResult, problems
from domain.errors import FieldError, InvalidEvidence
from domain.postings import KINDS

router = APIRouter(prefix="/v1", tags=["ingest"])


def integration(principal: PrincipalDep) -> Principal:
    policy.require_role(principal, policy.INTEGRATION)
    return principal


IntegrationDep = Annotated[Principal, Depends(integration)]


async def raw_batch(request: Request, settings: SettingsDep, _: IntegrationDep) -> RawBatch:
    """Checked in this order: token (401/403), media type (415), size (413), syntax (422)."""
    mt = require_media_type(request, JSON, NDJSON)
    batch = parse_batch(await read_limited(request, settings.max_batch_bytes), mt)
    request.state.position_key = batch.position_key
    if len(batch.items) > settings.max_batch_events:
        raise Problem(413, f"the batch holds {len(batch.items)} events: at most {settings.max_batch_events} a request",
                      limit=settings.max_batch_events, unit="events")
    if not batch.items:
        raise Problem(422, "events: the batch holds no event", title="Malformed body",
                      errors=[{"field": "events", "value": [], "reason": "must hold at least one event"}])
    return batch


def envelope_errors(batch: RawBatch, actor: str) -> list[FieldError]:
    """What this endpoint refuses before the parser: steps, and an actor other than the token's."""
    errors = []
    for n, raw in batch.items:
        if not isinstance(raw, dict):
            continue  # the parser reports it
        kind = KINDS.get(raw.get("type")) if isinstance(raw.get("type"), str) else None
        if kind is not None and kind.family not in EVIDENCE_FAMILIES:
            errors.append(FieldError("type", raw["type"], "an assessment step: record it at POST "
                                     "/v1/authorities/{authority}/assessments/{year}/steps", n))
        if "actor" in raw and raw["actor"] != actor:
            errors.append(FieldError("actor", raw["actor"], f"the actor is the token's name ({actor!r}): "
                                     "leave it out or give that", n))
    return errors


def outcomes(result: Any, batch: RawBatch) -> list[EventOutcome]:
    index_of = {n: i for i, (n, _) in enumerate(batch.items)}
    line = batch.position_key == "line"
    return [EventOutcome(index=index_of[o.line], line=o.line if line else None, client_id=o.client_id,
                         type=o.type, status=o.status) for o in result.outcomes]


@router.post("/events", response_model=IngestResult, response_model_exclude_none=True,
             summary="Post a batch of evidence (atomic, idempotent)",
             openapi_extra={"requestBody": {"$ref": "#/components/requestBodies/EventBatch"}},
             responses=problems(401, 403, 409, 413, 415, 422))
def post_events(batch: Annotated[RawBatch, Depends(raw_batch)], principal: IntegrationDep,
                ledger: LedgerDep) -> IngestResult:
    """Record every event of the batch, or none. Each event's outcome is `recorded` or
    `already_recorded` (the same client_id with the same content); the same client_id with
    different content is a 409. Errors name each bad event by `index` (JSON) or `line`
    (NDJSON), with the field, the value and the reason. The actor is the token's name.
    Role: integration."""
    postings, errors = ledger.parse(batch.items, default_actor=principal.name)
    errors = envelope_errors(batch, principal.name) + errors
    if errors:
        raise InvalidEvidence(sorted(errors, key=lambda e: e.line or 0))
    result = ledger.record_postings(postings)
    return IngestResult(position=result.position, recorded=result.recorded,
                        already_recorded=result.already_recorded, outcomes=outcomes(result, batch))

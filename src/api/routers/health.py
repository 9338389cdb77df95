"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import LedgerDep
from api.schemas import Live, Ready

router = APIRouter(prefix="/v1/health", tags=["health"])


@router.get("/live", response_model=Live, summary="The process is up")
def live() -> Live:
    return Live(status="ok")


@router.get("/ready", response_model=Ready, response_model_exclude_none=True, summary="The store answers; how far the projector lags",
            responses={503: {"model": Ready, "description": "The store does not answer",
                             "content": {"application/json": {"example": {
                                 "status": "unavailable", "store": "postgresql",
                                 "detail": "OperationalError: connection refused"}}}}})
def ready(ledger: LedgerDep, request: Request) -> Ready | JSONResponse:
    """`projector_lag` is how many log positions the read model has still to apply;
    `authorities_kept` and `warming` describe the answering process's views (ADR 0022)."""
    store = ledger.engine.dialect.name
    try:
        log, read = ledger.projector.log_position(), ledger.projector.position()
    except Exception as e:  # noqa: BLE001 - readiness reports any store failure
        body = Ready(status="unavailable", store=store, detail=f"{type(e).__name__}: {e}"[:300])
        return JSONResponse(body.model_dump(exclude_none=True), status_code=503)
    warming = getattr(request.app.state, "warming", None)
    return Ready(status="ok", store=store, log_position=log, read_model_position=read, projector_lag=log - read,
                 authorities_kept=request.app.state.views.authorities_kept(),
                 warming=warming is not None and warming.is_alive())

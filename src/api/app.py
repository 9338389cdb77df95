"""FastAPI application factory. Nothing is done at import time: the ledger is
opened in the lifespan and closed with it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from adapters.ledger import Ledger
from adapters.settings import get_settings
from domain.authorities import UnknownAuthority
from domain.errors import ConflictingPosting, DomainError, InvalidEvidence

PROBLEM = "application/problem+json"


def get_ledger(request: Request) -> Ledger:
    return request.app.state.ledger


LedgerDep = Annotated[Ledger, Depends(get_ledger)]


def _problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"type": "about:blank", "title": title, "status": status, "detail": detail, **extra},
                        status_code=status, media_type=PROBLEM)


def create_app(database_url: str | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.ledger = Ledger(database_url or get_settings().database_url)
        yield
        app.state.ledger.close()

    app = FastAPI(title="CSA Ledger", version="0.1.0", lifespan=lifespan,
                  description="Evidence ledger of Ofsted's children's services assessment (2009-2011).")

    @app.exception_handler(InvalidEvidence)
    def _invalid(_: Request, e: InvalidEvidence) -> JSONResponse:
        return _problem(422, "Invalid evidence", str(e),
                        errors=[{"field": x.field, "value": x.value, "reason": x.reason, "line": x.line} for x in e.errors])

    @app.exception_handler(ConflictingPosting)
    def _conflict(_: Request, e: ConflictingPosting) -> JSONResponse:
        return _problem(409, "Conflict", str(e), errors=[{"field": x.field, "value": x.value, "reason": x.reason} for x in e.errors])

    @app.exception_handler(UnknownAuthority)
    def _unknown_la(_: Request, e: UnknownAuthority) -> JSONResponse:
        return _problem(404, "Unknown authority", str(e))

    @app.exception_handler(DomainError)
    def _refused(_: Request, e: DomainError) -> JSONResponse:
        return _problem(422, "Refused", str(e))

    @app.get("/v1/health/live", tags=["health"])
    def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/health/ready", tags=["health"])
    def ready(ledger: LedgerDep) -> dict[str, Any]:
        log, read = ledger.projector.log_position(), ledger.projector.position()
        return {"status": "ok", "store": ledger.engine.dialect.name, "log_position": log,
                "read_model_position": read, "projector_lag": log - read}

    @app.get("/v1/authorities/{authority}/history", tags=["history"])
    def authority_history(authority: str, ledger: LedgerDep,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                          newest_first: bool = False) -> list[dict[str, Any]]:
        la = ledger.authorities.resolve(authority).la_code
        return ledger.history(la_code=la, limit=limit, newest_first=newest_first)

    return app

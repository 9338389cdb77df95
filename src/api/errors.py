"""Every error the API returns is an RFC 9457 problem (`application/problem+json`).

Domain errors are mapped to HTTP statuses here and nowhere else: a business
rule's refusal is a 4xx, never a 500. Routers and dependencies raise `Problem`
(or a domain error) and never build error responses themselves.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.authorities import UnknownAuthority
from domain.errors import (
    ConflictingPosting,
    DomainError,
    FieldError,
    InvalidEvidence,
    UnknownTarget,
    UnsupportedYear,
)

PROBLEM = "application/problem+json"
log = logging.getLogger("csa.api")

TITLES = {400: "Bad request", 401: "Unauthorised", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 413: "Content too large", 415: "Unsupported media type",
          422: "Unprocessable content", 500: "Internal server error", 503: "Service unavailable"}


class Problem(Exception):
    """An HTTP problem raised by the API layer (authorisation, limits, parameters)."""

    def __init__(self, status: int, detail: str, *, title: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail)
        self.status, self.detail, self.title = status, detail, title or TITLES.get(status, "Error")
        self.headers, self.extra = headers or {}, extra


def unauthorised(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="csa-ledger"'})


def forbidden(detail: str) -> Problem:
    return Problem(403, detail)


def not_found(detail: str) -> Problem:
    return Problem(404, detail)


def invalid_parameter(name: str, value: Any, reason: str, where: str = "query") -> Problem:
    """A 422 naming the parameter, its value and why it was refused."""
    return Problem(422, f"{name}={value!r}: {reason}", title="Invalid parameter",
                   errors=[{"field": name, "in": where, "value": value, "reason": reason}])


def problem_response(status: int, detail: str, *, title: str | None = None,
                     headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title or TITLES.get(status, "Error"), "status": status,
            "detail": detail, **jsonable_encoder(extra)}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def field_errors(errors: list[FieldError], position_key: str = "index") -> list[dict[str, Any]]:
    """A domain FieldError as JSON; `line` carries the event's index (JSON) or line (NDJSON)."""
    out = []
    for e in errors:
        item: dict[str, Any] = {"field": e.field, "value": e.value, "reason": e.reason}
        if e.line is not None:
            item[position_key] = e.line
        out.append(item)
    return out


def _summary(errors: list[FieldError], position_key: str) -> str:
    first = errors[0] if errors else None
    if first is None:
        return "refused"
    where = f"{position_key} {first.line}: " if first.line is not None else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}{first.field}={first.value!r}: {first.reason}{more}; nothing was written"


def install(app: FastAPI) -> None:
    """Register the one mapping from exceptions to problems."""

    @app.exception_handler(Problem)
    def _problem(request: Request, e: Problem) -> JSONResponse:
        return problem_response(e.status, e.detail, title=e.title, headers=e.headers, **e.extra)

    @app.exception_handler(InvalidEvidence)
    def _invalid(request: Request, e: InvalidEvidence) -> JSONResponse:
        key = getattr(request.state, "position_key", "index")
        return problem_response(422, _summary(e.errors, key), title="Invalid evidence",
                                errors=field_errors(e.errors, key))

    @app.exception_handler(ConflictingPosting)
    def _conflict(request: Request, e: ConflictingPosting) -> JSONResponse:
        key = getattr(request.state, "position_key", "index")
        return problem_response(409, _summary(e.errors, key), title="Conflicting posting",
                                errors=field_errors(e.errors, key))

    @app.exception_handler(UnknownAuthority)
    def _unknown_la(request: Request, e: UnknownAuthority) -> JSONResponse:
        return problem_response(404, str(e), title="Unknown authority",
                                errors=[{"field": "authority", "in": "path", "value": e.given,
                                         "reason": "not one of the 152 local authorities of 2011"}])

    @app.exception_handler(UnsupportedYear)
    def _year(request: Request, e: UnsupportedYear) -> JSONResponse:
        year = request.path_params.get("year") or request.query_params.get("year")
        return problem_response(404, str(e), title="Unsupported year",
                                errors=[{"field": "year", "value": year, "reason": str(e)}])

    @app.exception_handler(UnknownTarget)
    def _target(request: Request, e: UnknownTarget) -> JSONResponse:
        return problem_response(422, str(e), title="Unknown target")

    @app.exception_handler(DomainError)
    def _refused(request: Request, e: DomainError) -> JSONResponse:
        return problem_response(422, str(e), title="Refused by a business rule")

    @app.exception_handler(RequestValidationError)
    def _validation(request: Request, e: RequestValidationError) -> JSONResponse:
        errors = []
        for err in e.errors():
            loc = [str(x) for x in err.get("loc", ())]
            where, name = (loc[0], ".".join(loc[1:])) if len(loc) > 1 else ("body", ".".join(loc))
            errors.append({"field": name or where, "in": where, "value": err.get("input"), "reason": err.get("msg")})
        first = errors[0] if errors else {"field": "request", "value": None, "reason": "invalid"}
        detail = f"{first['field']}={first['value']!r}: {first['reason']}"
        return problem_response(422, detail, title="Invalid request", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, e: StarletteHTTPException) -> JSONResponse:
        detail = e.detail if isinstance(e.detail, str) else TITLES.get(e.status_code, "Error")
        if e.status_code == 404 and detail == "Not Found":
            detail = f"no resource at {request.url.path}"
        if e.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return problem_response(e.status_code, detail, headers=getattr(e, "headers", None))

    @app.exception_handler(Exception)
    def _unexpected(request: Request, e: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(500, "an unexpected error occurred; it has been logged")

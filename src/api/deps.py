"""The API's dependencies, as `Annotated` aliases: the ledger, the views, the
caller, a read model fresh enough for the request, and the as-at / known-at
points of view. Routers declare these and stay thin.

Dependencies that never wait on the store are `async def`: FastAPI runs a plain
`def` dependency in its thread pool, a hop (and a wait for the interpreter lock)
per dependency per request. The caller and the read model's freshness are async
too, and answer from what the process keeps (a token authenticated within
`CSA_TOKEN_CACHE_SECONDS`, positions read within `CSA_POSITIONS_KEPT_SECONDS`)
without leaving the event loop; only otherwise do they ask the store, in the
thread pool. With two workers on two busy cores, the hops of every request to
threads waiting on the store and on the interpreter lock left some requests
waiting seconds inside a worker (docs/performance.md, (5))."""

from __future__ import annotations

import time as _time
from datetime import date, datetime
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from adapters.ledger import Ledger
from adapters.settings import Settings
from adapters.tokens import ANONYMOUS, Principal, TokenStore
from adapters.views import Views
from api.errors import Problem, invalid_parameter, unauthorised
from domain.framework import framework_for
from domain.points import known_at_from_text


async def get_ledger(request: Request) -> Ledger:
    return request.app.state.ledger


async def get_views(request: Request) -> Views:
    return request.app.state.views


async def get_tokens(request: Request) -> TokenStore:
    return request.app.state.tokens


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


LedgerDep = Annotated[Ledger, Depends(get_ledger)]
TokensDep = Annotated[TokenStore, Depends(get_tokens)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

# --- who is calling -----------------------------------------------------------

bearer = HTTPBearer(auto_error=False, description="A token issued with `csa tokens issue` (csa_…).")


async def get_principal(request: Request, tokens: TokensDep,
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    """The token's principal; anonymous without an Authorization header. A header
    that is not a valid, unrevoked bearer token is refused (401), never ignored."""
    header = request.headers.get("authorization")
    if header is None:
        return ANONYMOUS
    if credentials is None:
        raise unauthorised("the Authorization header must be 'Bearer <token>'")
    principal = tokens.kept(credentials.credentials)
    if principal is None:
        probe = request.app.state.probe
        asked = False
        if probe is not None:  # PostgreSQL: asked on the event loop (ADR 0025)
            asked, principal = await probe.principal(credentials.credentials)
        if not asked:
            principal = await run_in_threadpool(tokens.authenticate, credentials.credentials)
    if principal is None:
        raise unauthorised("the bearer token is unknown or revoked")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]

# --- a read model fresh enough ----------------------------------------------


async def fresh_read_model(
    request: Request, ledger: LedgerDep, settings: SettingsDep,
    min_position: Annotated[int | None, Query(
        ge=0, le=2**62, description="Wait (briefly) until the read model has applied the log up to this position: "
        "pass the `position` an ingest returned to read your own writes.", examples=[1234])] = None,
) -> int:
    """Bring the read model up to the log (a no-op when it is there) and, given a
    `min_position`, wait up to `read_your_writes_wait_seconds` for it. Returns the
    read model's position. Positions this process read within `positions_kept_seconds`,
    showing the read model at the log and at or past `min_position`, answer at once."""
    kept = ledger.kept_positions()
    if kept is None and request.app.state.probe is not None:  # PostgreSQL: asked on the event loop
        kept = await request.app.state.probe.positions()
    if kept is not None and kept[0] >= kept[1] and (min_position is None or kept[0] >= min_position):
        return kept[0]
    # behind the log, or waiting for a min_position: catch up (and wait) in the thread pool
    return await run_in_threadpool(_fresh_read_model, ledger, settings, min_position)


def _fresh_read_model(ledger: Ledger, settings: Settings, min_position: int | None) -> int:
    deadline = _time.monotonic() + settings.read_your_writes_wait_seconds
    while True:
        position, log = ledger.positions()
        if position < log:
            ledger.catch_up()
            position, log = ledger.positions()
        if min_position is None or position >= min_position:
            return position
        if min_position > log:
            raise invalid_parameter("min_position", min_position, f"beyond the end of the log (position {log}): "
                                    "pass a position an ingest returned")
        if _time.monotonic() >= deadline:
            raise Problem(503, f"min_position={min_position}: the read model is at position {position} "
                          f"(log at {log}) and did not reach it within {settings.read_your_writes_wait_seconds}s",
                          title="Read model behind", headers={"Retry-After": "1"},
                          position=position, log_position=log)
        _time.sleep(0.05)


FreshDep = Annotated[int, Depends(fresh_read_model)]


async def get_fresh_views(request: Request, position: FreshDep) -> Views:
    """The views pinned at the position just read: one request asks once where the read model is."""
    return request.app.state.views.at(position)


ViewsDep = Annotated[Views, Depends(get_fresh_views)]

# --- points of view -------------------------------------------------------------

AsAt = Annotated[date | None, Query(description="Business date (YYYY-MM-DD): what counted on that day. "
                                    "Default: the year's publication date.", examples=["2011-08-31"])]
KNOWN_AT_DOC = ("Transaction time: only what the ledger had recorded by then. An ISO timestamp (UTC when it names "
                "no zone) or a date (the end of that day, UTC). Default: now.")


def parse_known_at(value: str | None, name: str = "known_at") -> datetime | None:
    if value is None:
        return None
    try:
        return known_at_from_text(value)
    except ValueError as e:
        raise invalid_parameter(name, value, str(e)) from None


async def known_at_param(known_at: Annotated[str | None, Query(description=KNOWN_AT_DOC, max_length=40,
                                                         examples=["2011-09-30T17:00:00Z"])] = None) -> datetime | None:
    return parse_known_at(known_at)


KnownAt = Annotated[datetime | None, Depends(known_at_param)]
AuthorityPath = Annotated[str, Path(description="A 3-digit LA code (e.g. 886) or the authority's name (e.g. Kent).",
                                    max_length=100, examples=["886"])]


async def year_param(year: Annotated[int, Path(description="The assessment year (2009, 2010 or 2011).", examples=[2011])]) -> int:
    framework_for(year)  # UnsupportedYear -> 404 naming the year
    return year


YearPath = Annotated[int, Depends(year_param)]


async def year_query(year: Annotated[int, Query(description="The assessment year (2009, 2010 or 2011).", examples=[2011])] = 2011) -> int:
    try:
        framework_for(year)
    except Exception as e:  # UnsupportedYear: a query parameter out of range is a 422, a path a 404
        raise invalid_parameter("year", year, str(e)) from None
    return year


YearQuery = Annotated[int, Depends(year_query)]
Limit = Annotated[int, Query(ge=1, le=1000, description="at most this many events a page")]
Cursor = Annotated[int | None, Query(ge=0, le=2**62, description="the next_cursor of the previous page")]
Order = Annotated[str, Query(pattern="^(newest|oldest)$", description="newest (default) or oldest first")]

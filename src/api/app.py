"""FastAPI application factory. Nothing is done at import time: the ledger, the
views and the token store are opened in the lifespan and closed with it."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from adapters.ledger import Ledger, utc_now
from adapters.settings import Settings, get_settings
from adapters.tokens import TokenStore
from adapters.views import Views
from api import errors, schemas
from api.probe import StoreProbe
from api.routers import admin, assessments, events, health, history, published, views
from api.timing import GcPauses, RequestTiming

DESCRIPTION = """Evidence ledger of Ofsted's children's services assessment (2009-2011).

Integrations post evidence (`POST /v1/events`, the integration format of docs/events.md); inspectors,
local authorities, the appeals panel and auditors read the profile, the proposal, the exceptions list,
the diff and the history, each as at a business date (`as_at`) and as known at a transaction time
(`known_at`). Every error is an RFC 9457 problem (`application/problem+json`).

Authenticate with `Authorization: Bearer csa_…` (tokens: `csa tokens issue`). Who may read what, and the
embargo on unpublished assessments, are in docs/adr/0007-authorisation-and-embargo.md; the ingest
contract in docs/adr/0008-http-ingest.md and docs/api.md.
"""


def _warm(views: Views, stop: threading.Event) -> None:
    """Read every authority's facts; then take what is now in memory out of the cyclic
    collector's full scans (`gc.freeze`): ~2 M long-lived objects on the national set made
    each full collection pause a worker for most of a second. Frozen objects are still freed
    when no longer referenced; the facts hold no cycles."""
    views.warm(stop=stop)
    if not stop.is_set():
        gc.collect()
        gc.freeze()


def _timing_log() -> None:
    """`csa.timing` (api.timing) writes to standard error with the time and the worker's pid,
    unless the deployment configured logging itself."""
    log = logging.getLogger("csa.timing")
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s pid %(process)d %(name)s: %(message)s"))
        log.addHandler(handler)
        log.propagate = False


def create_app(database_url: str | None = None, *, settings: Settings | None = None,
               clock: Callable[[], datetime] | None = None) -> FastAPI:
    """The API over the store at `database_url` (default: the settings'). `clock` is the
    ledger's recording clock (tests move it)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or get_settings()
        ledger = Ledger(database_url or s.database_url, clock=clock or utc_now, projector_batch=s.projector_batch,
                        positions_kept_seconds=s.positions_kept_seconds)
        app.state.settings = s
        app.state.ledger = ledger
        app.state.views = Views(ledger, cache_entries=s.views_cache_answers,
                                cache_authorities=s.views_cache_authorities,
                                facts_in_store=s.views_facts_in_store,
                                facts_in_store_points=s.views_facts_in_store_points)
        app.state.tokens = TokenStore(ledger.engine, s.token_pepper, cache_seconds=s.token_cache_seconds)
        app.state.probe = StoreProbe.for_store(ledger.database_url, ledger, app.state.tokens)
        stop = threading.Event()
        warming = None
        if s.views_warm_on_start:  # read every authority's facts in the background (ADR 0022)
            warming = threading.Thread(target=_warm, args=(app.state.views, stop), name="views-warm", daemon=True)
            warming.start()
        app.state.warming = warming
        gc_pauses = GcPauses(s.slow_request_ms)
        gc_pauses.install()
        try:
            yield
        finally:
            gc_pauses.remove()
            if app.state.probe is not None:
                await app.state.probe.close()
            stop.set()
            if warming is not None:
                warming.join(timeout=30)
            app.state.views.wait_kept_in_store(timeout=30)
            ledger.close()

    app = FastAPI(title="CSA Ledger", version="1.0.0", lifespan=lifespan, description=DESCRIPTION,
                  docs_url="/docs", openapi_url="/openapi.json")
    errors.install(app)
    _timing_log()
    app.add_middleware(RequestTiming, slow_ms=(settings or get_settings()).slow_request_ms)
    for module in (events, views, assessments, history, published, health, admin):
        app.include_router(module.router)
    app.openapi = lambda: _openapi(app, settings)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI, settings: Settings | None) -> dict[str, Any]:
    """FastAPI's description plus what it cannot derive: the posting schemas from KINDS,
    the two request bodies that use them, and the problem schema."""
    if app.openapi_schema:
        return app.openapi_schema
    s = getattr(app.state, "settings", None) or settings or get_settings()
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = doc.setdefault("components", {})
    found = components.setdefault("schemas", {})
    found.update(schemas.posting_components())
    problem = schemas.Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    found.update(problem.pop("$defs", {}))
    found["Problem"] = problem
    for name in ("HTTPValidationError", "ValidationError"):
        found.pop(name, None)
    components["requestBodies"] = {
        "EventBatch": schemas.events_request_body(s.max_batch_events, s.max_batch_bytes),
        "AssessmentStep": schemas.step_request_body(),
    }
    _examples_in_media_types(doc)
    app.openapi_schema = doc
    return doc


def _examples_in_media_types(doc: dict[str, Any]) -> None:
    """Give every request and response media type an example, from its schema's own examples."""
    found = doc["components"]["schemas"]

    def example_of(schema: dict[str, Any]) -> Any:
        if "$ref" in schema:
            schema = found[schema["$ref"].rsplit("/", 1)[1]]
        if schema.get("examples"):
            return schema["examples"][0]
        if schema.get("type") == "array" and (item := example_of(schema.get("items", {}))) is not None:
            return [item]
        return None

    for operations in doc["paths"].values():
        for op in operations.values():
            bodies = [op.get("requestBody", {})] + list(op.get("responses", {}).values())
            for body in bodies:
                for media in body.get("content", {}).values():
                    if "example" not in media and "examples" not in media:
                        ex = example_of(media.get("schema", {}))
                        if ex is not None:
                            media["example"] = ex

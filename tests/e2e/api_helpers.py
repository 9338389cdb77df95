"""Helpers of the end-to-end tests: the API through TestClient (so the lifespan
runs) on a real store, tokens issued with TokenStore directly, and a scenario of
four assessments in four embargo states."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from adapters.settings import Settings
from adapters.tokens import TokenStore
from api.app import create_app
from domain.postings import KINDS


class FakeClock:
    """The ledger's recording clock, moved by the test."""

    def __init__(self, start: datetime = datetime(2011, 9, 1, 9, 0, tzinfo=UTC)):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


PEPPER = "e2e-test-pepper-0123456789abcdef0123456789"

# The scenario: one authority per embargo state of its 2011 assessment.
PRE_DRAFT, DRAFT_SENT, UNDER_APPEAL, PUBLISHED, NOTHING = "886", "887", "888", "889", "201"
URN_OF = {PRE_DRAFT: "EY100001", DRAFT_SENT: "EY100002", UNDER_APPEAL: "EY100003", PUBLISHED: "EY100004"}


def settings(url: str, **kw: Any) -> Settings:
    base = {"database_url": url, "token_pepper": PEPPER, "max_batch_events": 20, "max_batch_bytes": 20_000,
            "read_your_writes_wait_seconds": 0.3}
    return Settings(**{**base, **kw})


def posting(type_: str, client_id: str, **fields: Any) -> dict[str, Any]:
    body = {**KINDS[type_].example, **fields}
    return {"type": type_, "client_id": client_id, **{k: v for k, v in body.items() if v is not None}}


def step(type_: str, client_id: str, la: str, **fields: Any) -> dict[str, Any]:
    return posting(type_, client_id, la_code=la, year=2011, **fields)


def evidence_of(la: str) -> list[dict[str, Any]]:
    urn = URN_OF[la]
    return [posting("provider_registered", f"reg-{urn}", urn=urn, la_code=la),
            posting("provider_inspection", f"insp-{urn}", urn=urn),
            posting("unannounced_inspection", f"unann-{la}", la_code=la)]


def steps_of(la: str) -> list[dict[str, Any]]:
    """The steps that put `la`'s 2011 assessment in its state."""
    s = [step("assessment_proposed", f"prop-{la}", la)]
    if la in (DRAFT_SENT, UNDER_APPEAL, PUBLISHED):
        s.append(step("draft_letter_sent", f"draft-{la}", la))
    if la == UNDER_APPEAL:
        s.append(step("appeal_lodged", f"appeal-{la}", la))
    if la == PUBLISHED:
        s.append(step("assessment_published", f"pub-{la}", la))
    return s


def seed(ledger: Any, clock: FakeClock) -> None:
    for la in URN_OF:
        ledger.record(evidence_of(la), default_actor="seed-integration")
    clock.set(datetime(2011, 9, 20, 9, 0, tzinfo=UTC))
    for la in URN_OF:
        ledger.record(steps_of(la), default_actor="seed-hmi")
    clock.set(datetime(2011, 11, 10, 9, 0, tzinfo=UTC))


ROLE_TOKENS = {  # principal name -> (role, la_code)
    "integration": ("integration", None),
    "inspector": ("inspector", None),
    "la_pre_draft": ("local_authority", PRE_DRAFT),
    "la_draft_sent": ("local_authority", DRAFT_SENT),
    "appeals_panel": ("appeals_panel", None),
    "auditor": ("auditor", None),
    "admin": ("admin", None),
}


@dataclass
class Api:
    client: TestClient
    app: Any
    clock: FakeClock
    headers: dict[str, dict[str, str]]  # principal name -> Authorization header ({} for anonymous)

    @property
    def ledger(self) -> Any:
        return self.app.state.ledger

    def as_(self, who: str) -> dict[str, str]:
        return self.headers[who]


def open_api(url: str, clock: FakeClock, **settings_kw: Any) -> Iterator[Api]:
    app = create_app(url, settings=settings(url, **settings_kw), clock=clock)
    with TestClient(app) as client:
        store = TokenStore(app.state.ledger.engine, PEPPER)
        headers: dict[str, dict[str, str]] = {"anonymous": {}}
        for name, (role, la) in ROLE_TOKENS.items():
            headers[name] = {"Authorization": f"Bearer {store.issue(name, role, la)[1]}"}
        yield Api(client, app, clock, headers)


Problem = dict[str, Any]
Check = Callable[[Any], None]


def problem(response: Any, status: int) -> Problem:
    """Assert an RFC 9457 problem of this status and return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"], body
    return body

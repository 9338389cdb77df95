"""The OpenAPI description: complete (an example for every request and response),
derived from the posting catalogue, and true (schemathesis finds no 5xx and no
response that breaks its own schema).

schemathesis 4.32.5, Python API over the ASGI app; bounded: few examples a
operation, positive and negative data, no coverage or stateful phase.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from api_helpers import PUBLISHED, URN_OF, FakeClock, open_api, seed, settings
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from adapters.tokens import TokenStore
from api.app import create_app
from api.schemas import evidence_kinds, step_kinds
from domain.postings import ENVELOPE, KINDS

# --- completeness and derivation --------------------------------------------------------------


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    url = f"sqlite:///{tmp_path_factory.mktemp('openapi')}/ledger.sqlite"
    for api in open_api(url, FakeClock()):
        return api.client.get("/openapi.json").json()
    raise AssertionError("unreachable")


def test_every_request_and_response_has_an_example(openapi: dict[str, Any]) -> None:
    bodies = openapi["components"]["requestBodies"]
    missing = []
    for path, operations in openapi["paths"].items():
        for method, op in operations.items():
            request = op.get("requestBody", {})
            request = bodies[request["$ref"].rsplit("/", 1)[1]] if "$ref" in request else request
            media = [("request", m) for m in request.get("content", {}).values()]
            media += [(code, m) for code, r in op["responses"].items() for m in r.get("content", {}).values()]
            missing += [(method, path, where) for where, m in media if "example" not in m and "examples" not in m]
    assert missing == []


def test_every_operation_is_versioned_and_documents_its_problems(openapi: dict[str, Any]) -> None:
    for path, operations in openapi["paths"].items():
        assert path.startswith("/v1/"), path
        for op in operations.values():
            for code, r in op["responses"].items():
                if code.startswith(("4", "5")) and path != "/v1/health/ready":
                    assert "application/problem+json" in r["content"], (path, code)


def test_posting_schemas_are_the_catalogue(openapi: dict[str, Any]) -> None:
    found = openapi["components"]["schemas"]
    batch = openapi["components"]["requestBodies"]["EventBatch"]["content"]["application/json"]
    items = batch["schema"]["properties"]["events"]["items"]["oneOf"]
    assert all(i["$ref"].startswith("#/components/schemas/Posting_") for i in items)
    assert {i["$ref"].split("Posting_", 1)[1] for i in items} == {k.name for k in evidence_kinds()}
    for kind in KINDS.values():
        schema = found[("Step_" if kind in step_kinds() else "Posting_") + kind.name]
        assert set(schema["properties"]) == set(ENVELOPE) | set(kind.field_names)
        assert set(schema["examples"][0]) - set(ENVELOPE) <= set(kind.field_names)
    assert set(batch["examples"]) >= {k.name for k in evidence_kinds()}


def test_the_documented_examples_are_accepted(openapi: dict[str, Any], api) -> None:
    """Every kind's example, posted as documented, is recorded (steps: with their preconditions)."""
    batch = openapi["components"]["requestBodies"]["EventBatch"]["content"]["application/json"]["examples"]
    pair = batch["a provider and its inspection"]["value"]
    r = api.client.post("/v1/events", json=pair, headers=api.as_("integration"))
    assert r.status_code == 200 and r.json()["recorded"] == 2, r.text


# --- schemathesis -----------------------------------------------------------------------------
# Driven through its Python API with Hypothesis (the schemathesis pytest plugin does not run
# under pytest 9): every operation, positive and negative data, a few examples each, a deadline.

CONFIG = SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False},
                                                  "stateful": {"enabled": False}}})
WHO_CALLS = {"/v1/events": "integration", "/v1/admin": "admin", "/steps": "inspector"}
EXAMPLES_PER_MODE = 8
TIME_BUDGET_SECONDS = 180
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return (value if isinstance(value, str) else json.dumps(value)).encode()


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Callable[[str], str]]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/ledger.sqlite"
    clock = FakeClock()
    app = create_app(url, settings=settings(url, read_your_writes_wait_seconds=0.1), clock=clock)
    with TestClient(app):  # a first lifespan: seed the store
        seed(app.state.ledger, clock)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)  # schemathesis' own lifespan
    store = TokenStore(app.state.ledger.engine, app.state.settings.token_pepper)

    def token(role: str) -> str:
        """A fresh token a call: a fuzzed DELETE /v1/admin/tokens/{id} may revoke any earlier one."""
        return store.issue(f"fuzz-{role}", role)[1]

    yield schema, token
    schemathesis_asgi.shutdown_lifespans()


# Known path parameters, so that generated queries and bodies reach the views, not only the 404s.
KNOWN_PATH = {"authority": PUBLISHED, "year": 2011, "urn": URN_OF[PUBLISHED]}


def fuzz(operation: Any, mode: GenerationMode, token: Callable[[], str], known_path: bool = False) -> int:
    """Call one operation with a few generated cases; the checks raise on the first failure."""
    calls = 0
    names = {p.name for p in operation.path_parameters}
    path = {k: v for k, v in KNOWN_PATH.items() if k in names} if known_path else None

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path))
    @hypothesis_settings(max_examples=EXAMPLES_PER_MODE, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    def call(case: Any) -> None:
        nonlocal calls
        calls += 1
        case.call_and_validate(headers={"Authorization": f"Bearer {token()}"}, checks=CHECKS)

    call()
    return calls


def test_no_server_error_and_every_response_as_described(fuzzed) -> None:
    schema, token = fuzzed
    started, failures, calls = time.monotonic(), [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        role = next((r for k, r in WHO_CALLS.items() if k in operation.path), "inspector")
        runs = [(GenerationMode.POSITIVE, False), (GenerationMode.NEGATIVE, False)]
        if {p.name for p in operation.path_parameters} & set(KNOWN_PATH):
            runs += [(GenerationMode.POSITIVE, True), (GenerationMode.NEGATIVE, True)]
        for mode, known in runs:
            try:
                calls += fuzz(operation, mode, lambda role=role: token(role), known)
            except Unsatisfiable:  # no parameters, no body: nothing negative to send
                continue
            except Exception as e:  # noqa: BLE001 - collect every operation's failure, then report
                failures.append(f"{operation.label} ({mode.value}{', known path' if known else ''}): {str(e)[:3000]}")
        assert time.monotonic() - started < TIME_BUDGET_SECONDS, "schemathesis run over its time budget"
    assert failures == [], "\n\n".join(failures)
    assert calls > 100

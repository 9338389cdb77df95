"""Each response says how long it took inside the worker (Server-Timing), and slow
requests and garbage collections are logged on `csa.timing` (api.timing)."""

from __future__ import annotations

import gc
import logging
import re

import pytest
from api_helpers import evidence_of, open_api

from api.timing import GcPauses


def server_time(response) -> float:
    m = re.fullmatch(r"app;dur=(\d+\.\d)", response.headers["server-timing"])
    assert m, response.headers.get("server-timing")
    return float(m.group(1))


def test_every_response_says_its_time_in_the_worker(store_url, clock) -> None:
    for api in open_api(store_url, clock):
        ok = api.client.post("/v1/events", json={"events": evidence_of("886")}, headers=api.as_("integration"))
        refused = api.client.get("/v1/authorities/886/profile")  # no token: a 401 is timed too
        live = api.client.get("/v1/health/live")
        assert ok.status_code == 200 and refused.status_code == 401 and live.status_code == 200
        assert server_time(ok) > 0 and server_time(refused) >= 0 and server_time(live) >= 0


def test_requests_at_or_over_the_threshold_are_logged_with_path_status_and_time(store_url, clock, caplog) -> None:
    for api in open_api(store_url, clock, slow_request_ms=0.001):
        with caplog.at_level(logging.WARNING, logger="csa.timing"):
            api.client.get("/v1/authorities/886/profile", headers=api.as_("inspector"))
        lines = [r.getMessage() for r in caplog.records if r.name == "csa.timing" and "request" in r.getMessage()]
        assert any(re.fullmatch(r"slow request GET /v1/authorities/886/profile -> 200, answered in [\d.]+ ms, sent in [\d.]+ ms", m)
                   for m in lines), lines


def test_no_request_is_logged_when_the_log_is_off(store_url, clock, caplog) -> None:
    for api in open_api(store_url, clock, slow_request_ms=0):
        with caplog.at_level(logging.DEBUG, logger="csa.timing"):
            api.client.get("/v1/authorities/886/profile", headers=api.as_("inspector"))
            gc.collect()
        assert not [r for r in caplog.records if r.name == "csa.timing"]


@pytest.mark.parametrize("threshold, logged", [(0.000001, True), (60_000, False)])
def test_garbage_collections_over_the_threshold_are_logged(threshold, logged, caplog) -> None:
    pauses = GcPauses(threshold)
    pauses.install()
    try:
        with caplog.at_level(logging.WARNING, logger="csa.timing"):
            gc.collect()
    finally:
        pauses.remove()
    assert pauses not in gc.callbacks
    found = [r.getMessage() for r in caplog.records if "garbage collection of generation 2" in r.getMessage()]
    assert bool(found) is logged, found

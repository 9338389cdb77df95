"""The real server: `csa serve` with two uvicorn workers on PostgreSQL, over
loopback HTTP. Two integrations post at once; every event lands exactly once,
and a read through either worker sees its own write (min_position)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from adapters.tokens import TokenStore

pytestmark = pytest.mark.postgres
PEPPER = "server-test-pepper-0123456789abcdef012345"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(pg_url):
    from adapters.ledger import Ledger

    led = Ledger(pg_url)  # creates the tables before the workers start
    token = TokenStore(led.engine, PEPPER).issue("feed", "integration")[1]
    reader = TokenStore(led.engine, PEPPER).issue("hmi", "inspector")[1]
    led.close()
    port = free_port()
    env = {**os.environ, "CSA_DATABASE_URL": pg_url, "CSA_TOKEN_PEPPER": PEPPER, "CSA_ENVIRONMENT": "test"}
    csa = Path(sys.executable).with_name("csa")
    proc = subprocess.Popen([str(csa), "serve", "--port", str(port), "--workers", "2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/v1/health/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("server did not start: " + proc.stdout.read().decode()[-2000:])
    yield base, token, reader
    proc.terminate()
    proc.wait(timeout=15)


def batch(n: int, offset: int) -> list[dict]:
    events = []
    for i in range(offset, offset + n):
        urn = f"W{i:05d}"
        events += [{"type": "provider_registered", "client_id": f"reg-{urn}", "urn": urn, "la_code": "886",
                    "group": "primary_schools"},
                   {"type": "provider_inspection", "client_id": f"insp-{urn}", "urn": urn,
                    "occurred_on": "2011-03-01", "published_on": "2011-04-01", "overall_effectiveness": "good"}]
    return events


def test_two_workers_take_concurrent_overlapping_batches_exactly_once(server):
    base, token, reader = server
    auth = {"Authorization": f"Bearer {token}"}
    batches = [batch(20, 0), batch(20, 10), batch(20, 20), batch(20, 0)]  # overlapping client ids

    def post(events):
        return httpx.post(base + "/v1/events", json={"events": events}, headers=auth, timeout=30)

    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(post, batches))
    assert [r.status_code for r in responses] == [200] * 4, [r.text for r in responses]
    statuses = [o["status"] for r in responses for o in r.json()["outcomes"]]
    assert statuses.count("recorded") == 2 * 40  # 40 distinct providers, each registered and inspected once
    last = max(r.json()["position"] for r in responses)
    profile = httpx.get(base + "/v1/authorities/886/profile", params={"min_position": last, "as_at": "2011-05-01"},
                        headers={"Authorization": f"Bearer {reader}"}, timeout=30)
    assert profile.status_code == 200, profile.text
    primary = next(g for g in profile.json()["layer1"]["groups"] if g["code"] == "primary_schools")
    assert primary["number_inspected"] == 40 and primary["band"] == "dark_green"

"""HTTP ingest, this checkout against another (ADR 0037):
`python -m bench.ingest_pair --database-url URL --before DIR [--rounds 30]`.

Two servers, one worker each, on the same store: this checkout's code and DIR's
(`git worktree add DIR REV`). Batches of 500 postings (750 events) go to each in turn, with the
order swapped every round, so both see the same machine. It prints the medians and their ratio.
Loads only 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx

from bench import http_load as h


def start(url: str, root: str, token: str) -> tuple[subprocess.Popen, httpx.Client]:
    port = h.free_port()
    env = {**os.environ, "CSA_DATABASE_URL": url, "CSA_TOKEN_PEPPER": h.PEPPER, "CSA_ENVIRONMENT": "bench",
           "CSA_MAX_BATCH_EVENTS": "1000", "PYTHONPATH": os.path.join(root, "src"), "CSA_VIEWS_WARM_ON_START": "false"}
    proc = subprocess.Popen([sys.executable, "-c", "from adapters.cli import main; main()", "serve", "--port", str(port),
                             "--workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/v1/health/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    return proc, httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def batch(run: str, tag: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for i in range(250):
        urn = f"{run}-{tag}{i:04d}"[-32:]
        events += [{"type": "provider_registered", "client_id": f"pair-r-{urn}", "urn": urn, "la_code": "886",
                    "group": "childminders"},
                   {"type": "provider_inspection", "client_id": f"pair-i-{urn}", "urn": urn, "occurred_on": "2011-03-01",
                    "published_on": "2011-04-01", "overall_effectiveness": "good"}]
    return events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--before", required=True, help="another checkout of the repository")
    ap.add_argument("--rounds", type=int, default=30)
    a = ap.parse_args()
    _, writer, _ = h.prepare(a.database_url, None)
    servers = {"before": start(a.database_url, os.path.abspath(a.before), writer),
               "this": start(a.database_url, str(h.ROOT), writer)}
    took: dict[str, list[float]] = {"before": [], "this": []}
    run = f"p{os.getpid()}{int(time.time()) % 100000}"
    try:
        for r in range(a.rounds + 2):  # the first two rounds warm both workers up
            for name in ("before", "this") if r % 2 == 0 else ("this", "before"):
                events = batch(run, f"{name[0]}{r:03d}")
                t = time.perf_counter()
                resp = servers[name][1].post("/v1/events", json={"events": events})
                dt = time.perf_counter() - t
                if resp.status_code != 200:
                    raise SystemExit(f"{name}: HTTP {resp.status_code}: {resp.text[:300]}")
                if r >= 2:
                    took[name].append(dt)
    finally:
        for proc, client in servers.values():
            client.close()
            proc.terminate()
            proc.wait(timeout=30)
    b, t = statistics.median(took["before"]), statistics.median(took["this"])
    per_round = statistics.median(x / y for x, y in zip(took["before"], took["this"], strict=True))
    print(f"{a.rounds} rounds, batches of 500 postings (750 events), median: before {b * 1000:.0f} ms "
          f"({750 / b:,.0f} events/s), this {t * 1000:.0f} ms ({750 / t:,.0f} events/s); before/this {b / t:.2f}x, "
          f"per round {per_round:.2f}x")


if __name__ == "__main__":
    main()

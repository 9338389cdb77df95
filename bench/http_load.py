"""HTTP load (benchmark 5): `python -m bench.http_load --database-url URL [--import FILE]`.

Starts `csa serve` with two workers on the store, then drives it from a second
process over loopback:
- as-at profile requests (inspector token) for `--seconds`, `--concurrency`
  connections with keep-alive, from `wrk` when it is installed (`apt-get install
  wrk`; a Python client otherwise, which saturates a shared core first): requests/s, p50/p95/p99 latency; beside the same load on
  `/v1/health/live` (the framework's own floor) in the same run;
- ingest in batches of `--batch` postings (integration token): events/s.
Targets (issue 5): profile ≥ 300 req/s with p99 ≤ 100 ms; ingest ≥ 3,000 events/s.
Loads only 127.0.0.1, bounded in time and count, and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEPPER = "bench-http-pepper-0123456789abcdef0123456789"
MAX_REQUESTS = 200_000  # a hard bound on any one load phase


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


# --- the client process ------------------------------------------------------------


def client_main(args: argparse.Namespace) -> None:
    import httpx

    spec = json.loads(args.spec)
    base, token, paths, seconds, concurrency = spec["base"], spec["token"], spec["paths"], spec["seconds"], spec["concurrency"]
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker(k: int) -> None:
        mine: list[float] = []
        bad = 0
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"} if token else {},
                          timeout=30) as c:
            i = k
            while time.perf_counter() < stop_at and len(mine) < MAX_REQUESTS // concurrency:
                t = time.perf_counter()
                r = c.get(paths[i % len(paths)])
                mine.append(time.perf_counter() - t)
                bad += r.status_code != 200
                i += concurrency
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    print(json.dumps({"requests": len(latencies), "errors": errors[0], "seconds": wall,
                      "rps": len(latencies) / wall, "p50_ms": pct(latencies, 50) * 1000,
                      "p95_ms": pct(latencies, 95) * 1000, "p99_ms": pct(latencies, 99) * 1000}))


WRK_SCRIPT = """
paths = {%s}
i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], {%s})
end
"""


def run_wrk(base: str, token: str | None, paths: list[str], seconds: float, concurrency: int) -> dict[str, Any]:
    """The load from wrk (a C client: the Python client saturates a shared core long before the server)."""
    import re
    import tempfile

    header = f'["Authorization"] = "Bearer {token}"' if token else ""
    script = WRK_SCRIPT % (", ".join(f'"{p}"' for p in paths), header)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    done = subprocess.run(["wrk", "-t2", f"-c{concurrency}", f"-d{int(seconds)}s", "--latency", "-s", f.name, base],
                          capture_output=True, text=True, timeout=seconds + 60)
    os.unlink(f.name)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    out = done.stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)", out, re.M)
        if not m:
            return float("nan")
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"client": "wrk", "requests": requests, "errors": int(non2xx.group(1)) if non2xx else 0,
            "seconds": seconds, "rps": rps, "p50_ms": ms("50"), "p95_ms": float("nan"), "p99_ms": ms("99")}


def run_client(**spec: Any) -> dict[str, Any]:
    if shutil.which("wrk"):
        return run_wrk(spec["base"], spec["token"], spec["paths"], spec["seconds"], spec["concurrency"])
    out = subprocess.run([sys.executable, "-m", "bench.http_load", "client", json.dumps(spec)],
                         cwd=ROOT, capture_output=True, text=True, timeout=spec["seconds"] + 120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the server and the store ----------------------------------------------------


def prepare(url: str, import_path: str | None) -> tuple[str, str, list[str]]:
    sys.path.insert(0, str(ROOT / "src"))
    from sqlalchemy import text

    from adapters.importers import import_file
    from adapters.ledger import Ledger
    from adapters.tokens import TokenStore

    led = Ledger(url)
    if import_path:
        t = time.perf_counter()
        report = import_file(led, Path(import_path), skip_invalid=True, actor="bench")
        print(f"imported {import_path}: {report.counts()} in {time.perf_counter() - t:.1f} s", flush=True)
    led.catch_up()
    tokens = TokenStore(led.engine, PEPPER)
    reader = tokens.issue(f"bench-reader-{os.getpid()}", "inspector")[1]
    writer = tokens.issue(f"bench-feed-{os.getpid()}", "integration")[1]
    with led.engine.connect() as conn:
        las = [r[0] for r in conn.execute(text(
            "SELECT la_code FROM rm_evidence WHERE kind='provider_registered' AND recorded_to IS NULL "
            "GROUP BY la_code ORDER BY count(*) DESC LIMIT 20"))]
    led.close()
    return reader, writer, las


SERVER_LOG = ROOT / "var" / "bench" / "http-server.log"
SLOW_MS = 50  # the workers log requests and garbage collections taking this long (api.timing)


def start_server(url: str, port: int, workers: int, warm_start: bool = True) -> subprocess.Popen:
    env = {**os.environ, "CSA_DATABASE_URL": url, "CSA_TOKEN_PEPPER": PEPPER, "CSA_ENVIRONMENT": "bench",
           "CSA_MAX_BATCH_EVENTS": "1000", "PYTHONPATH": str(ROOT / "src"),
           "CSA_VIEWS_WARM_ON_START": "true" if warm_start else "false", "CSA_SLOW_REQUEST_MS": str(SLOW_MS)}
    csa = Path(sys.executable).with_name("csa")
    SERVER_LOG.parent.mkdir(parents=True, exist_ok=True)
    with SERVER_LOG.open("w") as log:
        proc = subprocess.Popen([str(csa), "serve", "--port", str(port), "--workers", str(workers)], env=env,
                                stdout=subprocess.DEVNULL, stderr=log)
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not become ready")


def slow_in_log(since: float, until: float) -> dict[str, Any]:
    """What the workers logged (api.timing) between two wall-clock times: requests and garbage
    collections that took SLOW_MS or more inside a worker, the longest of each."""
    import re
    from datetime import datetime

    requests, collections = [], []
    for line in SERVER_LOG.read_text(errors="replace").splitlines():
        m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) pid \d+ csa\.timing: (.*) ([\d.]+) ms", line)
        if not m:
            continue
        at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp() + int(m.group(2)) / 1000
        if since <= at <= until:
            if "garbage collection" in m.group(3):
                collections.append(float(m.group(4)))
            else:
                answered = re.search(r"answered in ([\d.]+) ms", m.group(3))
                requests.append((float(answered.group(1)) if answered else float("nan"), float(m.group(4))))
    return {"slow_requests": len(requests), "slowest_request_ms": max((r[1] for r in requests), default=0.0),
            "slowest_answer_ms": max((r[0] for r in requests), default=0.0),
            "answered_slowly": sum(r[0] >= SLOW_MS for r in requests),
            "slow_collections": len(collections), "slowest_collection_ms": max(collections, default=0.0)}


def wait_warm(base: str, workers: int, limit: float = 600) -> None:
    """Until every worker has read every authority's facts: /v1/health/ready asked on new
    connections (the kernel picks the worker) says `warming: false` 10 × workers times running."""
    import httpx

    t0, running = time.perf_counter(), 0
    while running < 10 * workers:
        if time.perf_counter() - t0 > limit:
            raise SystemExit("the workers did not finish warming")
        body = httpx.get(f"{base}/v1/health/ready", timeout=30).json()
        running = running + 1 if body.get("warming") is False else 0
        time.sleep(0.05 if running else 0.5)
    print(f"workers warm after {time.perf_counter() - t0:.0f} s", flush=True)


def national_tables(base: str, token: str, n: int) -> list[float]:
    """`n` national tables as at 31 August 2011, one after the other (each worker answers
    the first it gets from what it does not keep yet)."""
    import httpx

    took = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=300) as c:
        for i in range(n):
            t = time.perf_counter()
            r = c.get("/v1/national/2011", params={"as_at": f"2011-08-{31 - i:02d}"})
            took.append(time.perf_counter() - t)
            if r.status_code != 200:
                raise SystemExit(f"national table: HTTP {r.status_code}: {r.text[:300]}")
    return took


def worker_memory(parent: int) -> list[dict[str, Any]]:
    """Resident memory now and at peak (VmRSS, VmHWM) of the server's worker processes."""
    out = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(parent):
            out.append({"pid": int(status.parent.name), "rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
                        "peak_mb": int(fields["VmHWM"].split()[0]) / 1024})
    return out


def ingest(base: str, token: str, batches: int, size: int) -> dict[str, Any]:
    """`batches` batches of `size` postings (half registrations, half inspections) posted one
    after another; events counted by the log positions the responses give."""
    import httpx

    posted, took = 0, []
    run = f"{os.getpid()}-{int(time.time())}"
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        before = last = c.get("/v1/health/ready").json()["log_position"]
        t0 = time.perf_counter()
        for b in range(batches):
            events = []
            for i in range(size // 2):
                urn = f"B{b:03d}{i:04d}"
                events += [{"type": "provider_registered", "client_id": f"bench-{run}-r-{urn}", "urn": f"{run}-{urn}"[-32:],
                            "la_code": "886", "group": "childminders"},
                           {"type": "provider_inspection", "client_id": f"bench-{run}-i-{urn}", "urn": f"{run}-{urn}"[-32:],
                            "occurred_on": "2011-03-01", "published_on": "2011-04-01", "overall_effectiveness": "good"}]
            t = time.perf_counter()
            r = c.post("/v1/events", json={"events": events})
            took.append(time.perf_counter() - t)
            if r.status_code != 200:
                raise SystemExit(f"ingest failed: {r.status_code} {r.text[:300]}")
            last = r.json()["position"]
            posted += len(events)
        wall = time.perf_counter() - t0
    return {"postings": posted, "events": last - before, "seconds": wall,
            "postings_per_s": posted / wall if posted else float("nan"),
            "events_per_s": (last - before) / wall if posted else float("nan"),
            "batch_p50_ms": statistics.median(took) * 1000 if took else float("nan")}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        client_main(argparse.Namespace(spec=sys.argv[2]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--import", dest="import_path")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--warmup", type=float, default=45, help="seconds of the same load before measuring")
    ap.add_argument("--cold-start", action="store_true",
                    help="start the workers without CSA_VIEWS_WARM_ON_START (each reads an authority's facts "
                         "the first time it is asked: the load balancer decides which worker is cold)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--national", type=int, default=0, help="national tables to ask for after the profile load")
    args = ap.parse_args()
    reader, writer, las = prepare(args.database_url, args.import_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(args.database_url, port, args.workers, warm_start=not args.cold_start)
    try:
        if not args.cold_start:
            wait_warm(base, args.workers)
        paths = [f"/v1/authorities/{la}/profile?as_at=2011-08-31" for la in las] or ["/v1/authorities/886/profile"]
        floor = run_client(base=base, token=None, paths=["/v1/health/live"], seconds=args.seconds,
                           concurrency=args.concurrency)
        # Warm-up: every worker answers every authority once (its per-process cache), then measure.
        warm = run_client(base=base, token=reader, paths=paths, seconds=args.warmup, concurrency=args.concurrency)
        print(f"warm-up: {warm['requests']} requests in {args.warmup:.0f} s", flush=True)
        began = time.time()
        load = run_client(base=base, token=reader, paths=paths, seconds=args.seconds, concurrency=args.concurrency)
        load["in_workers"] = slow_in_log(began, time.time())
        tables = national_tables(base, reader, args.national)
        memory = worker_memory(server.pid)
        fed = ingest(base, writer, args.batches, args.batch)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"{'measure':<40} {'result':<44} {'baseline (same run)':<34} ratio   target")
    print(f"{'5a profile GET, ' + str(args.workers) + ' workers':<40} "
          f"{load['rps']:>7.0f} req/s p50 {load['p50_ms']:.1f} p99 {load['p99_ms']:.1f} ms ({load['errors']} err)  "
          f"{floor['rps']:>7.0f} req/s /health/live      {load['rps'] / floor['rps']:.2f}   ≥ 300 req/s, p99 ≤ 100 ms")
    print(f"{'5b ingest, batches of ' + str(args.batch):<40} {fed['events_per_s']:>7.0f} events/s "
          f"({fed['postings_per_s']:.0f} postings/s, batch p50 {fed['batch_p50_ms']:.0f} ms)  {'-':<34} -      ≥ 3,000 events/s")
    w = load["in_workers"]
    print(f"{'  of which slow inside a worker':<40} {w['slow_requests']} requests ≥ {SLOW_MS} ms to their last byte "
          f"(slowest {w['slowest_request_ms']:.0f} ms), {w['answered_slowly']} of them to their headers (slowest "
          f"{w['slowest_answer_ms']:.0f} ms); {w['slow_collections']} garbage collections ≥ {SLOW_MS} ms "
          f"(slowest {w['slowest_collection_ms']:.0f} ms)")
    if tables:
        print(f"{'4 national table GET (first, then kept)':<40} " + ", ".join(f"{t:.2f} s" for t in tables))
    print(f"{'6 resident memory of each worker':<40} " + ", ".join(
        f"pid {m['pid']}: now {m['rss_mb']:.0f} MB, peak {m['peak_mb']:.0f} MB" for m in memory))
    print(json.dumps({"profile": load, "floor": floor, "ingest": fed, "authorities": las, "national_s": tables,
                      "workers_memory": memory}))


if __name__ == "__main__":
    main()

"""The performance harness: `python -m bench.run [--scale national|medium|small]
[--stores sqlite,postgres] [--only N[,N]]`.

1. bulk import of the generated dataset through the ledger (adapters.importers), beside
   the eventsourcing library's own batched Application.save of the same postings;
2. projection rebuild, beside merely reading and decoding the same log;
3-4. as-at profile and proposal latency, national table (hooks on adapters.views);
5. HTTP load: a separate command, `python -m bench.http_load` (it needs a server);
6. peak RSS of the process after the import.

Every measurement runs in a child process on a fresh store; small measurements are
repeated (--repeat) and their median reported. Results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NATIONAL_LINES = 1_021_230  # lines of the national set (seed 2011): the 60 s target's pace
IMPORT_TARGET_S = 60.0
REBUILD_TARGET = 50_000.0


@dataclass
class Row:
    no: str
    measure: str
    store: str
    result: str
    baseline: str = "-"
    ratio: str = "-"
    target: str = "-"
    met: str = "-"


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "python": platform.python_version(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def run_task(name: str, **args: Any) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-m", "bench.tasks", name, json.dumps(args)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("BENCH-RESULT "):
            return json.loads(line.removeprefix("BENCH-RESULT "))
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": f"{name} failed (exit {proc.returncode}): " + " | ".join(tail)}


def run_module(module: str, *args: str) -> dict[str, Any]:
    """A benchmark module in a child process; its last stdout line is its JSON result."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"{module} failed (exit {proc.returncode}): " + " | ".join(tail)}


def rate(n: float, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def fmt_rate(n: float, unit: str = "ev/s") -> str:
    return f"{n:,.0f} {unit}"


def mb(kb: float) -> str:
    return f"{kb / 1024:,.0f} MB"


def verdict(ok: bool) -> str:
    return "yes" if ok else "NO"


class Harness:
    def __init__(self, args: argparse.Namespace, out=sys.stdout):
        self.args = args
        self.out = out
        self.rows: list[Row] = []
        self.workdir = Path(args.workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.only = {s.strip() for s in args.only.split(",")} if args.only else None

    def wants(self, n: int) -> bool:
        return self.only is None or str(n) in self.only

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        self.say(f"  [{row.no}] {row.measure} ({row.store}): {row.result} | baseline {row.baseline} | "
                 f"ratio {row.ratio} | target {row.target} | met {row.met}")

    # --- the run ---------------------------------------------------------------------

    def run(self) -> list[Row]:
        m = machine()
        self.say(f"CSA Ledger benchmarks  {m['date']}  nproc={m['nproc']}  cpu={m['cpu']}  python={m['python']}")
        self.say("command: " + " ".join([Path(sys.executable).name, "-m", "bench.run", *self.argv]))
        data = self.dataset()
        stores = [s.strip() for s in self.args.stores.split(",") if s.strip()]
        for store in stores:
            self.store(store, data)
        if self.wants(5) and "postgres" not in stores:
            self.add(Row("5", "HTTP load", "-", "runs on the postgres store: --stores …,postgres"))
        self.table()
        return self.rows

    argv: list[str] = []

    def dataset(self) -> dict[str, Any]:
        from adapters.generate import generate

        path = self.workdir / f"{self.args.scale}-{self.args.seed}.jsonl"
        t = time.perf_counter()
        summary = generate(self.args.scale, path, seed=self.args.seed)
        gen_s = time.perf_counter() - t
        t = time.perf_counter()
        with path.open(encoding="utf-8") as fh:
            for text in fh:
                json.loads(text)
        read_s = time.perf_counter() - t
        self.say(f"dataset: {path} ({summary['lines']:,} lines, {summary['ledger_events']:,} ledger events, "
                 f"{summary['bytes'] / 1e6:,.0f} MB, {summary['authorities']} authorities, "
                 f"{summary['providers']:,} providers)")
        self.add(Row("0", "generate dataset", "file", f"{fmt_rate(rate(summary['lines'], gen_s), 'lines/s')} "
                     f"({gen_s:.1f} s)", f"{fmt_rate(rate(summary['lines'], read_s), 'lines/s')} json.loads of it",
                     f"{read_s / gen_s:.2f}"))
        return summary

    def store(self, kind: str, data: dict[str, Any]) -> None:
        from bench.stores import drop_store, new_store, postgres_available

        if kind == "postgres" and (why := postgres_available()):
            self.add(Row("-", "all", kind, f"skipped: {why}"))
            return
        needs_data = any(self.wants(n) for n in (1, 2, 3, 4, 6))
        if not needs_data:
            return
        url = new_store(kind, self.workdir, self.args.scale)
        try:
            self.say(f"{kind}: importing {data['lines']:,} lines into {url.split('@')[-1]} …")
            imp = run_task("import", url=url, path=data["path"])
            if "error" in imp:
                self.add(Row("1", "bulk import", kind, imp["error"][:300]))
                return
            if self.wants(1):
                self.import_row(kind, url, data, imp)
            if self.wants(6):
                self.add(Row("6", f"peak RSS after {self.args.scale} import", kind, mb(imp["rss_peak_kb"]),
                             f"{mb(imp['rss_before_kb'])} before import; file {data['bytes'] / 2**20:,.0f} MB",
                             f"{imp['rss_peak_kb'] * 1024 / data['bytes']:.1f}× file"))
            if self.wants(2):
                self.rebuild_rows(kind, url, imp)
            if self.wants(3) or self.wants(4):
                self.views_rows(kind, url)
            if self.wants(5) and kind == "postgres":
                self.http_rows(url)
        finally:
            if not self.args.keep:
                drop_store(url)
            else:
                self.say(f"kept store {url}")

    def import_row(self, kind: str, url: str, data: dict[str, Any], imp: dict[str, Any]) -> None:
        limit = min(self.args.baseline_lines, data["lines"])
        repeats = self.args.repeat if limit <= 200_000 else 1
        base = run_task("save_baseline", url=url, path=data["path"], limit=limit, repeats=repeats)
        ev_s = rate(imp["events"], imp["seconds"])
        lines_s = rate(imp["lines"], imp["seconds"])
        result = (f"{fmt_rate(ev_s)} ({fmt_rate(lines_s, 'lines/s')}; {imp['events']:,} events in "
                  f"{imp['seconds']:.1f} s)")
        if "error" in base:
            baseline, ratio = base["error"][:200], "-"
        else:
            b = rate(base["events"], base["seconds"])
            baseline = f"{fmt_rate(b)} Application.save ×{base['batch']:,}/tx, {base['events']:,} ev, median of {len(base['runs'])}"
            ratio = f"{ev_s / b:.2f}"
        if self.args.scale == "national":
            target, met = f"≤ {IMPORT_TARGET_S:.0f} s", verdict(imp["seconds"] <= IMPORT_TARGET_S)
        else:
            pace = NATIONAL_LINES / IMPORT_TARGET_S
            target, met = f"≥ {pace:,.0f} lines/s (national in 60 s)", verdict(lines_s >= pace)
        if kind != "sqlite":
            met = f"({met}; target is for SQLite)"
        self.add(Row("1", f"bulk import ({imp['how']})", kind, result, baseline, ratio, target, met))

    def rebuild_rows(self, kind: str, url: str, imp: dict[str, Any]) -> None:
        repeats = self.args.repeat if imp["events"] <= 300_000 else 1
        reb = run_task("rebuild", url=url, repeats=repeats)
        read = run_task("read_decode", url=url, repeats=self.args.repeat)
        raw = run_task("read_decode", url=url, repeats=self.args.repeat, decode=False)
        if "error" in reb or "error" in read:
            self.add(Row("2", "projection rebuild", kind, (reb.get("error") or read.get("error"))[:300]))
            return
        r = rate(reb["events"], reb["seconds"])
        b = rate(read["events"], read["seconds"])
        self.add(Row("2", "projection rebuild", kind,
                     f"{fmt_rate(r)} ({reb['events']:,} ev, {reb['seconds']:.1f} s, median of {len(reb['runs'])})",
                     f"{fmt_rate(b)} select_notifications+to_domain_event, median of {len(read['runs'])}",
                     f"{r / b:.2f}", f"≥ {REBUILD_TARGET:,.0f} ev/s and ≥ 0.50",
                     verdict(r >= REBUILD_TARGET and r / b >= 0.5)))
        if "error" not in raw:
            self.add(Row("2b", "read raw log rows (reference)", kind,
                         fmt_rate(rate(raw["events"], raw["seconds"])),
                         f"median of {len(raw['runs'])}"))

    def views_rows(self, kind: str, url: str) -> None:
        """(3), (4) and the process's memory from bench.views_bench on this store."""
        n = max(self.args.repeat, 10 if self.args.scale == "national" else 20)
        res = run_module("bench.views_bench", "--database-url", url, "--la", self.args.la, "--repeat", str(n),
                         "--replay-repeat", str(min(self.args.repeat, 3)), "--national-repeat",
                         "1" if self.args.scale == "national" else str(self.args.repeat),
                         "--fresh-processes", "3" if self.args.scale == "national" else "1", "--json")
        if "error" in res:
            self.add(Row("3-4", "views (bench.views_bench)", kind, res["error"][:300]))
            return
        pp, la = res["profile_proposal"], self.args.la
        replay = pp["replay"]["median_ms"]
        for name, label in (("repeat", "answer kept"), ("fresh", "new as-at date, facts kept"),
                            ("cold", "nothing kept, facts read")):
            r = pp[name]
            self.add(Row("3", f"profile+proposal {la}, {label}", kind,
                         f"{r['median_ms']:,.1f} ms median, p95 {r['p95_ms']:,.1f} ms (n={r['n']})",
                         f"replay of {la}'s aggregates {replay:,.0f} ms median", f"{replay / r['median_ms']:,.1f}×",
                         "p95 ≤ 20 ms and ≥ 20×" if name != "cold" else "-",
                         verdict(r["p95_ms"] <= 20 and replay / r["median_ms"] >= 20) if name != "cold" else "-"))
        national = res["national"]
        for name, label, base in (("warm", "new as-at date, facts kept", None),
                                  ("store", "new Views, facts kept in the store (ADR 0028)", "cold"),
                                  ("cold", "nothing kept", None),
                                  ("store_fresh_process", "new process, facts kept in the store", "cold_fresh_process"),
                                  ("cold_fresh_process", "new process, nothing kept", None)):
            if name not in national:
                continue
            r = national[name]
            b = national.get(base) if base else None
            self.add(Row("4", f"national table, {label}", kind, f"{r['median_ms'] / 1000:,.2f} s median of {r['n']}",
                         f"nothing kept {b['median_ms'] / 1000:,.2f} s" if b else "-",
                         f"{b['median_ms'] / r['median_ms']:.1f}×" if b else "-", "≤ 3 s",
                         verdict(r["median_ms"] <= 3000)))
        self.add(Row("6", "resident memory after the views (all facts kept)", kind,
                     f"{res['rss_mb']['now']:,.0f} MB", f"{res['rss_mb']['before']:,.0f} MB before", "-", "≤ 1 GiB",
                     verdict(res["rss_mb"]["now"] <= 1024)))

    def http_rows(self, url: str) -> None:
        """(5) from bench.http_load: two workers on this PostgreSQL store, wrk on loopback."""
        if not shutil.which("wrk"):
            self.add(Row("5", "HTTP load", "postgres", "skipped: wrk is not installed (apt-get install wrk)"))
            return
        res = run_module("bench.http_load", "--database-url", url, "--seconds", "20", "--warmup", "20",
                         "--national", "2")
        if "error" in res:
            self.add(Row("5", "HTTP load", "postgres", res["error"][:300]))
            return
        p, f, i = res["profile"], res["floor"], res["ingest"]
        self.add(Row("5", "HTTP profile GET, 2 workers, wrk", "postgres",
                     f"{p['rps']:,.0f} req/s, p50 {p['p50_ms']:.1f} ms, p99 {p['p99_ms']:.1f} ms",
                     f"/health/live {f['rps']:,.0f} req/s", f"{p['rps'] / f['rps']:.2f}", "≥ 300 req/s, p99 ≤ 100 ms",
                     verdict(p["rps"] >= 300 and p["p99_ms"] <= 100)))
        events = i["postings_per_s"] * 1.5  # a batch: 250 registrations (2 events each) + 250 inspections
        self.add(Row("5", "HTTP ingest, batches of 500", "postgres",
                     f"{i['postings_per_s']:,.0f} postings/s ≈ {events:,.0f} events/s", "-", "-", "≥ 3,000 events/s",
                     verdict(events >= 3000)))
        if res.get("national_s"):
            self.add(Row("4", "HTTP national table (first, then kept)", "postgres",
                         ", ".join(f"{t:.2f} s" for t in res["national_s"]), "-", "-", "≤ 3 s",
                         verdict(min(res["national_s"]) <= 3)))
        peak = max((m["peak_mb"] for m in res["workers_memory"]), default=0)
        self.add(Row("6", "resident memory of each API worker, peak", "postgres", f"{peak:,.0f} MB", "-", "-",
                     "≤ 1 GiB", verdict(peak <= 1024)))

    def table(self) -> None:
        heads = ("#", "measure", "store", "result", "baseline (same run)", "ratio", "target", "met")
        rows = [heads] + [(r.no, r.measure, r.store, r.result, r.baseline, r.ratio, r.target, r.met) for r in self.rows]
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(heads))]
        self.say("")
        for i, row in enumerate(rows):
            self.say("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
            if i == 0:
                self.say("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", default="national", choices=("small", "medium", "national"))
    p.add_argument("--stores", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    p.add_argument("--only", default=None, help="comma-separated benchmark numbers, e.g. 1,2")
    p.add_argument("--seed", type=int, default=2011)
    p.add_argument("--repeat", type=int, default=3, help="repeats of small measurements (median reported)")
    p.add_argument("--baseline-lines", type=int, default=200_000, help="postings in the Application.save baseline")
    p.add_argument("--la", default="886", help="authority for the as-at latency hooks")
    p.add_argument("--workdir", default=str(ROOT / "var" / "bench"))
    p.add_argument("--keep", action="store_true", help="keep the stores (prints their URLs)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None, out=sys.stdout) -> list[Row]:
    args = parse_args(argv)
    sys.path[:0] = [p for p in (str(ROOT / "src"),) if p not in sys.path]
    harness = Harness(args, out)
    harness.argv = list(sys.argv[1:] if argv is None else argv)
    return harness.run()


if __name__ == "__main__":
    main()

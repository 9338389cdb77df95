"""Projector rebuild vs. the read+decode baseline (issue 5).

    .venv/bin/python -m bench.projector_bench --scale medium --stores sqlite,postgres --reps 3

Stores live under var/projbench/ (SQLite) and in the PostgreSQL database
`csa_projbench_<scale>`; each is imported once and reused by later runs
(`--fresh` imports again). Prints events/s, medians of `--reps`, and the ratio
of the rebuild to the baseline (select_notifications(…, 10000) + to_domain_event).
The repetitions of the baseline and of the rebuild alternate, so that a machine
whose load changes colours both alike; the rebuild's CPU time (all its threads)
is printed beside its wall time. `--check` also rebuilds page by page (no bulk
run: the live catch-up's path) and fails if the two digests differ.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
if os.environ.get("PROJBENCH_SRC"):  # measure another version of `projections` (e.g. the one before)
    sys.path.insert(0, os.environ["PROJBENCH_SRC"])

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from adapters.ledger import Ledger  # noqa: E402
from projections.projector import digest  # noqa: E402

WORK = ROOT / "var" / "projbench"
PG_ADMIN = os.environ.get("CSA_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def dataset(scale: str) -> Path:
    shared = ROOT / "var" / "bench" / f"{scale}-2011.jsonl"
    if shared.exists():
        return shared
    own = WORK / f"{scale}-2011.jsonl"
    if not own.exists():
        from adapters.generate import generate
        generate(scale, own, seed=2011)
    return own


def store_url(kind: str, scale: str, fresh: bool) -> str:
    if kind == "sqlite":
        path = WORK / f"{scale}.sqlite"
        if fresh:
            for s in ("", "-wal", "-shm"):
                Path(str(path) + s).unlink(missing_ok=True)
        return f"sqlite:///{path}"
    name = f"csa_projbench_{scale}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname=:n"), {"n": name}).scalar()
        if exists and fresh:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname=:n"), {"n": name})
            conn.execute(text(f'DROP DATABASE "{name}"'))
            exists = False
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)


def read_decode(ledger: Ledger, decode: bool) -> int:
    rec, mapper = ledger.app.recorder, ledger.app.mapper
    start, n = 1, 0
    while True:
        notes = rec.select_notifications(start, 10000)
        if not notes:
            return n
        if decode:
            for x in notes:
                mapper.to_domain_event(x)
        n += len(notes)
        start = notes[-1].id + 1


def alternating(fns: dict[str, object], reps: int) -> dict[str, tuple[float, float, int]]:
    """Each function once per round, `reps` rounds: name -> (median wall s, median CPU s, result)."""
    walls: dict[str, list[float]] = {k: [] for k in fns}
    cpus: dict[str, list[float]] = {k: [] for k in fns}
    out: dict[str, int] = {}
    for _ in range(reps):
        for name, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            out[name] = fn()
            walls[name].append(time.perf_counter() - t)
            cpus[name].append(time.process_time() - c)
    return {k: (statistics.median(walls[k]), statistics.median(cpus[k]), out[k]) for k in fns}


def page_by_page(ledger: Ledger) -> int:
    """A rebuild without the bulk run (the live catch-up's path, page after page)."""
    ledger.projector.reset()
    ledger.projector._start_bulk = lambda until: False  # noqa: SLF001
    try:
        return ledger.projector.run()
    finally:
        del ledger.projector._start_bulk


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="medium")
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--check", action="store_true", help="also rebuild page by page and compare the digests")
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    path = dataset(args.scale)
    for kind in args.stores.split(","):
        url = store_url(kind, args.scale, args.fresh)
        ledger = Ledger(url)
        if not ledger.projector.log_position():
            t = time.perf_counter()
            export = WORK / f"{args.scale}.export.jsonl"
            if kind == "postgres" and export.exists():
                # One big `import_file` batch into PostgreSQL stalled here (both sides idle in
                # the recorder's INSERT); restoring the SQLite store's export inserts in chunks.
                with export.open(encoding="utf-8") as lines:
                    ledger.restore(lines)
                how = "restored from " + export.name
            else:
                from adapters.importers import import_file
                import_file(ledger, path)
                how = "imported"
                if kind == "sqlite":
                    ledger.export(export)
            dt = time.perf_counter() - t
            print(f"{kind}: {how} {ledger.projector.log_position():,} events in {dt:.1f} s "
                  f"({ledger.projector.log_position() / dt:,.0f} ev/s)", flush=True)
        events = ledger.projector.log_position()
        fns = {} if args.skip_baseline else {"raw": lambda led=ledger: read_decode(led, False),
                                             "dec": lambda led=ledger: read_decode(led, True)}
        fns["rebuild"] = ledger.rebuild
        res = alternating(fns, args.reps)
        rb, rb_cpu, n = res["rebuild"]
        d, counts = digest(ledger.engine)
        print(f"{kind} {args.scale}: {events:,} events", flush=True)
        if not args.skip_baseline:
            raw, dec = res["raw"][0], res["dec"][0]
            print(f"  raw rows        {events / raw:>10,.0f} ev/s ({raw:.2f} s)")
            print(f"  read+decode     {events / dec:>10,.0f} ev/s ({dec:.2f} s)")
        print(f"  rebuild         {n / rb:>10,.0f} ev/s ({rb:.2f} s, CPU {rb_cpu:.2f} s, median of {args.reps})"
              + ("" if args.skip_baseline else f"  ratio to read+decode {dec / rb:.2f}"))
        print(f"  digest {d} {counts}", flush=True)
        if args.check:
            t = time.perf_counter()
            page_by_page(ledger)
            dt = time.perf_counter() - t
            d2, _ = digest(ledger.engine)
            print(f"  page by page    {events / dt:>10,.0f} ev/s ({dt:.2f} s)  digest {'same' if d2 == d else 'DIFFERS ' + d2}",
                  flush=True)
            if d2 != d:
                sys.exit(f"{kind}: the bulk rebuild and the page-by-page rebuild differ")
        ledger.close()


if __name__ == "__main__":
    main()

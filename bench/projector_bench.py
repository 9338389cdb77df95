"""Projector rebuild vs. the read+decode baseline (issue 5).

    .venv/bin/python -m bench.projector_bench --scale medium --stores sqlite,postgres --reps 3

Stores live under var/projbench/ (SQLite) and in the PostgreSQL database
`csa_projbench_<scale>`; each is imported once and reused by later runs
(`--fresh` imports again). Prints events/s, medians of `--reps`, and the ratio
of the rebuild to the baseline (select_notifications(…, 10000) + to_domain_event).
The repetitions of the baseline and of the rebuild alternate, so that a machine
whose load changes colours both alike; the rebuild's CPU time (all its threads)
is printed beside its wall time. `--check` also rebuilds page by page (no bulk
run: the live catch-up's path) and fails if the two digests differ. Beside the digest
(which compares JSON columns as values) it prints a digest of the read model's text as
the store holds it, byte for byte. `--check-codec` decodes every event of the log with
the projector's fast codec (ADR 0023) and compares each with the library's mapper.
`--before FILE` alternates another version of `projections/projector.py` (e.g. one written
out by `git show REV:src/projections/projector.py`) in the same rounds, with its digests.
"""

from __future__ import annotations

import argparse
import hashlib
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
from projections.tables import READ_MODEL_TABLES  # noqa: E402

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


def text_digest(engine) -> str:
    """SHA-256 of every row of the read model as the store holds it (PostgreSQL: each column as
    text; SQLite: each column's storage class and value), by primary key."""
    h = hashlib.sha256()
    with engine.connect() as conn:
        pg = conn.dialect.name == "postgresql"
        for t in READ_MODEL_TABLES:
            cols = ", ".join(f"{c.name}::text" if pg else f"typeof({c.name}), {c.name}" for c in t.columns)
            keys = ", ".join(c.name for c in t.primary_key.columns)
            for row in conn.exec_driver_sql(f"SELECT {cols} FROM {t.name} ORDER BY {keys}"):
                h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def check_codec(ledger: Ledger) -> dict[str, int]:
    """Every event the projector reads, decoded by the fast codec page by page, compared with
    the library's mapper. Returns events per topic; exits if one differs or a page is declined."""
    from domain.postings import canonical
    from projections.projector import _decode_page, _dumps, _dumps_fast, _topic

    rec, mapper = ledger.app.recorder, ledger.app.mapper
    start, seen = 1, {}
    while True:
        notes = rec.select_notifications(start, 10000)
        if not notes:
            return seen
        mine = [n for n in notes if _topic(n.topic).action]
        decoded = _decode_page([n.state for n in mine])
        if decoded is None:
            sys.exit(f"the fast codec declined the page from {start}")
        for n, d in zip(mine, decoded, strict=True):
            e = mapper.to_domain_event(n)
            want = canonical({k: v for k, v in e.__dict__.items() if k not in ("originator_id", "originator_version")})
            if d != want or _dumps_fast(d) != _dumps(want):
                sys.exit(f"event {n.id} ({n.topic}) decodes differently: {d} != {want}")
            seen[n.topic] = seen.get(n.topic, 0) + 1
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


def load_projector(path: str, ledger: Ledger):
    """A Projector of another version of projections/projector.py, on the ledger's stores."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("projector_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Projector(ledger.app, ledger.engine, ledger.projector.batch_size)


def rebuild_with(projector) -> int:
    projector.reset()
    return projector.run()


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
    ap.add_argument("--check-codec", action="store_true", help="compare the fast codec with the mapper on every event")
    ap.add_argument("--before", metavar="FILE", help="another projector.py to alternate with this one")
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
        before = load_projector(args.before, ledger) if args.before else None
        if before is not None:
            fns["before"] = lambda b=before: rebuild_with(b)
        fns["rebuild"] = ledger.rebuild
        res = alternating(fns, args.reps)
        if before is not None:  # its read model, then this one's again
            rebuild_with(before)
            before_digests = digest(ledger.engine)[0], text_digest(ledger.engine)
            ledger.rebuild()
        rb, rb_cpu, n = res["rebuild"]
        d, counts = digest(ledger.engine)
        print(f"{kind} {args.scale}: {events:,} events", flush=True)
        if not args.skip_baseline:
            raw, dec = res["raw"][0], res["dec"][0]
            print(f"  raw rows        {events / raw:>10,.0f} ev/s ({raw:.2f} s)")
            print(f"  read+decode     {events / dec:>10,.0f} ev/s ({dec:.2f} s)")
        if before is not None:
            bb, bb_cpu, _ = res["before"]
            print(f"  before          {n / bb:>10,.0f} ev/s ({bb:.2f} s, CPU {bb_cpu:.2f} s, median of {args.reps})"
                  + ("" if args.skip_baseline else f"  ratio to read+decode {dec / bb:.2f}"))
        print(f"  rebuild         {n / rb:>10,.0f} ev/s ({rb:.2f} s, CPU {rb_cpu:.2f} s, median of {args.reps})"
              + ("" if args.skip_baseline else f"  ratio to read+decode {dec / rb:.2f}")
              + ("" if before is None else f"  speed-up {bb / rb:.2f}x"))
        td = text_digest(ledger.engine)
        print(f"  digest {d} {counts}\n  text digest {td}", flush=True)
        if before is not None:
            same = "same" if before_digests == (d, td) else f"DIFFERS {before_digests}"
            print(f"  before's digest and text digest: {same}", flush=True)
        if args.check:
            t = time.perf_counter()
            page_by_page(ledger)
            dt = time.perf_counter() - t
            d2, td2 = digest(ledger.engine)[0], text_digest(ledger.engine)
            same = "same" if (d2, td2) == (d, td) else f"DIFFERS {d2} {td2}"
            print(f"  page by page    {events / dt:>10,.0f} ev/s ({dt:.2f} s)  digest and text digest {same}", flush=True)
            if (d2, td2) != (d, td):
                sys.exit(f"{kind}: the bulk rebuild and the page-by-page rebuild differ")
        if args.check_codec:
            t = time.perf_counter()
            seen = check_codec(ledger)
            print(f"  fast codec = mapper on all {sum(seen.values()):,} events the projector reads "
                  f"({len(seen)} topics, {time.perf_counter() - t:.1f} s): "
                  + ", ".join(f"{k.rsplit(':', 1)[1]} {v:,}" for k, v in sorted(seen.items())), flush=True)
        ledger.close()


if __name__ == "__main__":
    main()

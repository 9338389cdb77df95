"""Benchmarks 3, 4 and 6 of issue 5 on an existing store (the national one, typically):

3. as-at profile + proposal for one authority, warm: median and p95, beside the
   baseline of rebuilding the same answer by replaying that authority's aggregates
   from the event store (no read model), measured in the same run;
4. the national table (152 proposals) as at a date, in a new process-level cache;
6. the resident memory of the process afterwards.

Each of (3) and (4) is reported as the service meets it:
- `repeat`: the same question again (the answer kept per read-model position);
- `fresh` / `warm`: a new as-at date each time: no answer kept, the authority's facts
  kept (they change only with an event about it), so the rules run again;
- `cold`: nothing kept (a new `Views`): the facts read from the read model, then the rules;
- `replay`: the baseline, every aggregate of the authority loaded with
  `Repository.get` and the same rules run on what they hold.

    python -m bench.views_bench --database-url sqlite:///var/bench/national.sqlite --la 886
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from bench.tasks import current_rss_kb, rss_kb  # noqa: E402


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def summary(times: list[float]) -> dict[str, float]:
    ms = [t * 1000 for t in times]
    return {"n": len(ms), "median_ms": statistics.median(ms), "p95_ms": pct(ms, 95), "max_ms": max(ms)}


def replay_answer(ledger: Any, la_code: str, year: int, as_at: date) -> Any:
    """The baseline: the same profile and proposal from the authority's aggregates,
    replayed from the event store, with no read model (only its index of which
    aggregates name the authority)."""
    from sqlalchemy import select

    from domain.framework import framework_for
    from domain.rules.assessment import propose_grade_from
    from domain.rules.cutoff import decide_cutoff
    from domain.rules.facts import AuthorityEvidence
    from domain.rules.profile import build_profile_from
    from projections import queries
    from projections.tables import event_log

    c = event_log.c
    with ledger.engine.connect() as conn:
        own = select(c.aggregate_id).where(c.la_code == la_code)
        urns = select(c.urn).where(c.la_code == la_code, c.kind == "provider_registered")
        by_urn = select(c.aggregate_id).where(c.urn.in_(urns))
        ids = {r for (r,) in conn.execute(own.union(by_urn))}
    from uuid import UUID

    providers, inspections, la_rows = [], [], []
    for agg_id in ids:
        agg = ledger.app.repository.get(UUID(agg_id))
        kind = getattr(agg, "kind", None)
        if kind is None or getattr(agg, "withdrawn", False):
            continue  # an assessment, a client key, or a withdrawn item
        s = agg.state
        row = {"kind": kind, "la_code": s.get("la_code"), "urn": s.get("urn"), "group_code": s.get("group"),
               "occurred_on": queries.as_date(s.get("occurred_on")), "published_on": queries.as_date(s.get("published_on")),
               "data": s, "position": agg.version}
        if kind == "provider_registered":
            providers.append(queries._provider(row))
        elif kind in ("provider_inspection", "compliance_check"):
            inspections.append(queries._inspection(row))
        elif kind in queries.LA_KINDS:
            la_rows.append(row)
    full = [queries._full(r) for r in la_rows if r["kind"] == "full_inspection"]
    ev = AuthorityEvidence(la_code=la_code, providers=tuple(providers), provider_inspections=tuple(inspections),
                           full_inspections=tuple(full),
                           indicators=tuple(queries._indicator(r) for r in la_rows if r["kind"] == "indicator_value"))
    fw = framework_for(year)
    cutoff = decide_cutoff(ev, fw, as_at)
    profile = build_profile_from(cutoff, fw, la_code)
    return profile, propose_grade_from(cutoff, profile, fw)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database-url", required=True)
    p.add_argument("--la", default="886", help="authority for (3); default 886 (Kent, the largest)")
    p.add_argument("--year", type=int, default=2011)
    p.add_argument("--as-at", type=date.fromisoformat, default=date(2011, 8, 31))
    p.add_argument("--repeat", type=int, default=40, help="questions for each kind of warm (3)")
    p.add_argument("--replay-repeat", type=int, default=3)
    p.add_argument("--national-repeat", type=int, default=3)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)

    from adapters.ledger import Ledger
    from adapters.views import Views

    before_kb = current_rss_kb()
    ledger = Ledger(a.database_url)
    ledger.catch_up()
    out: dict[str, Any] = {"database": a.database_url.split("@")[-1], "la": a.la, "year": a.year,
                           "events": ledger.projector.position()}

    def both(views: Views, as_at: date) -> None:
        views.profile(a.la, year=a.year, as_at=as_at)
        views.proposal(a.la, a.year, as_at=as_at)

    views = Views(ledger, cache_entries=4096)
    both(views, a.as_at - timedelta(days=400))  # warm the process and the database's pages
    cold = []
    for i in range(max(3, a.repeat // 4)):  # a new Views each time: the authority's facts read again
        t = time.perf_counter()
        both(Views(ledger), a.as_at - timedelta(days=i))
        cold.append(time.perf_counter() - t)
    fresh = []
    for i in range(a.repeat):  # a new as-at date each time: no answer kept, the facts kept
        t = time.perf_counter()
        both(views, a.as_at - timedelta(days=i))
        fresh.append(time.perf_counter() - t)
    repeat = []
    for _ in range(a.repeat):
        t = time.perf_counter()
        both(views, a.as_at)
        repeat.append(time.perf_counter() - t)
    replay = []
    for _ in range(a.replay_repeat):
        t = time.perf_counter()
        replay_answer(ledger, a.la, a.year, a.as_at)
        replay.append(time.perf_counter() - t)
    pp = out["profile_proposal"] = {"cold": summary(cold), "fresh": summary(fresh), "repeat": summary(repeat),
                                    "replay": summary(replay)}
    for name, times in (("cold", cold), ("fresh", fresh), ("repeat", repeat)):
        pp[f"replay_over_{name}"] = statistics.median(replay) / statistics.median(times)

    national_cold, national_warm = [], []
    nv = Views(ledger)
    for i in range(a.national_repeat):  # a new Views (nothing kept) and a new date each time
        nv = Views(ledger)
        t = time.perf_counter()
        nv.national(a.year, as_at=a.as_at - timedelta(days=i))
        national_cold.append(time.perf_counter() - t)
    for i in range(a.national_repeat):  # the last Views, its facts kept, a new date each time
        t = time.perf_counter()
        table = nv.national(a.year, as_at=a.as_at - timedelta(days=10 + i))
        national_warm.append(time.perf_counter() - t)
    out["national"] = {"cold": summary(national_cold), "warm": summary(national_warm), "counts": table["counts"]}
    out["rss_mb"] = {"before": before_kb / 1024, "now": current_rss_kb() / 1024, "peak": rss_kb() / 1024}
    ledger.close()

    if a.json:
        print(json.dumps(out))
        return out
    print(f"store {out['database']} ({out['events']:,} events), authority {a.la}, {a.year}, as at {a.as_at}")
    print(f"{'measure':62} {'median':>10} {'p95':>10}  n   replay/this")
    for name, label in (("repeat", "(3) profile+proposal, same question (answer kept)"),
                        ("fresh", "(3) profile+proposal, new as-at date (facts kept)"),
                        ("cold", "(3) profile+proposal, nothing kept (facts read)"),
                        ("replay", "(3) baseline: replay the authority's aggregates")):
        s = pp[name]
        ratio = f"{pp['replay_over_' + name]:8.1f}x" if name != "replay" else ""
        print(f"{label:62} {s['median_ms']:8.1f}ms {s['p95_ms']:8.1f}ms  {s['n']:<3} {ratio}")
    for name, label in (("warm", "(4) national table, new as-at date (facts kept)"),
                        ("cold", "(4) national table, nothing kept")):
        s = out["national"][name]
        print(f"{label:62} {s['median_ms'] / 1000:9.2f}s {s['max_ms'] / 1000:9.2f}s  {s['n']} (median, max)")
    r = out["rss_mb"]
    print(f"{'(6) resident memory: before, now, peak':58} {r['before']:.0f} / {r['now']:.0f} / {r['peak']:.0f} MB")
    return out


if __name__ == "__main__":
    main()

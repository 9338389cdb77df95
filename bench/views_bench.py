"""Benchmarks 3, 4 and 6 of issue 5 on an existing store (the national one, typically):

3. as-at profile + proposal for one authority, warm: median and p95, beside the
   baseline of rebuilding the same answer by replaying that authority's aggregates
   from the event store (no read model), measured in the same run;
4. the national table (152 proposals) as at a date, in a new process-level cache (`warm`:
   after `gc.freeze()`, as a warmed API worker); with nothing kept the facts are read together
   (ADR 0026), and with `--national-one-by-one` also one authority at a time, alternated;
6. the resident memory of the process afterwards.

Each of (3) and (4) is reported as the service meets it:
- `repeat`: the same question again (the answer kept per read-model position);
- `fresh` / `warm`: a new as-at date each time: no answer kept, the authority's facts
  kept (they change only with an event about it), so the rules run again; `spread`: the
  same with dates weeks apart rather than day after day;
- `cold`: nothing kept (a new `Views`): the facts read from the read model, then the rules;
- `store`: nothing kept in the process (a new `Views`), the facts kept in the store by an
  earlier one (ADR 0028): unpickled with their timelines, then the rules; alternated with `cold`,
  in this process and (`--fresh-processes`) each in a new process, timing the table only;
- `replay`: the baseline, every aggregate of the authority loaded with
  `Repository.get` and the same rules run on what they hold.

    python -m bench.views_bench --database-url sqlite:///var/bench/national.sqlite --la 886
"""

from __future__ import annotations

import argparse
import gc
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


def summary(times: list[float], cpu: list[float] | None = None) -> dict[str, float]:
    """Wall-clock median, p95 and max; with `cpu` (the process's CPU time of the same samples),
    its median and p95 too: steadier than wall time when other work shares the cores."""
    ms = [t * 1000 for t in times]
    out = {"n": len(ms), "median_ms": statistics.median(ms), "p95_ms": pct(ms, 95), "max_ms": max(ms)}
    if cpu:
        cpu_ms = [t * 1000 for t in cpu]
        out.update(cpu_median_ms=statistics.median(cpu_ms), cpu_p95_ms=pct(cpu_ms, 95))
    return out


class Timer:
    """Samples of wall-clock and CPU time: `with timer: ...` adds one."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __enter__(self) -> Timer:
        self._t, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall.append(time.perf_counter() - self._t)
        self.cpu.append(time.process_time() - self._c)

    def summary(self) -> dict[str, float]:
        return summary(self.wall, self.cpu)


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

    facts = queries._Facts()
    providers, inspections, la_rows = [], [], []
    for agg_id in ids:
        agg = ledger.app.repository.get(UUID(agg_id))
        kind = getattr(agg, "kind", None)
        if kind is None or getattr(agg, "withdrawn", False):
            continue  # an assessment, a client key, or a withdrawn item
        s = agg.state
        # a row as the read model gives it (queries._COLUMNS), with its data decoded
        row = ((kind, s.get("la_code"), s.get("urn"), s.get("group"), s.get("occurred_on"), s.get("published_on"), None,
                agg.version), s)
        if kind == "provider_registered":
            providers.append(row)
        elif kind in ("provider_inspection", "compliance_check"):
            inspections.append(row)
        elif kind in queries.LA_KINDS:
            la_rows.append(row)
    ev = AuthorityEvidence(la_code=la_code, providers=tuple(facts.providers(providers)),
                           provider_inspections=tuple(facts.inspections(inspections)),
                           full_inspections=tuple(facts.full(r, d) for r, d in la_rows if r[0] == "full_inspection"),
                           indicators=tuple(facts.indicator(r, d) for r, d in la_rows if r[0] == "indicator_value"))
    fw = framework_for(year)
    cutoff = decide_cutoff(ev, fw, as_at)
    profile = build_profile_from(cutoff, fw, la_code)
    return profile, propose_grade_from(cutoff, profile, fw)


_NEW_PROCESS = """
import json, sys, time
from datetime import date
sys.path.insert(0, {src!r})
from adapters.ledger import Ledger
from adapters.views import Views
ledger = Ledger({url!r})
ledger.catch_up()
views = Views(ledger, facts_in_store={on!r})
wall, cpu = time.perf_counter(), time.process_time()
views.national({year!r}, as_at=date.fromisoformat({as_at!r}))
print(json.dumps([time.perf_counter() - wall, time.process_time() - cpu]))
"""


def national_in_new_process(url: str, year: int, as_at: date, facts_in_store: bool) -> tuple[float, float]:
    """(4) in a new interpreter: the table alone timed (wall, CPU), after the imports and the
    store opened; with the facts the store keeps (ADR 0028) or reading the read model."""
    import subprocess

    code = _NEW_PROCESS.format(src=str(ROOT / "src"), url=url, on=facts_in_store, year=year, as_at=as_at.isoformat())
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    wall, cpu = json.loads(done.stdout.strip().splitlines()[-1])
    return wall, cpu


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database-url", required=True)
    p.add_argument("--la", default="886", help="authority for (3); default 886 (Kent, the largest)")
    p.add_argument("--year", type=int, default=2011)
    p.add_argument("--as-at", type=date.fromisoformat, default=date(2011, 8, 31))
    p.add_argument("--repeat", type=int, default=40, help="questions for each kind of warm (3)")
    p.add_argument("--replay-repeat", type=int, default=3)
    p.add_argument("--national-repeat", type=int, default=3)
    p.add_argument("--national-one-by-one", action="store_true",
                   help="also the table with nothing kept with the facts read one authority at a time, alternated")
    p.add_argument("--fresh-processes", type=int, default=5,
                   help="(4) in a new process each time, facts kept in the store and nothing kept, alternated")
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
    cold = Timer()
    for i in range(max(3, a.repeat // 4)):  # a new Views each time: the authority's facts read again
        with cold:
            both(Views(ledger), a.as_at - timedelta(days=i))
    fresh = Timer()
    asked = set()
    for i in range(a.repeat):  # a new as-at date each time, the day before the last: facts kept
        asked.add(a.as_at - timedelta(days=i))
        with fresh:
            both(views, a.as_at - timedelta(days=i))
    spread = Timer()
    for i in range(a.repeat):  # new as-at dates ~6 weeks apart over four years: facts kept
        day = date(2012, 9, 30) - timedelta(days=41 * i)
        while day in asked:
            day -= timedelta(days=1)
        asked.add(day)
        with spread:
            both(views, day)
    repeat = Timer()
    for _ in range(a.repeat):
        with repeat:
            both(views, a.as_at)
    replay = Timer()
    for _ in range(a.replay_repeat):
        with replay:
            replay_answer(ledger, a.la, a.year, a.as_at)
    timers = {"cold": cold, "fresh": fresh, "spread": spread, "repeat": repeat, "replay": replay}
    pp = out["profile_proposal"] = {name: t.summary() for name, t in timers.items()}
    for name in ("cold", "fresh", "spread", "repeat"):
        pp[f"replay_over_{name}"] = statistics.median(replay.wall) / statistics.median(timers[name].wall)

    import adapters.views as views_module

    national_cold, national_one, national_warm, national_store = Timer(), Timer(), Timer(), Timer()
    together_from = views_module.BULK_READ_FROM
    keeper = Views(ledger, facts_in_store=True)  # the facts kept in the store, if they are not yet
    keeper.national(a.year, as_at=a.as_at - timedelta(days=100))
    keeper.wait_kept_in_store()
    del keeper
    nv = Views(ledger)
    for i in range(a.national_repeat):  # a new Views (nothing kept) and a new date each time
        if a.national_one_by_one:  # the same, the facts read one authority at a time (as before ADR 0026)
            views_module.BULK_READ_FROM = 10**9
            try:
                with national_one:
                    Views(ledger).national(a.year, as_at=a.as_at - timedelta(days=i))
            finally:
                views_module.BULK_READ_FROM = together_from
        with national_store:  # nothing kept in the process, the facts kept in the store
            Views(ledger, facts_in_store=True).national(a.year, as_at=a.as_at - timedelta(days=i))
        nv = Views(ledger)
        with national_cold:
            nv.national(a.year, as_at=a.as_at - timedelta(days=i))
    # As an API worker does once its warm start has read every authority's facts (api.app._warm):
    # otherwise the next two tables each pay a collection of those ~2 M young objects (~0.5 s).
    gc.collect()
    gc.freeze()
    for i in range(a.national_repeat):  # the last Views, its facts kept, a new date each time
        with national_warm:
            table = nv.national(a.year, as_at=a.as_at - timedelta(days=10 + i))
    out["national"] = {"cold": national_cold.summary(), "store": national_store.summary(),
                       "warm": national_warm.summary(), "counts": table["counts"]}
    if a.fresh_processes:
        fresh_store, fresh_cold = Timer(), Timer()
        for i in range(a.fresh_processes):
            for timer, on in ((fresh_store, True), (fresh_cold, False)):
                wall, cpu = national_in_new_process(a.database_url, a.year, a.as_at - timedelta(days=20 + i), on)
                timer.wall.append(wall)
                timer.cpu.append(cpu)
        out["national"]["store_fresh_process"] = fresh_store.summary()
        out["national"]["cold_fresh_process"] = fresh_cold.summary()
    if a.national_one_by_one:
        out["national"]["cold_one_by_one"] = national_one.summary()
    out["rss_mb"] = {"before": before_kb / 1024, "now": current_rss_kb() / 1024, "peak": rss_kb() / 1024}
    ledger.close()

    if a.json:
        print(json.dumps(out))
        return out
    print(f"store {out['database']} ({out['events']:,} events), authority {a.la}, {a.year}, as at {a.as_at}")
    print(f"{'measure':62} {'median':>10} {'p95':>10}  n   replay/this  CPU median, p95")
    for name, label in (("repeat", "(3) profile+proposal, same question (answer kept)"),
                        ("fresh", "(3) profile+proposal, new as-at date (facts kept)"),
                        ("spread", "(3) ... new as-at dates weeks apart (facts kept)"),
                        ("cold", "(3) profile+proposal, nothing kept (facts read)"),
                        ("replay", "(3) baseline: replay the authority's aggregates")):
        s = pp[name]
        ratio = f"{pp['replay_over_' + name]:8.1f}x" if name != "replay" else " " * 9
        print(f"{label:62} {s['median_ms']:8.1f}ms {s['p95_ms']:8.1f}ms  {s['n']:<3} {ratio}    "
              f"{s['cpu_median_ms']:.1f}, {s['cpu_p95_ms']:.1f} ms")
    for name, label in (("warm", "(4) national table, new as-at date (facts kept)"),
                        ("store", "(4) national table, new Views, facts kept in the store"),
                        ("cold", "(4) national table, nothing kept"),
                        ("store_fresh_process", "(4) ... new process, facts kept in the store"),
                        ("cold_fresh_process", "(4) ... new process, nothing kept"),
                        ("cold_one_by_one", "(4) ... nothing kept, facts read one authority at a time")):
        if name not in out["national"]:
            continue
        s = out["national"][name]
        print(f"{label:62} {s['median_ms'] / 1000:9.2f}s {s['max_ms'] / 1000:9.2f}s  {s['n']} (median, max)"
              f"  CPU median {s['cpu_median_ms'] / 1000:.2f} s")
    r = out["rss_mb"]
    print(f"{'(6) resident memory: before, now, peak':58} {r['before']:.0f} / {r['now']:.0f} / {r['peak']:.0f} MB")
    return out


if __name__ == "__main__":
    main()
